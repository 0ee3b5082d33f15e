"""The DeepFake Disrupter's evaluations (seed 002 Tables 1-2, 4-9 shape) on held-out CelebA faces,
from one config (``benchmarks/configs/disrupter.yaml``).

The paper's protocol: the aligned face crops of held-out identities (64 px, the crop the editors
and generators work on; no identity here trained an editor, a generator or the classifier), every
protection rounded to 8 bits, every edit made towards every domain with conditions from the
face's own labels. Protections: none (clean), Ruiz et al.'s I-FGSM and PGD on the crop (the
distortion summed over every domain each step), each generator of the config (one forward pass).

* disruption (Tables 6 and 8): per protection x manipulator, Ruiz's L2 (MSE of the clean vs the
  protected edit on the output in [-1, 1]) and the share of edits with L2 >= 0.05; SSIM / PSNR of
  the protected crop; seconds per face (Table 9 at crop level; photos: ``bench_generator.py``);
* detection (Tables 1, 2, 5): per detector and protection, precision / recall / F1 with the *fakes
  as positives*: real crops (negatives) against the edits of the protected crops; "in loss" marks a
  detector a generator was trained with, the others are unseen (Table 5);
* protected inputs still judged real (Table 4), per detector and protection;
* unseen domains (Table 7): per generator and domain, L2 and share disrupted, with the domains it
  was trained on marked.

    python benchmarks/disrupter.py [--config benchmarks/configs/disrupter.yaml] [--out benchmarks/results/disrupter]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from _common import DATA, ROOT, environment, prf
from faceshield.attacks import create_attack
from faceshield.attacks.disruption import DisruptionLoss
from faceshield.deepfake.edit import DISRUPTED_L2
from faceshield.generators import create_generator
from faceshield.metrics.image import psnr, ssim
from faceshield.models import create_target
from faceshield.training.celeba import load_celeba
from faceshield.training.disrupter import conditions


def ruiz(method: str, g, x: torch.Tensor, labels: np.ndarray, eps: float, alpha: float, steps: int, seed: int) -> torch.Tensor:
    """Ruiz et al.'s attack on each crop of ``x`` ``(N, 3, S, S)``: the distortion of ``g``'s edits
    towards every domain, summed each step, through the identity crop."""
    n, s = x.shape[0], x.shape[-1]
    eye = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], np.float32)
    conds = [torch.stack([conditions(g, labels[i:i + 1], [d])[0] for d in g.domains])[None] for i in range(n)]
    loss = DisruptionLoss(g, [eye] * n, conds, seed=seed)
    kw = {"eps": eps, "alpha": alpha, "steps": steps}
    return create_attack(method, loss, **kw)(x, None, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "disrupter.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "disrupter")
    args = ap.parse_args()
    cfg = yaml.safe_load(args.config.read_text())
    os.environ.setdefault("FACESHIELD_MESONET_DIR", str(DATA / "weights" / "mesonet"))  # the authors' files, never shipped
    torch.manual_seed(cfg.get("seed", 0))
    ds = load_celeba("test", size=64, root=DATA / "celeba", limit=cfg["faces"])
    x = torch.from_numpy(ds.images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    manips = {}
    for m in cfg["manipulators"]:  # a name, or {name, weights (relative to the repository), label}
        spec = {"name": m} if isinstance(m, str) else m
        w = spec.get("weights")
        g = create_target(spec["name"], weights=str(ROOT.parent / w) if w and not Path(w).is_absolute() else w, cached=False)
        manips[spec.get("label", spec["name"])] = g
    labels = {n: ds.labels(g.domains) for n, g in manips.items()}
    judges = {n: create_target(n) for n in cfg["judges"]}
    ref_name, ref = next(iter(manips.items()))  # Ruiz et al.'s attacks are made on the first
    protections: dict[str, dict] = {"clean (no protection)": {"x": x, "seconds": 0.0, "in_loss": [], "domains": None}}
    for a in cfg.get("attacks", []):
        t0 = time.perf_counter()
        xa = ruiz(a["method"], ref, x, labels[ref_name], a["eps"] / 255, a["alpha"] / 255, a["steps"], cfg.get("seed", 0))
        protections[a["name"]] = {"x": xa, "seconds": (time.perf_counter() - t0) / len(x), "in_loss": [ref_name], "domains": None, "settings": a}
        print(a["name"], f"{protections[a['name']]['seconds']:.3f} s/face", flush=True)
    for spec in cfg.get("generators", []):
        w = spec.get("weights")
        g = create_generator(spec["name"], weights=str(ROOT.parent / w) if w and not Path(w).is_absolute() else w, cached=False)  # relative to the repository
        t0 = time.perf_counter()
        with torch.no_grad():
            xg = (x + g(x)).clamp(0, 1)
        secs = (time.perf_counter() - t0) / len(x)
        trained = g.record.get("train", {}).get("domains") or list(ref.domains)
        protections[spec.get("label", spec["name"])] = {"x": xg, "seconds": secs, "in_loss": list(g.record.get("trained_against", g.info.trained_against)),
                                                       "domains": trained, "settings": {"generator": spec["name"], "weights": spec.get("weights") or "registry", "eps_levels": g.eps * 255}}
    rows, det_rows, dom_rows = [], [], []
    real = {j: [] for j in judges}
    with torch.no_grad():
        for j, d in judges.items():
            real[j] = d.prob_real(x).tolist()
        for pname, p in protections.items():
            xp = ((p["x"] * 255).round().clamp(0, 255) / 255)  # 8-bit, as published
            q = {"ssim": float(np.mean([ssim(a, b) for a, b in zip(_u8(x), _u8(xp))])), "psnr": float(np.mean([psnr(a, b) for a, b in zip(_u8(x), _u8(xp))]))}
            for mname, g in manips.items():
                each, fakes, per_dom = [], {j: [] for j in judges}, {}
                for dom in g.domains:
                    c = conditions(g, labels[mname], [dom] * len(x))
                    y0, yp = g(x * 2 - 1, c), g(xp * 2 - 1, c)
                    l2 = (yp - y0).pow(2).flatten(1).mean(1)
                    each += l2.tolist()
                    per_dom[dom] = l2
                    for j, d in judges.items():
                        fakes[j] += d.prob_real((yp + 1) / 2).tolist()
                rows.append({"protection": pname, "manipulator": mname, "white_box": mname in p["in_loss"], "l2": round(float(np.mean(each)), 4),
                             "disrupted": round(float(np.mean([v >= DISRUPTED_L2 for v in each])), 3), "edits": len(each), "ssim": round(q["ssim"], 4),
                             "psnr": round(q["psnr"], 2), "s_per_face": round(p["seconds"], 4)})
                print(rows[-1], flush=True)
                for j in judges:
                    det_rows.append({"protection": pname, "manipulator": mname, "judge": j, "judge_in_loss": j in p["in_loss"], **prf(real[j], fakes[j]),
                                     "protected_inputs_judged_real": round(float(np.mean([v >= 0.5 for v in judges[j].prob_real(xp).tolist()])), 3)})
                if p["domains"] is not None and mname == ref_name:
                    for dom, l2 in per_dom.items():
                        dom_rows.append({"generator": pname, "domain": dom, "trained_on": dom in p["domains"], "l2": round(float(l2.mean()), 4),
                                         "disrupted": round(float((l2 >= DISRUPTED_L2).float().mean()), 3)})
    args.out.mkdir(parents=True, exist_ok=True)
    notes = (f"{len(x)} held-out CelebA faces (identity-disjoint split, seed 0), 64-px aligned crops, every protection rounded to 8 bits; "
             f"L2 = MSE of clean vs protected edit on the output in [-1, 1] (Ruiz et al.), disrupted = L2 >= {DISRUPTED_L2} per (face, domain); "
             "detector P/R/F1: positives = the edits of the protected crops, negatives = the clean real crops, fake when P(real) < 0.5")
    record = {"config": cfg, "faces": len(x), "rows": rows, "detectors": det_rows, "domains": dom_rows, "notes": notes,
              "settings": {k: v.get("settings") for k, v in protections.items()}, "env": environment()}
    (args.out / "disrupter.json").write_text(json.dumps(record, indent=1) + "\n")
    md = [notes + ".", "", "## Disruption (seed 002 Tables 6, 8; s / face: Table 9 at crop level)", "",
          "| protection | manipulator | L2 | share disrupted | edits | SSIM | PSNR (dB) | s / face |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['protection']} | {r['manipulator']}{'' if r['white_box'] or r['protection'].startswith('clean') else ' (unseen)'} | {r['l2']:.4f} | {r['disrupted']:.3f} | {r['edits']} | {r['ssim']:.4f} | {r['psnr']:.2f} | {r['s_per_face']:.4f} |")
    md += ["", "## Detectors on the fakes (Tables 1, 2, 5) and protected inputs judged real (Table 4)", "",
           "P / R / F1 with the edits of protected crops as positives; 'in loss' = the detector was in that protection's training loss.", "",
           "| protection | manipulator | detector | P / R / F1 | protected inputs judged real |", "|---|---|---|---|---|"]
    for r in det_rows:
        md.append(f"| {r['protection']} | {r['manipulator']} | {r['judge']}{' (in loss)' if r['judge_in_loss'] else ''} | {r['precision']:.2f} / {r['recall']:.2f} / {r['f1']:.2f} | {r['protected_inputs_judged_real']:.2f} |")
    if dom_rows:
        md += ["", "## Per domain (Table 7: domains a generator was not trained on)", "", "| generator | domain | trained on it | L2 | share disrupted |", "|---|---|---|---|---|"]
        for r in dom_rows:
            md.append(f"| {r['generator']} | {r['domain']} | {'yes' if r['trained_on'] else '**no**'} | {r['l2']:.4f} | {r['disrupted']:.3f} |")
    (args.out / "disrupter.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def _u8(x: torch.Tensor) -> list[np.ndarray]:
    return [(t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for t in x]


if __name__ == "__main__":
    main()
