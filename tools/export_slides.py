"""Export the decks in slides/ to static reveal.js HTML that works in a classroom with no internet.

    python tools/export_slides.py        # writes slides/build/: one .slides.html per deck + vendor/

reveal.js, require.js and jQuery come from npm (versions pinned in slides/package.json;
`npm install` runs once, on a machine that reaches the npm registry) and are copied into
slides/build/vendor/, which the pages load by relative path; reveal.js's "white" theme brings its
font (Source Sans Pro) along. slides/offline.html.j2 drops the scripts nbconvert would fetch from a
CDN, inlines slides/rise.css (the stylesheet the live slides use too) and configures reveal.js from
each deck's "rise" metadata, so the export shows what jupyterlab-rise shows. Prompts (In [1]:) are
left out and so are the cells the deck marks "skip" (the setup cell). Open
slides/build/*.slides.html in a browser, or serve the folder
(`python -m http.server -d slides/build`), and copy the whole folder to present elsewhere.
"""
import pathlib
import shutil
import subprocess

import nbformat
from nbconvert import SlidesExporter
from traitlets.config import Config

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLIDES, BUILD = ROOT / "slides", ROOT / "slides" / "build"
NODE = SLIDES / "node_modules"
VENDOR = {  # what the pages load -> where npm put it
    "reveal.js/dist": NODE / "reveal.js" / "dist",
    "reveal.js/plugin": NODE / "reveal.js" / "plugin",
    "require.js": NODE / "requirejs" / "require.js",
    "jquery.min.js": NODE / "jquery" / "dist" / "jquery.min.js",
}


def exporter(theme):
    config = Config()
    config.SlidesExporter.template_file = str(SLIDES / "offline.html.j2")
    config.SlidesExporter.reveal_url_prefix = "vendor/reveal.js"
    config.SlidesExporter.require_js_url = "vendor/require.js"
    config.SlidesExporter.jquery_url = "vendor/jquery.min.js"
    config.SlidesExporter.reveal_theme = theme
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    return SlidesExporter(config=config)


def main():
    if not all(source.exists() for source in VENDOR.values()):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(SLIDES)],
                       check=True)
    shutil.rmtree(BUILD, ignore_errors=True)
    for target, source in VENDOR.items():
        destination = BUILD / "vendor" / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, destination)
    decks = sorted(SLIDES.glob("*.ipynb"))
    for deck in decks:
        nb = nbformat.read(deck, as_version=4)
        theme = nb.metadata.get("rise", {}).get("theme", "white")
        resources = {"metadata": {"name": deck.stem}}
        html, _ = exporter(theme).from_notebook_node(nb, resources=resources)
        (BUILD / f"{deck.stem}.slides.html").write_text(html, encoding="utf-8")
    print(f"wrote {len(decks)} decks to {BUILD.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
