"""Settings, read from ``CORPUSX_*`` environment variables and built inside the app factory."""

from __future__ import annotations

from pathlib import Path

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
