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
from faceshield.training.celeba import CelebA, data_root, digest, load_celeba
from faceshield.training.gan import Checkpoint, seed_everything, set_lr, ship_generator


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
    domains: tuple[str, ...] = ()
    landmarks: tuple[str, ...] = ()
    c_lm: float = 1.0
    lm_scale: float = 3.0
    lm_images: int = 2000
    scales: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    shift: float = 1.0
    zoom: float = 0.03
    seed: int = 0
    threads: int = 1
    holdout: float = 0.1
    heldout_faces: int = 200
    train_images: int | None = None
    lr_restart: int = 0
    data: str = "celeba"
    sides: tuple[int, ...] = ()
    model: dict = field(default_factory=lambda: PerturberConfig().to_dict())


def conditions(g, labels: np.ndarray, domains: list[str]) -> torch.Tensor:
    """``(B, c_dim)``: each face's condition towards its domain (``g.condition``), from its labels
    ``(B, len(g.domains))`` in {0, 1}."""
    return torch.stack([g.condition(d, dict(zip(g.domains, map(float, row)))) for d, row in zip(domains, labels)])


def _round8(x: torch.Tensor) -> torch.Tensor:
    """8-bit rounding in the forward pass, identity in the backward pass (straight-through)."""
    return x + ((x * 255).round() / 255 - x).detach()


def photo_side(s: int, scale: float) -> int:
    """Side of the photo :func:`as_photo` makes of an ``s`` px crop ``scale`` x larger (never smaller)."""
    return max(s, int(round(s * scale)))


