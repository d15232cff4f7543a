"""Reading a YAML file of options (training config, search settings) into a mapping.

The file goes through the same guards as a spec: a size limit before reading, and the bounded
YAML reader of `wtc.safe_yaml` (no alias expansion bombs, no duplicate keys, no deep nesting).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wtc.errors import ConfigError
from wtc.limits import LimitError, read_limited_text
from wtc.safe_yaml import YamlError, load_yaml


def read_yaml_mapping(path: str | Path, kind: str, holds: str) -> dict[str, Any]:
    """The mapping in `path`; ConfigError naming the `kind` of file and what it must hold."""
    p = Path(path)
    try:
        loaded, _ = load_yaml(read_limited_text(p, kind))
    except FileNotFoundError:
        raise ConfigError(f"cannot read {kind} {p}: No such file or directory") from None
    except LimitError as e:
        raise ConfigError(f"{p}: {e}") from None
    except YamlError as e:
        at = f"{p}:{e.line}" if e.line else str(p)
        where = f" at '{e.path}'" if e.path else ""
        raise ConfigError(f"{at}{where}: not valid YAML: {e.reason}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{p} must hold {holds}")
    return loaded or {}
