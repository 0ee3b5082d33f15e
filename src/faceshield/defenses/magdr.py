"""MagDR's consistency detector (seed 004, Eq. 7): an input whose manipulator output changes a lot,
and unevenly, under small pre-processings is a disrupted one.

For the photo ``x`` and each pre-processing ``f_k`` (restorations of
:mod:`faceshield.transforms.restore`, JPEG, blur ...), the manipulator edits the faces of ``x`` and of
``f_k(x)`` (aligned where the detector finds them on ``x``) for every domain; ``d^k`` is the mean
distance (:class:`~faceshield.defenses.distance.Distances`, L2 by default) between the two edits, and
``S_cons`` is the standard deviation of ``d^k`` over ``k``. A clean photo's edits barely move under
any of them; a disruption, fragile by construction, is undone by some and not by others. The
threshold is fitted on clean photos only (:meth:`ConsistencyDetector.fit`: a chosen share of clean
photos flagged).

The distortion detector (Eqs. 4-6, :class:`DistortionDetector`): an edit changes its conditional
region (the hair for a hair colour, the face for gender and age, the mouth for a smile); an edit
that changes the *other* regions as much as that one is abnormal. Regions are the FaceMesh part
masks of :mod:`faceshield.faces.regions`, warped into the manipulator's crop. The reconstructor is
not built yet.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from faceshield.core.errors import NoFaceError
from faceshield.defenses.distance import Distances, pixel_distances
from faceshield.faces.boxes import box_iou
from faceshield.faces.crop import warp_crops
from faceshield.faces.regions import REGIONS, region_masks
from faceshield.io.image import to_tensor
from faceshield.transforms import create_transform

#: the pre-processings ``f_k`` (MagDR's K augmentations), as transform specs
PREPROCESS = ("jpeg75", "blur:1.0", "resize:0.5", "median:3", "bits:5", "nlmeans:5", "wavelet:0.04")
#: distances where larger = more different (those :class:`ConsistencyDetector` can use)
GROWING = ("l1", "l2", "linf", "phi1", "phi2", "phi3", "phi4")


class _Thresholded:
    """A detector with a ``score(rgb) -> float`` (higher = more likely disrupted) and a threshold
    fitted on clean photos only."""

    threshold: float | None = None

    def score(self, rgb: np.ndarray) -> float:
        raise NotImplementedError

    def fit(self, clean: Sequence[np.ndarray], flag_rate: float = 0.05) -> float:
        """Set the threshold so that a share ``flag_rate`` of the clean photos ``clean`` is flagged (their
        ``1 - flag_rate`` quantile); photos without a face are skipped. Returns the threshold."""
        scores = []
        for rgb in clean:
            try:
                scores.append(self.score(rgb))
            except NoFaceError:
                continue
        if not scores:
            raise ValueError("fit: no clean photo with a face")
        self.threshold = float(np.quantile(scores, 1 - flag_rate))
        return self.threshold

    def __call__(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` is judged disrupted (its score above the fitted threshold)."""
        if self.threshold is None:
            raise ValueError("the detector has no threshold yet: fit it on clean photos first")
        return self.score(rgb) > self.threshold


