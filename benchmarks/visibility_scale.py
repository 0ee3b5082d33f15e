"""The scale of the visibility measures: known changes on the built-in sample's face.

Uniform noise of +-2, 4, 8 and 15 levels and colour blotches (+-8 and +-15 levels in 6-px cells, as
an attack without a perceptual budget leaves them), each confined to the region around the face as
the attacks confine theirs (seeded numpy noise), measured by
:func:`faceshield.metrics.perceptual.visibility` on the face::

    python benchmarks/visibility_scale.py
"""
from __future__ import annotations

import cv2
import numpy as np

FACE = np.array([181.0, 62.0, 268.0, 172.0])  # the astronaut's face box (MTCNN's, rounded)


def main() -> None:
    from faceshield.io import read_image
    from faceshield.metrics.perceptual import visibility
    from faceshield.models.weights import package_data

    a = read_image(package_data("astronaut.png")).rgb
    rng = np.random.default_rng(0)
    region = np.zeros(a.shape[:2], bool)
    region[40:200, 150:300] = True

    def put(d):
        return np.clip(a.astype(int) + d * region[..., None], 0, 255).astype(np.uint8)

    def blotch(amp):
        cells = rng.choice([-1.0, 1.0], size=(a.shape[0] // 6 + 1, a.shape[1] // 6 + 1, 3)).astype(np.float32)
        f = cv2.resize(cells, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)[: a.shape[0], : a.shape[1]]
        return put(np.round(np.clip(f, -1, 1) * amp).astype(int))

    cases = {f"uniform noise +-{n} levels": put(rng.integers(-n, n + 1, a.shape)) for n in (2, 4, 8, 15)}
    cases |= {f"colour blotches +-{n} (6-px cells)": blotch(n) for n in (8, 15)}
    print("| change | SSIMULACRA 2 face | FLIP face | Butteraugli face |\n|---|---|---|---|")
    for name, b in cases.items():
        v = visibility(a, b, [FACE])
        ba = "-" if v["butteraugli_face"] is None else f"{v['butteraugli_face']:.2f}"
        print(f"| {name} | {v['ssimulacra2_face']:.1f} | {v['flip_face']:.3f} | {ba} |")


if __name__ == "__main__":
    main()
