"""Reading a YAML file of options (training config, search settings) into a mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wtc.errors import ConfigError


def read_yaml_mapping(path: str | Path, kind: str, holds: str) -> dict[str, Any]:
    """The mapping in `path`; ConfigError naming the `kind` of file and what it must hold."""
    p = Path(path)
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {kind} {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{p} must hold {holds}")
    return loaded or {}
