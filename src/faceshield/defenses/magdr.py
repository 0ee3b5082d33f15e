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
from dataclasses import dataclass

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

    @staticmethod
    def _on_faces(f, clean: Sequence[np.ndarray]) -> list:
        """``f(rgb)`` of every clean photo with a face (those without one are skipped)."""
        out = []
        for rgb in clean:
            try:
                out.append(f(rgb))
            except NoFaceError:
                continue
        if not out:
            raise ValueError("fit: no clean photo with a face")
        return out

    def fit(self, clean: Sequence[np.ndarray], flag_rate: float = 0.05) -> float:
        """Set the threshold so that a share ``flag_rate`` of the clean photos ``clean`` is flagged (their
        ``1 - flag_rate`` quantile); photos without a face are skipped. Returns the threshold."""
        self.threshold = float(np.quantile(self._on_faces(self.score, clean), 1 - flag_rate))
        return self.threshold

    def __call__(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` is judged disrupted (its score above the fitted threshold)."""
        if self.threshold is None:
            raise ValueError("the detector has no threshold yet: fit it on clean photos first")
        return self.score(rgb) > self.threshold


@dataclass
class Faces:
    """What one detection of a photo fixes for every score of it and of its restorations.

    All scores work in a *window* of the photo: the union of the faces' crop footprints plus a
    margin, its origin on the 16-pixel grid (so JPEG's blocks fall where they fall on the whole
    photo). Pre-processings and restorations run on the window only; pixels outside it are never
    touched (nothing of the editor's crop lies there).

    Attributes:
        found: the faces as :func:`faceshield.deepfake.edit.find_faces` aligns them.
        window: ``(y0, y1, x0, x1)`` in the photo.
        mats: ``(N, 2, 3)`` window pixels -> crop pixels.
        conds: per domain of the manipulator, ``(N, c_dim)`` conditions.
        meshes: per face, FaceMesh's ``(468, 2)`` points in window pixels, or ``None`` (not found).
    """

    found: list
    window: tuple[int, int, int, int]
    mats: torch.Tensor
    conds: list[torch.Tensor]
    meshes: list

    def cut(self, rgb: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.window
        return rgb[y0:y1, x0:x1]

    def region_masks(self) -> np.ndarray:
        """``(len(REGIONS), h, w)`` float32 soft masks of the window summing to 1 (every face's
        parts; the background is what no face claims), or ``(1, h, w)`` ones when FaceMesh found
        none of the faces."""
        y0, y1, x0, x1 = self.window
        shape = (y1 - y0, x1 - x0)
        per = [region_masks(m, shape) for m in self.meshes if m is not None]
        if not per:
            return np.ones((1, *shape), np.float32)
        parts = np.clip(np.sum([p[1:] for p in per], axis=0), 0, 1)
        parts /= np.maximum(parts.sum(0, keepdims=True), 1.0)
        return np.concatenate([1 - parts.sum(0, keepdims=True), parts])


def locate(rgb: np.ndarray, g, detector: str = "mtcnn", mesh: bool = True, margin: int = 8) -> Faces | None:
    """Find and align the faces of ``rgb`` ``(H, W, 3)`` uint8 for the manipulator ``g`` (and, with
    ``mesh``, their FaceMesh points for the region masks); ``None`` when ``detector`` finds none."""
    from faceshield.deepfake.edit import find_faces
    from faceshield.models import create_extractor

    found = find_faces(rgb, g, detector)
    if not found:
        return None
    h, w = rgb.shape[:2]
    s = g.size
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64)
    pts = []
    for f in found:
        a, t = f.matrix[:, :2].astype(np.float64), f.matrix[:, 2].astype(np.float64)
        pts.append((corners - t) @ np.linalg.inv(a).T)
    pts = np.concatenate(pts)
    x0 = max(0, int(np.floor(pts[:, 0].min())) - margin) // 16 * 16
    y0 = max(0, int(np.floor(pts[:, 1].min())) - margin) // 16 * 16
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max())) + margin), min(h, int(np.ceil(pts[:, 1].max())) + margin)
    mats = []
    for f in found:
        m = f.matrix.astype(np.float64).copy()
        m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
        mats.append(m)
    conds = [torch.stack([g.condition(d, f.attrs) for f in found]) for d in g.domains]
    meshes: list = [None] * len(found)
    if mesh:
        found_mesh = create_extractor("facemesh").detect(rgb)
        for i, f in enumerate(found):
            m = max(found_mesh, key=lambda m: box_iou(m.box, f.face.box), default=None)
            if m is not None and box_iou(m.box, f.face.box) > 0.3:
                meshes[i] = np.asarray(m.points, np.float64) - [x0, y0]
    return Faces(found, (y0, y1, x0, x1), torch.from_numpy(np.stack(mats)).float(), conds, meshes)


@torch.no_grad()
def edit_faces(g, wins: Sequence[np.ndarray], faces: Faces) -> torch.Tensor:
    """Every face of every window edited to every domain, in one batch, at ``faces``' alignments
    and conditions.

    Args:
        g: the manipulator; wins: ``W`` windows (``faces.cut`` of the photo or of copies of it),
            ``(h, w, 3)`` uint8; faces: their :func:`locate`.

    Returns:
        ``(W, D, N, 3, S, S)`` edits in [-1, 1].
    """
    n, d = len(faces.found), len(faces.conds)
    x = torch.cat([to_tensor(w) for w in wins])
    idx = torch.arange(len(wins)).repeat_interleave(n)
    crops = warp_crops(x, faces.mats.repeat(len(wins), 1, 1), g.size, idx) * 2 - 1  # (W * N, 3, S, S)
    c = torch.stack(faces.conds)  # (D, N, c_dim)
    out = g(crops.repeat(d, 1, 1, 1), c[:, None].expand(d, len(wins), n, c.shape[-1]).reshape(-1, c.shape[-1]))
    return out.reshape(d, len(wins), n, *out.shape[1:]).transpose(0, 1)


def _located(rgb: np.ndarray, g, detector: str, faces: Faces | None, mesh: bool) -> Faces:
    faces = faces if faces is not None else locate(rgb, g, detector, mesh=mesh)
    if faces is None:
        raise NoFaceError(f"no face found by {detector}")
    return faces


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
    def distances_per_preprocess(self, rgb: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        """``d^k`` for each pre-processing: ``(K,)`` float, mean over faces and domains.

        Args:
            rgb: ``(H, W, 3)`` uint8; faces: its :func:`locate` (found here when not given).

        Raises:
            NoFaceError: the detector finds no face on ``rgb``.
        """
        faces = _located(rgb, self.g, self.detector, faces, mesh=False)
        win = faces.cut(rgb)
        e = edit_faces(self.g, [win] + [f(win) for f in self.preprocess], faces)  # (1 + K, D, N, 3, S, S)
        base = e[0].flatten(0, 1)
        return np.array([float(self._d(base, ek.flatten(0, 1)).mean()) for ek in e[1:]])

    def score(self, rgb: np.ndarray, faces: Faces | None = None) -> float:
        """``S_cons`` (Eq. 7): the standard deviation of :meth:`distances_per_preprocess`."""
        return float(np.std(self.distances_per_preprocess(rgb, faces)))


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
        from faceshield.models import create_target

        self.g = create_target(model) if isinstance(model, str) else model
        self.detector = detector
        self.threshold = None

    @torch.no_grad()
    def region_distances(self, rgb: np.ndarray, faces: Faces | None = None) -> dict[str, np.ndarray]:
        """Per domain, ``(faces, len(REGIONS))`` ``d_i`` (Eq. 4) in the crop, L2 on [-1, 1], for the
        faces FaceMesh also finds.

        Raises:
            NoFaceError: no face for the detector, or none FaceMesh finds on the same place.
        """
        faces = _located(rgb, self.g, self.detector, faces, mesh=True)
        keep = [i for i, m in enumerate(faces.meshes) if m is not None]
        if not keep:
            raise NoFaceError(f"no face found by {self.detector} and FaceMesh together")
        win = to_tensor(faces.cut(rgb))
        shape = tuple(win.shape[-2:])
        out: dict[str, list] = {d: [] for d in self.g.domains}
        for i in keep:
            mat = faces.mats[i : i + 1]
            masks = torch.from_numpy(region_masks(faces.meshes[i], shape))[None]  # (1, R, h, w)
            mc = warp_crops(masks, mat, self.g.size, antialias=True)[0]  # (R, S, S)
            area = mc.flatten(1).sum(1).clamp(min=1.0)
            crop = warp_crops(win, mat, self.g.size) * 2 - 1
            for d, c in zip(self.g.domains, faces.conds):
                e = self.g(crop, c[i : i + 1])
                sq = (crop - e).pow(2).mean(1)[0]  # (S, S)
                out[d].append(((mc * sq).flatten(1).sum(1) / area).numpy())
        return {d: np.stack(v) for d, v in out.items()}

    def score(self, rgb: np.ndarray, faces: Faces | None = None) -> float:
        """``S_dist``: the share of (face, domain, non-conditional region) with ``d_i >= d_c``."""
        flags = []
        for d, dist in self.region_distances(rgb, faces).items():
            c = REGIONS.index(DOMAIN_REGION.get(d, "skin"))
            others = [i for i in range(len(REGIONS)) if i != c]
            flags.append((dist[:, others] >= dist[:, c : c + 1]).mean())
        return float(np.mean(flags))


#: fitted on the first 20 held-out CelebA photos that MTCNN finds, 5 % of them flagged
#: (``python benchmarks/magdr_fit.py``); :meth:`FinalDetector.fit` refits them
FITTED_LAMBDA = 0.00102836
FITTED_THRESHOLD = 0.000964784


class FinalDetector(_Thresholded):
    """MagDR's detector, ``S_final = lambda * S_dist + S_cons`` (Eq. 9).

    ``lambda`` balances the two: :meth:`fit` sets it (unless given) to the ratio of the clean
    photos' spreads, ``std(S_cons) / std(S_dist)``, so that each moves a clean photo's score as much,
    then the threshold to the ``1 - flag_rate`` quantile of the clean ``S_final``. Where FaceMesh
    does not find the face, ``S_dist`` is unknown and ``S_final = S_cons``.

    Args:
        model: the manipulator; detector: the forger's face detector.
        lam: ``lambda`` (``None``: fitted; the shipped fit is :data:`FITTED_LAMBDA`).
        threshold: (``None``: the shipped fit :data:`FITTED_THRESHOLD`, made for ``stargan``: refit
            it for another manipulator).
        preprocess: the consistency detector's pre-processings.
    """

    def __init__(self, model="stargan", detector: str = "mtcnn", lam: float | None = None, threshold: float | None = None,
                 preprocess: Sequence[str] = PREPROCESS) -> None:
        self.consistency = ConsistencyDetector(model, preprocess, detector=detector)
        self.distortion = DistortionDetector(self.consistency.g, detector)
        self.g, self.detector = self.consistency.g, detector
        self.fixed_lam = lam is not None
        self.lam = float(lam) if lam is not None else FITTED_LAMBDA
        self.threshold = float(threshold) if threshold is not None else FITTED_THRESHOLD

    def locate(self, rgb: np.ndarray) -> Faces | None:
        return locate(rgb, self.g, self.detector, mesh=True)

    def components(self, rgb: np.ndarray, faces: Faces | None = None) -> dict:
        """``{"s_dist", "s_cons", "s_final"}`` of ``rgb`` (``s_dist`` ``None`` without FaceMesh).

        Raises:
            NoFaceError: the detector finds no face.
        """
        faces = _located(rgb, self.g, self.detector, faces, mesh=True)
        s_cons = self.consistency.score(rgb, faces)
        s_dist = self.distortion.score(rgb, faces) if any(m is not None for m in faces.meshes) and (self.lam or not self.fixed_lam) else None
        return {"s_dist": s_dist, "s_cons": s_cons, "s_final": self._final(s_dist, s_cons)}

    def _final(self, s_dist: float | None, s_cons: float) -> float:
        return s_cons + (self.lam * s_dist if s_dist is not None else 0.0)

    def score(self, rgb: np.ndarray, faces: Faces | None = None) -> float:
        return self.components(rgb, faces)["s_final"]

    def fit(self, clean: Sequence[np.ndarray], flag_rate: float = 0.05) -> float:
        """Fit ``lambda`` (unless fixed) and the threshold on clean photos only. Returns the threshold."""
        comps = self._on_faces(self.components, clean)
        if not self.fixed_lam:
            dist = [c["s_dist"] for c in comps if c["s_dist"] is not None]
            spread = float(np.std(dist)) if len(dist) > 1 else 0.0
            self.lam = float(np.std([c["s_cons"] for c in comps]) / spread) if spread > 0 else 0.0
        self.threshold = float(np.quantile([self._final(c["s_dist"], c["s_cons"]) for c in comps], 1 - flag_rate))
        return self.threshold


#: the reconstructor's layers (MagDR's B_i, applied in this order): families of restorations and
#: their parameter grids (transform specs); first the denoisers, then smoothing and re-encoding
LAYERS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"nlmeans": ("nlmeans:3", "nlmeans:6", "nlmeans:10"), "tv": ("tv:0.03", "tv:0.08"), "wavelet": ("wavelet:0.02", "wavelet:0.05"),
     "bilateral": ("bilateral:15", "bilateral:30"), "median": ("median:3", "median:5")},
    {"jpeg": ("jpeg:q=90", "jpeg:q=75", "jpeg:q=50"), "blur": ("blur:0.6", "blur:1.0", "blur:1.5"), "resize": ("resize:0.75", "resize:0.5"),
     "bits": ("bits:4", "bits:5")},
)
#: each family's best parameter by the mean S_final on disrupted training photos (Alg. 1, lines
#: 1-6; ``python benchmarks/magdr_fit.py``): the members of the layers Q_i
PRETRAINED: tuple[dict[str, str], ...] = (
    {"nlmeans": "nlmeans:10", "tv": "tv:0.08", "wavelet": "wavelet:0.05", "bilateral": "bilateral:30", "median": "median:5"},
    {"jpeg": "jpeg:q=50", "blur": "blur:1.5", "resize": "resize:0.5", "bits": "bits:4"},
)


class Reconstructor:
    """Detect, then reconstruct (MagDR Sec. 3.2.3, Alg. 1).

    When ``S_final`` is above the threshold, each layer ``B_i`` of :data:`LAYERS` in turn, per
    facial region ``M_r`` (:func:`faceshield.faces.regions.region_masks` from FaceMesh; the whole
    window when FaceMesh finds no face): score every family's pre-trained member (``Q_i``) on the
    photo with only that region restored, keep the ``top`` (3) families, then the best of all their
    parameters (Alg. 1, lines 7-11), and restore the region with it if that lowers ``S_final``
    (otherwise the region is left as it is). Stop as soon as ``S_final`` is acceptable; at most
    ``rounds`` passes over the layers. Restorations run on the faces' window only.

    ``r(rgb) -> (restored (H, W, 3) uint8, record)``; ``record``: ``detected``, ``no_face`` (the
    detector finds no face: returned unchanged), ``threshold``, ``lambda``, ``s_dist`` / ``s_cons``
    / ``s_final`` before and ``..._after``, and ``restorations`` (``"spec@region"``, in order).

    Args:
        detector: a :class:`FinalDetector` (default: ``stargan``'s, with the shipped fit).
        layers: the ``B_i``; q: the ``Q_i`` (family -> spec per layer; default :data:`PRETRAINED`,
            else each family's middle parameter); top: families kept per region; rounds: passes;
        regions: restore per region (``False``: the whole window, one region).
    """

    def __init__(self, detector: FinalDetector | None = None, layers: Sequence[dict[str, Sequence[str]]] = LAYERS, rounds: int = 1,
                 top: int = 3, regions: bool = True, q: Sequence[dict[str, str]] | None = None) -> None:
        self.detector = detector or FinalDetector()
        if self.detector.threshold is None:
            raise ValueError("the detector has no threshold: fit it on clean photos first (FinalDetector.fit)")
        self.layers = [dict(layer) for layer in layers]
        self.transforms = {s: create_transform(s) for layer in self.layers for specs in layer.values() for s in specs}
        q = q if q is not None else (PRETRAINED if len(PRETRAINED) == len(self.layers) else None)
        self.q = [dict(x) for x in q] if q is not None else [{f: specs[len(specs) // 2] for f, specs in layer.items()} for layer in self.layers]
        self.rounds, self.top, self.regions = int(rounds), int(top), bool(regions)

    def pretrain(self, photos: Sequence[np.ndarray]) -> list[dict[str, str]]:
        """Alg. 1, lines 1-6: per layer and family, the parameter with the lowest mean ``S_final``
        over ``photos`` (disrupted training photos, each restored whole). Sets and returns ``q``."""
        located = [(rgb, self.detector.locate(rgb)) for rgb in photos]
        located = [(rgb, f) for rgb, f in located if f is not None]
        if not located:
            raise ValueError("pretrain: no photo with a face")
        self.q = []
        for layer in self.layers:
            best = {}
            for fam, specs in layer.items():
                means = [np.mean([self.detector.score(self._paste(rgb, f, self.transforms[s](f.cut(rgb))), f) for rgb, f in located]) for s in specs]
                best[fam] = specs[int(np.argmin(means))]
            self.q.append(best)
        return self.q

    @staticmethod
    def _paste(rgb: np.ndarray, faces: Faces, win: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = faces.window
        out = rgb.copy()
        out[y0:y1, x0:x1] = win
        return out

    def _layer(self, cur: np.ndarray, i: int, faces: Faces, score: float) -> tuple[np.ndarray, float, list[str]]:
        layer, det = self.layers[i], self.detector
        base = np.ascontiguousarray(faces.cut(cur))
        masks = faces.region_masks() if self.regions else np.ones((1, *base.shape[:2]), np.float32)
        names = REGIONS if len(masks) == len(REGIONS) else ("face window",)
        cache: dict[str, np.ndarray] = {}

        def blended(work: np.ndarray, m: np.ndarray, spec: str) -> np.ndarray:
            if spec not in cache:
                cache[spec] = self.transforms[spec](base).astype(np.float32)
            return (work + m[..., None] * (cache[spec] - work)).round().clip(0, 255).astype(np.uint8)

        def s_of(win: np.ndarray) -> float:
            return det.score(self._paste(cur, faces, win), faces)

        work, chosen = base, []
        for m, name in zip(masks, names):
            if float(m.mean()) < 0.005:  # a part too small to matter in this window
                continue
            w = work.astype(np.float32)
            fam_score = {fam: s_of(blended(w, m, spec)) for fam, spec in self.q[i].items()}
            top = sorted(fam_score, key=fam_score.get)[: self.top]
            cands = [(fam_score[f] if s == self.q[i][f] else s_of(blended(w, m, s)), s) for f in top for s in layer[f]]
            best_score, best = min(cands)
            if best_score < score:
                work, score = blended(w, m, best), best_score
                chosen.append(f"{best}@{name}")
            if score <= det.threshold:  # acceptable: leave the other regions as they are
                break
        return self._paste(cur, faces, work), score, chosen

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, dict]:
        det = self.detector
        faces = det.locate(rgb)
        record = {"detected": False, "no_face": faces is None, "threshold": det.threshold, "lambda": det.lam, "restorations": []}
        if faces is None:  # the forger's detector finds no face: nothing to edit, nothing to clean
            return rgb, record | {"s_dist": None, "s_cons": None, "s_final": None, "s_dist_after": None, "s_cons_after": None, "s_final_after": None}
        comps = det.components(rgb, faces)
        record |= comps | {"detected": comps["s_final"] > det.threshold}
        cur, score = rgb, comps["s_final"]
        for _ in range(self.rounds if record["detected"] else 0):
            for i in range(len(self.layers)):
                cur, score, chosen = self._layer(cur, i, faces, score)
                record["restorations"] += chosen
                if score <= det.threshold:
                    break
            if score <= det.threshold:
                break
        after = det.components(cur, faces) if cur is not rgb else comps
        record |= {f"{k}_after": v for k, v in after.items()}
        return cur, record
