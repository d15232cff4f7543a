"""Typed errors. Library code raises these; only the CLI turns them into messages and exit codes.

Every subclass of `UserInputError` is the user's to fix (exit code 2); anything else is a bug
or an environment failure (exit code 1).
"""

from __future__ import annotations


class WtcError(Exception):
    """Base of every error wtc raises on purpose."""


class UserInputError(WtcError):
    """Bad input from the user: a spec, a widths file, an option, data. CLI exit code 2."""


class SpecError(UserInputError):
    """A spec that does not load or validate; the message names file, line and key path."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: str | None = None) -> None:
        self.file, self.line, self.path, self.reason = file, line, path, message
        where = []
        if file:
            where.append(f"{file}:{line}" if line else file)
        if path:
            where.append(f"at '{path}'")
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class GraphError(UserInputError):
    """A spec that validates but cannot be compiled (shapes or channels that do not fit)."""


class WidthsError(UserInputError):
    """A widths file or mapping that does not fit its spec (missing, extra or invalid groups)."""


class TargetError(UserInputError):
    """A MACs target that cannot be met (below the smallest network, or not positive)."""


class RegistryError(UserInputError):
    """An unknown name looked up in a registry, or a duplicate registration."""


class ConfigError(UserInputError):
    """Bad settings for an optimizer, trainer or exporter."""


class DataError(UserInputError):
    """A dataset that is missing, malformed or asked for with impossible options."""


class CheckpointError(UserInputError):
    """A checkpoint that is missing, corrupt or does not fit the model."""


class TransferError(UserInputError):
    """Source and target specs that cannot be matched (stages, roles)."""


class PlanError(UserInputError):
    """An experiment plan that does not validate; the message names the plan key at fault."""

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        self.key, self.file, self.reason = key, file, message
        where = " ".join(x for x in (file, f"at '{key}'" if key else None) if x)
        super().__init__(f"{where}: {message}" if where else message)


class WriteError(UserInputError):
    """An output that cannot be written (no permission, no space left, a read-only disk): one
    message naming the path. Whoever raises it leaves no partial output behind."""

    def __init__(self, path: object, error: OSError | str) -> None:
        self.path = path
        reason = error if isinstance(error, str) else (error.strerror or str(error))
        super().__init__(f"cannot write {path}: {reason}")


class ExportError(WtcError):
    """An export that failed its onnx checker or onnxruntime comparison."""
