"""What a protection does to a real DeepFake: swap the clean image and its protected copy with the
same face-swap pipeline and compare the two results (SSIM_W, Landmark Breaker Fig. 2), and record
whether the DeepFake tool's plausibility filter drops the protected face."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from faceshield.deepfake import FaceSwapper, SwapResult
from faceshield.metrics import box_mask, mask_ssim, nme, ssim
from faceshield.pipeline.evaluate import match_face


@dataclass
class SwapEvaluation:
    """Metrics of one clean / protected pair through a face swap.

    Attributes:
        aligner: the extractor whose landmarks aligned the swap.
        ssim_i: SSIM between clean and protected input, whole image.
        ssim_w: mask-SSIM between the swap of the protected input and the swap of the clean input,
            over the bounding box of both swaps' blend masks (the synthesised region). None if
            neither input produced a swap.
        nme: the aligner's NME between its landmarks on the two inputs (normalised by ``normaliser``),
            None if the face was lost on the protected input.
        lost: the aligner found no face on the protected input where it found one on the clean one.
        dropped_clean, dropped_protected: the plausibility filter rejected the face.
        reasons: the filter's reasons for the protected face.
        region: ``x0, y0, x1, y1`` of the SSIM_W region.
    """

    aligner: str
    normaliser: str
    ssim_i: float
    ssim_w: float | None
    nme: float | None
    lost: bool
    dropped_clean: bool
    dropped_protected: bool
    reasons: list[str]
    region: list[int] | None

    @property
    def failed(self) -> bool:
        """The DeepFake tool produced no face from the protected input (lost or dropped)."""
        return self.lost or self.dropped_protected

    def to_dict(self) -> dict:
        return asdict(self) | {"failed": self.failed}


def _main_face(res: SwapResult):
    return max(res.faces, key=lambda f: f.face.area) if res.faces else None


def _region(*masks: np.ndarray, threshold: float = 0.01) -> tuple[int, int, int, int] | None:
    m = np.zeros_like(masks[0], dtype=bool)
    for k in masks:
        m |= k > threshold
    if not m.any():
        return None
    ys, xs = np.nonzero(m)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def evaluate_swap(clean: np.ndarray, protected: np.ndarray, swapper: FaceSwapper) -> tuple[SwapEvaluation, SwapResult, SwapResult]:
    """Swap both images with ``swapper`` and compare (the largest clean face counts).

    Args:
        clean, protected: ``(H, W, 3)`` uint8 RGB of the same size.

    Returns:
        The evaluation and the two swaps (clean, protected).
    """
    if clean.shape != protected.shape:
        raise ValueError(f"expected clean and protected images of the same size, got {clean.shape[1]}x{clean.shape[0]} and {protected.shape[1]}x{protected.shape[0]}")
    sc, sp = swapper.swap(clean), swapper.swap(protected)
    fc = _main_face(sc)
    fp = None
    if fc is not None:
        m = match_face(fc.face, [f.face for f in sp.faces])
        fp = next((f for f in sp.faces if f.face is m), None)
    region = _region(sc.mask, sp.mask)
    ssim_w = None if region is None else mask_ssim(sc.image, sp.image, box_mask(clean.shape[:2], [region]))
    ext = swapper.extractor
    return (
        SwapEvaluation(
            aligner=ext.name,
            normaliser=ext.scheme.normaliser_name,
            ssim_i=ssim(clean, protected),
            ssim_w=ssim_w,
            nme=None if fc is None or fp is None else float(nme(fp.face.points, fc.face.points, ext.scheme)),
            lost=fc is not None and fp is None,
            dropped_clean=fc is not None and not fc.swapped,
            dropped_protected=fp is not None and not fp.swapped,
            reasons=[] if fp is None else list(fp.plausibility.reasons),
            region=None if region is None else list(region),
        ),
        sc,
        sp,
    )


def _draw_points(img: np.ndarray, res: SwapResult, colour=(0, 255, 0)) -> np.ndarray:
    out = img.copy()
    r = max(1, round(min(img.shape[:2]) / 200))
    for f in res.faces:
        c = colour if f.swapped else (255, 0, 0)
        for x, y in f.face.points:
            cv2.circle(out, (int(round(x - 0.5)), int(round(y - 0.5))), r, c, -1, cv2.LINE_AA)
    return out


def _caption(img: np.ndarray, text: str, scale: float = 0.5) -> np.ndarray:
    bar = np.full((round(56 * scale), img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, round(40 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], 0)


def before_after_sheet(clean: np.ndarray, protected: np.ndarray, sc: SwapResult, sp: SwapResult, ev: SwapEvaluation, width: int = 320) -> np.ndarray:
    """A 2x2 sheet: clean input and protected input with the aligner's landmarks drawn (red = the
    filter dropped the face), swap from clean and swap from protected. ``(H', W', 3)`` uint8 RGB."""
    def fit(a):
        s = width / a.shape[1]
        return cv2.resize(a, (width, max(1, round(a.shape[0] * s))), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)

    nme_txt = "face lost" if ev.lost else ("-" if ev.nme is None else f"NME {ev.nme:.3f}")
    drop = " DROPPED" if ev.dropped_protected else ""
    cells = [
        _caption(fit(_draw_points(clean, sc)), f"clean input ({ev.aligner})"),
        _caption(fit(_draw_points(protected, sp)), f"protected: {nme_txt}, SSIM_I {ev.ssim_i:.3f}{drop}"),
        _caption(fit(sc.image), "swap from clean"),
        _caption(fit(sp.image), "swap from protected" + ("" if ev.ssim_w is None else f": SSIM_W {ev.ssim_w:.3f}")),
    ]
    top = np.concatenate(cells[:2], 1)
    bottom = np.concatenate(cells[2:], 1)
    return np.concatenate([top, bottom], 0)


def face_crops_sheet(clean: np.ndarray, protected: np.ndarray, box: np.ndarray, visibility: dict | None = None, amplify: int = 8) -> np.ndarray:
    """What the numbers mean, at 100 % and 200 %: the face (its box x 1.2) of the clean and the
    protected image at 100 %, their difference amplified ``amplify`` x around mid-grey, and the centre
    of both faces at 200 % (nearest neighbour: every pixel shows as 2 x 2). ``(H', W', 3)`` uint8 RGB.

    Args:
        clean, protected: ``(H, W, 3)`` uint8 RGB.
        box: ``(x0, y0, x1, y1)`` of the face in pixels.
        visibility: optional :func:`~faceshield.metrics.perceptual.visibility` values for the caption.
    """
    from faceshield.metrics.perceptual import face_crops

    crops = face_crops(clean.shape[:2], [box])
    x0, y0, x1, y1 = crops[0] if crops else (0, 0, clean.shape[1], clean.shape[0])
    a, b = clean[y0:y1, x0:x1], protected[y0:y1, x0:x1]
    diff = np.clip(128 + amplify * (b.astype(np.int16) - a.astype(np.int16)), 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    cy, cx, hh, hw = h // 2, w // 2, max(1, h // 4), max(1, w // 4)
    zoom = lambda x: np.repeat(np.repeat(x[cy - hh:cy + hh, cx - hw:cx + hw], 2, 0), 2, 1)  # noqa: E731
    v = visibility or {}
    labels = {"ssimulacra2_face": "SSIMULACRA2 %.1f", "flip_face": "FLIP %.3f", "butteraugli_face": "Butteraugli %.2f"}
    vis = ", ".join(f % v[k] for k, f in labels.items() if v.get(k) is not None)
    row1 = [_caption(a, "clean 100%", 0.4), _caption(b, "protected 100%", 0.4), _caption(diff, f"difference x{amplify}", 0.4)]
    row2 = [_caption(zoom(a), "clean 200%", 0.4), _caption(zoom(b), "protected 200%", 0.4)]
    sheet = stack_images([np.concatenate(_same_height(row1), 1), np.concatenate(_same_height(row2), 1)])
    return stack_images([_caption(np.full((0, sheet.shape[1], 3), 255, np.uint8), "face: " + vis, 0.4), sheet]) if vis else sheet


def _same_height(imgs: list[np.ndarray]) -> list[np.ndarray]:
    h = max(i.shape[0] for i in imgs)
    return [np.pad(i, ((0, h - i.shape[0]), (0, 0), (0, 0)), constant_values=255) for i in imgs]


def stack_images(imgs: list[np.ndarray]) -> np.ndarray:
    """Stack vertically, padding each to the widest with white."""
    w = max(i.shape[1] for i in imgs)
    return np.concatenate([np.pad(i, ((0, 0), (0, w - i.shape[1]), (0, 0)), constant_values=255) for i in imgs], 0)
