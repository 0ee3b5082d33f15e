"""Train our own DeepFake detector (:class:`~faceshield.models.resnet_detector.ResNetDetector`,
ResNet-18 layout, from scratch) to tell real faces from the fakes of our face swap. It never sees a
StarGAN edit, as the detectors of the DeepFake Disrupter paper had never seen StarGAN.

Data (extracted once, kept in memory only):

* REAL: every frame of the four talking-head videos (Menendez, Markey, two radio hosts).
* FAKE: our swap (:class:`~faceshield.deepfake.swap.FaceSwapper`, the shipped menendez<->markey
  model, video mode with Kalman-smoothed landmarks) of the Menendez frames into Markey and of the
  Markey frames into Menendez. Frames whose face the swap tool dropped (plausibility filter) or did
  not find are left out: they are not fakes.
* Crops: the largest MTCNN box of each (original or swapped) frame, a square of 1.3x its longer
  side around its centre, resized to 128 px with :func:`faceshield.faces.crop.crop_boxes` (zero
  outside the frame), the crop the DeepFake judges of :mod:`faceshield.deepfake.edit` take. A
  ``margin`` (1.125x) more is kept around it for the random crops; the evaluation crop is the
  exact centre.

Split: the last ``holdout`` (40) frames of every video are held out (time-disjoint). The identities
are shared between training and test: the swap model exists for these two people only, so there
are no unseen identities to fake.

Augmentation (training only): horizontal flip, a random crop of 1 +- ``zoom`` the side shifted by
up to ``shift``, resized back to 128, and with probability ``jpeg_p`` a JPEG round trip (cv2,
quality 60..95), so that the network does not learn codec traces only (the swapped pixels never went
through the videos' H.264). Classes are balanced by weighting the loss (each class weighs half).

AdamW (lr 1e-3, weight decay 0.01), a short linear warm-up then a cosine decay per step, batch 32,
a fixed number of epochs. Seeded (python, numpy, torch), single process, ``--threads 1``. Writes
fp16 weights to ``--out`` and a JSON sidecar next to them (config, sha256 of the videos, per-class
counts, held-out metrics with FAKE as the positive class, history, seconds, machine).

Usage::

    python -m faceshield.training.detector --measure 5           # seconds per batch, then exit
    python -m faceshield.training.detector --out out/train/resnet_swap_detector.pt
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from faceshield.io.video import read_video
from faceshield.models.resnet_detector import ResNetDetector

VIDEO_DIR = "../shared/data/videos"
REAL_VIDEOS = ("WDA_BobMenendez_000.mp4", "WDA_EdMarkey0_000.mp4", "RD_Radio2_000.mp4", "RD_Radio34_000.mp4")
#: (video, identity to render): Menendez's frames into Markey, Markey's into Menendez.
SWAPS = (("WDA_BobMenendez_000.mp4", "markey"), ("WDA_EdMarkey0_000.mp4", "menendez"))
REAL, FAKE = 1, 0  # the network's target: 1 = real (it outputs the logit of REAL)


@dataclass
class DetectorTrainConfig:
    real: list[str] = field(default_factory=lambda: [f"{VIDEO_DIR}/{v}" for v in REAL_VIDEOS])
    swaps: list[list[str]] = field(default_factory=lambda: [[f"{VIDEO_DIR}/{v}", i] for v, i in SWAPS])
    swap_model: str | None = None  # None: the shipped swap128.pt
    swap_extractor: str = "fan"  # FaceSwapper's default aligner
    detector: str = "mtcnn"
    holdout: int = 40
    max_frames: int | None = None  # smoke tests only
    size: int = 128
    width: int = 32
    scale: float = 1.3
    margin: float = 1.125
    epochs: int = 36  # ~16 s per epoch at 1 thread on a shared 2-core CPU (measured with --measure): ~10 min
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.03  # fraction of the steps
    seed: int = 0
    threads: int = 1
    flip: float = 0.5
    zoom: float = 0.1
    shift: float = 0.06
    jpeg_p: float = 0.7
    jpeg_quality: tuple[int, int] = (60, 95)


@dataclass
class Crops:
    """Face crops ``(N, C, C, 3)`` uint8 RGB (``C = size * margin``), labels ``(N,)`` (1 real, 0
    fake), the source of each (a name) and its frame index."""

    x: np.ndarray
    y: np.ndarray
    source: list[str]
    frame: np.ndarray

    def subset(self, m: np.ndarray) -> Crops:
        return Crops(self.x[m], self.y[m], [s for s, k in zip(self.source, m) if k], self.frame[m])


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def square_box(box: np.ndarray, scale: float) -> np.ndarray:
    """The square ``x0, y0, x1, y1`` of side ``scale`` x the longer side of ``box``, same centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    h = max(box[2] - box[0], box[3] - box[1]) * scale / 2
    return np.array([cx - h, cy - h, cx + h, cy + h])


