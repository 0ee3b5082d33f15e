"""Train compact FAN / HRNet 68-point heat-map models on 300-W-format data (``faceshield train-landmarks``).

Data: a directory with ``train/`` and ``test/`` of ``NAME.jpg`` + ``NAME.pts`` (300-W text format,
iBUG-68 order), e.g. ``../shared/data/landmarks68``. A fixed ``--val-frac`` of ``train/`` (a seeded
permutation that does not depend on ``--seed``) is held out for model selection; ``test/`` is used
only for the final report.

Crops follow the extractor's own convention, so what the network sees in training is what
:meth:`~faceshield.models.heatmap.HeatmapExtractor.detect` feeds it: the face box is the MTCNN box of
the face (the detection with the highest IoU with the landmark box; boxes are computed once and
cached under ``/tmp``), or - when MTCNN misses the face - the landmark box mapped to an MTCNN-like box
by the mean offset/scale fitted on the faces it found. The box becomes the square of
:class:`~faceshield.models.heatmap.CropSpec` (``FAN_CROP`` / ``HRNET_CROP`` with a smaller
``input_size``), randomly scaled, shifted, rotated and mirrored (with the iBUG-68 mirror
permutation :data:`~faceshield.models.heatmap.MIRROR`), colour-jittered, blurred and noised, and
resampled bilinearly (half-pixel centres, zero outside the image, 8-bit) as ``crop_boxes`` does.

Targets are Gaussian heat-maps (``--sigma`` heat-map pixels) in the edge frame of
:func:`~faceshield.models.heatmap.decode_fan`; the loss is the adaptive wing loss (Wang et al. 2019)
with its foreground weight map (or MSE); Adam with a cosine learning rate whose progress is the larger
of ``step / steps`` and ``elapsed / --max-minutes`` (so a time budget still ends with a small rate).

The output is a plain state dict (``torch.load(weights_only=True)``) at ``--out`` and a sidecar JSON
(same name, ``.json``) with ``input_size`` (read by the extractors), the architecture, every option,
the seed, data counts, wall time and the validation / test NME (mean point-to-point error over the
distance of the outer eye corners 36 and 45).

This module is a development tool: the package never imports it at run time.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faceshield.core.types import IBUG68
from faceshield.faces.boxes import box_iou
from faceshield.metrics.nme import nme as nme_metric

logger = logging.getLogger(__name__)

N_POINTS = 68
DEFAULT_CACHE = Path("/tmp/faceshield_landmarks68_mtcnn_boxes.json")
MATCH_IOU = 0.25


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def read_pts(path: str | os.PathLike) -> np.ndarray:
    """Read a 300-W ``.pts`` file (``version: 1``, ``n_points: N``, ``{``, N lines ``x y``, ``}``).

    Returns:
        ``(N, 2)`` float64 ``x, y`` as stored.
    """
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    n = None
    for ln in lines:
        if ln.lower().startswith("n_points"):
            n = int(ln.split(":")[1])
            break
    if n is None or "{" not in lines or "}" not in lines:
        raise ValueError(f"{path}: not a 300-W .pts file (expected n_points and a {{ ... }} block)")
    start, end = lines.index("{") + 1, lines.index("}")
    pts = np.array([[float(v) for v in ln.split()[:2]] for ln in lines[start:end]], dtype=np.float64)
    if pts.shape != (n, 2):
        raise ValueError(f"{path}: expected {n} points, got {pts.shape[0]}")
    return pts


def resolve_data_dir(data: str | os.PathLike | None = None) -> Path:
    """The ``landmarks68`` directory: ``data`` (the data root or ``landmarks68`` itself), else
    ``$FACESHIELD_DATA``, else ``<repo>/../shared/data``."""
    if data is None:
        data = os.environ.get("FACESHIELD_DATA") or Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    p = Path(data)
    if (p / "landmarks68").is_dir():
        p = p / "landmarks68"
    if not (p / "train").is_dir():
        raise FileNotFoundError(f"{p}: expected a landmarks68 directory with train/ and test/")
    return p


def list_split(split_dir: str | os.PathLike) -> list[Path]:
    """Sorted ``.jpg`` files of a split that have a ``.pts`` next to them."""
    d = Path(split_dir)
    return sorted(p for p in d.glob("*.jpg") if p.with_suffix(".pts").is_file())


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def landmark_box(pts: np.ndarray) -> np.ndarray:
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], dtype=np.float64)


def match_face(boxes: list[np.ndarray], gt: np.ndarray, min_iou: float = MATCH_IOU) -> int | None:
    """Index of the box with the highest IoU with the landmark box of ``gt`` (None below ``min_iou``)."""
    if not len(boxes):
        return None
    lb = landmark_box(gt)
    scores = [box_iou(np.asarray(b, dtype=np.float64), lb) for b in boxes]
    best = int(np.argmax(scores))
    return best if scores[best] >= min_iou else None


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean point error over the distance of the outer eye corners (36, 45)."""
    return float(nme_metric(pred, gt, IBUG68))


