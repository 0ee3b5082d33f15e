"""Initiative Defense, data-based (seed 003, Sec. "Defending against Data-based Manipulation"):
poison a person's video so that a face-reenactment model *trained on it* fails.

The forger's model is a landmark-to-face translator ``M_x(z)`` (pix2pix-class, Face2Face's role in
the paper) trained on one person's frames ``x`` and their landmark drawings ``z``; at forgery time
it renders the person from someone else's landmarks. The defender publishes ``x' = x + eps PG(x)``
instead, so the forger trains ``M'_x`` on poisoned frames.

Data (:func:`video_faces`): every frame of a video, the face's CelebA-aligned 64 px crop (MTCNN's
five points, the crop ``faceshield protect --method generator:...`` perturbs), FaceMesh's 468
points in the crop, drawn as a contour image ``z`` (:func:`draw_landmarks`), and the face-region
attention mask ``m(x)``: 1.0 inside FaceMesh's face oval, 0.01 outside (in place of the paper's
BiSeNet matting). The last ``heldout`` share of the frames (in time) is held out.

Translators (:data:`TRANSLATORS`): image-to-image nets ``(B, 3, S, S)`` drawing in [0, 1] ->
``(B, 3, S, S)`` face in [-1, 1] (the :class:`~faceshield.models.perturber.PerturbationNet`
bodies), trained with pix2pix's L1 term (no adversarial term, for the 2-core CPU):
``unet`` (the surrogate's architecture: gray-box), ``unet-deep`` (one level more, the paper's
UNet128 role), ``cnet`` (a plain encoder-decoder), ``res6`` and ``res9``.

Training (:func:`train`, Alg. 1 for the data-based case):

* **Stage A** trains the surrogate SM (``unet``) on clean frames (L1).
* **Stage B** trains D_B (the WGAN-GP critic of Eq. 5, as for attribute editing) and PG (U-Net):
  a temporary model TM starts from the infected model M' and takes one differentiable SGD step on
  the poisoned batch ``(z, x')`` (``lookahead_lr``, on the squared error: see :func:`influence`), so
  TM's parameters keep the gradient to PG;
  PG minimises Eq. 11 with the attention mask,
  ``L_A->B = |(SM(z) - x) m|_1 - |(TM(z) - x) m|_1``, plus ``lambda L_B``. Then TM's step is
  copied into M' (M' takes the same step on the detached batch), so M' is a model trained on
  poisoned frames all along.
* ``alternate=False`` (the paper's †): SM is trained alone for ``sm_pretrain`` iterations, then
  frozen; TM starts from that clean SM at every step and M' never moves.
* PG_best: the PG whose poisoned training frames, learned by a fresh TM for ``probe_steps`` steps,
  give the largest masked L1 against the clean frames on held-out landmarks.

The L_inf bound holds by construction (``eps * tanh``), and after 8-bit rounding. Seeded, single
process; ``python -m faceshield.training.reenactment --iters 1000`` (see ``--help``).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call

from faceshield.models.perturber import PerturbationNet, PerturberConfig

#: the translator architectures (forger's models) by name; all 64 px, fully convolutional.
TRANSLATORS: dict[str, PerturberConfig] = {
    "unet": PerturberConfig(arch="unet", depth=3),
    "unet-deep": PerturberConfig(arch="unet", depth=4),
    "cnet": PerturberConfig(arch="resnet", blocks=0),
    "res6": PerturberConfig(arch="resnet", blocks=6),
    "res9": PerturberConfig(arch="resnet", blocks=9),
}

#: the attention mask's value outside the face oval (the paper's 0.01).
OUTSIDE = 0.01

#: a held-out frame counts as disrupted when the mean L1 (on [-1, 1]) between the clean-trained and
#: the poison-trained translator's renderings of its landmarks is at least this.
DISRUPTED_L1 = 0.05

_COLOURS = {"oval": (255, 255, 255), "brows": (255, 128, 0), "eyes": (0, 255, 0), "nose": (0, 128, 255), "lips": (255, 0, 255)}


def draw_landmarks(points: np.ndarray, size: int, supersample: int = 4) -> np.ndarray:
    """The translator's input ``z``: FaceMesh's contours (face oval, brows, eyes, nose hull, lips),
    each part its own colour, antialiased on black.

    Args:
        points: ``(468, 2)`` FaceMesh points ``(x, y)`` in pixels of the ``size`` px crop.
        size: side of the drawing.

    Returns:
        ``(size, size, 3)`` uint8.
    """
    from faceshield.faces.regions import CONTOURS

    k = supersample
    big = np.zeros((size * k, size * k, 3), np.uint8)
    p = np.round(np.asarray(points, np.float64)[:, :2] * k * 16).astype(np.int32)  # 4 fractional bits
    for part, loops in CONTOURS.items():
        polys = [cv2.convexHull(p[idx]) for idx in loops] if part == "nose" else [p[idx] for idx in loops]
        cv2.polylines(big, polys, True, _COLOURS[part], thickness=k, lineType=cv2.LINE_AA, shift=4)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def face_mask(points: np.ndarray, size: int) -> np.ndarray:
    """``m(x)``: ``(size, size)`` float32, 1.0 inside FaceMesh's face oval, :data:`OUTSIDE` elsewhere."""
    from faceshield.faces.regions import region_labels

    return np.where(region_labels(points, (size, size)) > 0, 1.0, OUTSIDE).astype(np.float32)


