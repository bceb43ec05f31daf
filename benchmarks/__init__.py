"""Benchmarks: volcodec against the standard lossless codecs, on the same volumes in the same run.

``python -m benchmarks.compare`` measures size and single-threaded speed; ``python -m
benchmarks.latency`` measures import and first-call (JIT) latency; ``python -m benchmarks.near``
near-lossless rate against the error bound; ``python -m benchmarks.plot`` draws the size/speed
trade-off. See ``benchmarks/README.md``. This package is a tool beside the library: it is not
installed with volcodec.
"""
