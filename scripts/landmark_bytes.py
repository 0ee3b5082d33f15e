"""Hashes of the protected sample for four landmark configurations, to check that a refactor
leaves landmark protections byte-identical (same machine, same torch):

    git worktree add /tmp/before <commit>
    python scripts/landmark_bytes.py /tmp/before    # the tree before
    python scripts/landmark_bytes.py .              # this tree

Both print the same four hashes when nothing changed.
"""
import hashlib
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
sys.path.insert(0, str(root / "src"))

import faceshield  # noqa: E402

assert Path(faceshield.__file__).resolve().is_relative_to(root), faceshield.__file__
from faceshield.io import read_image  # noqa: E402
from faceshield.models.weights import package_data  # noqa: E402
from faceshield.pipeline import ProtectConfig  # noqa: E402
from faceshield.pipeline.image import protect_array  # noqa: E402

rgb = read_image(package_data("astronaut.png")).rgb
configs = {
    "paper": ProtectConfig(),
    "mtcnn+fan, 5 steps": ProtectConfig(targets=("mtcnn", "fan"), steps=5),
    "quality on fan, 6 steps": ProtectConfig.preset("quality", targets=("fan",), steps=6),
    "lb_trans + EOT, 4 steps": ProtectConfig(method="lb_trans", steps=4, eot=("default",)),
}
for name, cfg in configs.items():
    print(hashlib.sha256(protect_array(rgb, cfg).rgb.tobytes()).hexdigest()[:16], name)
