"""The protection pipeline: image (or video) in -> faces -> perturbation -> image (video) out, and its evaluation."""
from faceshield.pipeline.evaluate import Evaluation, ExtractorResult, evaluate_pair
from faceshield.pipeline.image import PRESETS, ProtectConfig, ProtectedImage, protect_array
from faceshield.pipeline.video import FaceTracker, VideoSummary, protect_video

__all__ = [
    "PRESETS", "Evaluation", "ExtractorResult", "FaceTracker", "ProtectConfig", "ProtectedImage", "VideoSummary",
    "evaluate_pair", "protect_array", "protect_video",
]
