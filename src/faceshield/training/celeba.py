"""CelebA as the manipulators, the attribute classifier and the disruption benchmarks read it.

``../shared/data/celeba`` (see its README) holds 10,000 aligned faces at 89x109 with the 40
attributes and the identities. A face is the centre square of the aligned image (89x89, the
StarGAN crop of 178x178 at half resolution) resized to ``size``. The split is **by identity**:
a seeded permutation of the identities puts ``holdout`` of them (as a share) in ``test``, so no
person is in both; every trained model and every quality figure uses the same split.

Not used at run time by the package (only by training scripts, tests and benchmarks).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceshield.models.manipulator import EXPRESSION_AUS, HAIR_DOMAINS, STARGAN_DOMAINS  # noqa: F401  (re-exported)

#: CelebA's 40 attribute names, in the order of ``list_attr_celeba.txt``.
ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair",
    "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)

#: The other domain set of the "DD" black-box target (seed 003 Table 1): five CelebA attributes
#: that none of :data:`STARGAN_DOMAINS` shares, each flipped by an edit.
DD_DOMAINS = ("Bangs", "Eyeglasses", "Gray_Hair", "Pale_Skin", "Smiling")


def data_root() -> Path:
    """``$FACESHIELD_DATA`` or ``../shared/data`` (relative to the working directory)."""
    return Path(os.environ.get("FACESHIELD_DATA", "../shared/data"))


@dataclass
class CelebA:
    """Faces and labels of one split.

    Attributes:
        images: ``(N, size, size, 3)`` uint8 RGB.
        attrs: ``(N, 40)`` float32 in {0, 1}.
        names: the 40 attribute names, in the file's order.
        files: ``N`` image file names (``000001.jpg`` ...).
        identities: ``(N,)`` int identity labels.
    """

    images: np.ndarray
    attrs: np.ndarray
    names: list[str]
    files: list[str]
    identities: np.ndarray

    def labels(self, attributes: tuple[str, ...] | list[str]) -> np.ndarray:
        """``(N, len(attributes))`` float32 in {0, 1} for the named attributes."""
        idx = [self.names.index(a) for a in attributes]
        return self.attrs[:, idx]

    def __len__(self) -> int:
        return len(self.files)


def read_attributes(root: Path) -> tuple[list[str], list[str], np.ndarray]:
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    files, vals = [], []
    for ln in lines[2:]:
        p = ln.split()
        if len(p) == len(names) + 1:
            files.append(p[0])
            vals.append([int(v) > 0 for v in p[1:]])
    return names, files, np.asarray(vals, np.float32)


def identity_split(identities: np.ndarray, holdout: float = 0.1, seed: int = 0) -> np.ndarray:
    """Boolean ``(N,)`` mask of the test split: a seeded ``holdout`` share of the identities."""
    ids = np.unique(identities)
    rng = np.random.default_rng(seed)
    test_ids = rng.permutation(ids)[: int(round(len(ids) * holdout))]
    return np.isin(identities, test_ids)


def crop_face(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square of an aligned CelebA image (``(H, W, 3)``, H >= W) resized to ``size``."""
    h, w = img.shape[:2]
    top = (h - w) // 2
    sq = img[top : top + w]
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if size < w else cv2.INTER_CUBIC)


def load_celeba(split: str = "train", *, size: int = 64, root: Path | str | None = None, holdout: float = 0.1, seed: int = 0, limit: int | None = None) -> CelebA:
    """Load one split (``"train"``, ``"test"`` or ``"all"``) into memory.

    Raises:
        FileNotFoundError: the data directory is absent (callers skip or exit with this message).
    """
    root = Path(root) if root is not None else data_root() / "celeba"
    if not (root / "list_attr_celeba.txt").is_file():
        raise FileNotFoundError(f"CelebA not found at {root} (set FACESHIELD_DATA to the shared data directory)")
    names, files, attrs = read_attributes(root)
    idmap = dict(ln.split() for ln in (root / "identity_CelebA.txt").read_text().splitlines() if ln.strip())
    identities = np.asarray([int(idmap[f]) for f in files])
    test = identity_split(identities, holdout, seed)
    keep = {"train": ~test, "test": test, "all": np.ones_like(test)}[split]
    idx = np.flatnonzero(keep)
    if limit is not None:
        idx = idx[:limit]
    imgs = np.empty((len(idx), size, size, 3), np.uint8)
    for j, i in enumerate(idx):
        bgr = cv2.imread(str(root / "img" / files[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{root / 'img' / files[i]}: not a readable image")
        imgs[j] = crop_face(bgr[:, :, ::-1], size)
    return CelebA(imgs, attrs[idx], names, [files[i] for i in idx], identities[idx])


def digest(ds: CelebA) -> str:
    """Short sha256 of the file list and labels of a split (recorded in training sidecars)."""
    h = hashlib.sha256()
    h.update("\n".join(ds.files).encode())
    h.update(ds.attrs.tobytes())
    return h.hexdigest()[:16]
