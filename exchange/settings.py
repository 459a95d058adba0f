"""Settings, read from ``CORPUSX_*`` environment variables and built inside the app factory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator can set; the defaults run on one machine with no services."""

    model_config = SettingsConfigDict(env_prefix="CORPUSX_", extra="ignore")

    data_dir: Path = Field(default=Path(".corpusx"), description="database, keys and blobs")
    database_url: str = Field(default="", description="SQLAlchemy URL; SQLite in data_dir if empty")
    log_origin: str | None = Field(
        default=None,
        description="the checkpoint origin; default: the name bound to the log key "
        "(corpusx init picks a unique one)",
    )
    log_key_file: Path | None = Field(default=None, description="default: data_dir/log.key")
    checkpoint_interval: float = Field(default=5.0, ge=0, description="seconds; 0 turns it off")
    statement_window: int = Field(default=300, ge=1, description="max clock skew, seconds")
    blob_store: str = Field(
        default="",
        description="blob store URL: a path, file:///path or s3://bucket/prefix; "
        "default: data_dir/blobs",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3 API endpoint (MinIO, ...)")
    s3_region: str | None = None
    s3_access_key_id: str | None = Field(default=None, description="default: boto3's own lookup")
    s3_secret_access_key: str | None = None
    ingest_workers: int = Field(default=2, ge=1, description="processes verifying uploads")
    exchange_fee_bps: int = Field(
        default=0, ge=0, le=10_000, description="the exchange's fee on purchases, basis points"
    )
    download_ttl: int = Field(
        default=900, ge=10, le=86_400, description="seconds a delivery's download URLs last"
    )
    public_url: str | None = Field(
        default=None, description="the URL clients reach the API at (for download links)"
    )
    chain_rpc_url: str | None = Field(
        default=None,
        description="EVM JSON-RPC endpoint for anchoring; default: data_dir/chain.json; "
        "anchoring is off without one",
    )
    chain_contract: str | None = Field(
        default=None, description="CheckpointAnchor address; default: data_dir/chain.json"
    )
    chain_key_file: Path | None = Field(
        default=None,
        description="the anchoring account's key (hex, mode 0600); default: data_dir/chain.key",
    )
    chain_confirmations: int = Field(default=12, ge=1, description="blocks deep to be final")
    chain_finality: Literal["confirmations", "finalized"] = Field(
        default="confirmations", description="or 'finalized': wait for the node's finalized tag"
    )
    chain_timeout: float = Field(default=5.0, gt=0, description="seconds per JSON-RPC call")
    chain_poll_interval: float = Field(
        default=2.0, gt=0, description="seconds between looks at the chain (and first backoff)"
    )
    chain_backoff_max: float = Field(default=300.0, gt=0, description="longest retry delay, s")
    anchor_every_entries: int = Field(default=1000, ge=1, description="anchor after N entries")
    anchor_interval: float = Field(
        default=600.0, ge=0, description="or after this many seconds (0: by entries only)"
    )
    witnesses: str = Field(
        default="",
        description="witnesses asked to cosign each checkpoint: comma-separated VKEY=URL, "
        "URL being the witness's submission prefix (docs/ledger.md 8.7)",
    )
    witness_quorum: int | None = Field(
        default=None,
        ge=0,
        description="how many of CORPUSX_WITNESSES must cosign a checkpoint before "
        "GET /ledger/checkpoint serves it; default: a majority; 0: serve every checkpoint",
    )
    witness_policy: Path | None = Field(
        default=None,
        description="a c2sp.org/tlog-policy file (witness lines with URLs, and the quorum), "
        "instead of CORPUSX_WITNESSES and CORPUSX_WITNESS_QUORUM",
    )
    witness_timeout: float = Field(default=5.0, gt=0, description="seconds per witness request")
    host: str = "127.0.0.1"
    port: int = 8600

    @field_validator("log_origin")
    @classmethod
    def _origin_is_one_line(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c.isspace() for c in value) or "+" in value):
            raise ValueError("log_origin must be non-empty, with no spaces or '+'")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'exchange.db').resolve()}"

    @property
    def resolved_blob_store(self) -> str:
        return self.blob_store or str((self.data_dir / "blobs").resolve())

    def blob_store_options(self) -> dict[str, str]:
        options = {
            "endpoint_url": self.s3_endpoint_url,
            "region": self.s3_region,
            "access_key_id": self.s3_access_key_id,
            "secret_access_key": self.s3_secret_access_key,
        }
        if not self.resolved_blob_store.startswith("s3://"):
            return {}
        return {key: value for key, value in options.items() if value}

    @property
    def resolved_log_key_file(self) -> Path:
        return self.log_key_file or self.data_dir / "log.key"

    @property
    def chain_config_file(self) -> Path:
        """Written by ``corpusx chain deploy --data-dir``; the settings above override it."""
        return self.data_dir / CHAIN_CONFIG_NAME

    def resolved_chain(self) -> ChainConfig | None:
        """Where and how to anchor, or None if anchoring is off (no RPC URL and no contract)."""
        saved = read_chain_config(self.chain_config_file)
        rpc_url = self.chain_rpc_url or saved.get("rpc_url")
        contract = self.chain_contract or saved.get("contract")
        if not rpc_url and not contract:
            return None
        if not rpc_url or not contract:
            raise SettingsError(
                "anchoring needs both CORPUSX_CHAIN_RPC_URL and CORPUSX_CHAIN_CONTRACT "
                f"(or {self.chain_config_file} from `corpusx chain deploy --data-dir`)"
            )
        same_contract = str(contract).lower() == str(saved.get("contract", "")).lower()
        return ChainConfig(
            rpc_url=str(rpc_url),
            contract=str(contract).lower(),
            chain_id=int(saved["chain_id"]) if same_contract and "chain_id" in saved else None,
            start_block=int(saved.get("block", 0)) if same_contract else 0,
            key_file=self.chain_key_file or self.data_dir / "chain.key",
        )


CHAIN_CONFIG_NAME = "chain.json"


@dataclass(frozen=True)
class ChainConfig:
    """The chain settings resolved: environment first, then ``data_dir/chain.json``."""

    rpc_url: str
    contract: str
    chain_id: int | None  # the chain the contract was deployed on, if known
    start_block: int  # the deployment's block: no anchor event is older
    key_file: Path


class SettingsError(Exception):
    """Settings that cannot work together, or a settings file that does not parse."""


def read_chain_config(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read the chain settings {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path} must hold a JSON object")
    return loaded


class WitnessSettings(BaseSettings):
    """The witness service's settings (``corpusx witness ...``), from ``CORPUSX_WITNESS_*``."""

    model_config = SettingsConfigDict(env_prefix="CORPUSX_WITNESS_", extra="ignore")

    data_dir: Path = Field(default=Path(".corpusx-witness"), description="key and state")
    name: str | None = Field(
        default=None, description="the witness's key name for `witness init`, e.g. example.org/w1"
    )
    host: str = "127.0.0.1"
    port: int = 8700


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (CLI flags) winning."""
    values = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**values)  # type: ignore[arg-type]


def load_witness_settings(**overrides: object) -> WitnessSettings:
    values = {key: value for key, value in overrides.items() if value is not None}
    return WitnessSettings(**values)  # type: ignore[arg-type]
