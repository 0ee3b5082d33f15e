"""MesoNet DeepFake / Face2Face detectors (Afchar et al., "MesoNet: a Compact Facial Video Forgery
Detection Network", WIFS 2018), ported to torch.

Provenance: the architectures follow ``classifiers.py`` of https://github.com/DariusAf/MesoNet
(re-written here, no code copied); the weights are the authors' released Keras 2.1.5 HDF5 files
``Meso4_DF.h5``, ``Meso4_F2F.h5``, ``MesoInception_DF.h5``, ``MesoInception_F2F.h5``, read directly
with h5py. Those files and the original code are licensed under the Apache License 2.0 (copyright
2018 Darius Afchar, Vincent Nozick, National Institute of Informatics; see the ``LICENSE`` and
``NOTICE`` shipped next to the weights). The weights are *not* part of this package: point
``$FACESHIELD_MESONET_DIR`` at the directory that holds them or pass ``path=``.

Conventions of the port:

* input ``(B, 3, 256, 256)`` float RGB in ``[0, 1]`` (the original rescales uint8 by ``1/255``);
* output ``(B,)``: the logit of "real" (the original trains with folders ``df`` -> 0,
  ``real`` -> 1 and ends in a sigmoid), so ``sigmoid(logit)`` is the probability the face is real;
* Keras details reproduced: ``Conv2D(..., activation='relu')`` then ``BatchNormalization``
  (eps ``1e-3``), ``'same'`` padding (symmetric here, all kernels are odd and strides 1),
  ``MaxPooling2D(padding='same')`` (every feature size divides the pool, so it equals a plain
  pool), a channels-last ``Flatten`` before the first Dense layer, ``LeakyReLU(0.1)`` between the
  two Dense layers, Dropout = identity at inference.
* Weights are matched the way Keras' ``load_weights`` matches them: by the order of the layers
  that carry weights in the file's ``layer_names`` (the numeric suffixes of the names differ from
  file to file). Every shape is checked; anything unexpected raises ``ValueError``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceshield.core.check import check_rgb_uint8
from faceshield.models.weights import resolve_weights

#: Environment variable naming the directory with the original ``.h5`` files.
WEIGHTS_ENV = "FACESHIELD_MESONET_DIR"
#: Input side length the networks were trained for (the Dense layer needs exactly 8x8x16).
INPUT_SIZE = 256
#: Keras ``BatchNormalization`` default epsilon.
KERAS_BN_EPS = 1e-3
#: variant -> (architecture, original file name)
VARIANTS: dict[str, tuple[str, str]] = {
    "meso4_df": ("meso4", "Meso4_DF.h5"),
    "meso4_f2f": ("meso4", "Meso4_F2F.h5"),
    "mesoinception_df": ("mesoinception", "MesoInception_DF.h5"),
    "mesoinception_f2f": ("mesoinception", "MesoInception_F2F.h5"),
}
_HINT = (
    f"set ${WEIGHTS_ENV} to the directory with the original MesoNet .h5 files "
    "(e.g. ../shared/data/weights/mesonet; they come from github.com/DariusAf/MesoNet, Apache-2.0)"
)


def _conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Conv2d:
    """Stride-1 conv with Keras ``'same'`` padding (odd ``k``: symmetric ``dilation*(k-1)/2``)."""
    return nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=KERAS_BN_EPS)


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != INPUT_SIZE or x.shape[3] != INPUT_SIZE:
        raise ValueError(f"MesoNet: expected input (B, 3, {INPUT_SIZE}, {INPUT_SIZE}), got {tuple(x.shape)}")


class _MesoBase(nn.Module):
    """Shared head: ``(B, 16, 8, 8)`` features -> channels-last flatten -> Dense(16) ->
    LeakyReLU(0.1) -> Dense(1) logit."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8 * 8 * 16, 16)
        self.fc2 = nn.Linear(16, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, 3, 256, 256)`` RGB in ``[0, 1]`` -> ``(B,)`` logit of "real"."""
        _check_input(x)
        f = self.features(x)  # (B, 16, 8, 8)
        f = f.permute(0, 2, 3, 1).reshape(f.shape[0], -1)  # Keras Flatten is channels-last
        h = F.leaky_relu(self.fc1(f), 0.1)
        return self.fc2(h).squeeze(1)

    def prob_real(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, 3, 256, 256)`` RGB in ``[0, 1]`` -> ``(B,)`` probability in ``[0, 1]`` that
        the face is real (what the original Keras model outputs)."""
        return torch.sigmoid(self(x))

    def keras_layers(self) -> list[nn.Module]:
        """The modules with weights, in the order Keras lists them in the weight file."""
        raise NotImplementedError  # pragma: no cover


