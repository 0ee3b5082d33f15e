"""`faceshield train-swap` on two tiny clips: seeded, writes weights + sidecar that load back."""
from __future__ import annotations

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")


def _clip(path, frames):
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=5)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())


def test_train_swap_is_reproducible_and_loadable(tmp_path, astronaut):
    pytest.importorskip("dlib")
    from faceshield.deepfake import FaceSwapper, load_swap_model
    from faceshield.training.swap import main

    img = astronaut[:320, 96:416]
    a = [np.ascontiguousarray(np.roll(img, i * 3, 1)) for i in range(10)]
    b = [np.ascontiguousarray(np.roll(img[:, ::-1], i * 3, 0)) for i in range(10)]
    _clip(tmp_path / "a.mp4", a)
    _clip(tmp_path / "b.mp4", b)
    args = ["--video-a", str(tmp_path / "a.mp4"), "--video-b", str(tmp_path / "b.mp4"), "--names", "p", "q",
            "--size", "32", "--steps", "2", "--batch", "2", "--holdout", "0", "--threads", "1"]
    main(args + ["--out", str(tmp_path / "m1.pt")])
    main(args + ["--out", str(tmp_path / "m2.pt")])
    s1, s2 = torch.load(tmp_path / "m1.pt", weights_only=True), torch.load(tmp_path / "m2.pt", weights_only=True)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    model = load_swap_model(tmp_path / "m1.pt")
    assert model.config.identities == ["p", "q"] and model.config.size == 32
    res = FaceSwapper(model, extractor="mtcnn").swap(astronaut)
    assert res.image.shape == astronaut.shape
