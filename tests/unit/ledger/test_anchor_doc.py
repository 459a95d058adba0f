"""docs/ledger.md section 5.5 says what the code does: constants, the example event, the body."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from ledger.anchor import (
    CALL_SELECTOR,
    EVENT_TOPIC,
    AnchorRecord,
    ChainLog,
    contract_artifact,
    decode_anchor_event,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "ledger.md"


@pytest.fixture(scope="module")
def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("### 5.5 `checkpoint.anchored`")
    return text[start : text.index("\n## 6.", start)]


def test_the_constants_in_the_text_are_the_code_s(section: str) -> None:
    assert f"selector 0x{CALL_SELECTOR.hex()}" in section
    assert f"`0x{EVENT_TOPIC.hex()}`" in section
    runtime = hashlib.sha256(contract_artifact().deployed_bytecode).hexdigest()
    assert f"SHA-256 is\n`{runtime}`" in section
    assert f"solc {contract_artifact().compiler.split('+')[0]}" in section


def test_the_example_event_decodes_to_the_checkpoint_of_section_13(section: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    note = re.search(r"<!-- example:checkpoint-3 -->\n```text\n(.*?)\n```", text, re.DOTALL)
    assert note is not None
    origin, size, root_b64 = note.group(1).split("\n")[:3]
    root = base64.b64decode(root_b64)
    assert f"`{root.hex()}`" in section
    words = re.search(r"`data` =\n\n```\n((?:[0-9a-f]{64}\n)+)```", section)
    assert words is not None
    data = bytes.fromhex(words.group(1).replace("\n", ""))
    event = decode_anchor_event(ChainLog("0x" + "00" * 20, (EVENT_TOPIC, root), data))
    assert (event.origin, event.size, event.root) == (origin, int(size), root)


def test_the_body_table_lists_exactly_the_members_the_parser_takes(section: str) -> None:
    table = section[section.index("| member | type | value |") :]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    names = [row.split("|")[1].strip().strip("`") for row in rows]
    assert names == list(AnchorRecord.FIELDS)
