"""Image restorations a forger runs to wash a protection out (MagDR's transformation families and
the purification baselines of its Table 2), each one library call on ``(H, W, 3)`` uint8 RGB.

=============  ===========================================  ==========================================
spec           what                                         library
=============  ===========================================  ==========================================
``median:3``   median filter, odd kernel size k              ``cv2.medianBlur``
``bilateral:5``  bilateral filter, colour sigma s (levels),  ``cv2.bilateralFilter`` (d = 5,
                 space sigma s / 2 pixels                    ``sigmaColor`` s, ``sigmaSpace`` s / 2)
``nlmeans:5``  non-local means, strength h (levels)          ``cv2.fastNlMeansDenoisingColored``
``tv:0.05``    total-variation denoising, weight w           ``skimage.restoration.denoise_tv_chambolle``
``wavelet:0.04``  wavelet shrinkage, noise sigma (in [0,1])  ``skimage.restoration.denoise_wavelet``
``bits:5``     bit-depth reduction to b bits per channel     numpy (a quantiser; nothing to call)
``resizepad:0.9``  random resize to a share of the size and  ``cv2.resize``, ``np.pad``; seeded by the
                 random pad back to it (Xie et al.)          image content
``deflect:200``  pixel deflection: n pixels replaced by a    numpy (Prakash et al.; the wavelet
                 random neighbour within 10 px, then         denoiser is ``denoise_wavelet``)
                 wavelet denoising
``reformer:1``  MagNet's reformer (Meng & Chen): n passes   our auto-encoder trained on clean CelebA
                 through a denoising auto-encoder            (:mod:`faceshield.defenses.reformer`,
                                                             imported lazily: transforms import no models)
=============  ===========================================  ==========================================

None is differentiable; an adaptive attacker goes through them with BPDA (``bpda:nlmeans:5``,
:mod:`faceshield.transforms.bpda`). Random ones
draw from a generator seeded by the image's bytes, so the same image is restored the same way.
"""
from __future__ import annotations

import zlib

import cv2
import numpy as np

from faceshield.transforms.base import Transform


def _rng(rgb: np.ndarray, salt: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(rgb.tobytes()) ^ zlib.crc32(salt.encode()))


def _positive(v: float, name: str, *, integer: bool = False, high: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 or (high is not None and v > high) or (integer and int(v) != v):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name}: expected {kind}" + (f" up to {high:g}" if high is not None else "") + f", got {v!r}")
    return int(v) if integer else float(v)


class _Restoration(Transform):
    """A restoration of one parameter: its spec is ``name:value``, the parameter as :data:`RESTORATIONS` names it."""

    @property
    def spec(self) -> str:
        _, key, integer, _ = RESTORATIONS[self.name]
        value = getattr(self, key)
        return f"{self.name}:{int(value) if integer else format(value, 'g')}"


class Median(_Restoration):
    """Median filter over a ``k`` x ``k`` window (``median:3``), ``k`` odd."""

    name = "median"

    def __init__(self, k: int = 3) -> None:
        self.k = _positive(k, "k", integer=True, high=31)
        if self.k % 2 == 0:
            raise ValueError(f"k: expected an odd kernel size, got {k}")

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return cv2.medianBlur(np.ascontiguousarray(rgb), self.k)


class Bilateral(_Restoration):
    """Bilateral filter (``bilateral:25``): 5-px neighbourhood, colour sigma ``s`` levels, space sigma ``s / 2`` px (at most 10)."""

    name = "bilateral"

    def __init__(self, sigma: float = 25) -> None:
        self.sigma = _positive(sigma, "sigma", high=255)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return cv2.bilateralFilter(np.ascontiguousarray(rgb), 5, self.sigma, min(self.sigma / 2, 10.0))


class NLMeans(_Restoration):
    """Non-local means denoising of strength ``h`` levels (``nlmeans:5``; OpenCV's 7-px patches, 21-px search)."""

    name = "nlmeans"

    def __init__(self, h: float = 5) -> None:
        self.h = _positive(h, "h", high=100)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        bgr = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(rgb[..., ::-1]), None, self.h, self.h, 7, 21)
        return np.ascontiguousarray(bgr[..., ::-1])


