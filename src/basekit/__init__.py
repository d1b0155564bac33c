"""What both systems stand on: atomic files, safe image decoding, torch threads, and
command-line options generated from settings dataclasses.

``adacompress`` and ``pirl`` import from here; this package imports neither.
"""
