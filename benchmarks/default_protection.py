"""Candidates for the default of `faceshield protect`: protection against every kind of target at
the visibility bound, and seconds per photo.

For each candidate (settings in 8-bit levels, as on the command line), on the 8 photos of the
visibility frontier (the built-in sample, the first 4 HELEN test photos, CelebA 009900-009902;
none trained anything here):

* landmark protection per extractor: faces lost by its own pipeline or misplaced by NME >= 0.4
  (white-box for the candidate's targets, black-box for the others);
* StarGAN: the share of (face, domain) edits disrupted (Ruiz et al.'s L2 >= 0.05 on the model's
  output crop in [-1, 1]), photos aligned at the clean detection;
* visibility: SSIMULACRA 2, Butteraugli and FLIP on the face (box x 1.2), and SSIM_I;
* seconds per photo (protection only) here, and on the sample scaled to 1024 x 1024 (1 megapixel).

    python benchmarks/default_protection.py [CANDIDATE ...]   # all when none is named
"""
from __future__ import annotations

import json
import sys
import time

import cv2
import numpy as np
from PIL import Image

from _common import DATA, RESULTS, astronaut, environment, write
from faceshield.benchmark.measure import PROTECTED_NME
from faceshield.deepfake.edit import measure_disruption
from faceshield.models import create_extractor, create_target
from faceshield.pipeline import ProtectConfig, evaluate_pair, protect_array

EVALUATORS = ["mtcnn", "fan", "facemesh", "dlib68"]
CANDIDATES: dict[str, dict] = {
    "paper": {"preset": "paper"},
    "mtcnn+stargan jnd chroma0.3": {"targets": "mtcnn,stargan", "jnd": True, "chroma": 0.3},
    "mtcnn+stargan jnd chroma0.3 T40 alpha2": {"targets": "mtcnn,stargan", "jnd": True, "chroma": 0.3, "steps": 40, "alpha": 2},
    "mtcnn+facemesh+stargan jnd chroma0.3 T40 alpha2": {"targets": "mtcnn,facemesh,stargan", "jnd": True, "chroma": 0.3, "steps": 40, "alpha": 2},
    "mtcnn+stargan quality jnd chroma0.2": {"preset": "quality", "targets": "mtcnn,stargan", "jnd": True, "chroma": 0.2},
    "generator combined jnd chroma0.3": {"method": "generator", "jnd": True, "chroma": 0.3},
    "mtcnn+stargan eps6 jnd chroma0.3": {"targets": "mtcnn,stargan", "eps": 6, "jnd": True, "chroma": 0.3},
    "mtcnn+stargan eps8 jnd chroma0.2": {"targets": "mtcnn,stargan", "eps": 8, "jnd": True, "chroma": 0.2},
    "mtcnn+stargan eps8 jnd chroma0.2 T40 alpha2 patience5": {"targets": "mtcnn,stargan", "eps": 8, "jnd": True, "chroma": 0.2, "steps": 40, "alpha": 2, "patience": 5},
    "mtcnn+stargan eps6 jnd chroma0.3 patience5": {"targets": "mtcnn,stargan", "eps": 6, "jnd": True, "chroma": 0.3, "patience": 5},
    "stargan eps6 jnd chroma0.3": {"targets": "stargan", "eps": 6, "jnd": True, "chroma": 0.3},
}


def config(spec: dict) -> ProtectConfig:
    given = {k: (tuple(v.split(",")) if k == "targets" else v) for k, v in spec.items() if k != "preset"}
    return ProtectConfig.from_user(given, preset=spec.get("preset"))


def photos() -> list[tuple[str, np.ndarray]]:
    out = [("sample", astronaut())]
    out += [(p.stem, np.array(Image.open(p).convert("RGB"))) for p in sorted((DATA / "landmarks68" / "test").glob("*.jpg"))[:4]]
    out += [(p.stem, np.array(Image.open(p).convert("RGB"))) for p in sorted((DATA / "celeba" / "img").glob("0099*.jpg"))[:3]]
    return out


