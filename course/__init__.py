"""Helpers for the course's notebooks and exercises. Not part of minnx: the library is `minnx`."""
