"""(a) Engine overhead: time of a T-step MI-FGSM divided by T x (forward + backward) of the same
loss (model) and batch, measured in the same run. Target <= 1.10.

Two models: what `faceshield protect` attacks by default (the MTCNN RNet -> ONet chain on
differentiable crops, 9 box-jitter copies per face, on the work region around the sample's face),
and a manipulator (our StarGAN through the differentiable aligned crop, Ruiz et al.'s distortion
summed over its 5 domains, on the same work region).
Two denominators: fwd+bwd with the engine's own backend setting (oneDNN off, for bitwise batch
invariance) -> the engine's overhead; and with PyTorch's default backend -> what batch invariance
costs on top.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from _common import astronaut, environment, write
from faceshield.attacks import MIFGSM, LandmarkDisplacementLoss
from faceshield.deepfake.edit import find_faces
from faceshield.models import create_extractor, create_target
from faceshield.pipeline import ProtectConfig
from faceshield.pipeline.image import _work_region, crop_extent, disruption_loss

T = 20
REPEATS = 7


def median_time(fn, repeats=REPEATS):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> dict:
    torch.manual_seed(0)
    img = astronaut()
    m = create_extractor("mtcnn")
    faces = m.detect(img)
    g = create_target("stargan")
    edit = find_faces(img, g)
    x0, y0, x1, y1 = _work_region(img.shape[:2], [f.roi for f in faces] + [f.box for f in faces] + [crop_extent(f.matrix, g.size) for f in edit])
    off = np.array([x0, y0, x0, y0])
    sub = torch.from_numpy(np.ascontiguousarray(img[y0:y1, x0:x1])).permute(2, 0, 1)[None].float() / 255
    rows = []
    for model, batch in (("mtcnn", 1), ("mtcnn", 4), ("stargan", 1)):
        x = sub.repeat(batch, 1, 1, 1)
        if model == "mtcnn":
            loss = LandmarkDisplacementLoss(m, [[f.roi - off for f in faces]] * batch, jitter=9)
        else:
            loss = disruption_loss(g, edit, (x0, y0), ProtectConfig(targets=("stargan",)))
        x_adv = (x + 1 / 255).clamp(0, 1)

        def fwd_bwd():
            xa = x_adv.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(loss(xa, x).sum(), xa)
            return g

        def fwd_bwd_T():
            for _ in range(T):
                fwd_bwd()

        attack = MIFGSM(loss, steps=T)
        fwd_bwd_T()  # warm-up
        attack(x)
        t_a, t_s, t_d = [], [], []
        for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all three alike
            t_a.append(median_time(lambda: attack(x), 1))
            with torch.backends.mkldnn.flags(enabled=False):
                t_s.append(median_time(fwd_bwd_T, 1))
            t_d.append(median_time(fwd_bwd_T, 1))
        t_attack, t_model_same, t_model_default = (float(np.median(v)) for v in (t_a, t_s, t_d))
        rows.append({
            "model": model,
            "batch": batch,
            "image": list(x.shape),
            "t_attack_s": t_attack,
            "t_T_fwd_bwd_same_backend_s": t_model_same,
            "t_T_fwd_bwd_default_backend_s": t_model_default,
            "ratio_same_backend": t_attack / t_model_same,
            "ratio_default_backend": t_attack / t_model_default,
        })
    record = {"benchmark": "engine_overhead", "T": T, "repeats": REPEATS, "models": {"mtcnn": "RNet->ONet, jitter 9", "stargan": "Ruiz distortion over 5 domains, aligned 64-px crop"},
              "rows": rows, "env": environment()}
    md = ["## (a) MI-FGSM time / (T x fwd+bwd), same run", "", f"T={T}, median of {REPEATS}; mtcnn: MTCNN RNet->ONet chain, 9 jittered boxes; stargan: our StarGAN, Ruiz et al.'s distortion over its 5 domains through the aligned crop; work region of the sample; target <= 1.10", "",
          "| model | batch | input | MI-FGSM (s) | T x fwd+bwd, engine backend (s) | ratio | T x fwd+bwd, default backend (s) | ratio vs default |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['batch']} | {'x'.join(map(str, r['image']))} | {r['t_attack_s']:.3f} | {r['t_T_fwd_bwd_same_backend_s']:.3f} | **{r['ratio_same_backend']:.3f}** | {r['t_T_fwd_bwd_default_backend_s']:.3f} | {r['ratio_default_backend']:.3f} |")
    md.append("")
    write("engine_overhead", record, "\n".join(md) + "\n")
    return record


if __name__ == "__main__":
    main()
