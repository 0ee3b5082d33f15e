"""Initiative Defense, model-based (seed 003, Alg. 1): a surrogate editor SM and a poison
perturbation generator PG trained alternately on CelebA, so that PG protects against editors the
defender never had.

Per iteration (Alg. 1):

* **Stage A** trains SM (a StarGAN-class editor, "Res6": 6 residual blocks) and its critic D_A on
  clean faces, with StarGAN's recipe (:func:`faceshield.training.stargan.stargan_step`).
* **Stage B** trains PG (a U-Net, :class:`~faceshield.models.perturber.PerturbationNet` with
  ``arch="unet"``). The poisoned face is ``x' = x + eps * PG(x)`` (Eq. 2), with ``PG`` in
  ``[-1, 1]`` (tanh), so the L_inf bound ``tau = eps`` holds by construction. PG minimises
  ``L_PG = L_A->B(SM_i) + L_A->B(SM_{i-1}) + lambda * L_B`` (Eqs. 4 and 12; ``enhance``: the
  previous iteration's SM too).
  * ``L_B`` is the generator side of a WGAN-GP critic D_B between ``x`` and ``x'`` (Eq. 5, the
    gradient penalty weighted by ``lambda_1``).
  * ``L_A->B = lambda_2 L_bs + lambda_3 L_cyc + lambda_4 L_dom`` (Eq. 6). ``L_bs`` is minus the
    ``mu_j``-weighted L1 between ``SM(x, c_j)`` and ``SM(x', c_j)`` (Eq. 7). The ``mu_j`` are each
    domain's share of the clean edit's L1 change (Eq. 8). ``L_cyc`` is minus the weighted L1 of
    ``x'`` against its cycle ``SM(SM(x', c_j), c)`` (Eq. 9). ``L_dom`` asks D_A to read the
    farthest domain (the flipped labels, ``1 - c_j``) in the poisoned edits and to score them fake
    (Eq. 10).
* PG_best is the PG with the largest distortion D(y, y') seen. Here that is the mean L2 over every
  domain on a fixed batch of held-out identities, edited by the current SM, checked every
  ``eval_every`` iterations (Alg. 1 compares each training batch's value).

The paper's hyper-parameters are the defaults: lambda 0.01, lambda_1 = lambda_2 = 10, lambda_3 2.5,
lambda_4 1, learning rates 1e-4. Our one change for the 2-core CPU: ``domains_per_step`` domains
drawn at random per iteration (the paper sums over all five), because each domain costs three SM
passes per model. ``alternate=False`` is the paper's † ablation: SM is trained alone for
``sm_pretrain`` iterations, then frozen while PG trains against it.

Seeded, single process, checkpoints to ``OUT.ckpt`` every ``save_every`` iterations (resumed). The
fp16 PG ships with a sidecar that :func:`faceshield.models.zoo.load_perturbation_generator` reads
(architecture, ``eps_levels``, what it was trained against, history, held-out figures).

Usage::

    python -m faceshield.training.initiative --iters 1200 --out out/train/initiative64.pt
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from faceshield.models.manipulator import stargan_condition
from faceshield.models.perturber import PerturbationNet, PerturberConfig
from faceshield.models.stargan import StarGANConfig, StarGANDiscriminator, StarGANGenerator
from faceshield.training.celeba import STARGAN_DOMAINS, load_celeba
from faceshield.training.gan import Checkpoint, celeba_batch, gradient_penalty, seed_everything, ship_generator
from faceshield.training.stargan import StarGANTrainConfig, stargan_step


@dataclass
class InitiativeTrainConfig:
    iters: int = 1200
    batch: int = 8
    lr: float = 1e-4  # PG and D_B (paper)
    sm_lr: float = 1e-4  # SM and D_A (paper)
    n_critic: int = 2  # SM's critic steps per generator step (our StarGAN recipe)
    eps_levels: float = 8.0  # tau, in 8-bit levels
    lam: float = 0.01  # lambda: weight of L_B (Eq. 4)
    lam_gp: float = 10.0  # lambda_1 (Eq. 5)
    lam_bs: float = 10.0  # lambda_2 (Eq. 6)
    lam_cyc: float = 2.5  # lambda_3
    lam_dom: float = 1.0  # lambda_4
    enhance: bool = True  # Eq. 12: the previous iteration's SM in L_PG too
    alternate: bool = True  # False: the paper's ablation (SM trained first, then frozen)
    sm_pretrain: int = 0  # with alternate=False: SM iterations before PG starts
    domains_per_step: int = 2  # of the five, drawn per iteration (the paper: all)
    eval_every: int = 100
    eval_faces: int = 32
    heldout_faces: int = 400
    train_images: int | None = None  # at most this many training faces (None: all)
    seed: int = 0
    threads: int = 1
    holdout: float = 0.1
    sm: dict = field(default_factory=lambda: StarGANConfig(repeat_num=6).to_dict())
    model: dict = field(default_factory=lambda: PerturberConfig(arch="unet").to_dict())


class _Critic(nn.Module):
    """D_B: a convolutional critic of faces ``(B, 3, S, S)`` in [-1, 1] -> ``(B,)`` (StarGAN's
    PatchGAN body, averaged); ``forward`` returns ``(score, None)`` so :func:`gradient_penalty` applies."""

    def __init__(self, cfg: StarGANConfig) -> None:
        super().__init__()
        self.d = StarGANDiscriminator(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.d(x)[0].flatten(1).mean(1), None


class _Both(nn.Module):
    """SM, D_A, PG and D_B under one module, for the checkpoint."""

    def __init__(self, sm: nn.Module, da: nn.Module, pg: nn.Module, db: nn.Module) -> None:
        super().__init__()
        self.sm, self.da, self.pg, self.db = sm, da, pg, db


def domain_conditions(labels: torch.Tensor, domains: list[str]) -> torch.Tensor:
    """``(J, B, 5)``: each face's StarGAN condition towards each of ``domains`` from its labels
    ``(B, 5)`` in {0, 1} (:func:`~faceshield.models.manipulator.stargan_condition`)."""
    return torch.stack([torch.stack([stargan_condition(d, dict(zip(STARGAN_DOMAINS, map(float, row)))) for row in labels]) for d in domains])


def influence(sm: StarGANGenerator, da: StarGANDiscriminator, x: torch.Tensor, xp: torch.Tensor, c_org: torch.Tensor, conds: torch.Tensor,
              cfg: InitiativeTrainConfig) -> tuple[torch.Tensor, dict]:
    """``L_A->B`` (Eqs. 6-10) of the poisoned faces ``xp`` against the clean ``x`` ``(B, 3, S, S)``
    in [-1, 1], for the conditions ``conds`` ``(J, B, 5)``; returns the loss and its parts."""
    with torch.no_grad():
        y = [sm(x, c) for c in conds]
        change = torch.stack([(x - yj).abs().flatten(1).mean(1) for yj in y])  # (J, B)
        mu = change / change.sum(0, keepdim=True).clamp(min=1e-8)  # Eq. 8
    bs = cyc = dom = 0.0
    for j, c in enumerate(conds):
        yp = sm(xp, c)
        bs = bs - (mu[j] * (y[j] - yp).abs().flatten(1).mean(1)).mean()  # Eq. 7
        cyc = cyc - (mu[j] * (xp - sm(yp, c_org)).abs().flatten(1).mean(1)).mean()  # Eq. 9
        src, cls = da(yp)
        dom = dom + F.binary_cross_entropy_with_logits(cls, 1.0 - c) + src.mean()  # Eq. 10
    loss = cfg.lam_bs * bs + cfg.lam_cyc * cyc + cfg.lam_dom * dom
    return loss, {"bs": float(bs.detach()), "cyc": float(cyc.detach()), "dom": float(dom.detach())}


@torch.no_grad()
def distortion(sm: StarGANGenerator, pg: PerturbationNet, x: torch.Tensor, labels: torch.Tensor, eps: float) -> float:
    """D(y, y'): mean L2 (mean squared error on [-1, 1]) between ``sm``'s edits of the clean and of
    the poisoned (8-bit) faces ``x`` ``(B, 3, S, S)`` in [-1, 1], over the five domains."""
    x01 = (x + 1) / 2
    xp = (((x01 + eps * pg(x01)) * 255).round().clamp(0, 255) / 255) * 2 - 1
    conds = domain_conditions(labels, list(STARGAN_DOMAINS))
    return float(torch.stack([(sm(xp, c) - sm(x, c)).pow(2).flatten(1).mean(1) for c in conds]).mean())


def poison_and_critic_step(pg: nn.Module, db: nn.Module, o_db: torch.optim.Optimizer, x: torch.Tensor, eps: float, lam_gp: float,
                           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage B's first half: the poisoned faces ``x' = x + eps PG(x)`` (Eq. 2; ``x`` ``(B, 3, S, S)``
    in [-1, 1], ``eps`` in [0, 1] units) and one WGAN-GP step of the critic D_B between ``x`` and
    ``x'`` (Eq. 5). Returns ``x'`` (with PG's graph, for ``L_B`` and the influence loss) and D_B's loss."""
    x01 = (x + 1) / 2
    xp = (x01 + eps * pg(x01)).clamp(0, 1) * 2 - 1
    d_loss = -db(x)[0].mean() + db(xp.detach())[0].mean() + lam_gp * gradient_penalty(db, x, xp.detach(), gen)
    o_db.zero_grad(set_to_none=True)
    d_loss.backward()
    o_db.step()
    return xp, d_loss


def train(cfg: InitiativeTrainConfig, out: Path, log_every: int = 25, save_every: int = 100) -> dict:
    """Train (or resume) and ship PG_best to ``out`` (fp16) with its sidecar ``out.json``."""
    rng, gen = seed_everything(cfg.seed, cfg.threads)
    scfg, pcfg = StarGANConfig(**cfg.sm), PerturberConfig(**cfg.model)
    if scfg.size != pcfg.size:
        raise ValueError(f"sm size {scfg.size} != model size {pcfg.size}")
    ds = load_celeba("train", size=scfg.size, holdout=cfg.holdout, seed=0, limit=cfg.train_images)
    labels = ds.labels(STARGAN_DOMAINS)
    val = load_celeba("test", size=scfg.size, holdout=cfg.holdout, seed=0, limit=cfg.eval_faces)
    xv = torch.from_numpy(val.images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    cv = torch.from_numpy(val.labels(STARGAN_DOMAINS))
    sm, da, pg, db = StarGANGenerator(scfg), StarGANDiscriminator(scfg), PerturbationNet(pcfg), _Critic(scfg)
    o_sm = torch.optim.Adam(sm.parameters(), cfg.sm_lr, betas=(0.5, 0.999))
    o_da = torch.optim.Adam(da.parameters(), cfg.sm_lr, betas=(0.5, 0.999))
    o_pg = torch.optim.Adam(pg.parameters(), cfg.lr, betas=(0.5, 0.999))
    o_db = torch.optim.Adam(db.parameters(), cfg.lr, betas=(0.5, 0.999))
    both = _Both(sm, da, pg, db)
    opt = _Optims(o_sm, o_da, o_pg, o_db)
    ckpt = Checkpoint(out, both, None, opt, None, rng, gen)
    start, history, spent = ckpt.resume()
    best = (history[-1].get("best", -1.0) if history else -1.0)
    best_state = torch.load(out.with_suffix(".best.pt"), weights_only=True) if out.with_suffix(".best.pt").is_file() else None
    t0 = time.time() - spent
    eps = cfg.eps_levels / 255.0
    scfg_train = StarGANTrainConfig(n_critic=cfg.n_critic)
    acc: dict[str, float] = {}
    sm_acc = {"d": 0.0, "g": 0.0, "cls_fake": 0.0, "rec": 0.0, "n_g": 0}
    seen, last_dist = 0, None
    for it in range(start, cfg.iters + 1):
        x, c_org = celeba_batch(ds.images, labels, rng, cfg.batch)
        train_sm = cfg.alternate or it <= cfg.sm_pretrain
        prev = copy.deepcopy(sm) if cfg.enhance and train_sm else None  # SM_{i-1}: only when stage A moves SM
        if train_sm:  # stage A
            stargan_step(sm, da, o_sm, o_da, x, c_org, c_org[torch.randperm(cfg.batch, generator=gen)], it, scfg_train, gen, sm_acc)
        if not cfg.alternate and it <= cfg.sm_pretrain:
            continue
        # stage B: D_B, then PG
        xp, d_loss = poison_and_critic_step(pg, db, o_db, x, eps, cfg.lam_gp, gen)
        doms = [STARGAN_DOMAINS[int(k)] for k in rng.choice(len(STARGAN_DOMAINS), cfg.domains_per_step, replace=False)]
        conds = domain_conditions(c_org, doms)
        l_ab, parts = influence(sm, da, x, xp, c_org, conds, cfg)
        loss = l_ab + cfg.lam * -db(xp)[0].mean()
        if prev is not None:
            l_prev, _ = influence(prev, da, x, xp, c_org, conds, cfg)
            loss = loss + l_prev
        o_pg.zero_grad(set_to_none=True)
        loss.backward()
        o_pg.step()
        for k, v in {"loss": loss.item(), "d_b": d_loss.item(), **parts}.items():
            acc[k] = acc.get(k, 0.0) + v
        seen += 1
        if it % cfg.eval_every == 0 or it == cfg.iters:
            dist = distortion(sm, pg, xv, cv, eps)
            if dist > best:
                best, best_state = dist, copy.deepcopy(pg.state_dict())
                torch.save(best_state, out.with_suffix(".best.pt"))
            last_dist = dist
        if it % log_every == 0 or it == cfg.iters:
            n_g = max(sm_acc["n_g"], 1)
            row = {"iter": it, **{k: round(v / max(seen, 1), 4) for k, v in sorted(acc.items())},
                   "sm_rec": round(sm_acc["rec"] / n_g, 4), "sm_cls_fake": round(sm_acc["cls_fake"] / n_g, 4), "seconds": round(time.time() - t0, 1)}
            if last_dist is not None:
                row["dist"], last_dist = round(last_dist, 6), None
            row["best"] = best  # exact: a resumed run compares against it
            history.append(row)
            print(" ".join(f"{k} {v}" for k, v in row.items()), flush=True)
            acc, seen = {}, 0
            sm_acc = {"d": 0.0, "g": 0.0, "cls_fake": 0.0, "rec": 0.0, "n_g": 0}
        if it % save_every == 0 or it == cfg.iters:
            ckpt.save(it, history, time.time() - t0)
    seconds = time.time() - t0
    if best_state is not None:
        pg.load_state_dict(best_state)
    meta = {"model": pcfg.to_dict(), "eps_levels": cfg.eps_levels, "trained_against": ["surrogate"],
            "loss": "seed 003 Alg. 1 / Eqs. 4-12: alternating surrogate (StarGAN-class Res6) and PG (U-Net); PG_best by held-out distortion",
            "surrogate": scfg.to_dict(), "best_distortion": round(best, 5), "train": asdict(cfg), "history": history}
    meta["heldout"] = heldout(pg, cfg, cfg.heldout_faces)
    save_surrogate(sm, scfg, cfg, surrogate_path(out), ds, seconds)
    return ship_generator(out, pg, meta, ds, cfg.threads, seconds, cfg.holdout)


def surrogate_path(out: Path) -> Path:
    """Where the surrogate of the PG at ``out`` is written: ``NAME.surrogate.pt`` (+ ``.json``)."""
    return out.with_name(out.stem + ".surrogate.pt")


def save_surrogate(sm: StarGANGenerator, scfg: StarGANConfig, cfg: InitiativeTrainConfig, path: Path, ds, seconds: float) -> dict:
    """The surrogate as a StarGAN generator file (``create_target("stargan", weights=path)`` loads
    it): for Ruiz et al.'s per-image baseline made on it, the defender's only editor."""
    meta = {"model": scfg.to_dict(), "domains": list(STARGAN_DOMAINS), "train": asdict(cfg), "role": "Initiative Defense surrogate (stage A)"}
    return ship_generator(path, sm, meta, ds, cfg.threads, seconds, cfg.holdout)


def export_surrogate(ckpt: Path, out: Path) -> dict:
    """Write the surrogate of a training checkpoint ``ckpt`` (``NAME.ckpt``) to ``out`` (see
    :func:`save_surrogate`), for runs that ended before it was saved."""
    st = torch.load(ckpt, map_location="cpu", weights_only=True)  # rng states are plain dicts and tensors: no pickle runs
    cfg = InitiativeTrainConfig()
    scfg = StarGANConfig(**cfg.sm)
    sm = StarGANGenerator(scfg)
    sm.load_state_dict({k[len("sm."):]: v for k, v in st["G"].items() if k.startswith("sm.")})
    ds = load_celeba("train", size=scfg.size, holdout=cfg.holdout, seed=0)
    return save_surrogate(sm, scfg, cfg, out, ds, st["seconds"])


class _Optims:
    """The four optimisers as one ``state_dict`` / ``load_state_dict`` object (for the checkpoint)."""

    def __init__(self, *opts) -> None:
        self.opts = opts

    def state_dict(self) -> dict:
        return {str(i): o.state_dict() for i, o in enumerate(self.opts)}

    def load_state_dict(self, sd: dict) -> None:
        for i, o in enumerate(self.opts):
            o.load_state_dict(sd[str(i)])


def heldout(pg: PerturbationNet, cfg: InitiativeTrainConfig, n: int) -> dict:
    """Held-out identities against the shipped StarGAN (gray-box: same kind of model, other
    weights, never seen in training): DSR (share of edits with L2 >= 0.05) and mean L2 over the five
    domains on the 8-bit poisoned crops, and the crops' PSNR (dB)."""
    from faceshield.training.disrupter import DisrupterTrainConfig
    from faceshield.training.disrupter import heldout as disrupter_heldout

    out = disrupter_heldout(pg, DisrupterTrainConfig(manipulator="stargan", detector="", eps_levels=cfg.eps_levels, holdout=cfg.holdout, domains=()), n)
    ds = load_celeba("test", size=pg.config.size, holdout=cfg.holdout, seed=0, limit=n)
    x = torch.from_numpy(ds.images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        xp = ((x + cfg.eps_levels / 255.0 * pg(x)) * 255).round().clamp(0, 255) / 255
    mse = (xp - x).pow(2).flatten(1).mean(1).clamp(min=1e-12)
    out["psnr_db"] = round(float((10 * torch.log10(1.0 / mse)).mean()), 2)
    out["target"] = "stargan (shipped; gray-box)"
    return out


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    d = InitiativeTrainConfig()
    ap = argparse.ArgumentParser(prog=prog, description="Train an Initiative Defense poison generator with its surrogate on CelebA (seed 003, Alg. 1).")
    ap.add_argument("--iters", type=int, default=d.iters)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--eps", type=float, default=d.eps_levels, help="tau: the L_inf budget in 8-bit levels")
    ap.add_argument("--domains-per-step", type=int, default=d.domains_per_step, help="domains drawn per iteration (5 = all, the paper)")
    ap.add_argument("--no-alternate", action="store_true", help="the paper's ablation: train SM first (--sm-pretrain iterations), then PG against it frozen")
    ap.add_argument("--sm-pretrain", type=int, default=0)
    ap.add_argument("--no-enhance", action="store_true", help="without Eq. 12's previous-SM term")
    ap.add_argument("--heldout-faces", type=int, default=d.heldout_faces)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--out", default="out/train/initiative64.pt")
    a = ap.parse_args(argv)
    if a.no_alternate and a.sm_pretrain <= 0:
        ap.error("--no-alternate needs --sm-pretrain N (the SM iterations before PG trains)")
    cfg = InitiativeTrainConfig(iters=a.iters, batch=a.batch, lr=a.lr, eps_levels=a.eps, domains_per_step=a.domains_per_step, alternate=not a.no_alternate,
                                sm_pretrain=a.sm_pretrain, enhance=not a.no_enhance, heldout_faces=a.heldout_faces, seed=a.seed, threads=a.threads)
    meta = train(cfg, Path(a.out))
    print(json.dumps({"seconds": meta["seconds"], "best_distortion": meta["best_distortion"], "heldout": meta["heldout"]}))


if __name__ == "__main__":
    main()
