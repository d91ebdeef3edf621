"""Export the decks in slides/ to static reveal.js HTML that works in a classroom with no internet.

    python tools/export_slides.py        # writes slides/build/: one .slides.html per deck + vendor/

reveal.js, require.js and jQuery come from npm (versions pinned in slides/package.json; `npm install`
runs once, on a machine that reaches the npm registry) and are copied into slides/build/vendor/,
which the pages load by relative path. slides/offline.html.j2 drops the two scripts nbconvert would
fetch from a CDN and the decks do not need. Open slides/build/*.slides.html in a browser, or serve
the folder (`python -m http.server -d slides/build`), and copy the whole folder to present elsewhere.
"""
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLIDES, BUILD = ROOT / "slides", ROOT / "slides" / "build"
NODE = SLIDES / "node_modules"
VENDOR = {  # what the pages load -> where npm put it
    "reveal.js/dist": NODE / "reveal.js" / "dist",
    "reveal.js/plugin": NODE / "reveal.js" / "plugin",
    "require.js": NODE / "requirejs" / "require.js",
    "jquery.min.js": NODE / "jquery" / "dist" / "jquery.min.js",
}


def main():
    if not all(source.exists() for source in VENDOR.values()):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(SLIDES)], check=True)
    shutil.rmtree(BUILD, ignore_errors=True)
    for target, source in VENDOR.items():
        destination = BUILD / "vendor" / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, destination)
    decks = sorted(SLIDES.glob("*.ipynb"))
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "slides", *map(str, decks),
                    "--output-dir", str(BUILD), "--template-file", str(SLIDES / "offline.html.j2"),
                    "--SlidesExporter.reveal_url_prefix=vendor/reveal.js",
                    "--SlidesExporter.require_js_url=vendor/require.js",
                    "--SlidesExporter.jquery_url=vendor/jquery.min.js"], check=True)
    print(f"wrote {len(decks)} decks to {BUILD.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