def _files_digest(files: list[Path]) -> str:
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}\n".encode())
    return h.hexdigest()[:16]


def mtcnn_boxes(data_dir: Path, cache: Path = DEFAULT_CACHE) -> dict:
    """MTCNN box of every annotated face in ``train/`` and ``test/`` (cached as JSON in ``cache``).

    Returns:
        ``{"boxes": {"train/NAME.jpg": [x0, y0, x1, y1] or None}, "fallback": [dcx, dcy, sw, sh],
        "digest": ...}``: ``fallback`` maps a landmark box (centre ``c``, size ``w, h``) to an
        MTCNN-like box of centre ``c + (dcx w, dcy h)`` and size ``(sw w, sh h)`` (means over the
        matched faces).
    """
    files = list_split(data_dir / "train") + list_split(data_dir / "test")
    digest = _files_digest(files)
    if cache.is_file():
        try:
            got = json.loads(cache.read_text())
            if got.get("digest") == digest:
                return got
        except (OSError, ValueError):
            pass
    from faceshield.models.registry import create_extractor

    det = create_extractor("mtcnn")
    boxes: dict[str, list[float] | None] = {}
    rel = []
    t0 = time.time()
    for i, f in enumerate(files):
        gt = read_pts(f.with_suffix(".pts"))
        found = [fc.box for fc in det.detect(load_rgb(f))]
        k = match_face(found, gt)
        key = f"{f.parent.name}/{f.name}"
        boxes[key] = None if k is None else [float(v) for v in found[k]]
        if k is not None:
            lb, b = landmark_box(gt), found[k]
            w, h = lb[2] - lb[0], lb[3] - lb[1]
            rel.append([((b[0] + b[2]) - (lb[0] + lb[2])) / 2 / w, ((b[1] + b[3]) - (lb[1] + lb[3])) / 2 / h,
                        (b[2] - b[0]) / w, (b[3] - b[1]) / h])
        if (i + 1) % 200 == 0:
            logger.info("MTCNN boxes: %d / %d (%.0f s)", i + 1, len(files), time.time() - t0)
    fallback = np.mean(rel, axis=0).tolist() if rel else [0.0, 0.0, 1.0, 1.0]
    out = {"digest": digest, "boxes": boxes, "fallback": fallback,
           "found": sum(b is not None for b in boxes.values()), "total": len(boxes)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(cache)
    return out


def face_box(key: str, gt: np.ndarray, cache: dict) -> np.ndarray:
    """The training / validation box of a face: the cached MTCNN box, else the landmark box mapped
    by the fitted fallback."""
    b = cache["boxes"].get(key)
    if b is not None:
        return np.asarray(b, dtype=np.float64)
    lb = landmark_box(gt)
    dcx, dcy, sw, sh = cache["fallback"]
    w, h = lb[2] - lb[0], lb[3] - lb[1]
    cx, cy = (lb[0] + lb[2]) / 2 + dcx * w, (lb[1] + lb[3]) / 2 + dcy * h
    return np.array([cx - sw * w / 2, cy - sh * h / 2, cx + sw * w / 2, cy + sh * h / 2])


@dataclasses.dataclass
class Sample:
    key: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    points: np.ndarray  # (68, 2)
    box: np.ndarray  # (4,) detector(-like) box


def load_samples(files: list[Path], cache: dict) -> list[Sample]:
    out = []
    for f in files:
        gt = read_pts(f.with_suffix(".pts"))
        key = f"{f.parent.name}/{f.name}"
        out.append(Sample(key, load_rgb(f), gt, face_box(key, gt, cache)))
    return out


def split_train_val(files: list[Path], val_frac: float) -> tuple[list[Path], list[Path]]:
    """Fixed split: a permutation seeded by a constant (independent of the training seed)."""
    order = np.random.default_rng(20240601).permutation(len(files))
    n_val = int(round(val_frac * len(files)))
    val = sorted(files[i] for i in order[:n_val])
    train = sorted(files[i] for i in order[n_val:])
    return train, val


# ---------------------------------------------------------------------------------------------
# crops, augmentation, targets
# ---------------------------------------------------------------------------------------------


def crop_spec(model: str, size: int):
    from faceshield.models.heatmap import FAN_CROP, HRNET_CROP

    return dataclasses.replace(FAN_CROP if model == "fan" else HRNET_CROP, input_size=int(size))


def square(crop, box: np.ndarray) -> np.ndarray:
    """``CropSpec.square`` of one box (numpy)."""
    return crop.square(torch.as_tensor(np.asarray(box, dtype=np.float64)[None]))[0].numpy()


def warp(image: np.ndarray, center: np.ndarray, side: float, angle: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample the square of ``side`` pixels around ``center`` rotated by ``angle`` (radians) into
    ``size x size`` (bilinear, half-pixel centres, zeros outside), as ``crop_boxes`` does for
    ``angle = 0``.

    Returns:
        the ``uint8`` crop and the ``(2, 3)`` matrix ``A`` with ``image_xy = A @ (crop_xy, 1)`` (edge
        convention on both sides).
    """
    s = side / size
    c, si = math.cos(angle), math.sin(angle)
    a = s * np.array([[c, -si], [si, c]])
    t_edge = center - a @ np.array([size / 2, size / 2])
    m_cv = np.concatenate([a, (t_edge + a @ np.array([0.5, 0.5]) - 0.5)[:, None]], axis=1)
    out = cv2.warpAffine(image, m_cv, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return out, np.concatenate([a, t_edge[:, None]], axis=1)


def to_crop(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    a, t = affine[:, :2], affine[:, 2]
    return (points - t) @ np.linalg.inv(a).T


def colour_jitter(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = crop.astype(np.float32) / 255
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-0.12, 0.12)  # contrast-ish gain, brightness
    grey = x.mean(axis=2, keepdims=True)
    sat = 0.0 if rng.random() < 0.1 else rng.uniform(0.6, 1.4)
    x = grey + (x - grey) * sat
    x = x * rng.uniform(0.9, 1.1, size=(1, 1, 3)).astype(np.float32)  # colour cast
    if rng.random() < 0.25:
        k = rng.uniform(0.3, 1.2)
        x = cv2.GaussianBlur(x, (0, 0), k)
    if rng.random() < 0.25:
        x = x + rng.normal(0, rng.uniform(0.005, 0.03), size=x.shape).astype(np.float32)
    if rng.random() < 0.15:  # random occluding rectangle
        h, w = x.shape[:2]
        rh, rw = int(rng.uniform(0.1, 0.35) * h), int(rng.uniform(0.1, 0.35) * w)
        y0, x0 = rng.integers(0, h - rh), rng.integers(0, w - rw)
        x[y0:y0 + rh, x0:x0 + rw] = rng.uniform(0, 1, size=3)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def make_input(sample: Sample, crop, rng: np.random.Generator | None, mirror: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (augmented when ``rng`` is given) crop.

    Returns:
        ``crop`` ``(S, S, 3)`` uint8, ``points`` ``(68, 2)`` in crop pixels (edge convention) and the
        crop -> image affine (``(2, 3)``; for ``rng=None`` the un-augmented square).
    """
    sq = square(crop, sample.box)
    center = (sq[:2] + sq[2:]) / 2
    side = float(sq[2] - sq[0])
    angle, flip = 0.0, False
    if rng is not None:
        side *= math.exp(rng.normal(0, 0.08))
        center = center + rng.normal(0, 0.04, size=2) * side
        angle = math.radians(float(np.clip(rng.normal(0, 12), -35, 35))) if rng.random() < 0.8 else 0.0
        flip = rng.random() < 0.5
    img, affine = warp(sample.image, center, side, angle, crop.input_size)
    pts = to_crop(sample.points, affine)
    if flip:
        img = np.ascontiguousarray(img[:, ::-1])
        pts = pts[mirror].copy()
        pts[:, 0] = crop.input_size - pts[:, 0]
    if rng is not None:
        img = colour_jitter(img, rng)
    return img, pts, affine


def gaussian_targets(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """``(N, K, 2)`` points in heat-map pixels (edge frame) -> ``(N, K, size, size)`` unit-peak
    Gaussians centred on them."""
    c = torch.arange(size, dtype=torch.float32) + 0.5
    gx = torch.exp(-((c[None, None, :] - points[..., 0:1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((c[None, None, :] - points[..., 1:2]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :]


def adaptive_wing(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.1, omega: float = 14.0,
                  epsilon: float = 1.0, theta: float = 0.5, weight: float = 10.0) -> torch.Tensor:
    """Adaptive wing loss (Wang, Bo & Fuxin 2019) with its weighted loss map (``1 + weight`` on the
    3x3-dilated foreground ``target > 0.2``)."""
    d = (target - pred).abs()
    p = alpha - target
    small = omega * torch.log1p((d / epsilon).clamp_min(1e-12).pow(p))
    a = omega * (1 / (1 + (theta / epsilon) ** p)) * p * ((theta / epsilon) ** (p - 1)) / epsilon
    c = theta * a - omega * torch.log1p((theta / epsilon) ** p)
    loss = torch.where(d < theta, small, a * d - c)
    fg = (F.max_pool2d(target, 3, stride=1, padding=1) > 0.2).to(pred.dtype)
    return (loss * (1 + weight * fg)).mean()


def heatmap_loss(outputs, target: torch.Tensor, kind: str) -> torch.Tensor:
    outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    if kind == "mse":
        return sum(F.mse_loss(o, target) for o in outs) * 100
    return sum(adaptive_wing(o, target) for o in outs)


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def build_model(args) -> torch.nn.Module:
    if args.model == "fan":
        from faceshield.models.fan import FAN

        return FAN(num_stacks=args.stacks, num_points=N_POINTS, features=args.features, depth=args.depth, pool="avg")
    from faceshield.models.hrnet import HighResolutionNet, HRNetConfig

    return HighResolutionNet(HRNetConfig(width=args.width, num_points=N_POINTS, modules=tuple(args.modules),
                                         blocks=args.blocks, stem=args.stem, layer1_blocks=args.layer1_blocks))


def architecture(net: torch.nn.Module, model: str) -> dict:
    if model == "fan":
        from faceshield.models.fan import fan_config

        cfg = fan_config(net.state_dict())
        cfg["pool"] = net.pool
        return cfg
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(net.config).items()}


class Batcher:
    def __init__(self, samples: list[Sample], crop, sigma: float, mean_std):
        from faceshield.models.heatmap import MIRROR

        self.samples, self.crop, self.sigma = samples, crop, sigma
        self.mirror = np.asarray(MIRROR["ibug68"])
        self.hm = crop.input_size // 4
        self.mean_std = mean_std

    def normalise(self, crops: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
        if self.mean_std is not None:
            m, s = self.mean_std
            x = (x - torch.tensor(m).view(1, 3, 1, 1)) / torch.tensor(s).view(1, 3, 1, 1)
        return x

    def batch(self, idx, rng: np.random.Generator | None):
        crops, pts, affs = [], [], []
        for i in idx:
            c, p, a = make_input(self.samples[i], self.crop, rng, self.mirror)
            crops.append(c)
            pts.append(p)
            affs.append(a)
        x = self.normalise(np.stack(crops))
        p = torch.from_numpy(np.stack(pts)).float() * (self.hm / self.crop.input_size)
        return x, gaussian_targets(p, self.hm, self.sigma), np.stack(affs)


def predict_crops(net, x: torch.Tensor, decoder: str) -> torch.Tensor:
    from faceshield.models.heatmap import decode_fan, decode_hrnet

    out = net(x)
    h = out[-1] if isinstance(out, (list, tuple)) else out
    return decode_fan(h) if decoder == "fan" else decode_hrnet(h) - 1.0


def evaluate_crops(net, batcher: Batcher, batch: int = 32) -> dict:
    """NME on the un-augmented crops of ``batcher.samples`` (their cached boxes; no detector run)."""
    net.eval()
    errs = []
    scale = batcher.crop.input_size / batcher.hm
    with torch.inference_mode():
        for s in range(0, len(batcher.samples), batch):
            idx = list(range(s, min(s + batch, len(batcher.samples))))
            x, _, affs = batcher.batch(idx, None)
            xy = predict_crops(net, x, batcher.crop.decoder).numpy() * scale
            for k, i in enumerate(idx):
                a = affs[k]
                img_xy = xy[k] @ a[:, :2].T + a[:, 2]
                errs.append(nme(img_xy, batcher.samples[i].points))
    e = np.asarray(errs)
    return {"nme": float(e.mean()), "nme_median": float(np.median(e)), "fr_0.1": float((e > 0.1).mean()), "n": int(len(e))}


# ---------------------------------------------------------------------------------------------
# evaluation through the extractor
# ---------------------------------------------------------------------------------------------


def evaluate_nme(extractor, split_dir: str | os.PathLike, *, min_iou: float = MATCH_IOU, limit: int | None = None) -> dict:
    """NME of ``extractor.detect`` on every annotated image of ``split_dir``.

    Each image runs the extractor's full pipeline (its own detector, crop, network, decode); the face
    whose box has the highest IoU with the ground-truth landmark box is compared with the ``.pts``
    ground truth. Images without such a face (IoU below ``min_iou``) count as ``missed`` and are left
    out of the NME.

    Returns:
        ``nme`` (mean), ``nme_median``, ``fr_0.1`` (fraction of found faces with NME > 0.1),
        ``n_images``, ``n_found``, ``n_missed``, ``auc_0.08``, ``seconds``.
    """
    files = list_split(split_dir)[:limit]
    errs, missed = [], []
    t0 = time.time()
    for f in files:
        gt = read_pts(f.with_suffix(".pts"))
        faces = extractor.detect(load_rgb(f))
        k = match_face([fc.box for fc in faces], gt, min_iou)
        if k is None:
            missed.append(f.name)
            continue
        errs.append(nme(np.asarray(faces[k].points)[:, :2], gt))
    e = np.asarray(errs, dtype=np.float64)
    thr = np.linspace(0, 0.08, 81)
    auc = float(np.mean([(e <= t).mean() for t in thr])) if len(e) else float("nan")
    return {
        "nme": float(e.mean()) if len(e) else float("nan"),
        "nme_median": float(np.median(e)) if len(e) else float("nan"),
        "fr_0.1": float((e > 0.1).mean()) if len(e) else float("nan"),
        "auc_0.08": auc,
        "n_images": len(files),
        "n_found": int(len(e)),
        "n_missed": len(missed),
        "missed": missed,
        "seconds": round(time.time() - t0, 1),
    }


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="faceshield train-landmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("fan", "hrnet"), required=True)
    p.add_argument("--data", default=None, help="data root or landmarks68 dir (default $FACESHIELD_DATA or ../shared/data)")
    p.add_argument("--out", required=True, help="output state dict (.pt); the sidecar JSON goes next to it")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--max-minutes", type=float, default=0.0, help="time budget (0: none); the LR schedule follows it")
    p.add_argument("--size", type=int, default=128, help="network input side (heat-maps are size / 4)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--sigma", type=float, default=1.25, help="Gaussian target sigma in heat-map pixels")
    p.add_argument("--loss", choices=("awing", "mse"), default="awing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--val-frac", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=2, help="epochs between validation runs")
    p.add_argument("--box-cache", default=str(DEFAULT_CACHE))
    p.add_argument("--no-test", action="store_true", help="skip the final HELEN-test evaluation through detect()")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke tests)")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    g = p.add_argument_group("FAN")
    g.add_argument("--stacks", type=int, default=2)
    g.add_argument("--features", type=int, default=64)
    g.add_argument("--depth", type=int, default=4)
    g = p.add_argument_group("HRNet")
    g.add_argument("--width", type=int, default=16)
    g.add_argument("--modules", type=int, nargs=3, default=(1, 1, 1))
    g.add_argument("--blocks", type=int, default=2)
    g.add_argument("--stem", type=int, default=32)
    g.add_argument("--layer1-blocks", type=int, default=1)
    return p.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save(net, out: Path, meta: dict, half: bool) -> None:
    sd = {k: (v.half() if half and v.is_floating_point() else v).clone() for k, v in net.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(sd, tmp)
    tmp.replace(out)
    meta = dict(meta)
    meta["weights_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    meta["weights_bytes"] = out.stat().st_size
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(max(1, args.threads))
    cv2.setNumThreads(1)
    seed_everything(args.seed)
    if args.size % 32:
        raise SystemExit(f"--size: expected a multiple of 32, got {args.size}")
    t_start = time.time()
    data = resolve_data_dir(args.data)
    cache = mtcnn_boxes(data, Path(args.box_cache))
    train_files, val_files = split_train_val(list_split(data / "train"), args.val_frac)
    if args.limit:
        train_files, val_files = train_files[: args.limit], val_files[: max(1, args.limit // 4)]
    crop = crop_spec(args.model, args.size)
    mean_std = (crop.mean, crop.std) if crop.mean is not None else None
    train = Batcher(load_samples(train_files, cache), crop, args.sigma, mean_std)
    val = Batcher(load_samples(val_files, cache), crop, args.sigma, mean_std)
    net = build_model(args)
    n_params = sum(p.numel() for p in net.parameters())
    logger.info("%s: %d parameters, input %d, heat-maps %d; %d train / %d val images", args.model, n_params, args.size,
                train.hm, len(train.samples), len(val.samples))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed)
    steps_per_epoch = max(1, len(train.samples) // args.batch)
    total = steps_per_epoch * args.epochs
    budget = args.max_minutes * 60
    warmup = min(200, total // 20)
    meta = {
        "model": args.model,
        "input_size": args.size,
        "heatmap_size": train.hm,
        "crop": {k: v for k, v in dataclasses.asdict(crop).items()},
        "architecture": architecture(net, args.model),
        "n_params": n_params,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
        "command": "faceshield train-landmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "data": {
            "dir": os.path.relpath(data), "train_images": len(train.samples), "val_images": len(val.samples),
            "test_images": len(list_split(data / "test")),
            "train_files_digest": _files_digest(train_files), "val_files_digest": _files_digest(val_files),
            "mtcnn_boxes_found": cache.get("found"), "mtcnn_boxes_total": cache.get("total"),
            "fallback_box": cache["fallback"],
        },
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                        "opencv": cv2.__version__, "threads": args.threads},
    }
    best = {"nme": float("inf")}
    step, epoch, history = 0, 0, []
    out = Path(args.out)
    done = False
    while not done:
        net.train()
        perm = rng.permutation(len(train.samples))
        running, t_ep = 0.0, time.time()
        for b in range(steps_per_epoch):
            progress = step / total
            if budget > 0:
                progress = max(progress, (time.time() - t_start) / budget)
            if progress >= 1:
                done = True
                break
            lr = args.lr * (step + 1) / warmup if step < warmup else args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))
            for gp in opt.param_groups:
                gp["lr"] = lr
            x, target, _ = train.batch(perm[b * args.batch:(b + 1) * args.batch], rng)
            loss = heatmap_loss(net(x), target, args.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            step += 1
        epoch += 1
        n_done = max(1, b if done else steps_per_epoch)
        last = done or step >= total
        if epoch % args.eval_every == 0 or last:
            v = evaluate_crops(net, val)
            history.append({"epoch": epoch, "step": step, "loss": running / n_done, "val_nme": v["nme"],
                            "minutes": round((time.time() - t_start) / 60, 2)})
            logger.info("epoch %d step %d loss %.4f lr %.2e val NME %.4f (median %.4f, >0.1 %.3f) [%.0f s/epoch, %.1f min]",
                        epoch, step, running / n_done, lr, v["nme"], v["nme_median"], v["fr_0.1"], time.time() - t_ep,
                        (time.time() - t_start) / 60)
            if v["nme"] < best["nme"]:
                best = {**v, "epoch": epoch, "step": step}
                meta.update(best_val=best, history=history, epochs_run=epoch, steps_run=step,
                            wall_time_s=round(time.time() - t_start, 1))
                save(net, out, meta, args.half)
        else:
            logger.info("epoch %d step %d loss %.4f lr %.2e [%.0f s]", epoch, step, running / n_done, lr, time.time() - t_ep)
        if step >= total:
            done = True
    meta.update(history=history, epochs_run=epoch, steps_run=step, train_wall_time_s=round(time.time() - t_start, 1), val=best)
    sidecar = out.with_suffix(".json")
    old = json.loads(sidecar.read_text())
    meta["weights_sha256"], meta["weights_bytes"] = old["weights_sha256"], old["weights_bytes"]
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    finalize(out, data, cache, test=not args.no_test)
    return 0


def finalize(out: str | os.PathLike, data: Path | None = None, cache: dict | None = None, *, test: bool = True) -> dict:
    """Final numbers of the saved (best) weights, added to their sidecar JSON: NME on the
    un-augmented crops of the training and validation images (cached boxes), and - with ``test`` -
    the HELEN-test NME through the extractor's full ``detect()`` (:func:`evaluate_nme`)."""
    from faceshield.models.registry import create_extractor

    out = Path(out)
    sidecar = out.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    data = resolve_data_dir(data if data is not None else meta["data"]["dir"])
    cache = cache if cache is not None else mtcnn_boxes(data, Path(meta["options"]["box_cache"]))
    ext = create_extractor(meta["model"], weights=str(out), cached=False)
    if ext.crop.input_size != meta["input_size"]:
        raise RuntimeError(f"the extractor crops {ext.crop.input_size} px, the weights were trained on {meta['input_size']} px")
    train_files, val_files = split_train_val(list_split(data / "train"), meta["options"]["val_frac"])
    crop = ext.crop
    mean_std = (crop.mean, crop.std) if crop.mean is not None else None
    for name, files in (("train_crops", train_files), ("val_crops", val_files)):
        meta[name] = evaluate_crops(ext.net, Batcher(load_samples(files, cache), crop, meta["options"]["sigma"], mean_std))
        logger.info("%s NME (cached boxes, no augmentation): %s", name, meta[name])
    if test:
        res = evaluate_nme(ext, data / "test")
        res.pop("missed", None)
        meta["test_helen_detect"] = res
        logger.info("HELEN test through detect(): %s", res)
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def evaluate_main(argv=None) -> int:
    """``python -m faceshield.training.landmarks evaluate [--extractors dlib68 fan hrnet] [--split test]``:
    :func:`evaluate_nme` of registered extractors (their default weights), printed as JSON."""
    p = argparse.ArgumentParser(prog="faceshield.training.landmarks evaluate")
    p.add_argument("--extractors", nargs="+", default=["dlib68", "fan", "hrnet"])
    p.add_argument("--data", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    from faceshield.models.registry import create_extractor

    split = resolve_data_dir(args.data) / args.split
    results = {}
    for name in args.extractors:
        results[name] = evaluate_nme(create_extractor(name, cached=False), split)
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "missed"}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "evaluate":
        raise SystemExit(evaluate_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "finalize":  # finalize PATH.pt [--no-test]
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        torch.set_num_threads(1)
        finalize(sys.argv[2], test="--no-test" not in sys.argv[3:])
        raise SystemExit(0)
    raise SystemExit(main())
