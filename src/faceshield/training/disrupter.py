"""Train a DeepFake Disrupter perturbation generator on CelebA (seed 002, Eq. 7).

P maps a CelebA-aligned face crop x in [0, 1] to ``delta = eps * tanh(...)`` (the L_inf budget by
construction, :class:`~faceshield.models.perturber.PerturbationNet`); the manipulator G and the
detector D stay frozen. Each batch goes through the photo the way the pipeline protects one
(:func:`through_photo`: the face enlarged 1-4x, the perturbation pasted bilinearly, the photo
rounded to 8 bits, re-cropped with a jitter of +-1 px and +-3 % scale), so what P learns survives
the paste-back, the forger's re-crop and the saved file. Per iteration each face gets a random target domain (the paper's
"class-transferable" training), and P minimises

    - MSE(G(x + P(x), c), G(x, c))                 distort the edit (Ruiz et al.'s L2, on [-1, 1])
    + C1 * (RMS(P(x)) - rms_bound)_+                the paper's hinge on the perturbation's size
    + C2 * softplus(logit_real D(G(x + P(x), c)))   the edit of a protected face is caught as fake
    + C3 * softplus(-logit_real D(x + P(x)))        the protected face itself still looks real

Eq. 7 writes the two detector terms as ``D(.)`` and ``1 - D(.)`` with D the probability of real;
we use their log-likelihood form (``-log(1 - D)`` and ``-log D``), which has the same minimisers and
does not saturate. The hinge is on the RMS (the L2 norm divided by the square root of the number of
values, in [0, 1] units), so that its bound reads in 8-bit levels whatever the crop size.

Seeded (python, numpy, torch), single process, fixed iteration count; checkpoints every
``--save-every`` iterations to ``OUT.ckpt`` and resumes from it. At the end the held-out
identities (10 %, the split of every CelebA model here) are measured; the sidecar JSON next to the
weights records the config, data digest, loss history, held-out figures, seconds and the machine.

Usage::

    python -m faceshield.training.disrupter --iters 1200 --out src/faceshield/data/disrupter_stargan64.pt
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceshield.models import create_target
from faceshield.models.perturber import PerturbationNet, PerturberConfig
from faceshield.training.celeba import data_root, load_celeba
from faceshield.training.gan import Checkpoint, celeba_batch, seed_everything, set_lr, ship_generator


@dataclass
class DisrupterTrainConfig:
    iters: int = 1200
    batch: int = 16
    lr: float = 2e-4
    eps_levels: float = 8.0
    rms_levels: float = 5.0
    c1: float = 10.0
    c2: float = 0.2
    c3: float = 0.2
    manipulator: str = "stargan"
    detector: str = "meso4-df"
    scales: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    shift: float = 1.0
    zoom: float = 0.03
    seed: int = 0
    threads: int = 1
    holdout: float = 0.1
    heldout_faces: int = 200
    model: dict = field(default_factory=lambda: PerturberConfig().to_dict())


def conditions(g, labels: np.ndarray, domains: list[str]) -> torch.Tensor:
    """``(B, c_dim)``: each face's condition towards its domain (``g.condition``), from its labels
    ``(B, len(g.domains))`` in {0, 1}."""
    return torch.stack([g.condition(d, dict(zip(g.domains, map(float, row)))) for d, row in zip(domains, labels)])


def _round8(x: torch.Tensor) -> torch.Tensor:
    """8-bit rounding in the forward pass, identity in the backward pass (straight-through)."""
    return x + ((x * 255).round() / 255 - x).detach()


def through_photo(x01: torch.Tensor, delta: torch.Tensor, scale: float, jitter: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the forger's editor sees of a face protected in a photo: the crop ``x01`` and its
    perturbation ``delta`` ``(B, 3, S, S)`` are enlarged ``scale`` x (the photo; bilinear, as the
    pipeline pastes), the protected photo is rounded to 8 bits, and both photos are cropped back to
    ``S`` px with the antialiased warp of :func:`~faceshield.faces.crop.warp_crops`, shifted and
    scaled by ``jitter`` ``(B, 3)`` (dx, dy in crop pixels, relative scale; the forger's detector
    does not put the crop exactly where ours did). Returns ``(clean crop, protected crop)``."""
    from faceshield.faces.crop import warp_crops

    b, _, s, _ = x01.shape
    big = max(s, int(round(s * scale)))
    if big != s:
        xb = _round8(F.interpolate(x01, size=(big, big), mode="bilinear", align_corners=False).clamp(0, 1))
        db = F.interpolate(delta, size=(big, big), mode="bilinear", align_corners=False)
    else:
        xb, db = x01, delta
    xpb = _round8((xb + db).clamp(0, 1))
    j = torch.zeros(b, 3) if jitter is None else jitter
    k = (s / big) * (1 + j[:, 2])
    c = s / 2 * (1 - k * big / s)  # keep the centre, then shift
    m = torch.zeros(b, 2, 3)
    m[:, 0, 0], m[:, 1, 1] = k, k
    m[:, 0, 2], m[:, 1, 2] = c + j[:, 0], c + j[:, 1]
    return warp_crops(xb, m, s), warp_crops(xpb, m, s)


