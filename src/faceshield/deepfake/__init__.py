"""DeepFake synthesis used to measure protections: Celeb-DF's face-swap pipeline (shared-encoder
auto-encoder, alignment, mask, colour transfer, Kalman smoothing). Sits above ``models`` and
``faces``, below ``pipeline``."""
from faceshield.deepfake.autoencoder import SwapAutoEncoder, SwapModelConfig
from faceshield.deepfake.swap import FaceSwapper, SwapResult, SwappedFace, load_swap_model

__all__ = ["FaceSwapper", "SwapAutoEncoder", "SwapModelConfig", "SwapResult", "SwappedFace", "load_swap_model"]
