"""MagDR's adaptive attacker (seed 004 Eq. 3, Sec. 4.3.2, Fig. 3) against its consistency detector.

The attack is Ruiz et al.'s PGD disruption of StarGAN as in benchmarks/magdr_detection.py (eps 6.4
levels, step 2.55, all five domains), run for T iterations, in two versions:

* oblivious: the plain PGD (it does not know the detector), the reference line;
* adaptive (Eq. 3): the same PGD with its loss averaged (EOT) over the photo itself and the
  detector's K = 7 pre-processings f_k (:data:`faceshield.defenses.magdr.PREPROCESS`): the
  differentiable ones as they are (blur, resize), JPEG 75 through its differentiable twin
  (``diffjpeg:q=75``), the rest through BPDA (``bpda:median:3``, ``bpda:bits:5``,
  ``bpda:nlmeans:5``, ``bpda:wavelet:0.04``: the real restoration forward, identity backward),
  ``eot_samples`` draws per iteration. Only ProtectConfig settings (``eot``, ``eot_samples``).

At each T: the consistency detector's precision / recall / F1 (threshold fitted on the first 20
clean held-out CelebA photos that MTCNN finds, 5 % of them flagged, as magdr_detection.py does;
evaluated on the next N photos, clean = negatives, attacked = positives), the mean d^k per
pre-processing, the share of StarGAN edits still disrupted (L2 >= 0.05 against the clean photo's
edits) on the attacked photo, and after :class:`faceshield.defenses.magdr.Reconstructor` for the
adaptive attack on the first ``--rec`` photos (a reconstruction costs about a minute).

Speed: the attacks run with oneDNN on (``batch_invariant=False``, 3.3x faster here); their results
differ from the bitwise batch-invariant default only by float rounding (on one photo, 2 % of the
pixels, by at most a few levels).

    OMP_NUM_THREADS=1 python benchmarks/magdr_adaptive.py [--n 8] [--iters 10,20,40,80] [--samples 2] [--rec 2]
"""
from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import faceshield.pipeline.image as _image
from _common import ROOT, environment, write
from faceshield.core.errors import NoFaceError
from faceshield.deepfake.edit import DISRUPTED_L2, find_faces, measure_disruption
from faceshield.defenses.magdr import PREPROCESS, ConsistencyDetector, Reconstructor
from faceshield.pipeline import ProtectConfig, protect_array
from faceshield.transforms import create_transform
from magdr_detection import ATTACKS, load_photos

PGD = ATTACKS["PGD (Ruiz, eps 6.4)"]
#: the attack-side twin of a pre-processing that has one (the others go through BPDA)
TWINS = {"jpeg:q=75": "diffjpeg:q=75"}
PLOT = ROOT.parent / "docs" / "magdr" / "adaptive_f1.png"


def adaptive_pool(preprocess=PREPROCESS) -> tuple[str, ...]:
    """The EOT pool of Eq. 3: the photo itself and each ``f_k`` (differentiable as is, its twin, or BPDA)."""
    out = ["identity"]
    for s in preprocess:
        t = create_transform(s)
        out.append(s if t.differentiable else TWINS.get(t.spec, f"bpda:{t.spec}"))
    return tuple(out)


def configs(steps: int, samples: int) -> dict[str, ProtectConfig]:
    """The oblivious and the adaptive PGD at ``steps`` iterations (magdr_detection.py's PGD otherwise)."""
    return {"oblivious": replace(PGD, steps=steps), "adaptive": replace(PGD, steps=steps, eot=adaptive_pool(), eot_samples=samples)}


@contextlib.contextmanager
def fast_attacks():
    """Attacks built by :func:`protect_array` run with oneDNN (``batch_invariant=False``) inside the block."""
    orig = _image.create_attack
    _image.create_attack = lambda method, loss, **kw: orig(method, loss, batch_invariant=False, **kw)
    try:
        yield
    finally:
        _image.create_attack = orig


