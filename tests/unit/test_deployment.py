"""The deployment files say what the code understands (no docker engine is needed to check)."""

from __future__ import annotations

import json
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


def test_the_api_anchors_to_the_compose_chain_node() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    assert "healthcheck" in services["anvil"]
    assert services["chain-init"]["depends_on"]["anvil"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["chain-init"]["condition"] == (
        "service_completed_successfully"
    )
    api = services["api"]["environment"]
    assert api["CORPUSX_CHAIN_RPC_URL"] == "http://anvil:8545"
    assert "--data-dir /data" in services["chain-init"]["command"][0]  # chain.json for the API
    # The node in compose is the version the tests run (package-lock.json).
    lock = json.loads((ROOT / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/@foundry-rs/anvil"]["version"]
    assert services["anvil"]["image"].endswith(f":v{version}")
