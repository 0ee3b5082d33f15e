"""Normalised mean error (NME) of facial landmarks.

NME = mean_k ||p_k - g_k||_2 / ||g_i - g_j||_2, a fraction (not a percent), with (i, j) the point
scheme's normaliser: outer eye corners 36/45 for iBUG-68, eye centres 0/1 for MTCNN's 5 points,
60/72 for WFLW-98, 33/263 for FaceMesh-468. As in Landmark Breaker, ground truth ``g`` is the same
extractor's output on the clean image.
"""
from __future__ import annotations

import numpy as np
import torch

from faceshield.core.types import PointScheme


def nme(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor, scheme: PointScheme):
    """NME of predicted points against ground truth.

    Args:
        pred: ``(..., K, 2)`` points in pixels.
        gt: ``(..., K, 2)`` ground-truth points in the same pixels.
        scheme: point convention giving K and the normaliser indices.

    Returns:
        ``(...)`` NME as a fraction (same array type as the input; differentiable for tensors).
    """
    if pred.shape != gt.shape or pred.shape[-2:] != (scheme.n_points, 2):
        raise ValueError(f"nme: expected pred and gt of shape (..., {scheme.n_points}, 2), got {tuple(pred.shape)} and {tuple(gt.shape)}")
    i, j = scheme.normaliser
    if isinstance(pred, torch.Tensor):
        gt = torch.as_tensor(gt, dtype=pred.dtype, device=pred.device)
        d = torch.linalg.vector_norm(gt[..., i, :] - gt[..., j, :], dim=-1).clamp_min(1e-6)
        return torch.linalg.vector_norm(pred - gt, dim=-1).mean(-1) / d
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    d = np.maximum(np.linalg.norm(gt[..., i, :] - gt[..., j, :], axis=-1), 1e-6)
    return np.linalg.norm(pred - gt, axis=-1).mean(-1) / d
