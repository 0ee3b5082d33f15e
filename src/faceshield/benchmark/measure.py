"""What every table measures per row, aggregated over images: NME per extractor (mean over the faces
still found), faces lost, SSIM_I, mask-SSIM and the time a protection took."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from faceshield.benchmark.config import ATTACK_DEFAULTS
from faceshield.benchmark.report import fmt
from faceshield.pipeline import Evaluation

NME_INTRO = (
    "Every extractor runs its full pipeline (detector included) on the 8-bit images. NME: fraction of the "
    "scheme's normaliser (MTCNN: eye centres; 68-point models: outer eye corners 36/45; FaceMesh: outer eye "
    "corners 33/263), ground truth = the extractor's own output on the clean image, mean over faces still "
    "found; 'lost' = faces the extractor no longer finds (a protection success, not in the NME). SSIM_I: whole "
    "image; mask-SSIM: the protected face boxes. Visibility on the face (boxes x 1.2, the worst face): SSIMULACRA 2 "
    "(100 identical, > 90 visually lossless, 70-90 high quality, < 50 visibly degraded), FLIP (0 identical) and, where "
    "the program is installed, Butteraugli (< 1 not visible, > 3 clearly visible); SSIM is not a visibility measure."
)
#: a face counts as protected when its extractor loses it or misplaces its points by this NME or more
PROTECTED_NME = 0.4
#: the visibility measures every table records (mean over images; ``*_face`` on the face region)
VISIBILITY_COLUMNS = ["ssimulacra2_face", "flip_face", "butteraugli_face", "ssimulacra2", "flip", "butteraugli"]
VISIBILITY_HEADER = ["SSIMULACRA2 face", "FLIP face", "Butteraugli face"]


def _mean(v: Sequence[float]) -> float | None:
    return round(float(np.mean(v)), 5) if len(v) else None


class Accumulator:
    """Sums the evaluations of one row over images."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.nme: dict[str, list[float]] = {n: [] for n in self.names}
        self.lost = dict.fromkeys(self.names, 0)
        self.protected = dict.fromkeys(self.names, 0)
        self.faces = dict.fromkeys(self.names, 0)
        self.ssim_i: list[float] = []
        self.mask_ssim: list[float] = []
        self.seconds: list[float] = []
        self.visibility: dict[str, list[float]] = {k: [] for k in VISIBILITY_COLUMNS}
        self.no_face = 0

    def add(self, ev: Evaluation, seconds: float | None = None) -> None:
        self.ssim_i.append(ev.ssim_i)
        if ev.mask_ssim is not None:
            self.mask_ssim.append(ev.mask_ssim)
        if seconds is not None:
            self.seconds.append(seconds)
        for k in VISIBILITY_COLUMNS:
            if ev.visibility.get(k) is not None:
                self.visibility[k].append(ev.visibility[k])
        for r in ev.extractors:
            self.faces[r.extractor] += r.faces_clean
            self.lost[r.extractor] += r.faces_lost
            self.protected[r.extractor] += sum(v is None or v >= PROTECTED_NME for v in r.nme_per_face)
            self.nme[r.extractor] += [v for v in r.nme_per_face if v is not None]

    def record(self) -> dict:
        d: dict[str, Any] = {}
        for n in self.names:
            d[f"nme_{n}"] = _mean(self.nme[n])
            d[f"lost_{n}"] = self.lost[n]
            d[f"faces_{n}"] = self.faces[n]
            d[f"protected_{n}"] = self.protected[n]
        d.update(ssim_i=_mean(self.ssim_i), mask_ssim=_mean(self.mask_ssim), **{k: _mean(v) for k, v in self.visibility.items()},
                 images=len(self.ssim_i), no_face=self.no_face, seconds_per_image=_mean(self.seconds))
        return d


def nme_columns(names: Sequence[str]) -> list[str]:
    return [f"{p}_{n}" for n in names for p in ("nme", "lost", "faces", "protected")]


METRIC_COLUMNS = ["ssim_i", "mask_ssim", *VISIBILITY_COLUMNS, "images", "no_face", "seconds_per_image"]


def visibility_cells(rec: Mapping) -> list:
    """The face-region visibility cells of a record, in :data:`VISIBILITY_HEADER` order."""
    return [fmt(rec.get("ssimulacra2_face"), 1), fmt(rec.get("flip_face"), 3), fmt(rec.get("butteraugli_face"), 2)]


def nme_header(evaluators) -> list[str]:
    return [f"NME {e.name} ({e.kind.value}" + (f", same network as {e.info.same_network_as})" if e.info.same_network_as else ")")
            for e in evaluators]


def is_white_box(evaluator, made_on: str) -> bool:
    """Whether a perturbation made on ``made_on`` (``"fan"``, ``"mtcnn+fan"``) is white-box for
    ``evaluator``: made on it, or on the extractor that runs the same network (``same_network_as``)."""
    sources = made_on.split("+")
    return evaluator.name in sources or evaluator.info.same_network_as in sources


def nme_cell(rec: Mapping, name: str, white_box: bool = False) -> str:
    """``0.339 (lost 1/22, protected 5/22)``: mean NME over faces still found, faces lost, faces
    protected (lost or NME >= :data:`PROTECTED_NME`); bold when ``white_box`` (see :func:`is_white_box`)."""
    v = fmt(rec.get(f"nme_{name}"))
    if white_box and v != "-":
        v = f"**{v}**"
    n = rec.get(f"faces_{name}", 0)
    return f"{v} (lost {rec.get(f'lost_{name}', 0)}/{n}, protected {rec.get(f'protected_{name}', 0)}/{n})"


def attack_settings(attack: Mapping[str, Any], seed: int, rows: Sequence = ()) -> dict:
    """The run's attack settings as the tables print them (8-bit levels); options left at their
    defaults are omitted, and each row of ``rows`` (:class:`~faceshield.benchmark.config.RowSpec`)
    that overrides them is listed with its overrides."""
    s = {"eps": attack["eps"], "alpha": attack["alpha"], "T": attack["steps"], "decay": attack["decay"], "budget": attack["budget"],
         "mask": f"{attack['mask']} x{attack['mask_scale']:g}" if attack["mask"] == "face" else attack["mask"], "jitter": attack["jitter"]}
    for k in ("jitter_mode", "perceptual", "smooth", "ssim_weight", "push", "redetect", "nme_cap", "hide", "feature_weight"):
        if attack[k] != ATTACK_DEFAULTS[k]:
            s[k] = attack[k]
    if attack["eot"]:
        s["eot"] = list(attack["eot"])
        s["eot_samples"] = attack["eot_samples"]
    s["seed"] = seed
    s["units"] = "eps/alpha in 8-bit levels"
    show = lambda v: f"{v:g}" if isinstance(v, float) else ",".join(map(str, v)) if isinstance(v, list) else str(v)  # noqa: E731
    overrides = [f"{r.label} = " + " ".join(f"{k} {show(v)}" for k, v in r.overrides.items()) for r in rows if r.overrides]
    if overrides:
        s["rows"] = "; ".join(overrides)
    return s
