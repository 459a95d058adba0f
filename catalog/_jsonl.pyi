"""Types of the compiled module catalog/_jsonl.c (the JSON Lines reader's fast path)."""

def scan(
    data: bytes, field: bytes, seen: dict[bytes, tuple[str | type, ...]], /
) -> tuple[list[bytes], int, int, int, list[tuple[str | type, ...]], int] | None: ...