@dataclass
class VideoFaces:
    """One person's video as the forger's training data.

    Attributes:
        crops: ``(N, S, S, 3)`` uint8, the face's aligned crop per usable frame.
        drawings: ``(N, S, S, 3)`` uint8, the landmark drawings ``z``.
        masks: ``(N, S, S)`` float32 attention masks ``m(x)``.
        points: ``(N, 468, 2)`` FaceMesh points in crop pixels.
        frames: ``(N,)`` index of each crop's frame in the video.
        source: the video's file name; digest: sha256 prefix of its bytes.
    """

    crops: np.ndarray
    drawings: np.ndarray
    masks: np.ndarray
    points: np.ndarray
    frames: np.ndarray
    source: str
    digest: str

    def __len__(self) -> int:
        return len(self.crops)

    def split(self, heldout: float) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and the held-out crops: the last ``heldout`` share in time is held out."""
        n_test = max(1, int(round(len(self) * heldout)))
        return np.arange(len(self) - n_test), np.arange(len(self) - n_test, len(self))

    def tensors(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` ``(n, 3, S, S)`` in [-1, 1], ``z`` ``(n, 3, S, S)`` in [0, 1], ``m`` ``(n, 1, S, S)``."""
        x = torch.from_numpy(self.crops[idx].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2).contiguous()
        z = torch.from_numpy(self.drawings[idx].astype(np.float32) / 255).permute(0, 3, 1, 2).contiguous()
        return x, z, torch.from_numpy(self.masks[idx])[:, None]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def video_faces(path: str | Path, size: int = 64, *, detector: str = "mtcnn", cache: str | Path | None = "out/reenactment") -> VideoFaces:
    """Crops, landmark drawings and masks of every frame of ``path`` in which both ``detector`` and
    FaceMesh find a face (the largest one); cached as ``cache/STEM_SIZE_DIGEST.npz``.

    Raises:
        ValueError: fewer than 10 usable frames.
    """
    from faceshield.deepfake.edit import crop_matrix, five_points
    from faceshield.faces.crop import warp_crops
    from faceshield.io import read_video, to_tensor, to_uint8
    from faceshield.models import create_extractor
    from faceshield.models.manipulator import CELEBA_TEMPLATE

    path = Path(path)
    dig = _file_digest(path)
    cached = Path(cache) / f"{path.stem}_{size}_{dig}.npz" if cache else None
    if cached is not None and cached.is_file():
        d = np.load(cached)
        return VideoFaces(d["crops"], d["drawings"], d["masks"], d["points"], d["frames"], path.name, dig)
    det, mesh = create_extractor(detector), create_extractor("facemesh")
    crops, drawings, masks, points, frames = [], [], [], [], []
    for i, rgb in enumerate(read_video(path).frames):
        found, meshes = det.detect(rgb), mesh.detect(rgb)
        if not found or not meshes:
            continue
        area = lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])  # noqa: E731
        face, fm = max(found, key=area), max(meshes, key=area)
        m = crop_matrix(five_points(face), size, CELEBA_TEMPLATE)
        crop = to_uint8(warp_crops(to_tensor(rgb), torch.from_numpy(m)[None], size, torch.zeros(1, dtype=torch.long)))
        p = fm.points @ m[:, :2].T + m[:, 2]
        crops.append(crop[0] if crop.ndim == 4 else crop)
        drawings.append(draw_landmarks(p, size))
        masks.append(face_mask(p, size))
        points.append(p.astype(np.float32))
        frames.append(i)
    if len(crops) < 10:
        raise ValueError(f"{path}: only {len(crops)} frames with a face found by {detector} and FaceMesh; a translator needs at least 10")
    out = VideoFaces(np.stack(crops), np.stack(drawings), np.stack(masks), np.stack(points), np.asarray(frames), path.name, dig)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, crops=out.crops, drawings=out.drawings, masks=out.masks, points=out.points, frames=out.frames)
        tmp.replace(cached)
    return out


