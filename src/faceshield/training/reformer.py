"""Train MagNet's denoising auto-encoder (Meng & Chen 2017; the reformer and detector of
:mod:`faceshield.defenses.reformer`) on clean CelebA.

MagNet's recipe: an auto-encoder trained to map a clean image with Gaussian noise added back to the
clean image (mean squared error), so that it learns the manifold of clean images rather than the
identity. Here: random 64 x 64 patches of the training identities' faces at their native pixel
scale (the 89 x 89 centre square of the aligned 89 x 109 CelebA images, not resized), half flipped
horizontally; per patch a noise standard deviation drawn uniformly in [0.025, 0.1] (images in
[0, 1]), the noisy input clipped to [0, 1]; Adam (lr 2e-3), constant then linear decay to 0 over
the second half (StarGAN's schedule, :func:`faceshield.training.gan.set_lr`), batch 16, 4,000 iterations.

Held out (recorded in the sidecar): the mean squared error against the clean patch of the
auto-encoder's output, on 256 fixed patches of the *test* identities, for the clean input and for
inputs with noise of standard deviation 0.025 / 0.05 / 0.1 (and the noisy input's own MSE).

Seeded (python, numpy, torch), 1 torch thread by default, a fixed iteration count; checkpoints every
``save_every`` iterations to ``OUT.ckpt`` and resumes from it. Ships the fp16 state dict and the
sidecar JSON (:func:`faceshield.training.gan.ship_generator`).

Usage::

    OMP_NUM_THREADS=1 python -m faceshield.training.reformer --iters 4000 --out out/train/reformer64.pt
    cp out/train/reformer64.pt out/train/reformer64.json src/faceshield/data/     # ship it
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

from faceshield.defenses.reformer import Reformer, ReformerConfig
from faceshield.training.celeba import load_celeba
from faceshield.training.gan import Checkpoint, seed_everything, set_lr, ship_generator

#: CelebA's aligned faces at their native scale: the 89 x 89 centre square of the 89 x 109 image
NATIVE = 89
HELD_OUT_SIGMAS = (0.025, 0.05, 0.1)


@dataclass
class ReformerTrainConfig:
    iters: int = 4000
    batch: int = 16
    patch: int = 64
    lr: float = 2e-3
    sigma_min: float = 0.025
    sigma_max: float = 0.1
    seed: int = 0
    threads: int = 1
    holdout: float = 0.1
    model: dict = field(default_factory=lambda: ReformerConfig().to_dict())


HISTORY_COLUMNS = ["iter", "mse_noisy_in", "mse_out", "lr", "seconds"]


def patches(imgs: np.ndarray, rng: np.random.Generator, n: int, size: int, flip: bool = True) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` patches of ``imgs`` ``(N, H, W, 3)`` uint8 -> ``(n, 3, size, size)``
    float32 in [0, 1] (half flipped horizontally when ``flip``)."""
    idx = rng.integers(0, len(imgs), n)
    ys = rng.integers(0, imgs.shape[1] - size + 1, n)
    xs = rng.integers(0, imgs.shape[2] - size + 1, n)
    out = np.stack([imgs[i, y : y + size, x : x + size] for i, y, x in zip(idx, ys, xs)]).astype(np.float32) / 255.0
    if flip:
        f = rng.random(n) < 0.5
        out[f] = out[f, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2)