def prf(flag_attacked: list[bool], flag_clean: list[bool]) -> dict:
    tp, fp = sum(flag_attacked), sum(flag_clean)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / len(flag_attacked)
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0, "clean_flagged": fp / len(flag_clean)}


def plot(rows: list[dict], n: int, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, style, colour in (("adaptive", "o-", "C0"), ("oblivious", "s--", "C1")):
        rs = [r for r in rows if r["attack"] == name]
        ts = [r["iterations"] for r in rs]
        a.plot(ts, [r["f1"] for r in rs], style, color=colour, label=f"{name} PGD")
        b.plot(ts, [r["disrupted"] for r in rs], style, color=colour, label=f"{name}: attacked photo")
        if name == "adaptive" and any(r.get("disrupted_after") is not None for r in rs):
            b.plot(ts, [r["disrupted_after"] for r in rs], "o:", color="C2", label="adaptive: after Reconstructor")
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["iterations"] for r in rows}), [str(t) for t in sorted({r["iterations"] for r in rows})])
        ax.set_xlabel("attack iterations T")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    a.set_ylabel(f"consistency detector F1 ({n} + {n} photos)")
    b.set_ylabel(f"StarGAN edits disrupted (L2 >= {DISRUPTED_L2})")
    a.set_title("Detection (Eq. 7) vs iterations", fontsize=10)
    b.set_title("Disruption", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="test photos (clean + attacked)")
    ap.add_argument("--fit", type=int, default=20, help="clean photos the threshold is fitted on")
    ap.add_argument("--iters", default="10,20,40,80", help="attack iterations T, comma-separated")
    ap.add_argument("--samples", type=int, default=2, help="EOT draws per iteration of the adaptive attack")
    ap.add_argument("--rec", type=int, default=2, help="adaptive photos reconstructed at each T (0: none)")
    args = ap.parse_args()
    iters = [int(t) for t in args.iters.split(",")]
    t_start = time.perf_counter()
    det = ConsistencyDetector()
    need = args.fit + args.n
    photos = [p for _, p in load_photos({"celeba_test": max(3 * args.fit, -(-3 * need // 2))}) if find_faces(p, det.g)][:need]
    fit, test = photos[: args.fit], photos[args.fit :]
    thr = det.fit(fit, flag_rate=0.05)
    clean_dk = [det.distances_per_preprocess(p) for p in test]
    clean = [float(np.std(dk)) for dk in clean_dk]
    print(f"threshold {thr:.6f}; clean test S_cons {np.round(clean, 5)}", flush=True)
    rec = Reconstructor() if args.rec else None
    acc: dict[tuple[int, str], dict] = {}
    with fast_attacks():
        for i, p in enumerate(test):
            for steps in iters:
                for name, cfg in configs(steps, args.samples).items():
                    a = acc.setdefault((steps, name), {"s": [], "dk": [], "l2": [], "l2_after": [], "secs": [], "rec": []})
                    t0 = time.perf_counter()
                    x = protect_array(p, cfg).rgb
                    a["secs"].append(time.perf_counter() - t0)
                    try:
                        dk = det.distances_per_preprocess(x)
                        a["dk"].append(dk.tolist())
                        a["s"].append(float(np.std(dk)))
                    except NoFaceError:  # the forger's detector loses the face: nothing to edit, not flagged
                        a["s"].append(None)
                    a["l2"] += measure_disruption(p, x, det.g).l2_each
                    if rec is not None and name == "adaptive" and i < args.rec:
                        out, r = rec(x)
                        a["l2_after"] += measure_disruption(p, out, det.g).l2_each
                        a["rec"].append({k: r.get(k) for k in ("detected", "no_face", "restorations")})
                    print(f"photo {i} T={steps} {name}: S_cons {a['s'][-1]}, {a['secs'][-1]:.1f} s", flush=True)
    flag_clean = [s > thr for s in clean]
    rows = []
    for (steps, name), a in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        flags = [s is not None and s > thr for s in a["s"]]
        found = [s for s in a["s"] if s is not None]
        rows.append({"attack": name, "iterations": steps, **prf(flags, flag_clean), "photos": len(a["s"]), "no_face": len(a["s"]) - len(found),
                     "median_s_cons": float(np.median(found)) if found else None, "mean_dk": dict(zip(PREPROCESS, np.mean(a["dk"], 0).tolist())) if a["dk"] else None,
                     "disrupted": float(np.mean([v >= DISRUPTED_L2 for v in a["l2"]])), "edits": len(a["l2"]),
                     "disrupted_after": float(np.mean([v >= DISRUPTED_L2 for v in a["l2_after"]])) if a["l2_after"] else None, "edits_after": len(a["l2_after"]),
                     "reconstructions": a["rec"], "s_per_photo": float(np.mean(a["secs"])), "s_cons": a["s"],
                     "settings": configs(steps, args.samples)[name].to_dict()})
        print(rows[-1], flush=True)
    rows.sort(key=lambda r: (r["iterations"], r["attack"] != "adaptive"))
    total = time.perf_counter() - t_start
    drew = plot(rows, len(test), PLOT)
    cmd = f"OMP_NUM_THREADS=1 python benchmarks/magdr_adaptive.py --n {args.n} --iters {args.iters} --samples {args.samples} --rec {args.rec}"
    md = ["## MagDR's consistency detector against the adaptive attacker (Eq. 3, Fig. 3)", "",
          f"Threshold {thr:.5f} fitted on {len(fit)} clean held-out CelebA photos (5 % flagged); evaluated on the next {len(test)}, clean (negatives) and attacked (positives). "
          f"Oblivious: Ruiz et al.'s PGD on StarGAN (eps 6.4 levels, step 2.55, all domains) for T iterations. Adaptive (Eq. 3): the same, its loss averaged over {args.samples} draws per iteration from "
          f"{', '.join(adaptive_pool())} (the photo and the detector's {len(PREPROCESS)} pre-processings; BPDA: real restoration forward, identity backward). "
          f"Disrupted: StarGAN edits with L2 >= {DISRUPTED_L2} against the clean photo's; after the Reconstructor: adaptive attack, first {min(args.rec, len(test))} photos only. "
          f"Command: `{cmd}` ({total:.0f} s on a shared 2-core machine).", "",
          "| T | attack | precision | recall | F1 | clean flagged | median S_cons | StarGAN disrupted | after Reconstructor | s / photo |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        after = f"{r['disrupted_after']:.2f} ({r['edits_after']} edits)" if r["disrupted_after"] is not None else "-"
        md.append(f"| {r['iterations']} | {r['attack']} | {r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | {r['clean_flagged']:.2f} | "
                  f"{r['median_s_cons']:.4f} | {r['disrupted']:.2f} ({r['edits']} edits) | {after} | {r['s_per_photo']:.1f} |")
    md += ["", f"Mean d^k (L2 between the edits of the attacked photo and of f_k(photo)); clean test photos: "
           + ", ".join(f"{k} {v:.4f}" for k, v in zip(PREPROCESS, np.mean(clean_dk, 0))) + ".", "",
           "| T | attack | " + " | ".join(PREPROCESS) + " |", "|---|---|" + "---|" * len(PREPROCESS)]
    for r in rows:
        if r["mean_dk"]:
            md.append(f"| {r['iterations']} | {r['attack']} | " + " | ".join(f"{r['mean_dk'][k]:.4f}" for k in PREPROCESS) + " |")
    if drew:
        md += ["", f"Plot: `{PLOT.relative_to(ROOT.parent)}`."]
    write("magdr_adaptive", {"benchmark": "magdr_adaptive", "threshold": thr, "clean_s_cons": clean, "clean_mean_dk": dict(zip(PREPROCESS, np.mean(clean_dk, 0).tolist())), "rows": rows, "seconds": total, "env": environment()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