def objective(P: PerturbationNet, g, det, x01: torch.Tensor, c: torch.Tensor, cfg: DisrupterTrainConfig, scale: float = 1.0,
              jitter: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Eq. 7 on a batch ``x01`` ``(B, 3, S, S)`` in [0, 1] with conditions ``c``, through a photo
    ``scale`` x the crop (:func:`through_photo`): ``(loss, parts)``."""
    eps = cfg.eps_levels / 255.0
    delta = eps * P(x01)
    xc, xp = through_photo(x01, delta, scale, jitter)
    with torch.no_grad():
        y = g(xc * 2 - 1, c)
    yp = g(xp * 2 - 1, c)
    dist = (yp - y).pow(2).flatten(1).mean(1)
    rms = delta.pow(2).flatten(1).mean(1).sqrt()
    hinge = F.relu(rms - cfg.rms_levels / 255.0) * 255.0  # in levels, so C1 reads per level above the bound
    loss = -dist.mean() + cfg.c1 * hinge.mean()
    parts = {"l2": dist.mean().item(), "rms_levels": rms.mean().item() * 255}
    if det is not None:
        fake_logit = det((yp + 1) / 2)
        real_logit = det(xp)
        loss = loss + cfg.c2 * F.softplus(fake_logit).mean() + cfg.c3 * F.softplus(-real_logit).mean()
        parts["p_real_edit"] = torch.sigmoid(fake_logit).mean().item()
        parts["p_real_input"] = torch.sigmoid(real_logit).mean().item()
    return loss, parts


def _targets(cfg: DisrupterTrainConfig):
    os.environ.setdefault("FACESHIELD_MESONET_DIR", str(data_root() / "weights" / "mesonet"))  # the authors' files, never shipped
    g = create_target(cfg.manipulator)
    det = create_target(cfg.detector) if cfg.detector else None
    return g, det


def heldout(P: PerturbationNet, cfg: DisrupterTrainConfig, n: int = 200) -> dict:
    """Held-out identities, every domain: mean L2 and share of edits with L2 >= 0.05 on the 8-bit
    protected crop (``crop``) and through a photo 3x the crop (``photo_x3``,
    :func:`through_photo` without jitter); the detector's mean probability of real on clean /
    protected edits and inputs (crop)."""
    g, det = _targets(cfg)
    ds = load_celeba("test", size=P.config.size, holdout=cfg.holdout, seed=0, limit=n)
    labels = ds.labels(g.domains)
    x = torch.from_numpy(ds.images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    eps = cfg.eps_levels / 255.0
    P.eval()
    each = {"crop": [], "photo_x3": []}
    pr = {"clean_edit": [], "protected_edit": [], "real_input": [], "protected_input": []}
    with torch.no_grad():
        for i in range(0, len(ds), 50):
            xb = x[i:i + 50]
            delta = eps * P(xb)
            xp = ((xb + delta) * 255).round().clamp(0, 255) / 255  # 8-bit, as published
            x3c, x3p = through_photo(xb, delta, 3.0)
            if det is not None:
                pr["real_input"] += det.prob_real(xb).tolist()
                pr["protected_input"] += det.prob_real(xp).tolist()
            for d in g.domains:
                c = conditions(g, labels[i:i + 50], [d] * len(xb))
                y, yp = g(xb * 2 - 1, c), g(xp * 2 - 1, c)
                each["crop"].append((yp - y).pow(2).flatten(1).mean(1))
                each["photo_x3"].append((g(x3p * 2 - 1, c) - g(x3c * 2 - 1, c)).pow(2).flatten(1).mean(1))
                if det is not None:
                    pr["clean_edit"] += det.prob_real((y + 1) / 2).tolist()
                    pr["protected_edit"] += det.prob_real((yp + 1) / 2).tolist()
    P.train()
    out = {"faces": len(ds), "domains": list(g.domains)}
    for k, v in each.items():
        allv = torch.cat(v)
        out[k] = {"l2": round(float(allv.mean()), 5), "disrupted": round(float((allv >= 0.05).float().mean()), 4)}
    if det is not None:
        out["detector_p_real"] = {k: round(float(np.mean(v)), 4) for k, v in pr.items()}
    return out


def train(cfg: DisrupterTrainConfig, out: Path, log_every: int = 25, save_every: int = 100) -> dict:
    """Train (or resume) and ship ``out`` (fp16 state dict) with its sidecar ``out.json``; returns the sidecar."""
    rng, gen = seed_everything(cfg.seed, cfg.threads)
    mcfg = PerturberConfig(**cfg.model)
    g, det = _targets(cfg)
    ds = load_celeba("train", size=mcfg.size, holdout=cfg.holdout, seed=0)
    labels = ds.labels(g.domains)
    P = PerturbationNet(mcfg)
    op = torch.optim.Adam(P.parameters(), cfg.lr, betas=(0.5, 0.999))
    ckpt = Checkpoint(out, P, None, op, None, rng, gen)
    start, history, spent = ckpt.resume()
    t0 = time.time() - spent
    acc: dict[str, float] = {}
    seen = 0
    for it in range(start, cfg.iters + 1):
        set_lr((op,), cfg.lr, it, cfg.iters)
        x, lab = celeba_batch(ds.images, labels, rng, cfg.batch)
        doms = [g.domains[int(k)] for k in rng.integers(0, len(g.domains), cfg.batch)]  # class-transferable: a random domain per face
        scale = float(rng.choice(cfg.scales))  # the size of the face in the photo, in crops
        jitter = torch.from_numpy(rng.uniform(-1, 1, (cfg.batch, 3)) * np.array([cfg.shift, cfg.shift, cfg.zoom])).float()
        loss, parts = objective(P, g, det, (x + 1) / 2, conditions(g, lab.numpy(), doms), cfg, scale, jitter)
        op.zero_grad(set_to_none=True)
        loss.backward()
        op.step()
        for k, v in {"loss": loss.item(), **parts}.items():
            acc[k] = acc.get(k, 0.0) + v
        seen += 1
        if it % log_every == 0:
            row = [it, *(round(acc[k] / seen, 4) for k in sorted(acc)), round(time.time() - t0, 1)]
            cols = ["iter", *sorted(acc), "seconds"]
            history.append(dict(zip(cols, row)))
            print(" ".join(f"{k} {v}" for k, v in zip(cols, row)), flush=True)
            acc, seen = {}, 0
        if it % save_every == 0 or it == cfg.iters:
            ckpt.save(it, history, time.time() - t0)
    seconds = time.time() - t0
    meta = {"model": mcfg.to_dict(), "eps_levels": cfg.eps_levels, "trained_against": [cfg.manipulator, *([cfg.detector] if cfg.detector else [])],
            "loss": "seed 002 Eq. 7 (log-likelihood form of the detector terms; RMS hinge in levels)", "train": asdict(cfg), "history": history,
            "heldout": heldout(P, cfg, cfg.heldout_faces)}
    return ship_generator(out, P, meta, ds, cfg.threads, seconds, cfg.holdout)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    ap = argparse.ArgumentParser(prog=prog, description="Train a DeepFake Disrupter perturbation generator on CelebA (seed 002, Eq. 7; identity-disjoint split).")
    d = DisrupterTrainConfig()
    ap.add_argument("--iters", type=int, default=d.iters)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--eps", type=float, default=d.eps_levels, help="L_inf budget in 8-bit levels (by construction: eps * tanh)")
    ap.add_argument("--rms", type=float, default=d.rms_levels, help="hinge bound on the perturbation's RMS, in 8-bit levels")
    ap.add_argument("--c1", type=float, default=d.c1, help="weight of the RMS hinge (per level above the bound)")
    ap.add_argument("--c2", type=float, default=d.c2, help="weight of 'the edit of a protected face looks fake' (detector)")
    ap.add_argument("--c3", type=float, default=d.c3, help="weight of 'the protected face looks real' (detector)")
    ap.add_argument("--manipulator", default=d.manipulator)
    ap.add_argument("--detector", default=d.detector, help="detector in the loss ('' for none)")
    ap.add_argument("--arch", default="resnet", choices=("resnet", "unet"))
    ap.add_argument("--conv-dim", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--heldout-faces", type=int, default=d.heldout_faces, help="held-out faces measured at the end")
    ap.add_argument("--out", default="out/train/disrupter_stargan64.pt")
    a = ap.parse_args(argv)
    model = PerturberConfig(arch=a.arch, conv_dim=a.conv_dim, blocks=a.blocks).to_dict()
    cfg = DisrupterTrainConfig(iters=a.iters, batch=a.batch, lr=a.lr, eps_levels=a.eps, rms_levels=a.rms, c1=a.c1, c2=a.c2, c3=a.c3,
                               manipulator=a.manipulator, detector=a.detector, seed=a.seed, threads=a.threads, heldout_faces=a.heldout_faces, model=model)
    meta = train(cfg, Path(a.out))
    print(json.dumps({"seconds": meta["seconds"], "heldout": meta["heldout"]}))


if __name__ == "__main__":
    main()