class Meso4(_MesoBase):
    """Meso-4: four conv(+ReLU)+BN+max-pool blocks (8, 8, 16, 16 channels; kernels 3, 5, 5, 5;
    pools 2, 2, 2, 4), then the Dense head.

    ``forward(x)``: ``(B, 3, 256, 256)`` RGB in ``[0, 1]`` -> ``(B,)`` logit of "real".
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(3, 8, 3), _bn(8)
        self.conv2, self.bn2 = _conv(8, 8, 5), _bn(8)
        self.conv3, self.bn3 = _conv(8, 16, 5), _bn(16)
        self.conv4, self.bn4 = _conv(16, 16, 5), _bn(16)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 256, 256)`` -> ``(B, 16, 8, 8)``."""
        x = F.max_pool2d(self.bn1(F.relu(self.conv1(x))), 2)
        x = F.max_pool2d(self.bn2(F.relu(self.conv2(x))), 2)
        x = F.max_pool2d(self.bn3(F.relu(self.conv3(x))), 2)
        return F.max_pool2d(self.bn4(F.relu(self.conv4(x))), 4)

    def keras_layers(self) -> list[nn.Module]:
        return [self.conv1, self.bn1, self.conv2, self.bn2, self.conv3, self.bn3, self.conv4, self.bn4,
                self.fc1, self.fc2]


class InceptionBlock(nn.Module):
    """MesoInception's inception module, channels ``a + b + c + d`` out, concatenated in the order
    1x1 (``a``) | 1x1 -> 3x3 (``b``) | 1x1 -> 3x3 dilation 2 (``c``) | 1x1 -> 3x3 dilation 3 (``d``),
    every conv followed by ReLU. ``(B, cin, H, W)`` -> ``(B, a+b+c+d, H, W)``."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.b1 = _conv(cin, a, 1)
        self.b2_reduce, self.b2 = _conv(cin, b, 1), _conv(b, b, 3)
        self.b3_reduce, self.b3 = _conv(cin, c, 1), _conv(c, c, 3, dilation=2)
        self.b4_reduce, self.b4 = _conv(cin, d, 1), _conv(d, d, 3, dilation=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = F.relu(self.b1(x))
        y2 = F.relu(self.b2(F.relu(self.b2_reduce(x))))
        y3 = F.relu(self.b3(F.relu(self.b3_reduce(x))))
        y4 = F.relu(self.b4(F.relu(self.b4_reduce(x))))
        return torch.cat([y1, y2, y3, y4], dim=1)

    def keras_layers(self) -> list[nn.Module]:
        # Keras 2.1.5's topological order: the three reducers, then the direct 1x1, then the 3x3s.
        return [self.b2_reduce, self.b3_reduce, self.b4_reduce, self.b1, self.b2, self.b3, self.b4]


class MesoInception4(_MesoBase):
    """MesoInception-4: inception(1, 4, 4, 2)+BN+pool 2, inception(2, 4, 4, 2)+BN+pool 2, then
    conv 5x5 16 + BN + pool 2, conv 5x5 16 + BN + pool 4, then the Dense head.

    ``forward(x)``: ``(B, 3, 256, 256)`` RGB in ``[0, 1]`` -> ``(B,)`` logit of "real".
    """

    def __init__(self) -> None:
        super().__init__()
        self.inc1, self.bn1 = InceptionBlock(3, 1, 4, 4, 2), _bn(11)
        self.inc2, self.bn2 = InceptionBlock(11, 2, 4, 4, 2), _bn(12)
        self.conv3, self.bn3 = _conv(12, 16, 5), _bn(16)
        self.conv4, self.bn4 = _conv(16, 16, 5), _bn(16)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 256, 256)`` -> ``(B, 16, 8, 8)``."""
        x = F.max_pool2d(self.bn1(self.inc1(x)), 2)
        x = F.max_pool2d(self.bn2(self.inc2(x)), 2)
        x = F.max_pool2d(self.bn3(F.relu(self.conv3(x))), 2)
        return F.max_pool2d(self.bn4(F.relu(self.conv4(x))), 4)

    def keras_layers(self) -> list[nn.Module]:
        return [*self.inc1.keras_layers(), self.bn1, *self.inc2.keras_layers(), self.bn2,
                self.conv3, self.bn3, self.conv4, self.bn4, self.fc1, self.fc2]


