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