def add_noise(x: torch.Tensor, sigma: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """``x`` ``(B, 3, S, S)`` in [0, 1] plus Gaussian noise of standard deviation ``sigma`` (a float or
    ``(B,)`` per image), clipped to [0, 1]."""
    s = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return (x + s * torch.randn(x.shape, generator=gen)).clamp(0.0, 1.0)


@torch.no_grad()
def held_out(net: Reformer, imgs: np.ndarray, size: int, n: int = 256, seed: int = 1) -> dict:
    """MSE ([0, 1] scale) against the clean patch on ``n`` fixed patches of ``imgs``: of the
    auto-encoder's output for the clean input (``clean``), and per noise sigma of the noisy input
    itself (``noisy_in``) and of its reconstruction (``noisy_out``)."""
    net.eval()
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    x = patches(imgs, rng, n, size, flip=False)
    out = {"patches": n, "clean": round(float(F.mse_loss(net(x), x)), 6), "noise": {}}
    for s in HELD_OUT_SIGMAS:
        xn = add_noise(x, s, gen)
        out["noise"][str(s)] = {"noisy_in": round(float(F.mse_loss(xn, x)), 6), "noisy_out": round(float(F.mse_loss(net(xn), x)), 6)}
    net.train()
    return out


def train(cfg: ReformerTrainConfig, out: Path, log_every: int = 100, save_every: int = 500) -> dict:
    rng, gen = seed_everything(cfg.seed, cfg.threads)
    ds = load_celeba("train", size=NATIVE, holdout=cfg.holdout, seed=0)
    net = Reformer(ReformerConfig(**cfg.model))
    opt = torch.optim.Adam(net.parameters(), cfg.lr)
    ckpt = Checkpoint(out, net, None, opt, None, rng, gen)
    start, history, spent = ckpt.resume()
    t0 = time.time() - spent
    acc_in = acc_out = 0.0
    for it in range(start, cfg.iters + 1):
        set_lr((opt,), cfg.lr, it, cfg.iters)
        x = patches(ds.images, rng, cfg.batch, cfg.patch)
        sigma = cfg.sigma_min + (cfg.sigma_max - cfg.sigma_min) * torch.rand(cfg.batch, generator=gen)
        xn = add_noise(x, sigma, gen)
        loss = F.mse_loss(net(xn), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc_out += loss.item()
        acc_in += F.mse_loss(xn, x).item()
        if it % log_every == 0:
            row = [it, round(acc_in / log_every, 6), round(acc_out / log_every, 6), opt.param_groups[0]["lr"], round(time.time() - t0, 1)]
            history.append(row)
            print(f"it {it}/{cfg.iters} mse noisy in {row[1]:.5f} out {row[2]:.5f} lr {row[3]:.2e} {row[4]:.0f}s", flush=True)
            acc_in = acc_out = 0.0
        if it % save_every == 0 or it == cfg.iters:
            ckpt.save(it, history, time.time() - t0)
    seconds = time.time() - t0
    test = load_celeba("test", size=NATIVE, holdout=cfg.holdout, seed=0)
    ho = held_out(net, test.images, cfg.patch)
    print(f"held out: {json.dumps(ho)}", flush=True)
    meta = {"model": net.config.to_dict(), "parameters": sum(p.numel() for p in net.parameters()), "train": asdict(cfg),
            "input": "(B, 3, H, W) RGB in [0, 1] -> the same; fully convolutional (faceshield.defenses.reformer)",
            "history_columns": HISTORY_COLUMNS, "history": history,
            "held_out": {"split": "test identities", "images": len(test), "scale": "MSE on [0, 1] images", **ho}}
    side = ship_generator(out, net, meta, ds, cfg.threads, seconds, cfg.holdout)
    side["machine"].update(cpu_model(), cpu_count=os.cpu_count())  # where it was trained: this machine's CPU
    out.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
    return side


def cpu_model() -> dict:
    """``{"cpu": model name}`` from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return {"cpu": line.split(":", 1)[1].strip()}
    except OSError:
        pass
    return {}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train MagNet's denoising auto-encoder (the reformer) on 64 x 64 patches of clean CelebA (identity-disjoint split).")
    ap.add_argument("--iters", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--channels", type=int, default=32, help="width of the hidden convolutions")
    ap.add_argument("--sigma-min", type=float, default=0.025)
    ap.add_argument("--sigma-max", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--out", default="out/train/reformer64.pt")
    a = ap.parse_args(argv)
    cfg = ReformerTrainConfig(iters=a.iters, batch=a.batch, lr=a.lr, sigma_min=a.sigma_min, sigma_max=a.sigma_max, seed=a.seed, threads=a.threads,
                              model=ReformerConfig(channels=a.channels).to_dict())
    meta = train(cfg, Path(a.out), log_every=a.log_every, save_every=a.save_every)
    print(json.dumps({"seconds": meta["seconds"], "held_out": meta["held_out"]}))


if __name__ == "__main__":
    main()
