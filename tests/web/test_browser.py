"""`faceshield serve` in a real browser: Playwright drives Debian's chromium (no browser download)
through the page: upload the sample face, wait for the result, download it (a valid protected PNG),
then a bad file gets its message and the server keeps answering."""
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshield.models.weights import package_data

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SAMPLE = package_data("astronaut.png")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (Debian's chromium package)")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``faceshield serve``'s app under uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    from faceshield.web import ServeSettings, create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(ServeSettings(work_dir=tmp_path / "work")), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    t0 = time.time()
    while not srv.started:
        if time.time() - t0 > 30 or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(accept_downloads=True)
            yield ctx.new_page()
        finally:
            browser.close()


def test_protect_a_photo_in_the_browser(server, page, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#preset option[value=fast]", state="attached")
    page.select_option("#preset", "fast")
    page.uncheck("#checks")  # the DeepFake checks are covered by the API tests; keep this one quick
    page.set_input_files("#files", str(SAMPLE))
    page.click("#go")
    link = page.locator("section.file a.download")
    link.wait_for(state="visible", timeout=180_000)
    page.wait_for_selector("section.file.done", timeout=180_000)
    assert page.locator("section.file .evaluation td").count() > 0
    with page.expect_download() as info:
        link.click()
    d = info.value
    assert d.suggested_filename == "protected_astronaut.png"
    saved = tmp_path / d.suggested_filename
    d.save_as(saved)
    img = Image.open(saved)
    assert img.format == "PNG"
    clean = np.asarray(Image.open(SAMPLE).convert("RGB")).astype(int)
    prot = np.asarray(img.convert("RGB")).astype(int)
    assert prot.shape == clean.shape and (prot != clean).any() and np.abs(prot - clean).max() <= 15

    # the amplified difference replaces the protected view
    page.check("section.file .amplify")
    assert page.locator("section.file img.after").get_attribute("src").endswith("/diff")

    # a bad file: one clear message with its name, and the server stays up
    page.set_input_files("#files", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"this is text, not a photo"}])
    page.click("#go")
    msg = page.locator(".error", has_text="x.png")
    msg.first.wait_for(state="visible", timeout=30_000)
    assert "not a photo or a video" in msg.first.text_content()
    r = page.request.get(server + "/api/config")
    assert r.ok and r.json()["presets"]
    assert page.request.get(server + "/").ok
