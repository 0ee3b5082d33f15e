"""Before / after at 100 % (no scaling) of the landmark generator on the sample and the first held-out HELEN test photo.

    python benchmarks/generator_crops.py docs/generators/breaker_landmarks_crops.png
"""
import sys
import numpy as np
from PIL import Image
from faceshield.models import create_extractor
from faceshield.models.weights import package_data
from faceshield.pipeline import ProtectConfig, protect_array
from faceshield.training.landmarks import list_split, resolve_data_dir

out = sys.argv[1]
photos = [np.array(Image.open(package_data("astronaut.png")).convert("RGB")), np.array(Image.open(list_split(resolve_data_dir() / "test")[0]).convert("RGB"))]
mtcnn = create_extractor("mtcnn")
rows = []
for rgb in photos:
    prot = protect_array(rgb, ProtectConfig(method="generator:breaker-landmarks")).rgb
    f = max(mtcnn.detect(rgb), key=lambda f: f.area)
    x0, y0, x1, y1 = [int(v) for v in f.roi]
    pad = int(0.2 * (x1 - x0))
    x0, y0, x1, y1 = max(0, x0 - pad), max(0, y0 - pad), min(rgb.shape[1], x1 + pad), min(rgb.shape[0], y1 + pad)
    a, b = rgb[y0:y1, x0:x1], prot[y0:y1, x0:x1]
    rows.append(np.concatenate([a, np.full((a.shape[0], 8, 3), 255, np.uint8), b], 1))
w = max(r.shape[1] for r in rows)
rows = [np.pad(r, ((0, 8), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
Image.fromarray(np.concatenate(rows, 0)).save(out)
print(out, [r.shape for r in rows])