def as_photo(x01: torch.Tensor, delta: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The crops ``x01`` and their perturbations ``delta`` ``(B, 3, S, S)`` as photos ``scale`` x
    larger (bilinear, as the pipeline pastes), both rounded to 8 bits: ``(clean, protected)``."""
    s = x01.shape[-1]
    big = photo_side(s, scale)
    if big != s:
        xb = _round8(F.interpolate(x01, size=(big, big), mode="bilinear", align_corners=False).clamp(0, 1))
        db = F.interpolate(delta, size=(big, big), mode="bilinear", align_corners=False)
    else:
        xb, db = x01, delta
    return xb, _round8((xb + db).clamp(0, 1))


def recrop(photos: tuple[torch.Tensor, ...], size: int, jitter: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Each ``(B, 3, H, H)`` photo cropped back to ``size`` px with the antialiased warp of
    :func:`~faceshield.faces.crop.warp_crops`, shifted and scaled by ``jitter`` ``(B, 3)`` (dx, dy
    in crop pixels, relative scale: the forger's detector does not put the crop exactly where ours did)."""
    from faceshield.faces.crop import warp_crops

    b, big = photos[0].shape[0], photos[0].shape[-1]
    j = torch.zeros(b, 3) if jitter is None else jitter
    k = (size / big) * (1 + j[:, 2])
    c = size / 2 * (1 - k * big / size)  # keep the centre, then shift
    m = torch.zeros(b, 2, 3)
    m[:, 0, 0], m[:, 1, 1] = k, k
    m[:, 0, 2], m[:, 1, 2] = c + j[:, 0], c + j[:, 1]
    return [warp_crops(x, m, size) for x in photos]


def through_photo(x01: torch.Tensor, delta: torch.Tensor, scale: float, jitter: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the forger's editor sees of a face protected in a photo (:func:`as_photo` then
    :func:`recrop`): ``(clean crop, protected crop)``."""
    xc, xp = recrop(as_photo(x01, delta, scale), x01.shape[-1], jitter)
    return xc, xp


def landmark_loss(extractor, rois: np.ndarray, seed: int):
    """The Landmark Breaker loss of one extractor for a batch with one face box each (``rois``
    ``(B, 4)`` in photo pixels): Eq. 1's heat-map cosine for heat-map models, minus the NME for
    regression models (:mod:`faceshield.attacks.losses`; per sample, lower = more damage)."""
    from faceshield.attacks import HeatmapCosineLoss, LandmarkDisplacementLoss
    from faceshield.core.types import ExtractorKind

    cls = HeatmapCosineLoss if extractor.kind is ExtractorKind.HEATMAP else LandmarkDisplacementLoss
    return cls(extractor, [r[None] for r in rois], seed=seed)


def objective(P: PerturbationNet, g, det, x01: torch.Tensor, c: torch.Tensor | None, cfg: DisrupterTrainConfig, scale: float = 1.0,
              jitter: torch.Tensor | None = None, lms: dict | None = None, rois: dict[str, np.ndarray] | None = None) -> tuple[torch.Tensor, dict]:
    """Eq. 7 on a batch ``x01`` ``(B, 3, S, S)`` in [0, 1] with conditions ``c``, through a photo
    ``scale`` x the crop (:func:`as_photo`, :func:`recrop`), plus ``c_lm`` x the Landmark Breaker
    loss of each landmark extractor of ``lms`` on the protected photo at its clean box (``rois``
    per extractor ``(B, 4)`` in photo pixels): ``(loss, parts)``. ``g`` None: landmarks only."""
    eps = cfg.eps_levels / 255.0
    delta = eps * P(x01)
    photo_c, photo_p = as_photo(x01, delta, scale)
    rms = delta.pow(2).flatten(1).mean(1).sqrt()
    hinge = F.relu(rms - cfg.rms_levels / 255.0) * 255.0  # in levels, so C1 reads per level above the bound
    loss = cfg.c1 * hinge.mean()
    parts = {"rms_levels": rms.mean().item() * 255}
    if g is not None:
        xc, xp = recrop((photo_c, photo_p), x01.shape[-1], jitter)
        with torch.no_grad():
            y = g(xc * 2 - 1, c)
        yp = g(xp * 2 - 1, c)
        dist = (yp - y).pow(2).flatten(1).mean(1)
        loss = loss - dist.mean()
        parts["l2"] = dist.mean().item()
        if det is not None:
            fake_logit = det((yp + 1) / 2)
            real_logit = det(xp)
            loss = loss + cfg.c2 * F.softplus(fake_logit).mean() + cfg.c3 * F.softplus(-real_logit).mean()
            parts["p_real_edit"] = torch.sigmoid(fake_logit).mean().item()
            parts["p_real_input"] = torch.sigmoid(real_logit).mean().item()
    for name, e in (lms or {}).items():
        lm = landmark_loss(e, rois[name], cfg.seed)(photo_p, photo_c).mean()
        loss = loss + cfg.c_lm * lm
        parts[f"lm_{name}"] = lm.item()
    return loss, parts


def landmark_faces(ds, names: tuple[str, ...], scale: float, n: int, cache: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The first ``n`` training crops, enlarged ``scale`` x as in :func:`as_photo`, through each
    landmark extractor's own detector: ``(indices of the crops every extractor finds a face on,
    {name: (len(indices), 4) boxes of the largest face})``; cached in ``cache`` (``.npz``)."""
    from faceshield.models import create_extractor

    key = f"{digest(ds)}:{','.join(names)}:{scale}:{n}"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key:
            return z["idx"], {k: z[k] for k in names}
    exts = {k: create_extractor(k) for k in names}
    idx, boxes = [], {k: [] for k in names}
    for i in range(min(n, len(ds))):
        x = torch.from_numpy(ds.images[i:i + 1].astype(np.float32) / 255).permute(0, 3, 1, 2)
        big, _ = as_photo(x, torch.zeros_like(x), scale)
        rgb = (big[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        found = {k: e.detect(rgb) for k, e in exts.items()}
        if all(found.values()):
            idx.append(i)
            for k, fs in found.items():
                boxes[k].append(max(fs, key=lambda f: f.area).roi)
    out = np.asarray(idx, dtype=np.int64), {k: np.asarray(v, dtype=np.float32).reshape(-1, 4) for k, v in boxes.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=np.array(key), idx=out[0], **out[1])
    return out


def aligned_photos(size: int, split: str = "train", limit: int | None = None) -> CelebA:
    """The ``landmarks68`` photos of ``split`` (HELEN + AFW train, HELEN test; sharp, long side
    <= 256 px) as CelebA-aligned crops of side ``size``: the five points of the ground-truth 68
    (:func:`~faceshield.faces.align._mtcnn5_from_68`) put on :data:`CELEBA_TEMPLATE` with the
    pipeline's antialiased warp. No labels (``attrs`` ``(N, 0)``), one identity per photo."""
    from faceshield.deepfake.edit import crop_matrix
    from faceshield.faces.align import _mtcnn5_from_68
    from faceshield.faces.crop import warp_crops
    from faceshield.models.manipulator import CELEBA_TEMPLATE
    from faceshield.training.landmarks import list_split, load_rgb, read_pts, resolve_data_dir

    files = list_split(resolve_data_dir(data_root()) / split)[:limit]
    imgs = np.empty((len(files), size, size, 3), np.uint8)
    for j, f in enumerate(files):
        rgb = torch.from_numpy(load_rgb(f).astype(np.float32) / 255).permute(2, 0, 1)[None]
        m = torch.from_numpy(crop_matrix(_mtcnn5_from_68(read_pts(f.with_suffix(".pts"))), size, CELEBA_TEMPLATE))[None]
        imgs[j] = (warp_crops(rgb, m, size)[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return CelebA(imgs, np.zeros((len(files), 0), np.float32), [], [f"{split}/{f.name}" for f in files], np.arange(len(files)))


def _targets(cfg: DisrupterTrainConfig):
    os.environ.setdefault("FACESHIELD_MESONET_DIR", str(data_root() / "weights" / "mesonet"))  # the authors' files, never shipped
    if not cfg.manipulator and not cfg.landmarks:
        raise ValueError("nothing to train against: give a manipulator and/or landmark extractors")
    if cfg.detector and not cfg.manipulator:
        raise ValueError("detector: it scores a manipulator's edits; give a manipulator too")
    g = create_target(cfg.manipulator) if cfg.manipulator else None
    det = create_target(cfg.detector) if cfg.detector else None
    bad = [d for d in cfg.domains if g is None or d not in g.domains]
    if bad:
        raise ValueError(f"domains: {cfg.manipulator or 'no manipulator'} has no {', '.join(bad)}")
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
    per_domain: dict[str, list] = {d: [] for d in g.domains}
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
                per_domain[d].append(each["crop"][-1])
                each["photo_x3"].append((g(x3p * 2 - 1, c) - g(x3c * 2 - 1, c)).pow(2).flatten(1).mean(1))
                if det is not None:
                    pr["clean_edit"] += det.prob_real((y + 1) / 2).tolist()
                    pr["protected_edit"] += det.prob_real((yp + 1) / 2).tolist()
    P.train()
    out = {"faces": len(ds), "domains": list(g.domains), "trained_domains": list(cfg.domains or g.domains)}
    for k, v in each.items():
        allv = torch.cat(v)
        out[k] = {"l2": round(float(allv.mean()), 5), "disrupted": round(float((allv >= 0.05).float().mean()), 4)}
    out["per_domain_crop"] = {d: {"l2": round(float(torch.cat(v).mean()), 5), "disrupted": round(float((torch.cat(v) >= 0.05).float().mean()), 4)}
                              for d, v in per_domain.items()}
    if det is not None:
        out["detector_p_real"] = {k: round(float(np.mean(v)), 4) for k, v in pr.items()}
    return out


def train(cfg: DisrupterTrainConfig, out: Path, log_every: int = 25, save_every: int = 100) -> dict:
    """Train (or resume) and ship ``out`` (fp16 state dict) with its sidecar ``out.json``; returns the sidecar."""
    rng, gen = seed_everything(cfg.seed, cfg.threads)
    mcfg = PerturberConfig(**cfg.model)
    stored = mcfg.max_size or mcfg.size  # crops are stored at the largest side and shrunk per batch
    if cfg.data not in ("celeba", "landmarks68"):
        raise ValueError(f"data: expected celeba or landmarks68, got {cfg.data!r}")
    if cfg.data == "landmarks68" and cfg.manipulator:
        raise ValueError("data: landmarks68 has no attribute labels; a manipulator trains on celeba")
    bad = [s for s in cfg.sides if s % mcfg.multiple or not mcfg.size <= s <= stored]
    if bad:
        raise ValueError(f"sides: each must be a multiple of {mcfg.multiple} in [size, max_size] = [{mcfg.size}, {stored}]; got {bad}")
    g, det = _targets(cfg)
    if cfg.data == "landmarks68":
        ds = aligned_photos(stored, limit=cfg.train_images)
    else:
        ds = load_celeba("train", size=stored, holdout=cfg.holdout, seed=0, limit=cfg.train_images)
    labels = ds.labels(g.domains) if g is not None else np.zeros((len(ds), 0), np.float32)
    lms, valid, boxes = {}, np.arange(len(ds)), {}
    if cfg.landmarks:
        from faceshield.models import create_extractor

        lms = {k: create_extractor(k) for k in cfg.landmarks}
        valid, boxes = landmark_faces(ds, cfg.landmarks, cfg.lm_scale, cfg.lm_images, out.with_suffix(".faces.npz"))
        print(f"{len(valid)} of {min(cfg.lm_images, len(ds))} training crops have a face for {', '.join(cfg.landmarks)}", flush=True)
    torch.manual_seed(cfg.seed)  # P's initial weights do not depend on which models were loaded (and how) before
    P = PerturbationNet(mcfg)
    op = torch.optim.Adam(P.parameters(), cfg.lr, betas=(0.5, 0.999))
    ckpt = Checkpoint(out, P, None, op, None, rng, gen)
    start, history, spent = ckpt.resume()
    t0 = time.time() - spent
    acc: dict[str, float] = {}
    seen = 0
    for it in range(start, cfg.iters + 1):
        set_lr((op,), cfg.lr, it, cfg.iters, cfg.lr_restart)
        pick = valid[rng.integers(0, len(valid), cfg.batch)]
        flip = rng.random(cfg.batch) < 0.5
        x = ds.images[pick].astype(np.float32) / 255.0
        x[flip] = x[flip, :, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
        if cfg.sides:  # the face's resolution: the crop side P runs at
            side = int(rng.choice(cfg.sides))
            if side != stored:
                x = (F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1) * 255).round() / 255  # an 8-bit photo
        scale = float(rng.choice(cfg.scales))  # the size of the face in the photo, in crops
        jitter = torch.from_numpy(rng.uniform(-1, 1, (cfg.batch, 3)) * np.array([cfg.shift, cfg.shift, cfg.zoom])).float()
        c = None
        if g is not None:
            pool = list(cfg.domains or g.domains)
            doms = [pool[int(k)] for k in rng.integers(0, len(pool), cfg.batch)]  # class-transferable: a random domain per face
            c = conditions(g, labels[pick], doms)
        rois = None
        if lms:  # each face's clean box, moved with the flip and the photo's scale
            at = np.searchsorted(valid, pick)
            w = stored * cfg.lm_scale
            rois = {}
            for k in lms:
                r = boxes[k][at].copy()
                r[flip] = np.stack([w - r[flip, 2], r[flip, 1], w - r[flip, 0], r[flip, 3]], 1)
                rois[k] = r * (photo_side(x.shape[-1], scale) / w)
        loss, parts = objective(P, g, det, x, c, cfg, scale, jitter, lms, rois)
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
    meta = {"model": mcfg.to_dict(), "eps_levels": cfg.eps_levels,
            "trained_against": [*([cfg.manipulator] if cfg.manipulator else []), *([cfg.detector] if cfg.detector else []), *cfg.landmarks],
            "loss": "seed 002 Eq. 7 (log-likelihood form of the detector terms; RMS hinge in levels)" + (" + c_lm x Landmark Breaker losses" if cfg.landmarks else ""),
            "train": asdict(cfg), "history": history,
            "heldout": heldout(P, cfg, cfg.heldout_faces) if g is not None else None}
    data = ds if cfg.data == "celeba" else {"source": "landmarks68/train (HELEN train + AFW; the bench's HELEN test photos held out)", "images": len(ds), "digest": digest(ds)}
    return ship_generator(out, P, meta, data, cfg.threads, seconds, cfg.holdout)


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
    ap.add_argument("--manipulator", default=d.manipulator, help="the editor in the loss ('' for a landmark-only generator)")
    ap.add_argument("--detector", default=d.detector, help="detector in the loss ('' for none)")
    ap.add_argument("--landmarks", default="", help="comma-separated landmark extractors whose Landmark Breaker loss is added (e.g. mtcnn,fan)")
    ap.add_argument("--scales", default="1,2,3,4", help="comma-separated sizes of the face in the photo, in crops, drawn per batch")
    ap.add_argument("--c-lm", type=float, default=d.c_lm, help="weight of the landmark losses")
    ap.add_argument("--lm-images", type=int, default=d.lm_images, help="training crops whose faces are detected for the landmark losses")
    ap.add_argument("--domains", default="", help="comma-separated domains trained on (default: all of the manipulator's; fewer for the unseen-domain table)")
    ap.add_argument("--arch", default="resnet", choices=("resnet", "unet"))
    ap.add_argument("--conv-dim", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="crop side P is trained at (the smallest, with --max-size)")
    ap.add_argument("--max-size", type=int, default=0, help="0: fixed-size crops; else P runs at each face's own resolution up to this side (train with --sides)")
    ap.add_argument("--sides", default="", help="comma-separated crop sides drawn per batch (with --max-size), e.g. 128,160,192,224,256")
    ap.add_argument("--data", default="celeba", choices=("celeba", "landmarks68"), help="training faces: CelebA (64 px) or the sharp landmarks68 train photos (landmark-only generators)")
    ap.add_argument("--lm-scale", type=float, default=d.lm_scale, help="photo / crop size at which the training faces are detected for the landmark boxes")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--lr-restart", type=int, default=0, help="warm restart: the first N iterations follow the schedule of an N-iteration run (to extend a finished run by resuming it)")
    ap.add_argument("--heldout-faces", type=int, default=d.heldout_faces, help="held-out faces measured at the end")
    ap.add_argument("--out", default="out/train/disrupter_stargan64.pt")
    a = ap.parse_args(argv)
    model = PerturberConfig(size=a.size, arch=a.arch, conv_dim=a.conv_dim, blocks=a.blocks, max_size=a.max_size).to_dict()
    cfg = DisrupterTrainConfig(iters=a.iters, batch=a.batch, lr=a.lr, eps_levels=a.eps, rms_levels=a.rms, c1=a.c1, c2=a.c2, c3=a.c3,
                               manipulator=a.manipulator, detector=a.detector, domains=tuple(x for x in a.domains.split(",") if x),
                               landmarks=tuple(x for x in a.landmarks.split(",") if x), scales=tuple(float(x) for x in a.scales.split(",")), c_lm=a.c_lm, lm_images=a.lm_images, lm_scale=a.lm_scale, data=a.data, sides=tuple(int(x) for x in a.sides.split(",") if x), seed=a.seed, threads=a.threads, heldout_faces=a.heldout_faces, lr_restart=a.lr_restart, model=model)
    meta = train(cfg, Path(a.out))
    print(json.dumps({"seconds": meta["seconds"], "heldout": meta["heldout"]}))


if __name__ == "__main__":
    main()
