"""Upper bounds on what wtc accepts from a file, so hostile or careless input is refused quickly.

Every bound here is documented in the README ("Limits"). Two are settable, by environment
variable or by argument to the functions that use them:

    WTC_MAX_FILE_BYTES   largest spec, widths or settings file read (default 1 MB = 1,000,000)
    WTC_MAX_MEMORY       largest estimated memory of a built model (default: half the RAM),
                         in bytes or with a unit: 512M, 8G, 1.5T

The rest are fixed: they are far above any network wtc is meant for (the widest layer of
ConvNeXt-XL has 8,192 channels; ImageNet-21k has 21,841 classes) and low enough that counting,
compiling and validating stay instant. No torch here.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from wtc.errors import UserInputError

MAX_FILE_BYTES = 1_000_000  # spec, widths and settings files
MAX_YAML_NODES = 20_000  # scalars + mappings + sequences of one YAML file, aliases expanded
MAX_YAML_DEPTH = 32  # nested mappings/sequences
MAX_KEY_CHARS = 200  # one mapping key
MAX_EXPR_CHARS = 500  # one template expression
MAX_NAME_CHARS = 100  # identifiers: stage, template, node, parameter names
MAX_TEXT_CHARS = 10_000  # free text: spec name, description

MAX_CHANNELS = 65_536  # any channel count: input, stage width, `out`, a widths-file group
MAX_CLASSES = 65_536  # the classifier is a layer of `classes` channels: the channel limit
MAX_RESOLUTION = 8_192
MAX_DEPTH = 1_024  # blocks in one stage
MAX_STAGES = 256
MAX_CALLS = 64  # blocks in the stem or the head
MAX_TEMPLATES = 256
MAX_TEMPLATE_NODES = 256
MAX_GRAPH_NODES = 10_000  # ops of the compiled network (ResNet-1001: about 3,000)
MAX_KERNEL = 255
MAX_STRIDE = 1_024  # also padding and dilation
MAX_DIVISOR = 1_024

# numbers from the command line, a settings file or a plan (wtc.numbers checks them)
MAX_EPOCHS = 100_000  # also warmup epochs and eval_every
MAX_SEED = 2**32 - 1  # what every RNG wtc seeds (numpy, torch, Python) accepts
MAX_BATCH = 65_536
MAX_SYNTHETIC_IMAGES = 1_000_000  # one synthetic split
MAX_THREADS = 4_096  # also jobs and data-loader workers
MAX_MACS = 10**18  # a MACs target

DEFAULT_MEMORY_SHARE = 0.5  # of the machine's physical RAM
_FALLBACK_RAM = 8 * 2**30


class LimitError(UserInputError):
    """Input over a limit (a file too large, not a regular file, not UTF-8), or a limit
    setting (an environment variable) that cannot be read. CLI exit code 2."""


def max_file_bytes() -> int:
    """The file size limit: WTC_MAX_FILE_BYTES, else 1 MB."""
    return _env_bytes("WTC_MAX_FILE_BYTES", MAX_FILE_BYTES)


def physical_memory() -> int:
    """Bytes of RAM on this machine (8 GiB when the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return _FALLBACK_RAM


def max_memory() -> int:
    """The built-model memory limit: WTC_MAX_MEMORY, else half the machine's RAM."""
    return _env_bytes("WTC_MAX_MEMORY", int(DEFAULT_MEMORY_SHARE * physical_memory()))


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "ki": 2**10, "kib": 2**10, "mi": 2**20,
          "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'1000000', '512M', '8G', '1.5T', '4GiB' → bytes."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise LimitError(f"cannot read '{text}' as a size: give bytes or a number with a unit "
                         "such as 512M, 8G or 4GiB")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not value >= 1:
        raise LimitError(f"a size limit must be at least 1 byte, got '{text}'")
    if value > 2**63:  # also a number too long to be finite (float inf)
        raise LimitError(f"a size limit must be at most 2^63 bytes, got '{text[:40]}'")
    return int(value)


def _env_bytes(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return parse_bytes(raw)
    except LimitError as e:
        raise LimitError(f"{name}: {e}") from None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def read_limited_text(path: str | Path, what: str, limit: int | None = None) -> str:
    """The UTF-8 text of a regular file no larger than `limit` bytes (default: the file size
    limit). Raises FileNotFoundError, or LimitError with a one-line reason: not a regular file
    (a folder, a device such as /dev/zero, a FIFO), too large, not UTF-8 text. The size is
    checked before reading, and at most `limit` + 1 bytes are ever read."""
    p = Path(path)
    limit = max_file_bytes() if limit is None else limit
    try:
        st = p.stat()
    except FileNotFoundError:
        raise
    except OSError as e:  # symlink loops, permissions, names too long
        raise LimitError(f"cannot read {what}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise LimitError(f"cannot read {what}: it is {kind}")
    if st.st_size > limit:
        raise LimitError(f"{what} is {st.st_size:,} bytes, over the limit of {limit:,} "
                         "(set WTC_MAX_FILE_BYTES to read larger files)")
    try:
        with p.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise LimitError(f"cannot read {what}: {e.strerror or e}") from None
    if len(data) > limit:  # grew since stat
        raise LimitError(f"{what} is over the limit of {limit:,} bytes "
                         "(set WTC_MAX_FILE_BYTES to read larger files)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise LimitError(f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} on line "
                         f"{line})") from None