class ConsistencyDetector(_Thresholded):
    """``S_cons`` of Eq. 7 and a threshold fitted on clean photos.

    Args:
        model: the manipulator (a registry name or a built one), e.g. ``"stargan"``.
        preprocess: transform specs ``f_k``.
        distance: one of :data:`GROWING`.
        detector: the landmark extractor that finds and aligns the faces.
    """

    def __init__(self, model="stargan", preprocess: Sequence[str] = PREPROCESS, distance: str = "l2", detector: str = "mtcnn") -> None:
        from faceshield.models import create_target

        if distance not in GROWING:
            raise ValueError(f"distance: expected one of {', '.join(GROWING)}, got {distance!r}")
        self.g = create_target(model) if isinstance(model, str) else model
        self.preprocess = [create_transform(s) for s in preprocess]
        self.distance, self.detector = distance, detector
        self.distances = Distances() if distance.startswith("phi") else None
        self.threshold = None

    def _d(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (self.distances or pixel_distances)(a, b)[self.distance]

    @torch.no_grad()
    def distances_per_preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """``d^k`` for each pre-processing: ``(K,)`` float, mean over faces and domains.

        Raises:
            NoFaceError: the detector finds no face on ``rgb``.
        """
        from faceshield.deepfake.edit import find_faces

        found = find_faces(rgb, self.g, self.detector)
        if not found:
            raise NoFaceError(f"no face found by {self.detector}")
        mats = torch.from_numpy(np.stack([f.matrix for f in found]))
        idx = torch.zeros(len(found), dtype=torch.long)
        conds = [torch.stack([self.g.condition(d, f.attrs) for f in found]) for d in self.g.domains]
        crops = warp_crops(to_tensor(rgb), mats, self.g.size, idx) * 2 - 1
        base = [self.g(crops, c) for c in conds]
        out = []
        for f in self.preprocess:
            ck = warp_crops(to_tensor(f(rgb)), mats, self.g.size, idx) * 2 - 1
            out.append(float(torch.cat([self._d(b, self.g(ck, c)) for b, c in zip(base, conds)]).mean()))
        return np.array(out)

    def score(self, rgb: np.ndarray) -> float:
        """``S_cons`` (Eq. 7): the standard deviation of :meth:`distances_per_preprocess`."""
        return float(np.std(self.distances_per_preprocess(rgb)))


#: the region each domain is meant to change (MagDR's conditional attribute region M_c); FaceMesh has
#: no hair, so hair colours change the region outside the face oval (hair and background)
DOMAIN_REGION = {"Black_Hair": "background", "Blond_Hair": "background", "Brown_Hair": "background", "Male": "skin", "Young": "skin",
                 "Smiling": "lips", "Mouth_Slightly_Open": "lips"}


class DistortionDetector(_Thresholded):
    """Eqs. 4-6: per region ``i`` of the crop, ``d_i`` = mean squared difference between the input
    crop and its edit inside the region (Eq. 4, the masked distance over the mask's area); a region
    is flagged (``V_i``, Eq. 5) when ``d_i >= d_c``, the conditional region's; ``S_dist`` (Eq. 6) =
    the mean over domains of the share of non-conditional regions flagged. Threshold fitted on clean
    photos, as :class:`ConsistencyDetector`'s.

    Args:
        model: the manipulator; detector: the forger's face detector (alignment).
    """

    def __init__(self, model="stargan", detector: str = "mtcnn") -> None:
        from faceshield.models import create_extractor, create_target

        self.g = create_target(model) if isinstance(model, str) else model
        self.detector = detector
        self.mesh = create_extractor("facemesh")
        self.threshold = None

    @torch.no_grad()
    def region_distances(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Per domain, ``(faces, len(REGIONS))`` ``d_i`` (Eq. 4) in the crop, L2 on [-1, 1].

        Raises:
            NoFaceError: no face for the detector, or none FaceMesh finds on the same place.
        """
        from faceshield.deepfake.edit import find_faces

        found = find_faces(rgb, self.g, self.detector)
        meshes = self.mesh.detect(rgb)
        pairs = []
        for f in found:
            m = max(meshes, key=lambda m: box_iou(m.box, f.face.box), default=None)
            if m is not None and box_iou(m.box, f.face.box) > 0.3:
                pairs.append((f, m))
        if not pairs:
            raise NoFaceError(f"no face found by {self.detector} and FaceMesh together")
        x = to_tensor(rgb)
        out: dict[str, list] = {d: [] for d in self.g.domains}
        for f, m in pairs:
            mat = torch.from_numpy(f.matrix[None])
            masks = torch.from_numpy(region_masks(m.points, rgb.shape[:2]))[None]  # (1, R, H, W)
            mc = warp_crops(masks, mat, self.g.size, antialias=True)[0]  # (R, S, S)
            area = mc.flatten(1).sum(1).clamp(min=1.0)
            crop = warp_crops(x, mat, self.g.size) * 2 - 1
            for d in self.g.domains:
                e = self.g(crop, self.g.condition(d, f.attrs)[None])
                sq = (crop - e).pow(2).mean(1)[0]  # (S, S)
                out[d].append(((mc * sq).flatten(1).sum(1) / area).numpy())
        return {d: np.stack(v) for d, v in out.items()}

    def score(self, rgb: np.ndarray) -> float:
        """``S_dist``: the share of (face, domain, non-conditional region) with ``d_i >= d_c``."""
        flags = []
        for d, dist in self.region_distances(rgb).items():
            c = REGIONS.index(DOMAIN_REGION.get(d, "skin"))
            others = [i for i in range(len(REGIONS)) if i != c]
            flags.append((dist[:, others] >= dist[:, c : c + 1]).mean())
        return float(np.mean(flags))



#: the consistency threshold fitted on the first 20 held-out CelebA photos that MTCNN finds, 5 % of
#: them flagged (``python benchmarks/magdr_detection.py 20``); :meth:`ConsistencyDetector.fit` refits it
FITTED_THRESHOLD = 0.00055

#: the reconstructor's restoration families and their parameter grids (transform specs)
FAMILIES: dict[str, tuple[str, ...]] = {
    "jpeg": ("jpeg:q=90", "jpeg:q=75", "jpeg:q=50"),
    "blur": ("blur:0.6", "blur:1.0", "blur:1.5"),
    "resize": ("resize:0.75", "resize:0.5"),
    "median": ("median:3", "median:5"),
    "bilateral": ("bilateral:15", "bilateral:30"),
    "nlmeans": ("nlmeans:3", "nlmeans:6", "nlmeans:10"),
    "tv": ("tv:0.03", "tv:0.08"),
    "wavelet": ("wavelet:0.02", "wavelet:0.05"),
    "bits": ("bits:4", "bits:5"),
}


class Reconstructor:
    """Detect, then reconstruct (MagDR Sec. 3.2.3, simplified): while ``S_cons`` is above the
    threshold, apply the restoration of :data:`FAMILIES` whose output has the lowest ``S_cons`` (at
    most ``rounds`` of them, one after the other).

    Simplifications, said plainly: the search is greedy over the whole photo, not per facial region
    with top-3 families per region, and the criterion is ``S_cons`` alone (the distortion detector
    carries no signal with our StarGAN; see docs/magdr.md).

    ``r(rgb) -> (restored (H, W, 3) uint8, record)``; ``record``: ``detected``, ``s_cons`` before and
    after, the ``restorations`` applied, ``no_face`` (the detector finds no face: returned unchanged).
    """

    def __init__(self, detector: ConsistencyDetector | None = None, families: dict[str, Sequence[str]] = FAMILIES, rounds: int = 2) -> None:
        self.detector = detector or ConsistencyDetector()
        if self.detector.threshold is None:  # the shipped fit (stargan); refit for another model or set
            self.detector.threshold = FITTED_THRESHOLD
        self.specs = [create_transform(s) for specs in families.values() for s in specs]
        self.rounds = int(rounds)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, dict]:
        det = self.detector
        try:
            before = det.score(rgb)
        except NoFaceError:  # the forger's detector finds no face: nothing to edit, nothing to clean
            return rgb, {"detected": False, "no_face": True, "threshold": det.threshold, "s_cons": None, "restorations": [], "s_cons_after": None}
        record = {"detected": before > det.threshold, "no_face": False, "threshold": det.threshold, "s_cons": before, "restorations": []}
        cur, score = rgb, before
        for _ in range(self.rounds if record["detected"] else 0):
            scored = []
            for t in self.specs:
                out = t(cur)
                try:
                    scored.append((det.score(out), t.spec, out))
                except NoFaceError:  # a restoration that loses the face is no use to the forger
                    continue
            if not scored:
                break
            score, spec, cur = min(scored, key=lambda s: s[0])
            record["restorations"].append(spec)
            if score <= det.threshold:
                break
        record["s_cons_after"] = score
        return cur, record
