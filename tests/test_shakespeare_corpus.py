"""The Shakespeare corpus of notebook 11 is shipped, plain, and free of Project Gutenberg's
boilerplate; the script that made it strips that boilerplate. (Nothing here downloads: the
script's download step is never called.)"""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_shakespeare_corpus",
                                              ROOT / "tools" / "make_shakespeare_corpus.py")
corpus_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus_tool)

GUTENBERG_COPY = """The Project Gutenberg EBook of Hamlet, by William Shakespeare\r
This eBook is for the use of anyone anywhere at no cost.\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r
\r
HAMLET\r
<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM SHAKESPEARE IS COPYRIGHT 1990-1993\r
BY WORLD LIBRARY, INC.>>\r
Ber.\r
Who's there?\r
\r
*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r
\r
Updated editions will replace the previous one.\r
"""


def test_the_corpus_is_shipped_plain_and_about_a_megabyte():
    text = corpus_tool.OUT.read_text(encoding="ascii")
    assert 900_000 < len(text) < 1_200_000
    assert text.startswith("THE TRAGEDY OF CORIOLANUS")
    assert "\r" not in text
    assert corpus_tool.BOILERPLATE_WORDS.search(text) is None


def test_strip_gutenberg_keeps_the_play_only():
    assert corpus_tool.strip_gutenberg(GUTENBERG_COPY) == "HAMLET\nBer.\nWho's there?\n"


def test_boilerplate_words_are_caught_but_not_inside_words():
    assert corpus_tool.BOILERPLATE_WORDS.search("This etext is from Project Gutenberg")
    assert corpus_tool.BOILERPLATE_WORDS.search("And my pretext to strike at him") is None
