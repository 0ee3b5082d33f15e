"""Facial-part masks from FaceMesh: soft, summing to 1, and each part where it belongs."""
import numpy as np
import pytest

from faceshield.faces.regions import REGIONS, region_labels, region_masks


@pytest.fixture(scope="module")
def mesh(astronaut):
    from faceshield.models import create_extractor

    return create_extractor("facemesh").detect(astronaut)[0].points


def test_masks_sum_to_one_and_are_soft(astronaut, mesh):
    m = region_masks(mesh, astronaut.shape[:2])
    assert m.shape == (len(REGIONS), *astronaut.shape[:2]) and m.dtype == np.float32
    assert np.allclose(m.sum(0), 1, atol=1e-5) and m.min() >= 0
    assert all(m[i].sum() > 50 for i in range(len(REGIONS)))  # every part present on a frontal face
    assert ((m > 0.05) & (m < 0.95)).any(axis=0).sum() > 0  # soft borders
    hard = region_masks(mesh, astronaut.shape[:2], soft=0)
    assert set(np.unique(hard)) == {0.0, 1.0} and np.allclose(hard.sum(0), 1)


def test_parts_are_where_the_mesh_says(astronaut, mesh):
    lab = region_labels(mesh, astronaut.shape[:2])
    at = lambda i: REGIONS[lab[int(round(mesh[i][1])), int(round(mesh[i][0]))]]  # noqa: E731
    assert at(4) == "nose"  # the nose tip
    assert at(13) == "lips"  # the upper lip's inner midpoint
    assert at(468 - 1) in ("skin", "eyes", "brows")  # a point on the face
    assert REGIONS[lab[0, 0]] == "background"
    cheek = mesh[[50, 280]].mean(0)  # between the two cheek vertices: the face, outside the parts
    assert REGIONS[lab[int(cheek[1]), int(cheek[0])]] in ("skin", "nose")
    eye = mesh[[159, 145]].mean(0)  # between the right eye's upper and lower lid
    assert REGIONS[lab[int(round(eye[1])), int(round(eye[0]))]] == "eyes"


def test_bad_points():
    with pytest.raises(ValueError, match="468"):
        region_masks(np.zeros((68, 2)), (64, 64))
