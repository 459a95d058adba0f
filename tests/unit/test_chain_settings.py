"""Chain settings: the account key file (private or refused) and where anchoring settings come
from (environment over ``data_dir/chain.json``)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from exchange.chainkey import ChainKeyError, load_chain_key, write_chain_key
from exchange.settings import Settings, SettingsError

KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_a_key_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "chain.key"
    assert write_chain_key(path, KEY) == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_chain_key(path) == KEY
    with pytest.raises(ChainKeyError, match="already exists"):
        write_chain_key(path)
    fresh = write_chain_key(tmp_path / "new.key")
    assert len(fresh) == 32 and fresh != KEY


def test_a_key_others_can_read_is_refused_and_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "chain.key"
    write_chain_key(path, KEY)
    path.chmod(0o644)
    with pytest.raises(ChainKeyError, match="chmod 600") as caught:
        load_chain_key(path)
    assert KEY.hex() not in str(caught.value)
    for text in ("0x1234", "zz" * 32, "00" * 32, "ff" * 32, ""):
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(ChainKeyError, match="does not hold a private key") as caught:
            load_chain_key(path)
        assert text not in str(caught.value) or not text
    with pytest.raises(ChainKeyError, match="cannot read"):
        load_chain_key(tmp_path / "missing.key")


def test_anchoring_is_off_without_chain_settings(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).resolved_chain() is None


def test_chain_json_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    saved = {"rpc_url": "http://node:8545", "chain_id": 5, "contract": CONTRACT, "block": 7}
    (tmp_path / "chain.json").write_text(json.dumps(saved))
    config = Settings(data_dir=tmp_path).resolved_chain()
    assert config is not None
    assert (config.rpc_url, config.contract, config.chain_id, config.start_block) == (
        "http://node:8545",
        CONTRACT.lower(),
        5,
        7,
    )
    assert config.key_file == tmp_path / "chain.key"
    other = Settings(
        data_dir=tmp_path, chain_rpc_url="http://mine:8545", chain_contract="0x" + "11" * 20
    ).resolved_chain()
    assert other is not None and other.rpc_url == "http://mine:8545"
    assert (other.chain_id, other.start_block) == (None, 0)  # chain.json is another contract's


def test_half_a_chain_configuration_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        SettingsError, match="both CORPUSX_CHAIN_RPC_URL and CORPUSX_CHAIN_CONTRACT"
    ):
        Settings(data_dir=tmp_path, chain_rpc_url="http://node:8545").resolved_chain()
    (tmp_path / "chain.json").write_text("{not json")
    with pytest.raises(SettingsError, match="cannot read the chain settings"):
        Settings(data_dir=tmp_path).resolved_chain()
