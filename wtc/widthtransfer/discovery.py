"""Finding the spec a widths file was made for: widths.json records its spec's structural hash,
so the source spec of a transfer can be found by hash instead of being named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wtc.errors import TransferError, WidthsError, WtcError
from wtc.graph import StageGraph, compile_spec
from wtc.spec import load_spec
from wtc.widths import read_widths_json

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SourceSpec:
    """The spec a widths file was made for: its path, compiled graph, and whether it was found
    by its hash (rather than given)."""

    path: Path
    graph: StageGraph
    found: bool


def read_recorded_spec(path: str | Path) -> tuple[str | None, str | None]:
    """The spec name and hash a widths file says it was made for (checked later, in full)."""
    data = read_widths_json(path)
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        raise WidthsError(f"{path}: not a wtc widths file (no 'spec' object with name and hash)")
    return spec.get("name"), spec.get("hash")


def find_source_spec(widths_path: str | Path, spec_hash: str,
                     root: str | Path | None = None) -> Path | None:
    """A spec whose structural hash is `spec_hash`: next to the widths file first, then under
    specs/ of `root` (default: the working folder). Specs that do not load are skipped."""
    root = Path.cwd() if root is None else Path(root)
    candidates: list[Path] = []
    folder = Path(widths_path).resolve().parent
    candidates += sorted(p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES)
    specs = root / "specs"
    if specs.is_dir():
        candidates += sorted(p for p in specs.rglob("*") if p.suffix in SPEC_SUFFIXES)
    seen: set[Path] = set()
    for p in candidates:
        if p.resolve() in seen or not p.is_file():
            continue
        seen.add(p.resolve())
        try:
            if load_spec(p).structural_hash == spec_hash:
                return p
        except (WtcError, OSError):
            continue
    return None


def locate_source(widths_path: str | Path, source: str | Path | None = None,
                  root: str | Path | None = None) -> SourceSpec:
    """The source spec of a widths file: `source` if given (it must have the recorded hash),
    else found by the recorded hash (`find_source_spec`). TransferError says what to pass."""
    widths_path = Path(widths_path)
    name, recorded = read_recorded_spec(widths_path)
    found = False
    if source is None:
        if not recorded:
            raise TransferError(f"{widths_path} records no spec hash; pass the spec the widths "
                                "were made for with --source SPEC")
        source = find_source_spec(widths_path, recorded, root)
        if source is None:
            raise TransferError(
                f"{widths_path} was made for spec '{name}' (hash {recorded}) and no spec with "
                f"that hash is next to it or in specs/; pass the spec the widths were made "
                "for with --source SPEC")
        found = True
    graph = compile_spec(load_spec(source))
    if recorded != graph.spec_hash:
        raise TransferError(
            f"{widths_path} was made for spec '{name}' (hash {recorded}), but --source {source} "
            f"is '{graph.spec.name}' (hash {graph.spec_hash}); pass the spec the widths were "
            "made for (the proxy, e.g. written by `wtc proxy`)")
    return SourceSpec(path=Path(source), graph=graph, found=found)
