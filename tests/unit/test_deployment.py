"""The deployment files say what the code understands (no docker engine is needed to check)."""

from __future__ import annotations

from pathlib import Path

import yaml

from exchange.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange", "ledger", "catalog", "licensing", "storage")


def compose() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_every_corpusx_variable_is_a_setting() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    fields = {name.upper() for name in Settings.model_fields} | {"CONFIG_DIR"}
    seen = set()
    for service in services.values():
        for name in service.get("environment") or {}:
            if name.startswith("CORPUSX_"):
                seen.add(name)
                assert name.removeprefix("CORPUSX_") in fields, name
    assert {"CORPUSX_DATABASE_URL", "CORPUSX_BLOB_STORE", "CORPUSX_S3_ENDPOINT_URL"} <= seen


def test_services_are_health_checked_and_ordered() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name in ("postgres", "minio", "api"):
        assert "healthcheck" in services[name], name
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "--workers" in services["api"]["command"]


def test_the_image_carries_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in PACKAGES:
        assert f"COPY {package} ./{package}" in dockerfile
