"""Shared fixtures: the built-in sample, a toy differentiable heat-map extractor, the data root."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faceshield.core.types import ExtractorKind, Face, PointScheme
from faceshield.faces.crop import crop_boxes
from faceshield.models.base import ExtractorInfo, LandmarkExtractor

DATA_ROOT = Path(os.environ.get("FACESHIELD_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "landmarks68").is_dir():
        pytest.skip(f"shared data not found at {DATA_ROOT} (set FACESHIELD_DATA)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from PIL import Image

    from faceshield.models.weights import package_data

    return np.array(Image.open(package_data("astronaut.png")).convert("RGB"))


TOY5 = PointScheme("toy5", 5, (0, 1), "points 0, 1")


class ToyHeatmapExtractor(LandmarkExtractor):
    """A small random-weight CNN with 5 heat-maps on a 32x32 differentiable crop: enough to test the
    engine without real weights. ``landmarks`` is a soft-argmax of the heat-maps."""

    info = ExtractorInfo("toy", TOY5, ExtractorKind.HEATMAP, "random (seed 0)")

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 5, 3, padding=1))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.net.eval()

    def detect(self, image):
        h, w = image.shape[:2]
        box = np.array([w * 0.25, h * 0.25, w * 0.75, h * 0.75])
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            pts = self.landmarks(x, torch.tensor(box[None], dtype=torch.float32))[0].numpy()
        return [Face(box=box, points=pts, scheme=TOY5)]

    def heatmaps(self, x, rois, index=None):
        return self.net(crop_boxes(x, rois, 32, index))

    def landmarks(self, x, rois, index=None):
        h = self.heatmaps(x, rois, index)
        n, k, hh, ww = h.shape
        p = torch.softmax(h.flatten(2), -1).reshape(n, k, hh, ww)
        xs = (p.sum(2) * (torch.arange(ww) + 0.5)).sum(-1) / ww
        ys = (p.sum(3) * (torch.arange(hh) + 0.5)).sum(-1) / hh
        rois = rois.to(x.dtype)
        return torch.stack([rois[:, None, 0] + xs * (rois[:, None, 2] - rois[:, None, 0]), rois[:, None, 1] + ys * (rois[:, None, 3] - rois[:, None, 1])], -1)


@pytest.fixture(scope="session")
def toy_extractor() -> ToyHeatmapExtractor:
    return ToyHeatmapExtractor()


@pytest.fixture
def images() -> torch.Tensor:
    """(3, 3, 64, 64) smooth random images on the 8-bit grid."""
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.interpolate(torch.rand(3, 3, 8, 8, generator=g), size=64, mode="bilinear", align_corners=False)
    return torch.round(x * 255) / 255


def _write_clip(path, astronaut, n=10, size=160, fps=25, audio=True, codec="libx264", faces=True):
    """Encode a short clip: a moving, zooming crop of the astronaut (or flat gray when ``faces`` is
    False) with a 440 Hz sine as AAC audio. Returns the RGB frames that went into the encoder."""
    import av
    from PIL import Image

    frames = []
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = size, size, "yuv420p"
        a = c.add_stream("aac", rate=16000) if audio else None
        for i in range(n):
            s, x0, y0 = 300 - 6 * i, 100 + 2 * i, 10 + i
            f = np.array(Image.fromarray(astronaut[y0:y0 + s, x0:x0 + s]).resize((size, size), Image.BILINEAR)) if faces else np.full((size, size, 3), 120 + i, np.uint8)
            frames.append(f)
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in v.encode(vf):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            t = np.arange(int(16000 * n / fps)) / 16000
            x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for i in range(0, len(x), 1024):
                af = av.AudioFrame.from_ndarray(x[None, i:i + 1024], format="flt", layout="mono")
                af.sample_rate, af.pts = 16000, i
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return frames


@pytest.fixture(scope="session")
def make_clip(astronaut):
    """``make_clip(path, n=10, size=160, fps=25, audio=True, codec="libx264", faces=True) -> frames``:
    write a short test video (H.264 + AAC sine) and return the frames that were encoded."""
    return lambda path, **kw: _write_clip(path, astronaut, **kw)
