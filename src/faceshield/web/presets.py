"""The strengths the web page offers, named by what they cost: one place for labels and settings.

Each entry maps a page preset to a :data:`~faceshield.pipeline.config.PRESETS` name. ``seconds`` is
what a person waits for the built-in sample (512 x 512, one face): the whole job of the page (read,
protect, evaluate, face-swap and editor checks), measured on a 2-core machine at torch's default
thread count with the models already loaded (the first job after start-up loads them: about 1 s
more). Measured 2026-12-02 through the API (``TestClient``); the protection alone takes
0.6 / 1.8 / 4.1 / 5.6 s.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebPreset:
    """One strength of the page.

    Attributes:
        name: its key in forms and URLs.
        preset: the :data:`~faceshield.pipeline.config.PRESETS` entry it runs.
        seconds: measured time of the built-in sample's whole job (see the module docstring).
        what: what it buys, in a few words.
        label: what the page shows: ``name (~seconds s): what``.
    """

    name: str
    preset: str
    seconds: float
    what: str

    @property
    def label(self) -> str:
        return f"{self.name} (~{max(1, round(self.seconds))} s): {self.what}"


#: the page's strengths, cheapest first; :data:`DEFAULT_PRESET` (the command line's default) is preselected.
WEB_PRESETS: dict[str, WebPreset] = {p.name: p for p in (
    WebPreset("fast", "paper", 1.8, "Landmark Breaker on MTCNN at 15 levels (the paper); visible up close"),
    WebPreset("strong", "strong", 3.2, "3x the steps, texture-following budget, random box jitter: more landmark damage"),
    WebPreset("subtle", "subtle", 5.3, "6 levels at the visibility bound: disrupts the StarGAN editor, not landmark tools"),
    WebPreset("quality", "quality", 7.3, "100 steps, smoothed, SSIM in the objective, re-detection: the least visible landmark damage"),
)}
DEFAULT_PRESET = "subtle"
