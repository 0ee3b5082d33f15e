"""`faceshield serve`'s API: a photo protected end to end, one clear message per bad file, limits
checked by content, nothing from the request used as a file name, and the janitor."""
import io
import re
import time
import warnings

import numpy as np
import pytest
from PIL import Image

with warnings.catch_warnings():  # starlette's TestClient warns that it wants httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from faceshield.models.weights import package_data
from faceshield.web import WEB_PRESETS, ServeSettings, create_app
from faceshield.web.uploads import display_name, download_stem, sniff_kind

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SAMPLE = package_data("astronaut.png")
OK_NAME = re.compile(r"^([0-9a-f]{32}|\d+(\.upload|_(original|protected|diff|swap|edit)\.(png|mp4)))$")


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def serve(tmp_path):
    """A client for an app with its own work directory; ``serve(**settings)`` builds it."""
    clients = []

    def make(**kw):
        kw.setdefault("work_dir", tmp_path / "work")
        c = TestClient(create_app(ServeSettings(**kw)))
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def wait(client, job_id, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = client.get(f"/api/jobs/{job_id}").json()
        if s["state"] == "done":
            return s
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not done after {timeout} s: {s}")


def post(client, *files, preset="fast", checks="0"):
    return client.post("/api/jobs", files=[("files", f) for f in files], data={"preset": preset, "checks": checks})


def test_page_and_config(serve):
    c = serve()
    page = c.get("/")
    assert page.status_code == 200 and 'id="drop"' in page.text and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert c.get("/static/app.js").status_code == 200
    cfg = c.get("/api/config").json()
    assert [p["name"] for p in cfg["presets"]] == list(WEB_PRESETS)
    assert all(re.search(r"\(~\d+ s\)", p["label"]) for p in cfg["presets"])  # named by what they cost


@pytest.mark.slow
def test_protect_a_photo_end_to_end(serve, tmp_path):
    c = serve()
    r = post(c, ("astronaut.png", SAMPLE.read_bytes(), "image/png"), checks="1")
    assert r.status_code == 201, r.text
    job = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"]) and job["files"][0]["state"] == "queued"
    s = wait(c, job["id"])
    f = s["files"][0]
    assert f["state"] == "done", f
    assert [st["state"] for st in f["steps"]][:3] == ["done"] * 3
    assert f["steps"][1]["total"] == 20 and f["steps"][1]["done"] == 20  # per optimiser step
    d = c.get(f["download"])
    assert d.status_code == 200 and d.headers["content-type"] == "image/png"
    assert 'filename="protected_astronaut.png"' in d.headers["content-disposition"]
    got = Image.open(io.BytesIO(d.content))
    assert got.format == "PNG"
    clean = np.asarray(Image.open(SAMPLE).convert("RGB")).astype(int)
    prot = np.asarray(got.convert("RGB")).astype(int)
    assert prot.shape == clean.shape
    assert np.abs(prot - clean).max() <= 15 and (prot != clean).any()  # the fast preset's 15 levels
    ev = f["evaluation"]
    assert ev["linf"] <= ev["eps_levels"] == 15 and 0.9 < ev["ssim_i"] <= 1
    assert ev["ssimulacra2_face"] < 100 and ev["flip_face"] > 0  # visibility as people see it, on the face
    assert ev["extractors"][0]["extractor"] == "mtcnn" and ev["extractors"][0]["faces_before"] == 1
    for kind in ("original", "protected", "diff"):
        img = c.get(f["images"][kind])
        assert img.status_code == 200 and Image.open(io.BytesIO(img.content)).size == (512, 512)
    diff = np.asarray(Image.open(io.BytesIO(c.get(f["images"]["diff"]).content)))
    assert diff.max() > 0
    # the DeepFake checks: a result or a one-line reason, never a crash
    assert set(f["checks"]) == {"swap", "edit"}
    for k in ("swap", "edit"):
        assert "error" in f["checks"][k] or k in f["images"]


def test_bad_file_gets_its_message_and_the_server_stays_up(serve):
    c = serve()
    r = post(c, ("x.png", b"this is text, not a picture", "image/png"), ("empty.jpg", b"", "image/jpeg"),
             ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png"))
    assert r.status_code == 201
    files = r.json()["files"]
    assert [f["state"] for f in files] == ["rejected"] * 3
    assert files[0]["error"].startswith("x.png: not a photo or a video (by its content")
    assert files[1]["error"] == "empty.jpg: the file is empty (0 bytes)"
    assert files[2]["error"].startswith("broken.png: not a readable image")
    assert all("\n" not in f["error"] for f in files)
    assert r.json()["state"] == "done"  # nothing to do
    assert c.get("/api/config").status_code == 200
    assert c.get(f"/api/jobs/{r.json()['id']}").json()["files"][0]["error"] == files[0]["error"]


def test_no_face_is_reported_after_processing(serve):
    c = serve()
    r = post(c, ("grey.png", png_bytes(np.full((96, 96, 3), 127, np.uint8)), "image/png"))
    f = wait(c, r.json()["id"])["files"][0]
    assert f["state"] == "failed" and f["error"].startswith("grey.png: no face found") and f["download"] is None


def test_limits_size_and_pixels(serve, tmp_path):
    data = SAMPLE.read_bytes()
    c = serve(max_upload_bytes=10_000, max_files=2)
    files = post(c, ("big.png", data, "image/png")).json()["files"]
    assert files[0]["state"] == "rejected" and files[0]["error"].startswith("big.png: too large")
    assert not any(p.name.endswith(".upload") for p in (tmp_path / "work").rglob("*"))  # cut off and deleted while streaming
    r = c.post("/api/jobs", files=[("files", ("huge.bin", b"\0" * 1_200_000, "image/png"))], data={"preset": "fast"})
    assert r.status_code == 413 and "too large" in r.json()["error"]  # over the whole-request limit
    many = post(c, *[(f"{i}.png", b"x", "image/png") for i in range(3)]).json()
    assert len(many["files"]) == 2 and "at most 2 per upload" in many["messages"][0]
    c2 = serve(max_pixels=100 * 100, work_dir=tmp_path / "work2")
    f = post(c2, ("astronaut.png", data, "image/png")).json()["files"][0]
    assert f["state"] == "rejected" and f["error"] == "astronaut.png: too many pixels (512x512 = 262,144; at most 10,000)"


def test_bad_requests(serve):
    c = serve()
    assert c.post("/api/jobs", content=b"hello", headers={"content-type": "text/plain"}).status_code == 400
    r = post(c, ("a.png", SAMPLE.read_bytes(), "image/png"), preset="../../nope")
    assert r.status_code == 400 and "preset: expected one of" in r.json()["error"]
    assert c.post("/api/jobs", data={"preset": "fast"}, files=[("other", ("a", b"1"))]).status_code == 400


def test_unknown_job_and_file(serve):
    c = serve()
    assert c.get("/api/jobs/" + "0" * 32).status_code == 404
    assert c.get("/api/jobs/..%2F..%2Fetc").status_code == 404
    assert c.get("/api/jobs/not-an-id/files/0/protected").status_code == 404
    job = post(c, ("x.png", b"text", "image/png")).json()["id"]
    assert c.get(f"/api/jobs/{job}/files/5/protected").status_code == 404
    assert c.get(f"/api/jobs/{job}/files/0/passwd").status_code == 404
    assert c.get(f"/api/jobs/{job}/files/0/download").status_code == 404


def test_request_names_never_reach_the_disk(serve, tmp_path):
    c = serve()
    face = np.asarray(Image.open(SAMPLE).convert("RGB"))[::4, ::4].copy()  # small: quick
    names = ["../../etc/passwd", "..\\..\\evil.png", "/tmp/abs.png", "con:aux?*.png"]
    r = post(c, *[(n, png_bytes(face), "image/png") for n in names])
    assert r.status_code == 201
    s = wait(c, r.json()["id"])
    shown = [f["name"] for f in s["files"]]
    assert shown == ["passwd", "evil.png", "abs.png", "con:aux?*.png"]  # shown as text only
    work = tmp_path / "work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    for p in work.rglob("*"):
        assert OK_NAME.match(p.name), p
    for f in s["files"]:
        if f["download"]:
            cd = c.get(f["download"]).headers["content-disposition"]
            assert re.fullmatch(r'attachment; filename="protected_[A-Za-z0-9_-]+\.png"', cd), cd


def test_janitor_removes_expired_jobs(serve, tmp_path):
    c = serve(keep_seconds=0.5, sweep_seconds=0.1)
    job = post(c, ("x.png", b"text", "image/png")).json()["id"]
    assert (tmp_path / "work" / job).is_dir()
    t0 = time.time()
    while (tmp_path / "work" / job).exists() and time.time() - t0 < 10:
        time.sleep(0.1)
    assert not (tmp_path / "work" / job).exists()  # the timer alone, no request needed
    assert c.get(f"/api/jobs/{job}").status_code == 404


def test_owned_work_dir_removed_on_exit():
    app = create_app(ServeSettings())
    work = app.state.work_dir
    with TestClient(app) as c:
        post(c, ("x.png", b"text", "image/png"))
        assert work.is_dir()
    assert not work.exists()


def test_video_too_long_is_refused(serve, tmp_path):
    from faceshield.io.video import write_video

    path = write_video(tmp_path / "long.mp4", (np.full((32, 32, 3), i * 10, np.uint8) for i in range(12)), fps=1)
    f = post(serve(), ("clip", path.read_bytes(), "application/octet-stream")).json()["files"][0]  # no extension: judged by content
    assert f["state"] == "rejected" and f["error"].startswith("clip: video too long (12.0 s, 12 frames; at most 10 s")
    f = post(serve(max_pixels=500, work_dir=tmp_path / "w2"), ("clip.mp4", path.read_bytes(), "video/mp4")).json()["files"][0]
    assert f["error"] == "clip.mp4: frames have too many pixels (32x32; at most 500)"


@pytest.mark.slow
def test_protect_a_short_video(serve, tmp_path):
    from faceshield.io.video import probe_video, write_video

    face = np.asarray(Image.open(SAMPLE).convert("RGB"))[::4, ::4].copy()
    path = write_video(tmp_path / "clip.mp4", (np.roll(face, i, 1) for i in range(6)), fps=6)
    c = serve()
    r = post(c, ("clip.mp4", path.read_bytes(), "video/mp4"))
    f = wait(c, r.json()["id"])["files"][0]
    assert f["state"] == "done", f
    assert f["kind"] == "video" and f["steps"][0]["total"] == 6
    d = c.get(f["download"])
    assert 'filename="protected_clip.mp4"' in d.headers["content-disposition"]
    (tmp_path / "out.mp4").write_bytes(d.content)
    info = probe_video(tmp_path / "out.mp4")
    assert (info.frames, info.width, info.height) == (6, 128, 128)
    assert c.get(f["images"]["protected"]).status_code == 200


def test_upload_helpers():
    assert sniff_kind(b"\x89PNG\r\n\x1a\n0000") == "image" and sniff_kind(b"\xff\xd8\xff\xe0") == "image"
    assert sniff_kind(b"\0\0\0\x18ftypmp42") == "video" and sniff_kind(b"\x1a\x45\xdf\xa3xxxx") == "video"
    assert sniff_kind(b"#EXTM3U\n#EXT-X") is None and sniff_kind(b"<svg xmlns=") is None and sniff_kind(b"") is None
    assert display_name("C:\\Users\\me\\photo.jpg", 0) == "photo.jpg" and display_name("", 2) == "file 3"
    assert display_name("a\nb\x1b.png", 0) == "ab.png"
    assert download_stem("../../etc/passwd", 0) == "passwd" and download_stem("Ünïcode pic.v2.jpg", 0) == "n_code_pic_v2"
    assert download_stem("....", 4) == "5"


def test_serve_command(monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from faceshield.cli.main import app

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda asgi, host, port, **kw: seen.update(app=asgi, host=host, port=port))
    r = CliRunner().invoke(app, ["serve", "--port", "8123", "--max-upload-mb", "2", "--keep-minutes", "1"])
    assert r.exit_code == 0, r.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123 and "warning" not in r.output
    s = seen["app"].state.settings
    assert (s.max_upload_bytes, s.keep_seconds) == (2_000_000, 60)
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 0 and "warning" in r.output and "no login" in r.output
    r = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert r.exit_code == 2 and "--port: expected 1..65535, got 0" in r.output
    assert "--keep-minutes" in CliRunner().invoke(app, ["serve", "--help"]).output
