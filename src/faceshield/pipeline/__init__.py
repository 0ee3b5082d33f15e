"""The protection pipeline: image in -> faces -> perturbation -> image out, and its evaluation."""
from faceshield.pipeline.evaluate import Evaluation, ExtractorResult, evaluate_pair
from faceshield.pipeline.image import ProtectConfig, ProtectedImage, protect_array

__all__ = ["Evaluation", "ExtractorResult", "ProtectConfig", "ProtectedImage", "evaluate_pair", "protect_array"]