# --------------------------------------------------------------------------------------------
# Keras HDF5 weights
# --------------------------------------------------------------------------------------------


def _keras_param_names(m: nn.Module) -> tuple[str, ...]:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        return ("kernel", "bias")
    if isinstance(m, nn.BatchNorm2d):
        return ("gamma", "beta", "moving_mean", "moving_variance")
    raise TypeError(type(m))  # pragma: no cover


def _expected_keras_shape(m: nn.Module, name: str) -> tuple[int, ...]:
    if isinstance(m, nn.Conv2d):
        o, i, kh, kw = m.weight.shape
        return (kh, kw, i, o) if name == "kernel" else (o,)
    if isinstance(m, nn.Linear):
        o, i = m.weight.shape
        return (i, o) if name == "kernel" else (o,)
    return (m.num_features,)


def _read_keras_h5(path: Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The layers with weights of a Keras 2 ``save_weights``/``save`` HDF5 file, in file order:
    ``[(layer_name, {"kernel": ..., "bias": ..., "gamma": ...}), ...]``."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file (expected Keras 2 MesoNet weights): {e}") from None
    with h5:
        root = h5["model_weights"] if "model_weights" in h5 else h5
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path}: no 'layer_names' attribute; expected a Keras 2 HDF5 weight file")
        layers = []
        for raw in root.attrs["layer_names"]:
            lname = raw.decode() if isinstance(raw, bytes) else str(raw)
            if lname not in root:
                raise ValueError(f"{path}: layer {lname!r} listed in layer_names is missing")
            g = root[lname]
            wnames = [w.decode() if isinstance(w, bytes) else str(w) for w in g.attrs.get("weight_names", [])]
            if not wnames:
                continue
            params: dict[str, np.ndarray] = {}
            for wn in wnames:
                if wn not in g:
                    raise ValueError(f"{path}: weight {lname}/{wn} listed but missing")
                short = wn.rsplit("/", 1)[-1].split(":", 1)[0]
                params[short] = np.asarray(g[wn], dtype=np.float32)
            layers.append((lname, params))
        return layers