class TotalVariation(_Restoration):
    """Total-variation denoising (Chambolle) of weight ``w`` on [0, 1] images (``tv:0.05``)."""

    name = "tv"

    def __init__(self, weight: float = 0.05) -> None:
        self.weight = _positive(weight, "weight", high=10)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        out = denoise_tv_chambolle(rgb.astype(np.float64) / 255, weight=self.weight, channel_axis=-1)
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def _wavelet(rgb: np.ndarray, sigma: float | None) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    out = denoise_wavelet(rgb.astype(np.float64) / 255, sigma=sigma, channel_axis=-1, convert2ycbcr=True, rescale_sigma=True)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


class Wavelet(_Restoration):
    """Wavelet shrinkage (BayesShrink in YCbCr) for noise of standard deviation ``sigma`` on [0, 1] (``wavelet:0.04``)."""

    name = "wavelet"

    def __init__(self, sigma: float = 0.04) -> None:
        self.sigma = _positive(sigma, "sigma", high=1)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return _wavelet(rgb, self.sigma)


class BitDepth(_Restoration):
    """Keep ``b`` bits per channel (``bits:5``), each value at the centre of its bin."""

    name = "bits"

    def __init__(self, bits: int = 5) -> None:
        self.bits = _positive(bits, "bits", integer=True, high=8)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        step = 2 ** (8 - self.bits)
        return np.minimum((rgb // step) * step + step // 2, 255).astype(np.uint8) if step > 1 else rgb.copy()


class ResizePad(_Restoration):
    """Random resize-and-pad (Xie et al.'s defence; ``resizepad:0.9``): shrink to a random share in
    ``[scale, 1)`` of the size, pad back with edge pixels at a random offset."""

    name = "resizepad"

    def __init__(self, scale: float = 0.9) -> None:
        self.scale = _positive(scale, "scale", high=1)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        g = _rng(rgb, self.spec)
        s = g.uniform(self.scale, 1.0)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        top, left = int(g.integers(0, h - nh + 1)), int(g.integers(0, w - nw + 1))
        return np.pad(small, ((top, h - nh - top), (left, w - nw - left), (0, 0)), mode="edge")


class PixelDeflection(_Restoration):
    """Pixel deflection (Prakash et al. 2018; ``deflect:200``): ``n`` random pixels each take the value
    of a random neighbour within 10 px, then wavelet denoising (BayesShrink) smooths the result."""

    name = "deflect"

    def __init__(self, n: int = 200) -> None:
        self.n = _positive(n, "n", integer=True, high=10**7)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        g = _rng(rgb, self.spec)
        out = rgb.copy()
        ys, xs = g.integers(0, h, self.n), g.integers(0, w, self.n)
        ny = np.clip(ys + g.integers(-10, 11, self.n), 0, h - 1)
        nx = np.clip(xs + g.integers(-10, 11, self.n), 0, w - 1)
        out[ys, xs] = rgb[ny, nx]
        return _wavelet(out, None)


class Reformer(_Restoration):
    """MagNet's reformer (Meng & Chen 2017; ``reformer:1``): ``passes`` runs through the denoising
    auto-encoder trained on clean CelebA (package data ``reformer64.pt``).

    The model lives in :mod:`faceshield.defenses.reformer`; it is imported inside :meth:`apply` (the
    transforms layer imports no models), and loaded once, on first use."""

    name = "reformer"

    def __init__(self, passes: int = 1) -> None:
        self.passes = _positive(passes, "passes", integer=True, high=10)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        from faceshield.defenses.reformer import reform  # lazy: a model, above this layer

        return reform(rgb, self.passes)


#: spec name -> (class, its one parameter, whether it is an integer, an example)
RESTORATIONS = {
    "median": (Median, "k", True, "median:3"),
    "bilateral": (Bilateral, "sigma", False, "bilateral:25"),
    "nlmeans": (NLMeans, "h", False, "nlmeans:5"),
    "tv": (TotalVariation, "weight", False, "tv:0.05"),
    "wavelet": (Wavelet, "sigma", False, "wavelet:0.04"),
    "bits": (BitDepth, "bits", True, "bits:5"),
    "resizepad": (ResizePad, "scale", False, "resizepad:0.9"),
    "deflect": (PixelDeflection, "n", True, "deflect:200"),
    "reformer": (Reformer, "passes", True, "reformer:1"),
}
