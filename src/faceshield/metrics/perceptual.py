"""Visibility as people see it: full-reference measures of *perceived* difference.

SSIM is not a visibility measure (a perturbation can keep SSIM at 0.97 and still show blotchy colour
patterns at 100 % zoom). These are:

* :func:`ssimulacra2` - SSIMULACRA 2 (Cloudinary / libjxl), the ``ssimulacra2`` package (BSD-3): a
  multi-scale SSIM and edge-artefact score in the XYB colour space. 100 = identical; above 90
  visually lossless, 70-90 high quality, below 50 visibly degraded.
* :func:`flip` - NVIDIA FLIP (LDR), the ``flip-evaluator`` package (BSD-3): the mean of a per-pixel
  map of perceived difference when flipping between the two images at 67 pixels per degree (a
  desktop monitor at 0.7 m). 0 = identical, 1 = as different as black and white.
* :func:`butteraugli` - Google's Butteraugli distance through the ``butteraugli`` program (Debian's
  ``butteraugli`` package, the 2017 release); None when the program is not installed. Below 1 no
  visible difference, above 3 clearly visible.

All take ``(H, W, 3)`` uint8 RGB arrays, what is saved on disk. :func:`visibility` measures a
clean / protected pair on the whole image and on its face region (each face box enlarged by
:data:`FACE_SCALE`; with several faces, the worst face). SSIMULACRA 2 is a six-scale measure
whose weights assume all six scales exist (256 px a side and more; the reference implementation
sums the scales a smaller image has with the weights of the wrong ones, so +-2 levels of noise read
73 on a 100-px crop and 93 on 256 px): its face region is therefore grown around the face to at
least :data:`SSIMULACRA2_MIN_SIDE` px (within the image). FLIP (a mean of a per-pixel map) and
Butteraugli use the face box x 1.2 as it is.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: face-region enlargement of a detector's box for the visibility measures (the box x 1.2)
FACE_SCALE = 1.2
#: the side SSIMULACRA 2 needs for its six scales (8 px at the coarsest); smaller face regions are grown to it
SSIMULACRA2_MIN_SIDE = 256
#: how each measure says "better" (for tables and checks)
HIGHER_IS_BETTER = {"ssimulacra2": True, "flip": False, "butteraugli": False}


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"expected two (H, W, 3) uint8 images of the same shape, got {a.shape} {a.dtype} and {b.shape} {b.dtype}")
    if min(a.shape[:2]) < 8:
        raise ValueError(f"expected images of at least 8x8 pixels, got {a.shape[1]}x{a.shape[0]}")


def _png(x: np.ndarray) -> io.BytesIO:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG", compress_level=1)
    buf.seek(0)
    return buf


def ssimulacra2(a: np.ndarray, b: np.ndarray) -> float:
    """SSIMULACRA 2 score of ``b`` against the reference ``a`` (100 = identical; can go below 0)."""
    from ssimulacra2 import compute_ssimulacra2

    _check_pair(a, b)
    if np.array_equal(a, b):
        return 100.0
    return float(compute_ssimulacra2(_png(a), _png(b)))


def flip(a: np.ndarray, b: np.ndarray, ppd: float = 67.0) -> float:
    """Mean LDR-FLIP error of ``b`` against ``a`` in [0, 1] (0 = identical) at ``ppd`` pixels per degree."""
    import flip_evaluator

    _check_pair(a, b)
    if np.array_equal(a, b):
        return 0.0
    _, mean, _ = flip_evaluator.evaluate(a.astype(np.float32) / 255, b.astype(np.float32) / 255, "LDR", applyMagma=False,
                                         parameters={"ppd": float(ppd)})
    return float(mean)


def butteraugli_available() -> bool:
    """Whether the ``butteraugli`` program (Debian package ``butteraugli``) is on the PATH."""
    return shutil.which("butteraugli") is not None


def butteraugli(a: np.ndarray, b: np.ndarray) -> float | None:
    """Butteraugli distance of ``b`` against ``a`` (0 = identical), or None without the program.

    Raises:
        RuntimeError: the program failed or printed no number.
    """
    _check_pair(a, b)
    exe = shutil.which("butteraugli")
    if exe is None:
        return None
    if np.array_equal(a, b):
        return 0.0
    with tempfile.TemporaryDirectory(prefix="faceshield-ba-") as d:
        pa, pb = Path(d) / "a.png", Path(d) / "b.png"
        pa.write_bytes(_png(a).getvalue())
        pb.write_bytes(_png(b).getvalue())
        r = subprocess.run([exe, str(pa), str(pb)], capture_output=True, text=True, timeout=600)
    try:
        return float(r.stdout.split()[0])
    except (IndexError, ValueError):
        raise RuntimeError(f"butteraugli failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[:200]}") from None


MEASURES = {"ssimulacra2": ssimulacra2, "flip": flip, "butteraugli": butteraugli}


def face_crops(shape: tuple[int, int], boxes: Sequence[np.ndarray], scale: float = FACE_SCALE, min_side: int = 8) -> list[tuple[int, int, int, int]]:
    """Integer regions ``(x0, y0, x1, y1)`` of each face box enlarged by ``scale``, grown around its
    centre to at least ``min_side`` px a side where the image allows (shifted inside it), clipped to
    the image; regions under 8 px a side (the measures' minimum) are left out."""
    h, w = shape
    out = []
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        bw, bh = min(w, max((x1 - x0) * scale, min_side)), min(h, max((y1 - y0) * scale, min_side))
        c0 = int(np.clip(np.floor(cx - bw / 2), 0, max(0, w - np.ceil(bw))))
        r0 = int(np.clip(np.floor(cy - bh / 2), 0, max(0, h - np.ceil(bh))))
        c1, r1 = min(w, c0 + int(np.ceil(bw))), min(h, r0 + int(np.ceil(bh)))
        if c1 - c0 >= 8 and r1 - r0 >= 8:
            out.append((c0, r0, c1, r1))
    return out


def face_value(name: str, a: np.ndarray, b: np.ndarray, face_boxes: Sequence[np.ndarray]) -> float | None:
    """Measure ``name`` of :data:`MEASURES` on the worst face (box x :data:`FACE_SCALE`; for
    SSIMULACRA 2 grown to :data:`SSIMULACRA2_MIN_SIDE`); None without a face box of 8 px or more,
    or without the measure's program."""
    crops = face_crops(a.shape[:2], face_boxes, min_side=SSIMULACRA2_MIN_SIDE if name == "ssimulacra2" else 8)
    vals = [MEASURES[name](a[y0:y1, x0:x1], b[y0:y1, x0:x1]) for x0, y0, x1, y1 in crops]
    if not vals or None in vals:
        return None
    return min(vals) if HIGHER_IS_BETTER[name] else max(vals)


def visibility(a: np.ndarray, b: np.ndarray, face_boxes: Sequence[np.ndarray] = (), measures: Sequence[str] | None = None) -> dict[str, float | None]:
    """Every visibility measure on the whole image and on the face region.

    Args:
        a, b: clean and protected ``(H, W, 3)`` uint8 RGB.
        face_boxes: the protected faces' boxes ``(x0, y0, x1, y1)`` in pixels; each is enlarged by
            :data:`FACE_SCALE` (for SSIMULACRA 2 grown to :data:`SSIMULACRA2_MIN_SIDE`) and measured as
            a crop, and the worst face is reported.
        measures: names among :data:`MEASURES` (default: all; ``butteraugli`` gives None without its program).

    Returns:
        ``{"ssimulacra2": .., "ssimulacra2_face": .., "flip": .., "flip_face": .., "butteraugli": ..,
        "butteraugli_face": ..}`` (``*_face`` None without a face box).
    """
    _check_pair(a, b)
    names = list(MEASURES) if measures is None else list(measures)
    out: dict[str, float | None] = {}
    for n in names:
        out[n] = MEASURES[n](a, b)
        out[f"{n}_face"] = None if out[n] is None else face_value(n, a, b, face_boxes)
    return out
