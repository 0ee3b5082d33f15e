"""Train the face-swap auto-encoder (shared encoder, one decoder per identity) on two talking-head
videos, as the basic DeepFake maker does, with Celeb-DF's training-time colour perturbation.

Data: every frame of each video; landmarks from a registered extractor (default ``dlib68``, the
teacher the landmark models were trained from); aligned crops by :func:`faceshield.faces.align.align`.
The last ``holdout`` frames of each video are kept out of training (for evaluation).

Augmentation, per sample: a random similarity jitter of the alignment (rotation, scale, shift),
horizontal flip, a random colour perturbation applied to input and target alike (so the network
learns to keep the input's colours, Celeb-DF Sec. 4.3.1), and the classic random warp of the input
only (a smooth random displacement field; the target stays unwarped, so the decoder learns faces,
not the warp). Loss: L1, weighted x3 inside the landmark mask.

Reproducible: seeded (python, numpy, torch), fixed number of steps, single process; the config,
data digests, loss history and timings go into the sidecar JSON next to the weights.

Usage::

    python -m faceshield.training.swap --video-a ../shared/data/videos/WDA_BobMenendez_000.mp4 \\
        --video-b ../shared/data/videos/WDA_EdMarkey0_000.mp4 --names menendez markey \\
        --size 128 --steps 3000 --out src/faceshield/data/swap128.pt
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from faceshield.core.types import IBUG68
from faceshield.deepfake.autoencoder import SwapAutoEncoder, SwapModelConfig
from faceshield.faces.align import Alignment, align, to_ibug68, warp_to_crop
from faceshield.faces.mask import landmark_mask
from faceshield.io.video import read_video


@dataclass
class SwapTrainConfig:
    videos: list[str]
    names: list[str]
    size: int = 128
    width: int = 32
    latent: int = 256
    padding: float = 0.25
    steps: int = 3000
    batch: int = 16
    lr: float = 2e-4
    seed: int = 0
    extractor: str = "dlib68"
    holdout: int = 20
    threads: int = 2
    rotate: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    warp: float = 0.02
    colour: float = 0.1
    history: list = field(default_factory=list)


def extract_faces(frames: np.ndarray, extractor_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of the largest face per frame: ``(T, 68, 2)`` and a ``(T,)`` found-flag."""
    from faceshield.models import create_extractor

    ext = create_extractor(extractor_name)
    pts = np.zeros((len(frames), 68, 2))
    ok = np.zeros(len(frames), bool)
    for i, fr in enumerate(frames):
        faces = ext.detect(fr)
        if not faces:
            continue
        f = max(faces, key=lambda f: f.area)
        p68 = to_ibug68(f.points, f.scheme)
        if p68 is None:
            raise ValueError(f"extractor {extractor_name} has no 68-point equivalent; use dlib68, fan, hrnet or facemesh")
        pts[i], ok[i] = p68, True
    return pts, ok


def _jitter(al: Alignment, rng: np.random.Generator, cfg: SwapTrainConfig) -> Alignment:
    s = al.size
    c = s / 2.0
    rot = cv2.getRotationMatrix2D((c, c), rng.uniform(-cfg.rotate, cfg.rotate), 1.0 + rng.uniform(-cfg.zoom, cfg.zoom))
    rot[:, 2] += rng.uniform(-cfg.shift, cfg.shift, 2) * s
    m = rot @ np.vstack([al.matrix, [0, 0, 1]])
    return Alignment(matrix=m, size=s, padding=al.padding)