def run(name: str, spec: dict, images, evaluators, detector) -> dict:
    cfg = config(spec)
    faces = dict.fromkeys(EVALUATORS, 0)
    protected = dict.fromkeys(EVALUATORS, 0)
    vis: dict[str, list[float]] = {k: [] for k in ("ssimulacra2_face", "butteraugli_face", "flip_face")}
    ssim, seconds, disrupted, edits = [], [], 0, 0
    for stem, rgb in images:
        t0 = time.perf_counter()
        res = protect_array(rgb, cfg)
        seconds.append(time.perf_counter() - t0)
        boxes = res.face_boxes or [f.box for f in detector.detect(rgb)]
        ev = evaluate_pair(rgb, res.rgb, evaluators, boxes)
        ssim.append(ev.ssim_i)
        for k in vis:
            if ev.visibility.get(k) is not None:
                vis[k].append(ev.visibility[k])
        for r in ev.extractors:
            faces[r.extractor] += r.faces_clean
            protected[r.extractor] += sum(v is None or v >= PROTECTED_NME for v in r.nme_per_face)
        try:
            d = measure_disruption(rgb, res.rgb, "stargan")
            disrupted += sum(v >= 0.05 for v in d.l2_each)
            edits += len(d.l2_each)
        except Exception as e:  # no face for the editor's detector
            print(f"  {stem}: stargan not measured ({e})", flush=True)
        print(f"  {name} {stem}: {seconds[-1]:.1f} s, SSIMULACRA2 face {ev.visibility.get('ssimulacra2_face')}", flush=True)
    big = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    t0 = time.perf_counter()
    protect_array(big, cfg)
    mp = time.perf_counter() - t0
    rec = {"candidate": name, "spec": spec, "settings": cfg.to_dict(), "faces": faces, "protected": protected,
           "stargan_disrupted": disrupted, "stargan_edits": edits, "ssim_i": float(np.mean(ssim)),
           **{k: (float(np.mean(v)) if v else None) for k, v in vis.items()},
           "seconds_per_photo": float(np.mean(seconds)), "seconds_1mp": mp}
    print(rec, flush=True)
    return rec


def main(names: list[str]) -> None:
    images = photos()
    evaluators = [create_extractor(n) for n in EVALUATORS]
    detector = create_extractor("mtcnn")
    create_target("stargan")
    out = RESULTS / "default_protection.json"
    done = {r["candidate"]: r for r in json.loads(out.read_text())["rows"]} if out.exists() else {}
    for n in names or list(CANDIDATES):
        done[n] = run(n, CANDIDATES[n], images, evaluators, detector)
        rows = [done[k] for k in CANDIDATES if k in done]
        md = ["## Candidates for the default: protection at the visibility bound", "",
              f"{len(images)} photos (the sample, HELEN test 1-4, CelebA 009900-009902). Protected = lost or NME >= {PROTECTED_NME} "
              "through the extractor's own pipeline (faces: its clean detections); StarGAN: share of (face, domain) edits with L2 >= 0.05 "
              "([-1, 1] output crop, clean alignment); visibility on the face (box x 1.2), mean over photos; seconds: protection only, "
              "2-core machine, this run. Command: `python benchmarks/default_protection.py`.", "",
              "| candidate | " + " | ".join(f"protected {e}" for e in EVALUATORS) + " | StarGAN disrupted | SSIMULACRA2 face | Butteraugli face | FLIP face | SSIM_I | s/photo | s at 1 MP |",
              "|---" * (len(EVALUATORS) + 8) + "|"]
        for r in rows:
            f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
            md.append(f"| {r['candidate']} | " + " | ".join(f"{r['protected'][e]}/{r['faces'][e]}" for e in EVALUATORS)
                      + f" | {r['stargan_disrupted']}/{r['stargan_edits']} | {f(r['ssimulacra2_face'])} | {f(r['butteraugli_face'], 2)} | {f(r['flip_face'], 3)}"
                      + f" | {r['ssim_i']:.3f} | {r['seconds_per_photo']:.1f} | {r['seconds_1mp']:.1f} |")
        write("default_protection", {"benchmark": "default_protection", "rows": rows, "env": environment()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