def load_keras_weights(model: _MesoBase, path: str | os.PathLike) -> _MesoBase:
    """Copy the weights of a Keras MesoNet HDF5 file into ``model`` (in place; returned).

    Raises:
        ValueError: the file is not HDF5 / not Keras, has a different number of weighted layers,
            a missing parameter or a shape that does not fit the architecture; the message names
            the file, the layer and what was expected.
    """
    path = Path(path)
    layers = _read_keras_h5(path)
    targets = model.keras_layers()
    arch = type(model).__name__
    if len(layers) != len(targets):
        raise ValueError(
            f"{path}: {len(layers)} layers with weights, expected {len(targets)} for {arch} "
            f"(found {[n for n, _ in layers]})"
        )
    with torch.no_grad():
        for (lname, params), m in zip(layers, targets):
            kind = type(m).__name__
            for pname in _keras_param_names(m):
                if pname not in params:
                    raise ValueError(f"{path}: layer {lname!r} has no {pname!r}; expected a {kind} "
                                     f"with {_keras_param_names(m)} (found {sorted(params)})")
                arr = params[pname]
                want = _expected_keras_shape(m, pname)
                if tuple(arr.shape) != want:
                    raise ValueError(f"{path}: layer {lname!r} {pname} has shape {tuple(arr.shape)}, "
                                     f"expected {want} for {arch}'s {kind}")
                t = torch.from_numpy(arr)
                if isinstance(m, nn.Conv2d) and pname == "kernel":
                    m.weight.copy_(t.permute(3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
                elif isinstance(m, nn.Linear) and pname == "kernel":
                    m.weight.copy_(t.T)  # (in, out) -> (out, in)
                elif pname == "bias":
                    m.bias.copy_(t)
                elif pname == "gamma":
                    m.weight.copy_(t)
                elif pname == "beta":
                    m.bias.copy_(t)
                elif pname == "moving_mean":
                    m.running_mean.copy_(t)
                else:
                    m.running_var.copy_(t)
    return model


def mesonet_weights_path(variant: str, path: str | os.PathLike | None = None) -> Path:
    """Resolve the ``.h5`` file of ``variant``: explicit ``path`` >
    ``$FACESHIELD_MESONET_DIR/<original file name>``.

    Raises:
        ValueError: unknown variant.
        WeightsNotFoundError: nothing found.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown MesoNet variant {variant!r}; expected one of {tuple(VARIANTS)}")
    filename = VARIANTS[variant][1]
    d = os.environ.get(WEIGHTS_ENV)
    candidates = (Path(d).expanduser() / filename,) if d else ()
    hint = _HINT if d else f"${WEIGHTS_ENV} is unset; " + _HINT
    return resolve_weights(f"MesoNet {variant} ({filename})", path=path, candidates=candidates, hint=hint)


def load_mesonet(variant: str, path: str | os.PathLike | None = None) -> _MesoBase:
    """Build ``variant`` (``"meso4_df"``, ``"meso4_f2f"``, ``"mesoinception_df"``,
    ``"mesoinception_f2f"``) with the original weights, in eval mode, on the CPU, float32.

    Raises:
        ValueError: unknown variant, or a weight file of the wrong format/shape.
        WeightsNotFoundError: the file was not found (see :func:`mesonet_weights_path`).
    """
    file = mesonet_weights_path(variant, path)
    model: _MesoBase = Meso4() if VARIANTS[variant][0] == "meso4" else MesoInception4()
    load_keras_weights(model, file)
    return model.eval()


def face_input(rgb_face: np.ndarray) -> torch.Tensor:
    """An ``(h, w, 3)`` uint8 RGB face crop -> ``(1, 3, 256, 256)`` float32 in ``[0, 1]``.

    Resized with ``cv2.INTER_AREA`` when shrinking, ``cv2.INTER_LINEAR`` when enlarging. (The
    original pipeline used Keras' ``ImageDataGenerator``, i.e. PIL nearest-neighbour resizing.)
    """
    import cv2

    img = check_rgb_uint8(rgb_face, "rgb_face")
    h, w = img.shape[:2]
    if (h, w) != (INPUT_SIZE, INPUT_SIZE):
        interp = cv2.INTER_AREA if h * w > INPUT_SIZE * INPUT_SIZE else cv2.INTER_LINEAR
        img = cv2.resize(np.ascontiguousarray(img), (INPUT_SIZE, INPUT_SIZE), interpolation=interp)
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


__all__ = [
    "INPUT_SIZE",
    "VARIANTS",
    "WEIGHTS_ENV",
    "InceptionBlock",
    "Meso4",
    "MesoInception4",
    "face_input",
    "load_keras_weights",
    "load_mesonet",
    "mesonet_weights_path",
]
