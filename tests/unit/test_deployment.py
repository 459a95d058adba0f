"""The deployment files say what the code understands (no docker engine is needed to check)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic_settings import BaseSettings

from exchange.settings import Settings, WitnessSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange", "ledger", "catalog", "licensing", "storage")


def compose() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def variables(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def test_every_corpusx_variable_is_a_setting() -> None:
    """The exchange's services set only Settings; the witness's only WitnessSettings."""
    services = compose()["services"]
    assert isinstance(services, dict)
    known = {
        "exchange": variables(Settings) | {"CORPUSX_CONFIG_DIR"},
        "witness": variables(WitnessSettings),
    }
    seen = set()
    for name, service in services.items():
        program = "witness" if name.startswith("witness") else "exchange"
        for variable in service.get("environment") or {}:
            if variable.startswith("CORPUSX_"):
                seen.add(variable)
                assert variable in known[program], f"{name}: {variable}"
    assert {"CORPUSX_DATABASE_URL", "CORPUSX_BLOB_STORE", "CORPUSX_S3_ENDPOINT_URL"} <= seen
    assert {"CORPUSX_WITNESS_DATA_DIR", "CORPUSX_WITNESS_PORT", "CORPUSX_WITNESS_POLICY"} <= seen


def test_services_are_health_checked_and_ordered() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name in ("postgres", "minio", "api", "witness"):
        assert "healthcheck" in services[name], name
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "--workers" in services["api"]["command"]
    # The API starts once the witness has written the policy it reads, and the witness once
    # init has published the log's vkey; both go through the shared `public` volume.
    assert services["api"]["depends_on"]["witness"]["condition"] == "service_healthy"
    assert services["witness"]["depends_on"]["init"]["condition"] == (
        "service_completed_successfully"
    )
    policy = services["api"]["environment"]["CORPUSX_WITNESS_POLICY"]
    witness_script = services["witness"]["command"][0]
    assert f"> {policy}" in witness_script and "/public/log.vkey" in witness_script
    assert "/public/log.vkey" in services["init"]["command"][0]
    for name in ("init", "witness", "api"):
        assert any(v.startswith("public:/public") for v in services[name]["volumes"]), name
    port = services["witness"]["environment"]["CORPUSX_WITNESS_PORT"]
    assert f"http://witness:{port}" in witness_script
    assert f"127.0.0.1:{port}/healthz" in " ".join(services["witness"]["healthcheck"]["test"])


def test_the_image_carries_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in PACKAGES:
        assert f"COPY {package} ./{package}" in dockerfile
    # setup.py declares the compiled module; the image checks that it was built.
    assert "COPY setup.py" in dockerfile and "import catalog._sketch" in dockerfile


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
