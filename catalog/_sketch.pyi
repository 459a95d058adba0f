"""Types of the compiled module catalog/_sketch.c (the overlap sketch's inner loops)."""

from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray
from typing_extensions import Buffer

_In = Buffer | NDArray[Any]

def shingles(
    codes: _In,
    width: int,
    lengths: _In,
    classes: _In,
    weights: _In,
    base: int,
    out: _In,
    counts: _In,
    /,
) -> int: ...
def folded_shingles(
    documents: Sequence[_In], max_bytes: int, classes: _In, fold: _In, weights: _In, base: int, /
) -> tuple[bytes, bytes, list[int]]: ...
def folded_levels(
    documents: Sequence[_In],
    max_bytes: int,
    classes: _In,
    fold: _In,
    weights: _In,
    base: int,
    sample_seed: int,
    level_seed: int,
    mask: int,
    table: _In,
    /,
) -> tuple[bytes, list[int]]: ...
def levels(
    hashes: _In,
    bounds: _In,
    sample_seed: int,
    level_seed: int,
    mask: int,
    table: _In,
    out: _In,
    /,
) -> None: ...
def signatures(
    hashes: _In, bounds: _In, chosen: _In, perm_a: _In, perm_b: _In, out: _In, /
) -> None: ...
