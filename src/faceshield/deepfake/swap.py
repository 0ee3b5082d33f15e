"""Celeb-DF's face-swap synthesis with a pluggable landmark extractor, so that what a protection does
to the landmarks flows through the alignment into the DeepFake.

Per face: landmarks (any registered extractor) -> Umeyama alignment onto the mean face -> aligned
crop -> shared encoder + the target identity's decoder -> colour transfer (Reinhard, Lab) onto the
target face -> warp back with the inverse transform -> blend with the feathered landmark mask. Faces
the plausibility filter rejects are left as they are (the tool drops them). For videos the landmark
tracks are Kalman-smoothed before alignment.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from faceshield.core.check import check_rgb_uint8
from faceshield.core.types import Face
from faceshield.deepfake.autoencoder import SwapAutoEncoder, SwapModelConfig
from faceshield.faces.align import Alignment, align, mean_face, to_ibug68, warp_from_crop, warp_to_crop
from faceshield.faces.colour import reinhard_transfer
from faceshield.faces.mask import landmark_mask
from faceshield.faces.plausibility import PlausibilityFilter, PlausibilityResult
from faceshield.faces.smooth import kalman_smooth
from faceshield.models import LandmarkExtractor, create_extractor
from faceshield.models.weights import load_state_dict, resolve_weights

#: Default shipped model (see ``faceshield/data/NOTICE.md``).
DEFAULT_MODEL = "swap128.pt"


def load_swap_model(path: str | os.PathLike | None = None) -> SwapAutoEncoder:
    """Load a swap auto-encoder: ``path`` > ``$FACESHIELD_SWAP_MODEL`` > the shipped model. The
    architecture comes from the JSON sidecar beside the weights (``NAME.json``); the weights are read
    with ``weights_only=True``."""
    p = resolve_weights("face-swap auto-encoder", path=path, env="FACESHIELD_SWAP_MODEL", package_file=DEFAULT_MODEL,
                        hint="train one with `faceshield train-swap` and pass --swap-model")
    side = p.with_suffix(".json")
    if not side.is_file():
        raise FileNotFoundError(f"{side}: the swap model's config sidecar is missing (written by `faceshield train-swap`)")
    cfg = SwapModelConfig(**json.loads(side.read_text())["model"])
    model = SwapAutoEncoder(cfg)
    state = load_state_dict(p)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


@dataclass
class SwappedFace:
    """One face of a swap: the landmarks used, the alignment, the filter's verdict, and whether the
    face was replaced (False when the filter dropped it)."""

    face: Face
    alignment: Alignment
    plausibility: PlausibilityResult
    swapped: bool


@dataclass
class SwapResult:
    """A DeepFake of one image.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, the swapped image.
        mask: ``(H, W)`` float32 in ``[0, 1]``, where synthesised pixels were blended in.
        faces: one entry per detected face.
    """

    image: np.ndarray
    mask: np.ndarray
    faces: list[SwappedFace] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """Faces detected but dropped by the plausibility filter."""
        return sum(not f.swapped for f in self.faces)


class FaceSwapper:
    """Swap every face of an image to ``identity``.

    Args:
        model: the auto-encoder (default: the shipped one).
        extractor: landmark extractor (a registered name or an instance); any scheme with a
            68-point mapping or MTCNN's five points works.
        identity: the decoder to render (default: the model's last identity).
        plausibility: the filter applied before swapping; None disables it.
        colour: apply Reinhard colour transfer.
    """

    def __init__(
        self,
        model: SwapAutoEncoder | None = None,
        extractor: str | LandmarkExtractor = "fan",
        identity: str | None = None,
        plausibility: PlausibilityFilter | None = PlausibilityFilter(),
        colour: bool = True,
    ) -> None:
        self.model = load_swap_model() if model is None else model.eval()
        self.extractor = create_extractor(extractor) if isinstance(extractor, str) else extractor
        ids = list(self.model.config.identities)
        self.identity = ids[-1] if identity is None else identity
        if self.identity not in ids:
            raise ValueError(f"identity {self.identity!r} not in the model's identities {ids}")
        self.plausibility = plausibility
        self.colour = colour

    @property
    def size(self) -> int:
        return self.model.config.size

    def align(self, face: Face) -> Alignment:
        return align(face.points, face.scheme, self.size, self.model.config.padding)

    def crop_mask(self, face: Face, al: Alignment) -> np.ndarray:
        """The blending mask in crop coordinates, ``(S, S)`` float32: from the face's own 68 points
        when the scheme has them, else from the mean face (MTCNN's five points)."""
        p68 = to_ibug68(face.points, face.scheme)
        if p68 is not None:
            pts = al.to_crop(p68)
        else:
            span = self.size * (1 - 2 * al.padding)
            pts = mean_face() * span + self.size * al.padding
        return landmark_mask(pts, (self.size, self.size))

    @torch.no_grad()
    def synthesise(self, crops: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` float32 aligned crops in [0, 1] -> the identity's faces, same shape."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
        return self.model(x, self.identity).permute(0, 2, 3, 1).numpy()

    def swap(self, image: np.ndarray, faces: Sequence[Face] | None = None) -> SwapResult:
        """Swap the faces of ``image`` (``(H, W, 3)`` uint8 RGB). ``faces`` overrides detection
        (e.g. Kalman-smoothed landmarks of a video)."""
        check_rgb_uint8(image)
        h, w = image.shape[:2]
        faces = self.extractor.detect(image) if faces is None else list(faces)
        out = image.astype(np.float32) / 255.0
        total = np.zeros((h, w), np.float32)
        done: list[SwappedFace] = []
        todo = []
        for f in faces:
            al = self.align(f)
            verdict = self.plausibility.check(f.points, f.scheme, (h, w)) if self.plausibility else PlausibilityResult(dropped=False)
            done.append(SwappedFace(face=f, alignment=al, plausibility=verdict, swapped=not verdict.dropped))
            if not verdict.dropped:
                todo.append((f, al))
        if todo:
            crops = np.stack([warp_to_crop(image, al).astype(np.float32) / 255.0 for _, al in todo])
            fakes = self.synthesise(crops)
            for (f, al), crop, fake in zip(todo, crops, fakes):
                m = self.crop_mask(f, al)
                if self.colour:
                    fake = reinhard_transfer(fake, crop, m)
                back = warp_from_crop(fake, al, (h, w))
                mb = warp_from_crop(m, al, (h, w))[..., None]
                out = out * (1.0 - mb) + back * mb
                total = np.maximum(total, mb[..., 0])
        return SwapResult(image=np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), mask=total, faces=done)

    def swap_video(self, frames: Sequence[np.ndarray], smooth: bool = True) -> list[SwapResult]:
        """Swap the largest face of every frame; with ``smooth`` its landmark track is
        Kalman-smoothed first (frames without a face keep their original)."""
        tracks = []
        for fr in frames:
            found = self.extractor.detect(fr)
            tracks.append(max(found, key=lambda f: f.area) if found else None)
        valid = np.array([t is not None for t in tracks])
        if smooth and valid.sum() >= 2:
            scheme = next(t.scheme for t in tracks if t is not None)
            k = scheme.n_points
            pts = np.stack([t.points if t is not None else np.zeros((k, 2)) for t in tracks])
            sm = kalman_smooth(pts, valid=valid)
            tracks = [None if t is None else Face(box=t.box, points=sm[i], scheme=t.scheme, score=t.score, roi=t.roi) for i, t in enumerate(tracks)]
        return [self.swap(fr, [] if t is None else [t]) for fr, t in zip(frames, tracks)]


__all__ = ["DEFAULT_MODEL", "FaceSwapper", "SwapResult", "SwappedFace", "load_swap_model"]
