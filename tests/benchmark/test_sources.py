"""Benchmark images: the sample, directories, globs, HELEN test images (skipped with a note when absent)."""
import numpy as np
import pytest
from PIL import Image

from faceshield.benchmark import BenchConfigError, ImageLoader, parse_config


def _sources(images, **top):
    return parse_config({"images": images, "tables": {"table2": None}, **top}).images


@pytest.fixture
def folder(tmp_path, astronaut):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("b", "a", "c"):
        Image.fromarray(astronaut[:200, 100:300]).save(d / f"{name}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_sample_directory_glob_and_limit(folder):
    images, notes = ImageLoader().load(_sources(["sample", str(folder), {"path": str(folder / "*.png"), "limit": 1}]))
    assert [i.name for i in images] == ["astronaut", "a", "b", "c", "a_2"]  # sorted; repeated names get a suffix
    assert images[0].rgb.shape == (512, 512, 3) and images[1].rgb.dtype == np.uint8 and not notes
    few, _ = ImageLoader().load(_sources(["sample", str(folder)]), limit=2)
    assert [i.name for i in few] == ["astronaut", "a"]


def test_max_side_shrinks(folder):
    cfg = parse_config({"images": ["sample"], "max_side": 128, "tables": {"table2": None}})
    (img,), _ = ImageLoader(cfg.max_side).load(cfg.images)
    assert img.rgb.shape == (128, 128, 3)


def test_missing_data_is_a_note_missing_path_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESHIELD_DATA", str(tmp_path / "nodata"))
    images, notes = ImageLoader().load(_sources(["sample", {"helen_test": 3}, str(tmp_path / "none*.jpg")]))
    assert [i.name for i in images] == ["astronaut"]
    assert any("helen_test skipped" in n and "FACESHIELD_DATA" in n for n in notes)
    assert any("matched no image" in n for n in notes)
    images, notes = ImageLoader().load(_sources(["$FACESHIELD_DATA/photos", {"video": "$FACESHIELD_DATA/videos/x.mp4"}]))
    assert not images and len(notes) == 2 and all("skipped" in n for n in notes)
    with pytest.raises(BenchConfigError, match=r"images: '.*nowhere' not found"):
        ImageLoader().load(_sources([str(tmp_path / "nowhere")]))
    with pytest.raises(BenchConfigError, match=r"images: video '.*clip.mp4' not found"):
        ImageLoader().load(_sources([{"video": str(tmp_path / "clip.mp4")}]))


def test_helen_test(data_root):
    images, notes = ImageLoader().load(_sources([{"helen_test": 2}]))
    assert len(images) == 2 and all(i.name.startswith("helen_") for i in images) and not notes