def translator(arch: str | PerturberConfig, seed: int = 0) -> PerturbationNet:
    """A fresh translator of architecture ``arch`` (a :data:`TRANSLATORS` name, or a shape), seeded."""
    if isinstance(arch, str) and arch not in TRANSLATORS:
        raise ValueError(f"arch: expected one of {', '.join(TRANSLATORS)}, got {arch!r}")
    torch.manual_seed(seed)
    return PerturbationNet(TRANSLATORS[arch] if isinstance(arch, str) else arch)


def translator_step(net: nn.Module, opt: torch.optim.Optimizer, z: torch.Tensor, x: torch.Tensor) -> float:
    """One L1 step of ``net`` rendering ``x`` ``(B, 3, S, S)`` in [-1, 1] from ``z`` in [0, 1]."""
    loss = (net(z) - x).abs().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def _adam(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr, betas=(0.5, 0.999))


def train_translator(arch: str | PerturberConfig, x: torch.Tensor, z: torch.Tensor, *, iters: int = 1500, batch: int = 8, lr: float = 2e-4, seed: int = 0) -> PerturbationNet:
    """The forger's model: a translator of ``arch`` trained from scratch on frames ``x``
    ``(N, 3, S, S)`` in [-1, 1] and their drawings ``z`` ``(N, 3, S, S)`` in [0, 1] (L1, Adam);
    returned in eval mode."""
    net = translator(arch, seed)
    opt = _adam(net, lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(iters):
        i = torch.randint(len(x), (batch,), generator=g)
        translator_step(net, opt, z[i], x[i])
    return net.eval()


def load_pg(spec: str):
    """A poison generator (:class:`~faceshield.models.perturber.PerturbationGenerator`): a ``.pt``
    file with its sidecar, or a registered generator name (``reenactment``, ``initiative``, ...)."""
    from faceshield.generators import create_generator
    from faceshield.models.zoo import GENERATOR_INFOS, load_perturbation_generator

    if Path(spec).suffix == ".pt":
        return load_perturbation_generator(spec, GENERATOR_INFOS["reenactment"])
    return create_generator(spec.removeprefix("generator:"))


def poison(pg: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The published frames: ``x`` ``(B, 3, S, S)`` in [-1, 1] poisoned by ``pg`` within ``eps``
    ([0, 1] units) and rounded to 8 bits, back in [-1, 1]."""
    with torch.no_grad():
        x01 = (x + 1) / 2
        return ((x01 + eps * pg(x01)) * 255).round().clamp(0, 255) / 127.5 - 1


@dataclass
class ReenactmentTrainConfig:
    video: str = "WDA_BobMenendez_000.mp4"  # under $FACESHIELD_DATA/videos (or a path)
    iters: int = 1000
    batch: int = 8
    lr: float = 1e-4  # PG and D_B (paper)
    sm_lr: float = 2e-4  # SM and M' (our translators' rate)
    lookahead_lr: float = 1.0  # TM's one SGD step (on the squared error)
    eps_levels: float = 8.0
    lam: float = 0.01  # weight of L_B
    lam_gp: float = 10.0
    alternate: bool = True  # False: the paper's † (SM first, then frozen; M' never moves)
    sm_pretrain: int = 300  # SM iterations before PG starts (both modes: TM needs a model that renders)
    eval_every: int = 250
    probe_steps: int = 150  # PG_best's probe: a fresh TM's steps on the poisoned frames
    heldout: float = 0.2
    seed: int = 0
    threads: int = 1
    size: int = 64
    model: dict = field(default_factory=lambda: PerturberConfig(arch="unet").to_dict())  # PG
    sm: dict = field(default_factory=lambda: TRANSLATORS["unet"].to_dict())  # SM, M' and the probe's forger


def _critic(size: int) -> nn.Module:
    from faceshield.models.stargan import StarGANConfig
    from faceshield.training.initiative import _Critic

    return _Critic(StarGANConfig(size=size))


def resolve_video(name: str) -> Path:
    """``name`` as a path, else under ``$FACESHIELD_DATA/videos``."""
    p = Path(name)
    if p.is_file():
        return p
    from faceshield.training.celeba import data_root

    q = data_root() / "videos" / name
    if not q.is_file():
        raise FileNotFoundError(f"video {name!r}: not a file, nor under {q.parent}")
    return q


def masked_l1(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of ``|a - b| m`` over pixels and channels: ``(B,)``."""
    return ((a - b).abs() * m).flatten(1).mean(1)


def probe(pg: nn.Module, vf: VideoFaces, cfg: ReenactmentTrainConfig, steps: int | None = None) -> float:
    """A short forger: a fresh translator of SM's shape trained ``steps`` steps on the poisoned training
    frames; its masked L1 against the real held-out frames (higher: the poison works better)."""
    tr, te = vf.split(cfg.heldout)
    x, z, _ = vf.tensors(tr)
    xt, zt, mt = vf.tensors(te)
    net = train_translator(PerturberConfig(**cfg.sm), poison(pg, x, cfg.eps_levels / 255), z, iters=steps or cfg.probe_steps, seed=cfg.seed + 1)
    with torch.no_grad():
        return float(masked_l1(net(zt), xt, mt).mean())


def influence(sm: nn.Module, mp: nn.Module, x: torch.Tensor, xp: torch.Tensor, z: torch.Tensor, m: torch.Tensor, lookahead_lr: float) -> torch.Tensor:
    """Eq. 11 with the attention mask: ``|(SM(z) - x) m|_1 - |(TM(z) - x) m|_1``, TM being ``mp``
    after one differentiable SGD step of size ``lookahead_lr`` on the poisoned batch ``(z, xp)``.

    TM's step uses the squared error: L1's gradient depends on ``xp`` only through a sign, so its
    mixed second derivative, the only path from TM's parameters back to PG, is zero.

    Args:
        x, xp: clean and poisoned frames ``(B, 3, S, S)`` in [-1, 1] (``xp`` carries PG's graph).
        z: their drawings ``(B, 3, S, S)`` in [0, 1]; m: masks ``(B, 1, S, S)``.

    Returns:
        a scalar; PG minimises it.
    """
    params = dict(mp.named_parameters())
    inner = (functional_call(mp, params, (z,)) - xp).pow(2).mean()
    grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
    tm = {k: p - lookahead_lr * g for (k, p), g in zip(params.items(), grads)}
    with torch.no_grad():
        ref = masked_l1(sm(z), x, m).mean()
    return ref - masked_l1(functional_call(mp, tm, (z,)), x, m).mean()


def train(cfg: ReenactmentTrainConfig, out: Path, log_every: int = 25) -> dict:
    """Train PG (Alg. 1, data-based) and ship PG_best to ``out`` (fp16) with its sidecar."""
    from faceshield.training.gan import seed_everything, ship_generator
    from faceshield.training.initiative import poison_and_critic_step

    rng, gen = seed_everything(cfg.seed, cfg.threads)
    vf = video_faces(resolve_video(cfg.video), cfg.size)
    tr, _ = vf.split(cfg.heldout)
    X, Z, Mk = vf.tensors(tr)
    pcfg = PerturberConfig(**cfg.model)
    scfg = PerturberConfig(**cfg.sm)
    sm = translator(scfg, cfg.seed)
    mp = translator(scfg, cfg.seed + 1)  # M', the infected model
    torch.manual_seed(cfg.seed)
    pg, db = PerturbationNet(pcfg), _critic(cfg.size)
    o_sm, o_mp = _adam(sm, cfg.sm_lr), _adam(mp, cfg.sm_lr)
    o_pg, o_db = _adam(pg, cfg.lr), _adam(db, cfg.lr)
    eps = cfg.eps_levels / 255
    history: list[dict] = []
    best, best_state = -1.0, None
    t0 = time.time()
    acc: dict[str, float] = {}
    seen = 0
    for it in range(1, cfg.iters + 1):
        i = torch.from_numpy(rng.choice(len(X), cfg.batch, replace=False))
        x, z, m = X[i], Z[i], Mk[i]
        train_sm = cfg.alternate or it <= cfg.sm_pretrain
        if train_sm:  # stage A
            sm_l1 = translator_step(sm, o_sm, z, x)
        if it <= cfg.sm_pretrain:
            if cfg.alternate:
                translator_step(mp, o_mp, z, x)  # M' starts as a model that renders too
            continue
        if not cfg.alternate and it == cfg.sm_pretrain + 1:
            mp.load_state_dict(sm.state_dict())  # †: TM always starts from the frozen clean SM
        # stage B: D_B, then PG through the temporary model TM
        xp, d_loss = poison_and_critic_step(pg, db, o_db, x, eps, cfg.lam_gp, gen)
        infl = influence(sm, mp, x, xp, z, m, cfg.lookahead_lr)
        loss = infl + cfg.lam * -db(xp)[0].mean()
        o_pg.zero_grad(set_to_none=True)
        loss.backward()
        o_pg.step()
        mp.zero_grad(set_to_none=True)
        if cfg.alternate:  # TM's step into M': M' trains on the poisoned frames
            acc["mp_l1"] = acc.get("mp_l1", 0.0) + translator_step(mp, o_mp, z, xp.detach())
        for k, v in {"loss": loss.item(), "influence": infl.item(), "d_b": d_loss.item(), **({"sm_l1": sm_l1} if train_sm else {})}.items():
            acc[k] = acc.get(k, 0.0) + v
        seen += 1
        row = None
        if it % cfg.eval_every == 0 or it == cfg.iters:
            score = probe(pg, vf, cfg)
            if score > best:
                best, best_state = score, copy.deepcopy(pg.state_dict())
            row = {"probe": round(score, 5)}
        if it % log_every == 0 or it == cfg.iters or row:
            row = {"iter": it, **{k: round(v / max(seen, 1), 5) for k, v in sorted(acc.items())}, **(row or {}), "best": round(best, 5),
                   "seconds": round(time.time() - t0, 1)}
            history.append(row)
            print(" ".join(f"{k} {v}" for k, v in row.items()), flush=True)
            acc, seen = {}, 0
    seconds = time.time() - t0
    if best_state is not None:
        pg.load_state_dict(best_state)
    meta = {"model": pcfg.to_dict(), "eps_levels": cfg.eps_levels, "trained_against": ["reenactment-surrogate"],
            "loss": "seed 003 Eq. 11 (data-based): an infected translator's masked L1 after a temporary model's step on the poisoned frames; "
                    "alternating surrogate (U-Net translator) and PG; PG_best by a probe forger's held-out L1",
            "translator": scfg.to_dict(), "best_probe": round(best, 5), "train": asdict(cfg), "history": history}
    data = {"video": vf.source, "digest": vf.digest, "frames": len(vf), "train_frames": int(len(tr)), "heldout_frames": len(vf) - int(len(tr)),
            "heldout": "the last frames in time"}
    return ship_generator(out, pg, meta, data, cfg.threads, seconds, cfg.heldout)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    d = ReenactmentTrainConfig()
    ap = argparse.ArgumentParser(prog=prog, description="Train an Initiative Defense poison generator against face reenactment: a translator "
                                 "trained on the poisoned video renders the person badly (seed 003, Eq. 11).")
    ap.add_argument("--video", default=d.video, help="one person's video: a path, or a name under $FACESHIELD_DATA/videos")
    ap.add_argument("--iters", type=int, default=d.iters)
    ap.add_argument("--eps", type=float, default=d.eps_levels, help="the L_inf budget in 8-bit levels")
    ap.add_argument("--lookahead-lr", type=float, default=d.lookahead_lr, help="the temporary model's SGD step")
    ap.add_argument("--no-alternate", action="store_true", help="the paper's ablation: SM trained first (--sm-pretrain), then frozen")
    ap.add_argument("--sm-pretrain", type=int, default=d.sm_pretrain)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--out", default="out/train/reenactment64.pt")
    a = ap.parse_args(argv)
    cfg = ReenactmentTrainConfig(video=a.video, iters=a.iters, eps_levels=a.eps, lookahead_lr=a.lookahead_lr, alternate=not a.no_alternate,
                                 sm_pretrain=a.sm_pretrain, seed=a.seed, threads=a.threads)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = train(cfg, out)
    print(json.dumps({"seconds": meta["seconds"], "best_probe": meta["best_probe"]}))


if __name__ == "__main__":
    main()
