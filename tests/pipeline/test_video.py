"""protect_video: every face frame is perturbed within eps, frame count / rate / audio survive, key-frame
mode carries the perturbation, the tracker bridges missed detections, failures leave no output."""
import numpy as np
import pytest

from faceshield.core.errors import NoFaceError, OutputExistsError, VideoReadError, VideoWriteError
from faceshield.core.types import MTCNN5, Face
from faceshield.io.video import probe_video, read_video, write_video
from faceshield.metrics import box_mask
from faceshield.models import create_extractor
from faceshield.pipeline import FaceTracker, ProtectConfig, protect_video
from faceshield.pipeline.video import measure_video

CONFIG = ProtectConfig(steps=2, eps=8 / 255, alpha=4 / 255, jitter=3)
EPS = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_clip):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_clip(path, n=10, size=160)
    return path


@pytest.fixture(scope="module")
def clean(clip):
    return read_video(clip).array().astype(np.int16)  # the decoded frames protect_video starts from


@pytest.fixture(scope="module")
def mtcnn():
    return create_extractor("mtcnn")


def test_every_frame_protected_within_budget(tmp_path, clip, clean, mtcnn):
    before = clip.read_bytes()
    calls = []
    s = protect_video(clip, tmp_path / "p.mkv", CONFIG, codec="ffv1", extractors={"mtcnn": mtcnn}, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (10, 10) and len(calls) == 10
    assert (s.frames, s.fps, s.key_frames, s.faces_per_frame, s.audio) == (10, 25.0, 10, [1] * 10, True)
    assert 0.9 < s.ssim_i < 1 and 0 < s.linf <= EPS and s.settings["keyframe_interval"] == 1 and s.settings["eps_levels"] == EPS
    info = probe_video(tmp_path / "p.mkv")
    assert (info.frames, info.fps, info.audio_codec) == (10, 25, "aac")
    d = np.abs(read_video(tmp_path / "p.mkv").array().astype(np.int16) - clean)  # lossless: exactly what was protected
    per_frame = d.reshape(10, -1).max(1)
    assert (per_frame > 0).all() and (per_frame <= EPS).all()
    assert clip.read_bytes() == before
    assert s.to_dict()["frames_with_faces"] == 10


def test_h264_output_changed_on_the_face(tmp_path, clip, clean, mtcnn):
    s = protect_video(clip, tmp_path / "p.mp4", CONFIG, crf=18, extractors={"mtcnn": mtcnn})
    info = probe_video(tmp_path / "p.mp4")
    assert (info.frames, info.fps, info.codec, info.audio_codec) == (10, 25, "h264", "aac")
    assert info.audio_duration == pytest.approx(probe_video(clip).audio_duration, abs=0.05)
    assert s.settings["codec"] == "h264" and s.settings["crf"] == 18
    write_video(tmp_path / "plain.mp4", clean.astype(np.uint8), 25, crf=18)  # the same re-encoding, unprotected
    d = np.abs(read_video(tmp_path / "p.mp4").array().astype(np.int16) - read_video(tmp_path / "plain.mp4").array())
    box = mtcnn.detect(clean[0].astype(np.uint8))[0].box
    x0, y0, x1, y1 = box.astype(int)
    face = d[:, y0:y1, x0:x1].mean()
    far = d[:, ~box_mask(d.shape[1:3], [box], scale=2.2)].mean()  # beyond the perturbed region
    assert face > 1.5 and face > 2 * far, (face, far)
    a = s.after_codec  # measured on the written H.264 file
    assert a.frames == 10 and a.faces["mtcnn"] == 10 and a.normaliser["mtcnn"]
    assert a.ssim_i < 1 and a.ssim_i_min <= a.ssim_i
    assert a.faces_lost["mtcnn"] == 10 or a.nme["mtcnn"] > 0.01
    assert s.to_dict()["after_codec"]["nme"] == a.nme
    v = a.visibility  # one frame of ten measured (every 25th)
    assert a.visibility_frames == 1 and v["ssimulacra2_face"] < 100 and v["flip_face_worst"] >= v["flip_face"] > 0
    assert s.to_dict()["after_codec"]["visibility"] == v


def test_measure_video_of_a_file_against_itself_is_perfect(clip, mtcnn):
    m = measure_video(clip, clip, {"mtcnn": mtcnn}, every=3)
    assert (m.frames, m.ssim_i, m.nme["mtcnn"], m.faces["mtcnn"], m.faces_lost["mtcnn"]) == (4, 1.0, 0.0, 4, 0)


def test_keyframe_mode_carries_the_perturbation(tmp_path, clip, clean, mtcnn):
    s = protect_video(clip, tmp_path / "k.mkv", CONFIG, codec="ffv1", keyframe_interval=4, carry="fixed", extractors={"mtcnn": mtcnn})
    assert s.key_frames == 3 and s.faces_per_frame == [1] * 10 and s.settings["carry"] == "fixed"
    delta = read_video(tmp_path / "k.mkv").array().astype(np.int16) - clean
    for key, following in ((0, (1, 2, 3)), (4, (5, 6, 7)), (8, (9,))):
        for i in following:
            inside = (clean[i] + delta[key] >= 0) & (clean[i] + delta[key] <= 255)  # not clipped
            assert np.array_equal(delta[i][inside], delta[key][inside]), (key, i)
    assert np.abs(delta).max() <= EPS
    s = protect_video(clip, tmp_path / "f.mkv", CONFIG, codec="ffv1", keyframe_interval=4, extractors={"mtcnn": mtcnn})
    delta = read_video(tmp_path / "f.mkv").array().astype(np.int16) - clean
    per_frame = np.abs(delta).reshape(10, -1).max(1)
    assert s.key_frames == 3 and (per_frame > 0).all() and (per_frame <= EPS).all()


def test_tracker_bridges_missed_detections():
    def face(x):
        return Face(box=[x, 10, x + 40, 50], points=np.zeros((5, 2)), scheme=MTCNN5)

    tr = FaceTracker(min_iou=0.3, max_missing=2)
    a = tr.update([face(0), face(100)])
    assert [t.track_id for t in a] == [0, 1] and not any(t.reused for t in a)
    b = tr.update([face(102), face(3)])  # order changes: matched by IoU
    assert [t.track_id for t in b] == [1, 0]
    c = tr.update([face(5)])  # the right face is missed: its last box is reused
    assert [(t.track_id, t.reused) for t in c] == [(0, False), (1, True)] and c[1].face.box[0] == 102
    tr.update([face(6)])
    assert [t.track_id for t in tr.update([face(7)])] == [0]  # missed 3 > 2 times: track ended
    assert [t.track_id for t in tr.update([face(7), face(300)])] == [0, 2]  # a new face gets a new id
    with pytest.raises(ValueError, match="min_iou"):
        FaceTracker(min_iou=0)


def test_missed_detection_reuses_the_track(tmp_path, clip, mtcnn):
    flaky = create_extractor("mtcnn")
    real, n = flaky.detect, [0]

    def detect(img):
        n[0] += 1
        return [] if n[0] in (3, 4) else real(img)

    flaky.detect = detect
    s = protect_video(clip, tmp_path / "t.mkv", CONFIG, codec="ffv1", keyframe_interval=10, extractors={"mtcnn": flaky})
    assert s.faces_per_frame == [1] * 10 and s.reused_frames == 2 and s.key_frames == 1


def test_failures_leave_no_output(tmp_path, clip, make_clip, mtcnn):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (tmp_path / "notes.mp4").write_text("hello")
    for bad in ("random.mp4", "notes.mp4", "missing.mp4"):
        with pytest.raises(VideoReadError, match=f"cannot read .*{bad}"):
            protect_video(tmp_path / bad, out / "a.mp4", CONFIG, extractors={"mtcnn": mtcnn})
    with pytest.raises(VideoWriteError, match="unknown or unavailable video codec 'nonesuch'"):
        protect_video(clip, out / "a.mp4", CONFIG, codec="nonesuch", extractors={"mtcnn": mtcnn})
    with pytest.raises(VideoWriteError, match="h264_nvenc"):
        protect_video(clip, out / "a.mp4", CONFIG, codec="h264_nvenc", extractors={"mtcnn": mtcnn})
    make_clip(tmp_path / "gray.mp4", n=4, size=96, faces=False)
    with pytest.raises(NoFaceError, match="no face found by mtcnn in any of the 4 frames"):
        protect_video(tmp_path / "gray.mp4", out / "a.mp4", CONFIG, extractors={"mtcnn": mtcnn})
    with pytest.raises(OutputExistsError, match="would replace the original"):
        protect_video(clip, clip, CONFIG, overwrite=True, extractors={"mtcnn": mtcnn})
    with pytest.raises(ValueError, match="keyframe_interval"):
        protect_video(clip, out / "a.mp4", CONFIG, keyframe_interval=0)
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize("targets", [("stargan",), ("mtcnn", "stargan")])
def test_manipulator_targets_protect_video_frames(tmp_path, clip, clean, mtcnn, targets):
    """An editor among the targets: its faces are tracked by the forger's detector and every key
    frame's edits are disrupted; the budget holds on every frame."""
    from faceshield.deepfake.edit import measure_disruption

    cfg = ProtectConfig(targets=targets, steps=3, eps=6 / 255, alpha=2 / 255, **({"jitter": 3} if "mtcnn" in targets else {}))
    s = protect_video(clip, tmp_path / "p.mkv", cfg, codec="ffv1", keyframe_interval=5, extractors={"mtcnn": mtcnn})
    assert (s.frames, s.key_frames, s.faces_per_frame) == (10, 2, [1] * 10)
    prot = read_video(tmp_path / "p.mkv").array()
    d = np.abs(prot.astype(np.int16) - clean).reshape(10, -1).max(1)
    assert (d > 0).all() and (d <= 6).all()
    m = measure_disruption(clean[0].astype(np.uint8), prot[0], "stargan")
    assert m.disrupted > 0  # the key frame's edits come out changed
