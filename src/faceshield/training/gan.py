"""What the two CelebA editors' training scripts share: seeding, batches, the WGAN-GP penalty,
StarGAN's learning-rate schedule, checkpoint / resume, and the fp16 weights + sidecar they ship."""
from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceshield.training.celeba import CelebA, digest


def seed_everything(seed: int, threads: int) -> tuple[np.random.Generator, torch.Generator]:
    """Seed python, numpy and torch; return the numpy and torch generators the loop draws from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return np.random.default_rng(seed), torch.Generator().manual_seed(seed)


def celeba_batch(imgs: np.ndarray, labels: np.ndarray, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random faces ``(n, 3, S, S)`` in [-1, 1] (half flipped horizontally) and their labels."""
    idx = rng.integers(0, len(imgs), n)
    x = imgs[idx].astype(np.float32) / 127.5 - 1.0
    flip = rng.random(n) < 0.5
    x[flip] = x[flip, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2), torch.from_numpy(labels[idx])


def gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``(||grad_x src(x_hat)|| - 1)^2`` on random interpolates."""
    a = torch.rand(real.shape[0], 1, 1, 1, generator=gen)
    x = (a * real + (1 - a) * fake).requires_grad_(True)
    src, _ = d(x)
    (g,) = torch.autograd.grad(src.sum(), x, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def total_variation(a: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontally and vertically neighbouring pixels of ``(B, C, H, W)``."""
    return (a[:, :, :, 1:] - a[:, :, :, :-1]).abs().mean() + (a[:, :, 1:] - a[:, :, :-1]).abs().mean()


def set_lr(optimisers, base: float, it: int, iters: int, restart: int = 0) -> None:
    """StarGAN's schedule: constant, then linear decay to 0 over the second half.

    ``restart`` > 0: a warm restart. Iterations up to ``restart`` follow the schedule of a run of
    ``restart`` iterations; later ones that of a run of ``iters`` (so a finished run extended by
    resuming, and the same run from scratch with the same ``restart``, give the same result)."""
    span = restart if 0 < restart and it <= restart else iters
    lr = base * min(1.0, 2.0 * (1 - (it - 1) / span))
    for o in optimisers:
        for pg in o.param_groups:
            pg["lr"] = lr


class Checkpoint:
    """``OUT.ckpt``: the generator, the critic (None for a perturbation generator, which has
    none), their optimisers and every random state, so that a killed run resumes to the same result."""

    def __init__(self, out: Path, G: nn.Module, D: nn.Module | None, og, od, rng: np.random.Generator, gen: torch.Generator) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = out.with_suffix(".ckpt")
        self.G, self.D, self.og, self.od, self.rng, self.gen = G, D, og, od, rng, gen

    def resume(self) -> tuple[int, list, float]:
        """``(first iteration, history, seconds spent)``: ``(1, [], 0)`` without a checkpoint."""
        if not self.path.is_file():
            return 1, [], 0.0
        st = torch.load(self.path, map_location="cpu", weights_only=True)  # rng states are plain dicts and tensors: no pickle runs
        self.G.load_state_dict(st["G"]), self.og.load_state_dict(st["og"])
        if self.D is not None:
            self.D.load_state_dict(st["D"]), self.od.load_state_dict(st["od"])
        self.rng.bit_generator.state = st["rng"]
        self.gen.set_state(st["gen"])
        torch.set_rng_state(st["torch"])
        print(f"resumed at iteration {st['step'] + 1}", flush=True)
        return st["step"] + 1, st["history"], st["seconds"]

    def save(self, step: int, history: list, seconds: float) -> None:
        st = {"G": self.G.state_dict(), "og": self.og.state_dict(), "rng": self.rng.bit_generator.state,
              **({"D": self.D.state_dict(), "od": self.od.state_dict()} if self.D is not None else {}),
              "gen": self.gen.get_state(), "torch": torch.get_rng_state(), "step": step, "history": history, "seconds": seconds}
        torch.save(st, self.path.with_suffix(".tmp"))
        os.replace(self.path.with_suffix(".tmp"), self.path)


def ship_generator(out: Path, G: nn.Module, meta: dict, ds: CelebA | dict, threads: int, seconds: float, holdout: float) -> dict:
    """Write ``G``'s fp16 state dict to ``out`` and the sidecar ``out.json`` (``meta`` + data digest,
    seconds, machine); returns the sidecar. ``ds``: the CelebA split trained on, or a ready data
    record (``{"source": ..., "digest": ...}``) for other data."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in G.state_dict().items()}
    torch.save(state, out.with_suffix(".tmp"))
    os.replace(out.with_suffix(".tmp"), out)
    meta = {**meta,
            "data": ds if isinstance(ds, dict) else {"split": "train", "images": len(ds), "digest": digest(ds), "holdout_identities": holdout},
            "seconds": round(seconds, 1),
            "machine": {"device": "cpu", "processor": platform.processor() or platform.machine(), "threads": threads, "torch": torch.__version__},
            "dtype": "float16"}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
