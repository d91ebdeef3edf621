"""The classroom decks, exported to static reveal.js and opened in a real headless Chromium: reveal.js
starts with no network, every slide the notebook defines is there, no output is an error, and no
asset comes from a CDN. Screenshots of the first slides land in slides/build/screenshots/ for review.

nbval runs the decks' cells like any notebook (slides/ is in pytest's testpaths), and
tests/test_notebooks.py runs them on real flax.
"""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLIDES, BUILD = ROOT / "slides", ROOT / "slides" / "build"
DECKS = sorted(SLIDES.glob("*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--virtual-time-budget=5000", "--window-size=1280,800"]

if CHROMIUM is None and os.environ.get("CI") != "true":  # CI installs Chromium (.ci/run): there it must be found
    pytest.skip("the browser test needs Chromium (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def exported():
    if not (SLIDES / "node_modules" / "reveal.js").exists():
        pytest.fail("reveal.js is not installed: run `npm install --prefix slides` (.ci/run does)")
    subprocess.run([sys.executable, str(ROOT / "tools" / "export_slides.py")], check=True, capture_output=True)
    return BUILD


def chromium(*args):
    profile = tempfile.mkdtemp()
    try:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class _Slides(HTMLParser):
    """Counts the innermost <section>s: reveal.js's slides, vertical ones included."""

    def __init__(self):
        super().__init__()
        self.open, self.count = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            if self.open:
                self.open[-1] = True  # the parent has a child section
            self.open.append(False)

    def handle_endtag(self, tag):
        if tag == "section":
            self.count += not self.open.pop()


def assert_reveal_ready_with_all_slides(dom, deck):
    assert re.search(r'class="[^"]*\breveal\b[^"]*\bready\b', dom), "reveal.js did not start"
    cells = json.loads(deck.read_text())["cells"]
    expected = sum(c["metadata"].get("slideshow", {}).get("slide_type") in ("slide", "subslide") for c in cells)
    parser = _Slides()
    parser.feed(dom)
    assert parser.count == expected, f"{parser.count} slides in the page, the notebook defines {expected}"


def test_there_are_decks():
    assert {p.stem for p in DECKS} >= {"01_introducing_flax_nnx", "02_nnx_vs_jax_transforms", "03_linen_to_nnx"}


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_exported_deck_opens_offline_in_chromium(exported, deck):
    page = exported / f"{deck.stem}.slides.html"
    html = page.read_text()
    external = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
    external += re.findall(r"""(?:import[^'"]*from|require\()\s*\[?\s*['"](https?://[^'"]+)""", html)
    assert not external, f"assets from the network: {external}"

    dom = chromium("--dump-dom", page.as_uri())
    assert_reveal_ready_with_all_slides(dom, deck)
    cells = json.loads(deck.read_text())["cells"]
    errors = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors and "Traceback" not in dom, "a cell output is an error"

    shots = exported / "screenshots"
    shots.mkdir(exist_ok=True)
    for n in (0, 1):
        shot = shots / f"{deck.stem}-{n}.png"
        chromium(f"--screenshot={shot}", f"{page.as_uri()}#/{n}")
        assert shot.exists() and shot.stat().st_size > 5000, f"no screenshot of slide {n}"


def test_a_deck_presents_live_in_jupyterlab_with_rise():
    """jupyterlab-rise's presenter (what Alt+R shows in JupyterLab) serves the deck as live slides."""
    deck = DECKS[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
                               "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", f"--ServerApp.root_dir={SLIDES}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        dom = chromium("--virtual-time-budget=30000", "--dump-dom", f"http://127.0.0.1:{port}/rise/{deck.name}")
        assert_reveal_ready_with_all_slides(dom, deck)
    finally:
        server.terminate()
        server.wait(timeout=30)
