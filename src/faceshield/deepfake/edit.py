"""Face editing on whole photos, as a forger runs an attribute editor: detect the face, align it to
the manipulator's CelebA crop (a similarity from five points), run ``G(x, c)``, paste the edit
back with a feathered mask.

The crop is :func:`~faceshield.faces.crop.warp_crops`, differentiable, so the attacks of
:class:`~faceshield.attacks.losses.DisruptionLoss` go through exactly the crop a forger's tool takes
and the protection lands on the full photo.

    >>> import faceshield
    >>> edited = faceshield.manipulate(rgb, "stargan", domain="Blond_Hair")  # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from faceshield.core.check import check_rgb_uint8
from faceshield.core.errors import NoFaceError
from faceshield.core.types import IBUG68, MTCNN5, Face
from faceshield.faces.align import _mtcnn5_from_68, to_ibug68, umeyama
from faceshield.faces.crop import feather_mask, paste_crops, warp_crops
from faceshield.io import to_tensor, to_uint8
from faceshield.models import Manipulator, create_extractor, create_target


def five_points(face: Face) -> np.ndarray:
    """``(5, 2)`` eye centres, nose tip and mouth corners of a face of any supported point scheme."""
    if face.scheme == MTCNN5:
        return np.asarray(face.points, dtype=np.float64)
    p68 = to_ibug68(face.points, face.scheme)
    if p68 is None:
        raise ValueError(f"cannot align a face of the {face.scheme.name} scheme for a manipulator (supported: mtcnn5, {IBUG68.name}, facemesh468)")
    return _mtcnn5_from_68(p68)


def crop_matrix(points5: np.ndarray, size: int, template: np.ndarray) -> np.ndarray:
    """``(2, 3)`` similarity from image pixels to the ``size`` px crop putting ``points5`` on
    ``template`` (units of the crop side)."""
    return umeyama(points5, np.asarray(template) * size)[:2].astype(np.float32)


@dataclass
class EditFace:
    """One face as a manipulator sees it: the detector's face, its crop matrix ``(2, 3)`` (image
    pixels -> crop pixels) and its own attribute probabilities (for the conditions)."""

    face: Face
    matrix: np.ndarray
    attrs: dict[str, float]


def attribute_probs(crops01: torch.Tensor) -> list[dict[str, float]]:
    """Attribute probabilities ``{name: p}`` of ``(N, 3, S, S)`` face crops in [0, 1] (CelebA
    classifier, at its own size)."""
    clf, names = _classifier()
    size = clf.config.size
    x = crops01 if crops01.shape[-1] == size else torch.nn.functional.interpolate(crops01, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        p = torch.sigmoid(clf(x * 2 - 1)).numpy()
    return [dict(zip(names, map(float, row))) for row in p]


_CLF = None


def _classifier():
    global _CLF
    if _CLF is None:
        from faceshield.models.zoo import load_attribute_classifier

        _CLF = load_attribute_classifier()
    return _CLF


def find_faces(rgb: np.ndarray, manipulator: Manipulator, detector: str = "mtcnn", faces: Sequence[Face] | None = None) -> list[EditFace]:
    """The faces ``detector`` finds in ``rgb`` (``(H, W, 3)`` uint8), aligned for ``manipulator``."""
    rgb = check_rgb_uint8(rgb)
    found = list(faces) if faces is not None else create_extractor(detector).detect(rgb)
    if not found:
        return []
    mats = np.stack([crop_matrix(five_points(f), manipulator.size, manipulator.template) for f in found])
    crops = warp_crops(to_tensor(rgb), torch.from_numpy(mats), manipulator.size, torch.zeros(len(found), dtype=torch.long))
    return [EditFace(f, m, a) for f, m, a in zip(found, mats, attribute_probs(crops))]


def edit_crops(manipulator: Manipulator, x: torch.Tensor, matrices: torch.Tensor, c: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """``G(crop(x), c)``: ``x`` ``(B, 3, H, W)`` in [0, 1], ``matrices`` ``(N, 2, 3)``, ``c``
    ``(N, c_dim)`` -> ``(N, 3, S, S)`` edited crops in [-1, 1], differentiable w.r.t. ``x``."""
    crops = warp_crops(x, matrices.to(x.dtype), manipulator.size, index)
    return manipulator(crops * 2 - 1, c.to(x.dtype))


def paste_edits(x: torch.Tensor, edited: torch.Tensor, matrices: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """Paste ``(N, 3, S, S)`` edits in [-1, 1] back into ``x`` ``(B, 3, H, W)`` in [0, 1] with a
    feathered mask."""
    m = feather_mask(edited.shape[-1]).expand(edited.shape[0], 1, -1, -1)
    return paste_crops(x, (edited + 1) / 2, m, matrices, index)


def manipulate(rgb: np.ndarray, model: str | Manipulator = "stargan", domain: str | None = None, *, detector: str = "mtcnn",
               faces: Sequence[Face] | None = None) -> np.ndarray:
    """Edit every face of a photo as a forger's attribute editor would.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB (never modified).
        model: a manipulator name (``faceshield models``) or instance.
        domain: one of its domains (default: its first).
        detector: the landmark extractor that finds and aligns the faces.
        faces: faces already found (skips ``detector``).

    Returns:
        ``(H, W, 3)`` uint8: the photo with every face edited.

    Raises:
        NoFaceError: no face found; ValueError: unknown model or domain.
    """
    g = create_target(model) if isinstance(model, str) else model
    if not isinstance(g, Manipulator):
        raise ValueError(f"{g.name} is not a manipulator")
    domain = g.check_domain(domain or g.domains[0])
    found = find_faces(rgb, g, detector, faces)
    if not found:
        raise NoFaceError(f"no face found by {detector}")
    x = to_tensor(rgb)
    mats = torch.from_numpy(np.stack([f.matrix for f in found]))
    c = torch.stack([g.condition(domain, f.attrs) for f in found])
    idx = torch.zeros(len(found), dtype=torch.long)
    with torch.no_grad():
        out = paste_edits(x, edit_crops(g, x, mats, c, idx), mats, idx)
    return to_uint8(out)


#: Ruiz et al.'s threshold: an edit is disrupted when the MSE between the clean and the protected
#: edit (output crop in [-1, 1]) is at least this.
DISRUPTED_L2 = 0.05


@dataclass
class DisruptionMeasure:
    """How a protection fares against one manipulator on one photo pair (every figure per domain).

    Attributes:
        model, domains: the manipulator and the domains measured.
        faces: faces found on the clean photo (the protected one is aligned the same way for ``l2``).
        l2: per domain, the mean over faces of MSE(G(x, c), G(x + eta, c)) on the output crop in
            [-1, 1] at the clean alignment (Ruiz et al.'s L2).
        l2_redetected: the same with each photo aligned by the detector's own faces on it (what a
            forger gets); None when the detector loses a face on the protected photo.
        faces_lost: faces of the clean photo the detector no longer finds on the protected one.
        judges: per detector, the mean probability of *real* of the clean face crop, the clean
            edits, the protected photo's edits and the protected face crop (all on the model's
            aligned crop, so real and fake differ only by the edit).
        l2_each: every (face, domain) L2, faces inner; ``scores``: per detector, the same four
            lists per (face, domain) (inputs repeated per domain), for P / R / F1 over many photos.
    """

    model: str
    domains: list[str]
    faces: int
    l2: dict[str, float]
    l2_redetected: dict[str, float | None]
    faces_lost: int
    judges: dict[str, dict[str, float]]
    l2_each: list[float] = field(default_factory=list)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def disrupted(self) -> float:
        """Share of (face, domain) edits with L2 >= :data:`DISRUPTED_L2`."""
        return float(np.mean([v >= DISRUPTED_L2 for v in self.l2_each])) if self.l2_each else 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "domains": self.domains, "faces": self.faces, "l2": self.l2, "l2_redetected": self.l2_redetected, "l2_each": self.l2_each,
                "disrupted": self.disrupted, "faces_lost": self.faces_lost, "judges": self.judges,
                "notes": f"L2 = MSE between the clean and the protected edit on the output crop in [-1, 1] (Ruiz et al.); disrupted = L2 >= {DISRUPTED_L2}"}


def measure_disruption(clean: np.ndarray, protected: np.ndarray, model: str | Manipulator = "stargan", *, domains: Sequence[str] | None = None,
                       detector: str = "mtcnn", judges: Sequence[str] = ()) -> DisruptionMeasure:
    """Edit both photos with ``model`` for every domain and compare (see :class:`DisruptionMeasure`).

    Args:
        clean, protected: ``(H, W, 3)`` uint8, the same size.
        domains: default all of the model's.
        judges: DeepFake detector names (``faceshield models``) that score the edits.

    Raises:
        NoFaceError: no face on the clean photo.
    """
    g = create_target(model) if isinstance(model, str) else model
    doms = [g.check_domain(d) for d in (domains or g.domains)]
    found = find_faces(clean, g, detector)
    if not found:
        raise NoFaceError(f"no face found by {detector} on the clean photo")
    redet = find_faces(protected, g, detector)
    from faceshield.faces.boxes import box_iou

    match = [max(redet, key=lambda r: box_iou(r.face.box, f.face.box), default=None) for f in found]
    match = [m if m is not None and box_iou(m.face.box, f.face.box) > 0.3 else None for m, f in zip(match, found)]
    xa, xb = to_tensor(clean), to_tensor(protected)
    mats = torch.from_numpy(np.stack([f.matrix for f in found]))
    idx = torch.zeros(len(found), dtype=torch.long)
    dets = [create_target(j) for j in judges]
    l2, l2r, each = {}, {}, []
    judge = {j: {"real_input": [], "clean_edit": [], "protected_edit": [], "protected_input": []} for j in judges}
    with torch.no_grad():
        crop_a, crop_b = warp_crops(xa, mats, g.size, idx), warp_crops(xb, mats, g.size, idx)
        for d in doms:
            c = torch.stack([g.condition(d, f.attrs) for f in found])  # conditions from the clean faces, as Ruiz et al.
            ea, eb = g(crop_a * 2 - 1, c), g(crop_b * 2 - 1, c)
            per = (ea - eb).pow(2).flatten(1).mean(1)
            each += per.tolist()
            l2[d] = float(per.mean())
            if all(m is not None for m in match):
                mb = torch.from_numpy(np.stack([m.matrix for m in match]))
                cb = torch.stack([g.condition(d, m.attrs) for m in match])
                er = edit_crops(g, xb, mb, cb, idx)
                l2r[d] = float((ea - er).pow(2).flatten(1).mean(1).mean())
            else:
                l2r[d] = None
            for j, det in zip(judges, dets):
                judge[j]["clean_edit"] += det.prob_real((ea + 1) / 2).tolist()
                judge[j]["protected_edit"] += det.prob_real((eb + 1) / 2).tolist()
                judge[j]["real_input"] += det.prob_real(crop_a).tolist()
                judge[j]["protected_input"] += det.prob_real(crop_b).tolist()
    judges_out = {j: {k: round(float(np.mean(v)), 4) for k, v in r.items()} for j, r in judge.items()}
    return DisruptionMeasure(g.name, doms, len(found), {k: round(v, 5) for k, v in l2.items()},
                             {k: (None if v is None else round(v, 5)) for k, v in l2r.items()}, sum(m is None for m in match), judges_out, each, judge)


def disruption_sheet(clean: np.ndarray, protected: np.ndarray, model: str | Manipulator = "stargan", *, domains: Sequence[str] | None = None,
                     detector: str = "mtcnn") -> np.ndarray:
    """A before/after picture ``(h, w, 3)`` uint8: row 1 the clean face crop and its edit per
    domain, row 2 the protected crop and its edits (first face, the model's crop at 2x)."""
    import cv2

    g = create_target(model) if isinstance(model, str) else model
    doms = [g.check_domain(d) for d in (domains or g.domains)]
    found = find_faces(clean, g, detector)
    if not found:
        raise NoFaceError(f"no face found by {detector} on the clean photo")
    f = found[0]
    m = torch.from_numpy(f.matrix[None])
    rows = []
    with torch.no_grad():
        for img in (clean, protected):
            x = to_tensor(img)
            tiles = [warp_crops(x, m, g.size)[0]] + [(edit_crops(g, x, m, g.condition(d, f.attrs)[None])[0] + 1) / 2 for d in doms]
            row = np.concatenate([to_uint8(t.clamp(0, 1)) for t in tiles], 1)
            rows.append(cv2.resize(row, (row.shape[1] * 2, row.shape[0] * 2), interpolation=cv2.INTER_NEAREST))
    return np.concatenate(rows, 0)
