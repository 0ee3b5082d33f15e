"""Kalman smoothing of landmark tracks (Celeb-DF, Sec. 4.3.1: filters the landmark sequence so the
synthesised face does not flicker). A constant-velocity model per coordinate, forward Kalman filter
and Rauch-Tung-Striebel backward pass, both from filterpy."""
from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter


def kalman_smooth(tracks: np.ndarray, measurement_std: float = 2.0, process_std: float = 0.5, valid: np.ndarray | None = None) -> np.ndarray:
    """Smooth landmark tracks.

    Args:
        tracks: ``(T, K, 2)`` points in pixels over T frames.
        measurement_std: standard deviation of landmark noise, pixels.
        process_std: standard deviation of the frame-to-frame change of velocity, pixels/frame.
        valid: optional ``(T,)`` bool; frames with False have no measurement (face not found) and
            are filled by the model.

    Returns:
        ``(T, K, 2)`` smoothed points.

    All ``2K`` coordinates follow the same model and are independent, so they share one filter with
    a ``4K``-dimensional state ``[positions, velocities]``.
    """
    z = np.asarray(tracks, dtype=np.float64)
    if z.ndim != 3 or z.shape[2] != 2:
        raise ValueError(f"tracks: expected shape (T, K, 2), got {z.shape}")
    t, k, _ = z.shape
    if t < 2:
        return z.copy()
    n = 2 * k
    valid = np.ones(t, bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("kalman_smooth: no frame has a measurement")
    eye = np.eye(n)
    kf = KalmanFilter(dim_x=2 * n, dim_z=n)
    kf.F = np.block([[eye, eye], [np.zeros((n, n)), eye]])
    kf.H = np.hstack([eye, np.zeros((n, n))])
    kf.R = eye * measurement_std**2
    q = process_std**2
    kf.Q = np.block([[eye * q / 4, eye * q / 2], [eye * q / 2, eye * q]])  # discrete white-noise acceleration, dt = 1
    first = int(np.argmax(valid))
    kf.x = np.concatenate([z[first].reshape(n), np.zeros(n)])
    kf.P = np.block([[eye * measurement_std**2, np.zeros((n, n))], [np.zeros((n, n)), eye * 25.0]])
    zs = [z[i].reshape(n) if valid[i] else None for i in range(t)]
    means, covs, _, _ = kf.batch_filter(zs)
    smoothed, _, _, _ = kf.rts_smoother(means, covs)
    return smoothed[:, :n].reshape(t, k, 2)
