"""The user's client profile: server URL, token, member id and key file, in the config dir.

Client commands resolve each value from its flag, then ``CORPUSX_SERVER`` / ``CORPUSX_TOKEN``
/ ``CORPUSX_KEY`` / ``CORPUSX_MEMBER``, then this profile.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import platformdirs

DEFAULT_SERVER = "http://127.0.0.1:8600"


def config_dir() -> Path:
    override = os.environ.get("CORPUSX_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("corpusx"))


@dataclass(frozen=True)
class Profile:
    server: str | None = None
    token: str | None = None
    member: str | None = None
    key_file: str | None = None

    def merged(self, **overrides: str | None) -> Profile:
        """Flags win over environment variables, which win over the saved profile."""
        values = {}
        for name in ("server", "token", "member", "key_file"):
            env = os.environ.get("CORPUSX_" + ("KEY" if name == "key_file" else name.upper()))
            values[name] = overrides.get(name) or env or getattr(self, name)
        return replace(self, **values)


def profile_path() -> Path:
    return config_dir() / "profile.json"


def load_profile() -> Profile:
    path = profile_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Profile()
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read the profile {path}: {exc}") from None
    known = {k: v for k, v in data.items() if k in Profile.__dataclass_fields__}
    return Profile(**known)


def save_profile(profile: Profile) -> Path:
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds a token
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(profile), handle, indent=2)
    return path
