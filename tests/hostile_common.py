"""What every hostile-input test asserts (issues 12 and 22): exit 2, one located message on
stderr, no traceback, and nothing written. No time bounds here: those are benchmarks."""

from __future__ import annotations

from pathlib import Path


def refused(cli, *args, expect=(), code: int = 2) -> str:
    """Run the CLI; assert the exit code, no traceback and one message holding `expect`."""
    rc, stdout, stderr = cli(*args)
    message = " ".join(stderr.split())
    assert rc == code, f"exit {rc}: {stdout}{stderr}"
    assert "Traceback" not in stdout + stderr
    assert "internal error" not in message, message
    assert message.count("error:") == 1, message  # warnings may come first
    message = message[message.index("error:"):]
    for part in expect:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def tree(*folders: Path) -> dict[str, bytes | None]:
    """Every file under `folders` with its bytes (None for a folder or a link), to assert that
    a refused command wrote nothing."""
    found: dict[str, bytes | None] = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            found[str(p)] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return found