def _random_warp(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Smooth random displacement: a 5x5 grid of offsets (``amount`` x size), upsampled."""
    s = img.shape[0]
    grid = rng.normal(0, amount * s, (2, 5, 5)).astype(np.float32)
    dx, dy = (cv2.resize(g, (s, s), interpolation=cv2.INTER_CUBIC) for g in grid)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    return cv2.remap(img, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _colour(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Random per-channel gain and offset plus brightness/contrast, on float RGB in [0, 1]."""
    gain = 1.0 + rng.uniform(-amount, amount, 3)
    off = rng.uniform(-amount, amount, 3) * 0.5
    contrast = 1.0 + rng.uniform(-amount, amount)
    m = img.mean()
    return np.clip((img - m) * contrast + m, 0, 1) * gain + off


class _Identity:
    def __init__(self, frames: np.ndarray, pts: np.ndarray, ok: np.ndarray, holdout: int, cfg: SwapTrainConfig) -> None:
        idx = [i for i in range(len(frames) - holdout) if ok[i]]
        if len(idx) < 10:
            raise ValueError(f"only {len(idx)} training frames with a face")
        self.frames, self.pts, self.idx = frames, pts, idx
        self.align = {i: align(pts[i], IBUG68, cfg.size, cfg.padding) for i in idx}

    def sample(self, rng: np.random.Generator, n: int, cfg: SwapTrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, ms = [], [], []
        for i in rng.choice(self.idx, n):
            al = _jitter(self.align[i], rng, cfg)
            tgt = warp_to_crop(self.frames[i], al).astype(np.float32) / 255.0
            mask = landmark_mask(al.to_crop(self.pts[i]), (cfg.size, cfg.size))
            if rng.random() < 0.5:
                tgt, mask = tgt[:, ::-1].copy(), mask[:, ::-1].copy()
            tgt = _colour(tgt, rng, cfg.colour).astype(np.float32)
            inp = _random_warp(tgt, rng, cfg.warp)
            xs.append(inp), ys.append(tgt), ms.append(mask)
        return np.stack(xs), np.stack(ys), np.stack(ms)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()


def train(cfg: SwapTrainConfig, out: Path, log_every: int = 100) -> dict:
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    ids, digests = [], []
    for v in cfg.videos:
        frames = read_video(v).array()
        pts, ok = extract_faces(frames, cfg.extractor)
        digests.append(hashlib.sha256(Path(v).read_bytes()).hexdigest()[:16])
        ids.append(_Identity(frames, pts, ok, cfg.holdout, cfg))
        print(f"{v}: {len(frames)} frames, {ok.sum()} faces, {len(ids[-1].idx)} for training", flush=True)
    t_data = time.time() - t0
    model = SwapAutoEncoder(SwapModelConfig(size=cfg.size, identities=cfg.names, width=cfg.width, latent=cfg.latent, padding=cfg.padding))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)) * 0.9 + 0.1)
    rng = np.random.default_rng(cfg.seed)
    run = 0.0
    t1 = time.time()
    for step in range(1, cfg.steps + 1):
        loss = 0.0
        for name, ident in zip(cfg.names, ids):
            x, y, m = ident.sample(rng, cfg.batch, cfg)
            x, y = _t(x), _t(y)
            w = 1.0 + 2.0 * torch.from_numpy(m)[:, None]
            loss = loss + ((model(x, name) - y).abs() * w).mean() / w.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run += float(loss.detach()) / 2
        if step % log_every == 0:
            cfg.history.append([step, round(run / log_every, 5), round(time.time() - t1, 1)])
            print(f"step {step}/{cfg.steps} L1 {run / log_every:.4f} {time.time() - t1:.0f}s", flush=True)
            run = 0.0
    t_train = time.time() - t1
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    tmp = out.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    meta = {
        "model": model.config.to_dict(),
        "train": {k: v for k, v in asdict(cfg).items() if k != "history"},
        "video_sha256_16": digests,
        "history": cfg.history,
        "seconds": {"data": round(t_data, 1), "train": round(t_train, 1)},
        "torch": torch.__version__,
        "dtype": "float16",
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the face-swap auto-encoder on two videos.")
    ap.add_argument("--video-a", required=True)
    ap.add_argument("--video-b", required=True)
    ap.add_argument("--names", nargs=2, default=["a", "b"], help="identity names of the two videos")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extractor", default="dlib68")
    ap.add_argument("--holdout", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="out/swap/swap.pt")
    a = ap.parse_args(argv)
    cfg = SwapTrainConfig(videos=[a.video_a, a.video_b], names=list(a.names), size=a.size, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, extractor=a.extractor, holdout=a.holdout, threads=a.threads)
    meta = train(cfg, Path(a.out))
    print(json.dumps(meta["seconds"]))


if __name__ == "__main__":
    main()
