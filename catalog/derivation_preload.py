"""Imported by the fork server of the exchange's deriving workers (``catalog.derivation``).

Importing it builds the overlap sketch's lookup tables (word classes and the case-folding
table of the Basic Multilingual Plane, ~0.3 s of CPU), so every worker forked from that server
has them from the start instead of building its own on its first file.
"""

from catalog import derivation as derivation
from catalog.overlap import warm_tables

warm_tables()
