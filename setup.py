"""The compiled modules; everything else is in pyproject.toml.

- catalog._sketch (catalog/_sketch.c): the overlap sketch's inner loops;
- catalog._jsonl (catalog/_jsonl.c): the fast path of the JSON Lines reader;
- catalog._digests (catalog/_digests.c): ingestion's per-document SHA-256, leaves and subtree
  roots, with OpenSSL's libcrypto (the library Python's own hashlib uses);
- catalog._text (catalog/_text.c): UTF-8 checks and code point counts of whole blocks, and a
  Parquet column's documents cut at its offsets.

All are optional: where one cannot be built (no C compiler, no OpenSSL headers), catalog
computes the same values in Python (numpy, hashlib, json), more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "catalog._sketch",
            ["catalog/_sketch.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "catalog._jsonl",
            ["catalog/_jsonl.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "catalog._text",
            ["catalog/_text.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "catalog._digests",
            ["catalog/_digests.c"],
            libraries=["crypto"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
    ]
)