def face_crop(frame: np.ndarray, box: np.ndarray, scale: float, side: int) -> np.ndarray:
    """``(side, side, 3)`` uint8: the square of ``scale`` x ``box`` out of ``frame`` (``(H, W, 3)``
    uint8), bilinear with antialiasing, zero outside the frame."""
    from faceshield.faces.crop import crop_boxes

    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float() / 255.0
    c = crop_boxes(x, torch.tensor(square_box(box, scale)[None], dtype=torch.float32), side)
    return (c[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def _largest_box(ext, frame: np.ndarray) -> np.ndarray | None:
    faces = ext.detect(frame)
    return max(faces, key=lambda f: f.area).box if faces else None


def extract(cfg: DetectorTrainConfig, log=print) -> tuple[Crops, dict]:
    """All crops (REAL of every video, FAKE of every swap) and a record of the data."""
    from faceshield.deepfake import FaceSwapper, load_swap_model
    from faceshield.models import create_extractor

    det = create_extractor(cfg.detector)
    side = int(round(cfg.size * cfg.margin))
    scale = cfg.scale * side / cfg.size
    xs, ys, srcs, idx = [], [], [], []
    record: dict = {"videos": {}, "sources": {}}
    digests: dict[str, str] = {}

    def video(path: str) -> np.ndarray:
        if path not in digests:
            digests[path] = sha256(path)
        frames = read_video(path, max_frames=cfg.max_frames).array()
        record["videos"][Path(path).name] = {"path": path, "sha256": digests[path], "frames": int(len(frames))}
        return frames

    def add(name: str, label: int, frames, n: int, extra: dict) -> None:
        t = time.time()
        kept = lost = 0
        for i, fr in enumerate(frames):
            if fr is None:
                continue
            box = _largest_box(det, fr)
            if box is None:
                lost += 1
                continue
            xs.append(face_crop(fr, box, scale, side)), ys.append(label), srcs.append(name), idx.append(i)
            kept += 1
        record["sources"][name] = {"label": "REAL" if label == REAL else "FAKE", "frames": n, "crops": kept, f"no_{cfg.detector}_face": lost, **extra}
        log(f"{name}: {kept} crops of {n} frames ({lost} without a face) {time.time() - t:.0f}s")

    for path in cfg.real:
        frames = video(path)
        add(f"real:{Path(path).stem}", REAL, frames, len(frames), {})
    model = load_swap_model(cfg.swap_model)
    for path, ident in cfg.swaps:
        frames = video(path)
        t = time.time()
        sw = FaceSwapper(model, extractor=cfg.swap_extractor, identity=ident)
        res = sw.swap_video(list(frames), smooth=True)
        fakes = [r.image if any(f.swapped for f in r.faces) else None for r in res]
        dropped = sum(bool(r.faces) and not any(f.swapped for f in r.faces) for r in res)
        unfound = sum(not r.faces for r in res)
        log(f"swap {Path(path).stem} -> {ident}: {len(frames) - dropped - unfound} swapped, {dropped} dropped by the filter, {unfound} without a face {time.time() - t:.0f}s")
        add(f"fake:{Path(path).stem}->{ident}", FAKE, fakes, len(frames), {"dropped_by_filter": dropped, f"no_{cfg.swap_extractor}_face": unfound})
    record["crop"] = (f"square of {cfg.scale}x the longer side of the largest {cfg.detector} box, {cfg.size} px "
                      f"(stored with a {cfg.margin}x margin at {side} px for the random crops; evaluation = the exact centre)")
    return Crops(np.stack(xs), np.array(ys, np.int64), srcs, np.array(idx)), record


# ---------------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------------


def centre(x: np.ndarray, size: int) -> np.ndarray:
    """The evaluation crops: the centre ``size`` x ``size`` of ``(N, C, C, 3)``."""
    o = (x.shape[1] - size) // 2
    return x[:, o : o + size, o : o + size]


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of ``(H, W, 3)`` uint8 RGB with cv2."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def augment(img: np.ndarray, rng: np.random.Generator, cfg: DetectorTrainConfig) -> np.ndarray:
    """One training sample ``(size, size, 3)`` uint8 from a stored crop ``(C, C, 3)``."""
    c, s = img.shape[0], cfg.size
    side = min(c, s * (1 + rng.uniform(-cfg.zoom, cfg.zoom)))
    cx, cy = c / 2 + rng.uniform(-cfg.shift, cfg.shift, 2) * s
    x0 = float(np.clip(cx - side / 2, 0, c - side))
    y0 = float(np.clip(cy - side / 2, 0, c - side))
    # affine map of the chosen square onto the output (sub-pixel exact, no integer rounding)
    k = s / side
    m = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], np.float64)
    out = cv2.warpAffine(img, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < cfg.flip:
        out = out[:, ::-1]
    if rng.random() < cfg.jpeg_p:
        out = jpeg(np.ascontiguousarray(out), rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    return np.ascontiguousarray(out)


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """``(N, S, S, 3)`` uint8 -> ``(N, 3, S, S)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() / 255.0


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC of ``score`` (higher = more positive) by ranks (ties averaged)."""
    pos, neg = positive.sum(), (~positive).sum()
    if pos == 0 or neg == 0:
        return None
    order = score.argsort(kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for v in np.unique(score):  # average the ranks of ties
        t = score == v
        if t.sum() > 1:
            ranks[t] = ranks[t].mean()
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def metrics(logit_real: np.ndarray, y: np.ndarray, sources: list[str] | None = None) -> dict:
    """Accuracy and precision / recall / F1 with FAKE as the positive class (a face is called fake
    when the logit of REAL is < 0, i.e. P(real) < 0.5)."""
    is_fake = y == FAKE
    called_fake = logit_real < 0
    tp = int((called_fake & is_fake).sum())
    fp = int((called_fake & ~is_fake).sum())
    fn = int((~called_fake & is_fake).sum())
    tn = int((~called_fake & ~is_fake).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    out = {
        "positives": "FAKE", "threshold": "P(real) < 0.5 (logit of REAL < 0) -> FAKE",
        "n": int(len(y)), "n_fake": int(is_fake.sum()), "n_real": int((~is_fake).sum()),
        "accuracy": round((tp + tn) / max(len(y), 1), 5),
        "precision": round(prec, 5), "recall": round(rec, 5), "f1": round(2 * prec * rec / (prec + rec) if prec + rec else 0.0, 5),
        "balanced_accuracy": round(0.5 * (tp / max(tp + fn, 1) + tn / max(tn + fp, 1)), 5),
        "auc": None if (a := auc(-logit_real, is_fake)) is None else round(a, 5),
        "confusion": {"tp_fake_called_fake": tp, "fp_real_called_fake": fp, "fn_fake_called_real": fn, "tn_real_called_real": tn},
    }
    if sources is not None:
        src = np.array(sources)
        out["per_source_accuracy"] = {s: round(float((called_fake[src == s] == is_fake[src == s]).mean()), 5) for s in dict.fromkeys(sources)}
    return out


@torch.no_grad()
def predict(model: ResNetDetector, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Logits of REAL ``(N,)`` of ``(N, S, S, 3)`` uint8 crops (eval mode)."""
    model.eval()
    return np.concatenate([model(to_tensor(x[i : i + batch])).numpy() for i in range(0, len(x), batch)]) if len(x) else np.zeros(0)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def _seed(cfg: DetectorTrainConfig) -> None:
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)


def split(data: Crops, holdout: int, frames: dict[str, int]) -> np.ndarray:
    """``(N,)`` True for held-out crops: the last ``holdout`` frames of the crop's video."""
    n = np.array([frames[s] for s in data.source])
    return data.frame >= n - holdout


def _machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"system": platform.system(), "machine": platform.machine(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__}


def train(cfg: DetectorTrainConfig, out: Path | None, measure: int = 0, log=print) -> dict:
    """Extract the crops, train, evaluate on the held-out frames, write ``out`` + its sidecar.
    With ``measure`` > 0: time that many training batches instead and return the timings."""
    _seed(cfg)
    t0 = time.time()
    data, record = extract(cfg, log)
    t_data = time.time() - t0
    frames = {name: r["frames"] for name, r in record["sources"].items()}
    test_m = split(data, cfg.holdout, frames)
    tr, te = data.subset(~test_m), data.subset(test_m)
    counts = {
        part: {"REAL": int((d.y == REAL).sum()), "FAKE": int((d.y == FAKE).sum()), "per_source": {s: d.source.count(s) for s in record["sources"]}}
        for part, d in (("train", tr), ("test", te))
    }
    log(f"train: {counts['train']['REAL']} real, {counts['train']['FAKE']} fake; test: {counts['test']['REAL']} real, {counts['test']['FAKE']} fake ({t_data:.0f}s)")
    if counts["train"]["REAL"] == 0 or counts["train"]["FAKE"] == 0:
        raise ValueError(f"training needs both classes, got {counts['train']}")
    # class-balanced loss weights: each class weighs half of the total
    n = len(tr.y)
    w_class = {c: n / (2.0 * max(int((tr.y == c).sum()), 1)) for c in (REAL, FAKE)}
    weights = np.array([w_class[int(c)] for c in tr.y], np.float32)

    rng = np.random.default_rng(cfg.seed)
    model = ResNetDetector(width=cfg.width, size=cfg.size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = n // cfg.batch + (n % cfg.batch >= 2)
    total = max(cfg.epochs * per_epoch, 1)
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(s - warm, total - warm) / max(total - warm, 1))))
    x_te = centre(te.x, cfg.size)

    def step(ix: np.ndarray) -> tuple[float, int]:
        xb = to_tensor(np.stack([augment(tr.x[i], rng, cfg) for i in ix]))
        yb = torch.from_numpy(tr.y[ix]).float()
        wb = torch.from_numpy(weights[ix])
        logit = model(xb)
        loss = (F.binary_cross_entropy_with_logits(logit, yb, reduction="none") * wb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return float(loss.detach()), int(((logit.detach() > 0).long() == yb.long()).sum())

    if measure:
        model.train()
        times = []
        for _ in range(measure):
            t = time.time()
            step(rng.choice(n, cfg.batch, replace=False))
            times.append(time.time() - t)
        t = time.time()
        predict(model, x_te[:64])
        sec = float(np.median(times[1:] if len(times) > 1 else times))
        res = {"data_seconds": round(t_data, 1), "batch_seconds": [round(v, 3) for v in times], "median_batch_s": round(sec, 3),
               "epoch_s_estimate": round(sec * per_epoch + (time.time() - t) * len(x_te) / 64, 1), "batches_per_epoch": per_epoch, "train": counts["train"], "test": counts["test"]}
        log(json.dumps(res))
        return res

    history = []
    t1 = time.time()
    for ep in range(1, cfg.epochs + 1):
        model.train()
        perm = rng.permutation(n)
        tot = correct = seen = 0.0
        for b in range(per_epoch):
            ix = perm[b * cfg.batch : (b + 1) * cfg.batch]
            loss, ok = step(ix)
            tot += loss * len(ix)
            correct += ok
            seen += len(ix)
        logits = predict(model, x_te)
        m = metrics(logits, te.y)
        history.append({"epoch": ep, "loss": round(tot / seen, 5), "train_acc_aug": round(correct / seen, 5), "heldout_acc": m["accuracy"],
                        "heldout_f1_fake": m["f1"], "lr": round(sched.get_last_lr()[0], 7), "seconds": round(time.time() - t1, 1)})
        log(f"epoch {ep}/{cfg.epochs} loss {tot / seen:.4f} train acc (aug) {correct / seen:.3f} held-out acc {m['accuracy']:.4f} F1(fake) {m['f1']:.4f} {time.time() - t1:.0f}s")
    t_train = time.time() - t1

    t2 = time.time()
    logits = predict(model, x_te)
    held = metrics(logits, te.y, te.source)
    jq = 75
    held_jpeg = metrics(predict(model, np.stack([jpeg(np.ascontiguousarray(im), jq) for im in x_te])), te.y, te.source)
    t_eval = time.time() - t2
    log("held-out (FAKE = positive): " + json.dumps({k: held[k] for k in ("accuracy", "precision", "recall", "f1", "auc")}))
    log(f"held-out after JPEG q{jq}: " + json.dumps({k: held_jpeg[k] for k in ("accuracy", "precision", "recall", "f1", "auc")}))

    meta = {
        "model": model.config.to_dict(),
        "architecture": f"ResNet-18 layout (BasicBlock [2, 2, 2, 2], stride-2 7x7 stem + max pool), width {cfg.width}, BatchNorm, global average pool, linear -> 1",
        "input": f"(B, 3, {cfg.size}, {cfg.size}) RGB in [0, 1] (normalised inside with mean = std = 0.5): {record['crop']}",
        "output": "(B,) logit of REAL (sigmoid = P(real))",
        "train": asdict(cfg),
        "data": {
            "videos": list(record["videos"].values()),
            "sources": record["sources"],
            "crop": record["crop"],
            "fake": f"faceshield.deepfake.FaceSwapper (swap model {cfg.swap_model or 'package data swap128.pt'}, aligner {cfg.swap_extractor}, swap_video with Kalman smoothing); frames the tool dropped or did not find are left out",
            "split": {
                "holdout": f"the last {cfg.holdout} frames of every video are the test set (time-disjoint from training)",
                "identities_shared": True,
                "why": "the swap model exists for these two people (menendez, markey) only, so no unseen identity can be faked; the two radio videos add real identities to both splits",
                "note": "the shipped swap model itself was trained on all but the last 20 frames of the two WDA videos",
            },
            "counts": counts,
            "class_weights": {"REAL": round(w_class[REAL], 5), "FAKE": round(w_class[FAKE], 5)},
            "never_seen": "StarGAN / GANimation edits (no manipulator outputs in training)",
        },
        "heldout": held,
        "heldout_jpeg75": held_jpeg,
        "history": history,
        "seconds": {"data": round(t_data, 1), "train": round(t_train, 1), "eval": round(t_eval, 1), "total": round(time.time() - t0, 1)},
        "machine": _machine(),
        "threads": cfg.threads,
        "dtype": "float16",
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        tmp = out.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, out)
        side = out.with_suffix(".json")
        tmp = side.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, side)
        log(f"wrote {out} and {side}")
    return meta


def main(argv: list[str] | None = None) -> None:
    d = DetectorTrainConfig()
    ap = argparse.ArgumentParser(description="Train the ResNet-18-class DeepFake detector on real frames and our face swaps.")
    ap.add_argument("--videos", nargs="+", default=d.real, help="REAL videos (every frame)")
    ap.add_argument("--swap", nargs=2, action="append", metavar=("VIDEO", "IDENTITY"), help="a FAKE source: swap VIDEO's faces into IDENTITY (repeatable; default Menendez->markey, Markey->menendez)")
    ap.add_argument("--swap-model", default=None)
    ap.add_argument("--swap-extractor", default=d.swap_extractor)
    ap.add_argument("--holdout", type=int, default=d.holdout)
    ap.add_argument("--max-frames", type=int, default=None, help="read only this many frames per video (smoke tests)")
    ap.add_argument("--width", type=int, default=d.width)
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--measure", type=int, default=0, help="time this many training batches and exit (nothing written)")
    ap.add_argument("--out", default="out/train/resnet_swap_detector.pt")
    a = ap.parse_args(argv)
    cfg = DetectorTrainConfig(real=list(a.videos), swaps=[list(s) for s in a.swap] if a.swap else d.swaps, swap_model=a.swap_model, swap_extractor=a.swap_extractor,
                              holdout=a.holdout, max_frames=a.max_frames, width=a.width, epochs=a.epochs, batch=a.batch, lr=a.lr, seed=a.seed, threads=a.threads)
    meta = train(cfg, None if a.measure else Path(a.out), measure=a.measure, log=lambda s: print(s, flush=True))
    if not a.measure:
        print(json.dumps(meta["seconds"]), flush=True)


if __name__ == "__main__":
    main()
