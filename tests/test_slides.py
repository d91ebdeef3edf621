"""The classroom decks, measured as the audience sees them, in a real headless Chromium.

For every slide of every deck at 1280 x 720, in the offline export (tools/export_slides.py):
nothing lies outside the window or is cut off inside its box, no text is smaller than 24 px, no
In [1]: prompt or test marker shows, every slide has a title and speaker notes; and the page
sends no request off the machine and logs no console error. A screenshot of every slide is saved
in slides/build/screenshots/ for review. The live slides (jupyterlab-rise, what Alt+R shows) get
the same layout checks, and their screenshots too (live-*.png).

Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe), so the
test needs no Python package beyond the standard library. nbval runs the decks' cells like any
notebook (slides/ is in pytest's testpaths), and tests/test_notebooks.py runs them on real flax.
"""
import base64
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

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLIDES, BUILD = ROOT / "slides", ROOT / "slides" / "build"
SHOTS = BUILD / "screenshots"
DECKS = sorted(SLIDES.glob("*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 720
MIN_TEXT_PX = 24
MIN_NOTES_CHARS = 80  # a couple of sentences an instructor can say, not a placeholder

# CI installs Chromium (.ci/run): there it must be found
if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("the browser test needs Chromium (apt-get install chromium)",
                allow_module_level=True)


class Chromium:
    """A headless Chromium, driven through the DevTools protocol over a pipe: file descriptor 3
    carries our commands in, 4 brings its replies and events out, as JSON messages ending in NUL."""

    def __init__(self):
        self.profile = tempfile.mkdtemp()
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def hand_pipes_to_chromium():  # in the child: the two pipe ends become its fds 3 and 4
            read_end, write_end = os.dup(commands_read), os.dup(replies_write)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
             f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=hand_pipes_to_chromium,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(replies_write)
        self.buffer, self.last_id, self.events = b"", 0, []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.page(f"{domain}.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                  deviceScaleFactor=1, mobile=False)

    def send(self, method, session=None, **params):
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _read(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.replies, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def page(self, method, **params):
        return self.send(method, session=self.session, **params)

    def js(self, expression):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url, ready, timeout=60):
        self.events.clear()
        self.page("Page.navigate", url=url)
        self.wait_for(ready, timeout, what=f"{url} to be ready")

    def wait_for(self, condition, timeout=10, what="the page"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.js(condition):
                    return
            except RuntimeError:  # the page is still loading
                pass
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout} s for {what}")

    def screenshot(self, path):
        shot = self.page("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def requests(self):
        return [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"]

    def console_errors(self):
        errors = []
        for event in self.events:
            method, params = event["method"], event["params"]
            if method == "Runtime.exceptionThrown":
                exception = params["exceptionDetails"].get("exception", {})
                errors.append(exception.get("description", "exception"))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                       for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        return errors

    def close(self):
        self.process.kill()
        self.process.wait()
        os.close(self.commands)
        os.close(self.replies)
        shutil.rmtree(self.profile, ignore_errors=True)


# What the audience sees of the current slide, measured in the page. Works on both presenters: the
# export's cells are nbconvert's HTML, the live ones JupyterLab's widgets (with CodeMirror editors).
MEASURE = """
(() => {
  const slide = document.querySelector(".reveal .slides section.present:not(.stack)");
  const W = window.innerWidth, H = window.innerHeight;
  const slides = document.querySelector(".reveal .slides");
  const scale = slides.getBoundingClientRect().width / slides.offsetWidth;
  const number = document.querySelector(".reveal .slide-number");
  const numberBox = number && getComputedStyle(number).display !== "none"
    ? number.getBoundingClientRect() : null;
  const shown = el => {
    if (el.closest("aside.notes")) return false;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden" || style.opacity === "0")
      return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  const name = el =>
    `<${el.tagName.toLowerCase()} class="${el.className}"> "${el.textContent.trim().slice(0, 40)}"`;
  const outside = box => Math.max(-box.left, -box.top, box.right - W, box.bottom - H);
  const problems = [];
  let smallest = Infinity, smallestText = "";
  for (const el of slide.querySelectorAll("*")) {
    if (!shown(el)) continue;
    const box = el.getBoundingClientRect();
    if (outside(box) > 1)
      problems.push(`${Math.round(outside(box))} px outside the window: ${name(el)}`);
    // content wider or taller than its box is cut off (or spills over what is next to it)
    const leaf = ![...el.children].some(
      child => shown(child) && child.scrollWidth > child.clientWidth + 1);
    if (leaf && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      problems.push(`${el.scrollWidth - el.clientWidth} px of a line cut off: ${name(el)}`);
    if (el.clientHeight > 0 && el.scrollHeight > el.clientHeight + 1
        && getComputedStyle(el).overflowY !== "visible")
      problems.push(`${el.scrollHeight - el.clientHeight} px cut off at the bottom: ${name(el)}`);
  }
  // jupyterlab-rise's "scroll" turns a slide taller than 95% of the window into a scrolling box
  if (slide.getBoundingClientRect().height > 0.95 * H + 1)
    problems.push(`the slide is ${Math.round(slide.getBoundingClientRect().height)} px tall:`
                  + ` over 95% of ${H} px, where the live slides start to scroll`);
  const walker = document.createTreeWalker(slide, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim() || !shown(node.parentElement)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const box of range.getClientRects()) {
      if (box.width === 0) continue;
      if (outside(box) > 1)
        problems.push(`text outside the window: "${node.textContent.trim().slice(0, 40)}"`);
      if (numberBox && box.right > numberBox.left && box.left < numberBox.right
          && box.bottom > numberBox.top && box.top < numberBox.bottom)
        problems.push(`text under the slide number: "${node.textContent.trim().slice(0, 40)}"`);
    }
    const size = parseFloat(getComputedStyle(node.parentElement).fontSize) * scale;
    if (size < smallest) { smallest = size; smallestText = node.textContent.trim().slice(0, 40); }
  }
  const title = [...slide.querySelectorAll("h1, h2")].find(shown);
  return {
    problems: [...new Set(problems)],
    smallest, smallestText,
    title: title ? title.innerText.replace(/¶/g, "").trim() : "",
    notes: [...slide.querySelectorAll(":scope > aside.notes")].map(a => a.textContent.trim())
      .join(" "),
    text: slide.innerText,
    prompts: [...slide.querySelectorAll(".jp-InputPrompt, .jp-OutputPrompt")].filter(shown)
      .map(el => el.textContent.trim()).filter(Boolean),
    scale,
  };
})()
"""
PROMPT = re.compile(r"\b(In|Out)\s*\[\s*\d*\s*\]:")  # In [3]: and Out[3]:, with any kind of space
MARKERS = ("NBVAL", "nbval", "COURSE_NNX", "raises-exception")


def slide_count(deck):
    cells = json.loads(deck.read_text())["cells"]
    return sum(c["metadata"].get("slideshow", {}).get("slide_type") in ("slide", "subslide")
               for c in cells)


def what_is_wrong(seen):
    """The checks every slide must pass, as a list of complaints (empty when the slide is fine)."""
    wrong = list(seen["problems"])
    if seen["smallest"] < MIN_TEXT_PX - 0.01:
        wrong.append(f'text at {seen["smallest"]:.1f} px, under {MIN_TEXT_PX} px: '
                     f'"{seen["smallestText"]}"')
    if not seen["title"]:
        wrong.append("no title (an h1 or h2)")
    if len(seen["notes"]) < MIN_NOTES_CHARS:
        wrong.append(f"speaker notes missing or too short ({len(seen['notes'])} characters)")
    if seen["prompts"] or PROMPT.search(seen["text"]):
        wrong.append(f"a prompt shows: {seen['prompts'] or PROMPT.search(seen['text']).group()}")
    wrong += [f"{marker} shows on the slide" for marker in MARKERS if marker in seen["text"]]
    return wrong


def walk(browser, go_to, count, shots_prefix=None):
    """Visit slides 0..count-1 with go_to(n); return {slide label: complaints} for the bad ones."""
    bad = {}
    for n in range(count):
        go_to(n)
        seen = browser.js(MEASURE)
        wrong = what_is_wrong(seen)
        if wrong:
            bad[f"slide {n + 1} ({seen['title'] or 'untitled'})"] = wrong
        if shots_prefix:
            browser.screenshot(SHOTS / f"{shots_prefix}-{n + 1:02d}.png")
    return bad


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium()
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def exported():
    if not (SLIDES / "node_modules" / "reveal.js").exists():
        pytest.fail("reveal.js is not installed: run `npm install --prefix slides` (.ci/run does)")
    subprocess.run([sys.executable, str(ROOT / "tools" / "export_slides.py")], check=True,
                   capture_output=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    return BUILD


def test_there_are_decks():
    assert {p.stem for p in DECKS} >= {"01_introducing_flax_nnx", "02_nnx_vs_jax_transforms",
                                       "03_linen_to_nnx"}


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_every_slide_of_the_export_reads_from_the_back_of_the_room(exported, browser, deck):
    page = exported / f"{deck.stem}.slides.html"
    browser.open(page.as_uri(), "window.Reveal !== undefined && Reveal.isReady()"
                                " && document.fonts.status === 'loaded'")
    count = slide_count(deck)
    assert browser.js("Reveal.getTotalSlides()") == count, \
        "the page's slides are not the notebook's"
    assert browser.js("Reveal.getScale()") == 1, \
        "the slide is not laid out at the window's 1280 x 720"

    def go_to(n):
        browser.js(f"(() => {{ const i = Reveal.getIndices(Reveal.getSlides()[{n}]);"
                   " Reveal.slide(i.h, i.v); })()")

    for old in SHOTS.glob(f"{deck.stem}-*.png"):
        old.unlink()
    bad = walk(browser, go_to, count, shots_prefix=deck.stem)
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)
    assert len(list(SHOTS.glob(f"{deck.stem}-*.png"))) == count

    off_machine = [url for url in browser.requests() if not url.startswith(("file:", "data:"))]
    assert not off_machine, f"requests that leave the machine: {off_machine}"
    assert not browser.console_errors(), browser.console_errors()


@pytest.fixture(scope="module")
def jupyterlab():
    """JupyterLab serving slides/, with jupyterlab-rise's presenter at /rise/<deck>.

    Its settings come from an empty folder, so no user setting changes what the test sees, except
    one: RISE's auto_select is off. With it on, RISE selects a slide's first code cell a moment
    after the slide appears, and a selected cell pulls the slideshow back to its own slide, which
    races with a test that walks the slides quickly; the layout does not depend on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = pathlib.Path(tempfile.mkdtemp())
    (settings / "jupyterlab-rise").mkdir()
    rise_settings = settings / "jupyterlab-rise" / "plugin.jupyterlab-settings"
    rise_settings.write_text('{"auto_select": "none"}')
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser",
                               "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                               "--IdentityProvider.token=", f"--ServerApp.root_dir={SLIDES}"],
                              env={**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(settings, ignore_errors=True)


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_the_live_slides_in_jupyterlab_rise_read_as_well(jupyterlab, browser, deck):
    """What Alt+R shows: the same slides, laid out by the same stylesheet (slides/rise.css) at the
    size the deck's metadata asks for. (JupyterLab itself logs a console error inside RISE's
    bundle on every start, so console errors are not checked here; they are for the export.)"""
    browser.open(f"{jupyterlab}/rise/{deck.name}",
                 "document.querySelector('.reveal.ready') !== null", timeout=120)
    browser.wait_for("document.fonts.status === 'loaded'"
                     " && getComputedStyle(document.querySelector('.reveal'))"
                     ".getPropertyValue('--course-code-size').trim() === '24px'",
                     what="slides/rise.css to apply")
    count = slide_count(deck)
    slides_shown = "document.querySelectorAll('.reveal .slides section:not(.stack)')"
    assert browser.js(f"{slides_shown}.length") == count

    present = "document.querySelector('.reveal .slides section.present:not(.stack)')"

    def go_to(n):
        browser.js(f"location.hash = '#/{n}'")
        browser.wait_for(f"[...{slides_shown}].indexOf({present}) === {n}", what=f"slide {n + 1}")

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob(f"live-{deck.stem}-*.png"):
        old.unlink()
    bad = walk(browser, go_to, count, shots_prefix=f"live-{deck.stem}")
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)
    assert not browser.js("[...document.querySelectorAll('.jp-Notebook-footer')]"
                          ".some(el => el.getBoundingClientRect().height > 0)"), \
        "'Click to add a cell' shows"
    off_machine = [url for url in browser.requests()
                   if not url.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert not off_machine, f"requests that leave the machine: {off_machine}"
