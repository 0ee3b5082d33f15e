"""The OTD baseline (MagDR Table 1): a classifier of StarGAN's outputs scores a disrupted photo above its clean original."""
import json

import numpy as np
import pytest
import torch

from faceshield.core.errors import NoFaceError
from faceshield.defenses.otd import OTDDetector, OTDNet, load_otd
from faceshield.models.weights import package_data
from faceshield.pipeline import ProtectConfig, protect_array

#: benchmarks/magdr_detection.py's PGD, with fewer steps
PGD = {"targets": ("stargan",), "method": "pgd", "eps": 6.4, "alpha": 2.55, "steps": 4}


@pytest.fixture(scope="module")
def face(astronaut):
    return astronaut[20:276, 100:356]


@pytest.fixture(scope="module")
def det():
    return OTDDetector()


def test_shipped_weights_load_with_their_record():
    net = load_otd()
    assert isinstance(net, OTDNet) and not net.training
    assert sum(p.numel() for p in net.parameters()) < 300_000
    sd = torch.load(package_data("otd64.pt"), weights_only=True)
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    meta = json.loads(package_data("otd64.json").read_text())
    assert meta["heldout"]["accuracy"] > 0.8 and meta["machine"]["device"] == "cpu"
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 128, 128)).shape == (2,)  # another crop size is resized


def test_a_disrupted_photo_scores_above_its_clean_original(face, det):
    disrupted = protect_array(face, ProtectConfig.from_user(PGD)).rgb
    p = det.probabilities(face)
    assert p.shape == (len(det.g.domains), 1) and ((p >= 0) & (p <= 1)).all()
    clean, prot = det.score(face), det.score(disrupted)
    assert prot > clean
    det.fit([face, np.ascontiguousarray(face[:, ::-1])], flag_rate=0.0)  # threshold: the larger clean score
    assert det(disrupted) and not det(face)


def test_needs_a_face(det):
    with pytest.raises(NoFaceError):
        det.score(np.full((128, 128, 3), 127, np.uint8))


def test_window_edits_equal_the_editors_own_edits_of_the_whole_photo(face, det):
    """MagDR's batched edits of the faces' window are the manipulator's edits of the aligned crops of the whole photo."""
    from faceshield.deepfake.edit import edit_crops, find_faces
    from faceshield.defenses.magdr import edit_faces, locate

    faces = locate(face, det.g, mesh=False)
    e = edit_faces(det.g, [faces.cut(face), faces.cut(np.ascontiguousarray(face[::-1]))], faces)
    assert e.shape == (2, len(det.g.domains), 1, 3, det.g.size, det.g.size)
    f = find_faces(face, det.g)[0]
    x = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        own = edit_crops(det.g, x, torch.from_numpy(f.matrix[None]), det.g.condition(det.g.domains[0], f.attrs)[None])
    assert (e[0, 0] - own).abs().max() < 0.02  # the same crop, up to the window's resampling of the same pixels
    assert not torch.allclose(e[0], e[1])
