"""Before / after face crops at 100 % and 200 % for each preset, so a reader sees what the numbers mean.

Protects one photo (default: the built-in sample) with every preset and the perceptual variants,
and writes ``crops_<name>.png`` (:func:`faceshield.pipeline.swap.face_crops_sheet`: the face at
100 %, the difference x8, the centre at 200 %) and ``crops.md`` (MTCNN's NME through its full
pipeline and the visibility measures of each)::

    python benchmarks/crops.py --out docs/visibility
"""
from __future__ import annotations

import argparse
from pathlib import Path

VARIANTS = {
    "subtle": ("subtle", {}),
    "paper": ("paper", {}),
    "strong": ("strong", {}),
    "smooth": ("smooth", {}),
    "quality": ("quality", {}),
    "robust": ("robust", {}),
    "paper + jnd + chroma 0.2": ("paper", {"jnd": True, "chroma": 0.2}),
    "quality + jnd + chroma 0.2": ("quality", {"jnd": True, "chroma": 0.2}),
}


def main() -> None:
    from faceshield.io import read_image, write_image_atomic
    from faceshield.models import create_extractor
    from faceshield.models.weights import package_data
    from faceshield.pipeline import ProtectConfig, protect_array
    from faceshield.pipeline.evaluate import evaluate_extractor
    from faceshield.metrics.perceptual import visibility
    from faceshield.pipeline.swap import face_crops_sheet

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=None, help="photo to protect (default: the built-in sample)")
    ap.add_argument("--out", type=Path, default=Path("out/crops"))
    ap.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    args = ap.parse_args()
    rgb = read_image(args.image or package_data("astronaut.png")).rgb
    mtcnn = create_extractor("mtcnn")
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["| settings | MTCNN NME (lost) | SSIMULACRA2 face | FLIP face | Butteraugli face | picture |", "|---|---|---|---|---|---|"]
    names = VARIANTS if args.only is None else [n.strip() for n in args.only.split(",")]
    for name in names:
        preset, extra = VARIANTS[name]
        p = protect_array(rgb, ProtectConfig.preset(preset, **extra))
        v = visibility(rgb, p.rgb, p.face_boxes)
        r = evaluate_extractor(mtcnn, rgb, p.rgb)
        file = f"crops_{name.replace(' + ', '_').replace(' ', '')}.png"
        write_image_atomic(args.out / file, face_crops_sheet(rgb, p.rgb, p.face_boxes[0], v), overwrite=True)
        nme = "lost" if r.faces_lost else f"{r.nme:.3f}"
        ba = "-" if v["butteraugli_face"] is None else f"{v['butteraugli_face']:.2f}"
        lines.append(f"| {name} | {nme} | {v['ssimulacra2_face']:.1f} | {v['flip_face']:.3f} | {ba} | [{file}]({file}) |")
        print(lines[-1], flush=True)
    (args.out / "crops.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
