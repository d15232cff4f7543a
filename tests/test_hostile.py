"""Hostile or careless input (issue 12): each case is refused with exit code 2, one located
paragraph (file, and line or key path) and no traceback. How fast is not asserted here (the test
machine's cores are shared); the bounds that keep it fast (sizes, aliases, nesting, file counts)
are what the cases check.

The cases of the issue come first (alias bomb, a 50 MB spec, `wtc transfer` next to a hostile
file, a duplicate key, absurd widths, a model too big for the machine), then the ones an
attacker of a service that accepts user specs would try next.

The other doors (issue 22) have their own files, without time bounds: `test_hostile_ledger.py`
(paths that leave their folder, damaged ledgers, kill -9 mid-write), `test_hostile_numbers.py`
(command-line numbers), `test_hostile_plans.py` (plans, names, escaping), `test_hostile_io.py`
(no permission, no space), `test_hostile_data.py` (data roots, bad images, messages).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import wtc
from tests.helpers import ROOT
from wtc.limits import MAX_CHANNELS, parse_bytes

pytestmark = pytest.mark.integration

GOOD = (ROOT / "specs" / "resnet20.yaml").read_text()


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new)


def with_template(*nodes: str, params: str = "{}") -> str:
    """resnet20 whose second stage runs a user template with these nodes."""
    body = "".join(f"      - {n}\n" for n in nodes)
    text = edit("stages:", f"templates:\n  t:\n    params: {params}\n    nodes:\n{body}stages:")
    return edit("block: basic, depth: 3, width: 32", "block: t, depth: 3, width: 32", text)


def bomb(levels: int = 9) -> str:
    """The 'billion laughs': each anchor lists the previous one nine times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refused(cli, *args, expect=(), file: Path | str | None = None, line: bool = True):
    """Run the CLI; assert exit 2, no traceback, a located message."""
    code, stdout, stderr = cli(*args)
    message = " ".join(stderr.split())
    assert code == 2, f"exit {code}: {stdout}{stderr}"
    assert "Traceback" not in stdout + stderr
    assert message.startswith("error:") and message.count("error:") == 1, message
    if file is not None:
        name = str(file)
        assert name in message, message
        if line:
            assert re.search(re.escape(name) + r":\d+", message), f"no line: {message}"
    for part in expect:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


# --------------------------------------------------------------------------- the cases


def test_alias_bomb_stops_at_the_node_limit(cli, tmp_path):
    p = write(tmp_path, "bomb.yaml", GOOD + bomb())
    refused(cli, "validate", p, file=p, expect=["more than 20,000 YAML nodes", "aliases"])


def test_a_50_mb_spec_is_refused_before_it_is_read(cli, tmp_path):
    p = tmp_path / "huge.yaml"
    with p.open("w") as f:
        f.write(GOOD)
        f.write("# " + "x" * 50_000_000 + "\n")
    refused(cli, "validate", p, file=p, line=False,
            expect=["50,000,", "over the limit of 1,000,000", "WTC_MAX_FILE_BYTES"])


def test_the_file_size_limit_is_settable(cli, tmp_path, monkeypatch):
    p = write(tmp_path, "padded.yaml", GOOD + "# " + "x" * 1_100_000 + "\n")
    refused(cli, "validate", p, file=p, line=False, expect=["over the limit"])
    monkeypatch.setenv("WTC_MAX_FILE_BYTES", "2M")
    code, _, stderr = cli("validate", p)
    assert code == 0, stderr


def test_transfer_discovery_next_to_hostile_files(cli, tmp_path, monkeypatch):
    """Without --source, the folder of the widths file is searched: hostile files there (an
    alias bomb dressed as a spec, a FIFO, a symlink loop, a device, a 5 MB file) are skipped,
    and the source in specs/ is still found."""
    monkeypatch.chdir(ROOT)
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    widths = tmp_path / "w.json"
    wtc.save_widths(wtc.uniform_widths(graph, multiplier=0.5), widths)
    write(tmp_path, "evil.yaml", "stages: []\nhead: []\n" + bomb())
    write(tmp_path, "dup.yaml", "stages: []\nstages: []\nhead: []\n")
    write(tmp_path, "big.yaml", "stages:\nhead:\n# " + "x" * 5_000_000)
    os.mkfifo(tmp_path / "fifo.yaml")
    os.symlink(tmp_path / "loop.yaml", tmp_path / "loop.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    out = tmp_path / "out.json"
    code, stdout, stderr = cli("transfer", widths, "specs/resnet32.yaml", "-o", out, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["source"]["file"].endswith("specs/resnet20.yaml")
    # with no source anywhere: a clear refusal
    orphan = json.loads(widths.read_text())
    orphan["spec"]["hash"] = "0" * 16
    widths.write_text(json.dumps(orphan))
    refused(cli, "transfer", widths, "specs/resnet32.yaml", "-o", out, file=widths,
            line=False, expect=["no spec with that hash", "--source"])


@pytest.mark.parametrize("case", ["bomb", "huge", "duplicate", "wide"])
def test_a_fresh_process_refuses_with_exit_2(tmp_path, case):
    """The whole `wtc validate` process, interpreter start-up included, refuses each case with
    exit 2 and no traceback (a quiet machine takes about 0.3 s of CPU; not asserted, since the
    test machine's cores are shared)."""
    import subprocess
    import sys

    text = {"bomb": GOOD + bomb(), "duplicate": edit("classes: 10", "classes: 10\nclasses: 1"),
            "wide": edit("width: 32", "width: 1000000000000"),
            "huge": GOOD + "# " + "x" * 5_000_000 + "\n"}[case]
    p = write(tmp_path, f"{case}.yaml", text)
    result = subprocess.run([sys.executable, "-m", "wtc.cli.main", "validate", str(p)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(p.name) in result.stderr


def test_find_source_spec_is_bounded(tmp_path):
    from wtc.widthtransfer import find_source_spec

    for i in range(50):
        write(tmp_path, f"s{i}.yaml", GOOD)
    assert find_source_spec(tmp_path / "w.json", "no-such-hash", tmp_path, max_files=10) is None
    assert find_source_spec(tmp_path / "w.json", "x", tmp_path, seconds=0.0) is None


def test_duplicate_key_is_located_at_the_second(cli, tmp_path):
    p = write(tmp_path, "dup.yaml", edit("classes: 10", "classes: 10\nclasses: 100"))
    second = GOOD.splitlines().index("classes: 10") + 2
    refused(cli, "validate", p, file=p,
            expect=[f"dup.yaml:{second}", "duplicate key 'classes'", f"line {second - 1}"])
    nested = write(tmp_path, "nested.yaml", edit("{channels: 3, resolution: 32}",
                                                 "{channels: 3, resolution: 32, channels: 1}"))
    refused(cli, "validate", nested, file=nested, expect=["input.channels", "duplicate key"])


def test_a_stage_width_of_10_to_the_12(cli, tmp_path):
    p = write(tmp_path, "wide.yaml", edit("width: 32", "width: 1000000000000"))
    refused(cli, "validate", p, file=p, expect=["stages[1].width", f"{MAX_CHANNELS}"])
    refused(cli, "show", p, file=p, expect=["stages[1].width"])


def test_a_widths_file_with_2e9_channels(cli, tmp_path):
    graph = wtc.compile_spec(wtc.load_spec(ROOT / "specs" / "resnet20.yaml"))
    data = wtc.base_widths(graph).to_json()
    data["groups"]["stage1.res"] = 2 * 10**9
    p = write(tmp_path, "w.json", json.dumps(data))
    refused(cli, "show", ROOT / "specs" / "resnet20.yaml", "--widths", p, file=p, line=False,
            expect=["'stage1.res' has 2,000,000,000 channels", "at most 65,536"])


def test_a_model_too_big_for_the_machine(cli, tmp_path, monkeypatch):
    p = write(tmp_path, "big.yaml", edit("resolution: 32", "resolution: 4096"))
    monkeypatch.setenv("WTC_MAX_MEMORY", "1G")
    message = refused(cli, "validate", p, file=p,
                      expect=["would need about", "over the limit of 1.0 GB", "WTC_MAX_MEMORY",
                              "activations"])
    assert "at 'stages[0]'" in message  # the biggest stage
    monkeypatch.delenv("WTC_MAX_MEMORY")
    code, _, _ = cli("validate", p, "--max-memory", "64G")
    assert code == 0
    # the same estimate guards the build: no allocation, a typed error
    with pytest.raises(wtc.errors.SpecError, match="would need about"):
        monkeypatch.setenv("WTC_MAX_MEMORY", "1M")
        wtc.build_model(wtc.compile_spec(wtc.load_spec(p)))


def test_train_refuses_a_model_too_big_before_allocating(cli, tmp_path, monkeypatch):
    """The issue's `wtc train` died with "can't allocate memory" (exit 1); now the estimate
    refuses it (exit 2) and no run directory is left."""
    monkeypatch.setenv("WTC_MAX_MEMORY", "10K")
    run = tmp_path / "run"
    code, _, stderr = cli("train", ROOT / "specs" / "tiny" / "resnet_tiny.yaml", "--data",
                          "synthetic", "--epochs", "1", "--out", run)
    assert code == 2 and "would need about" in stderr and "Traceback" not in stderr
    assert not run.exists()


def test_default_memory_limit_is_half_the_ram(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("WTC_MAX_MEMORY", raising=False)
    p = write(tmp_path, "huge.yaml", edit("resolution: 32", "resolution: 8000").replace(
        "width: 64", "width: 60000"))
    refused(cli, "validate", p, file=p, expect=["TB", "half this machine's RAM"])


# --------------------------------------------------------------------------- our own cases

SPEC_CASES = [
    # (name, file content, substrings of the message)
    ("deep_nesting", GOOD + "x: " + "[" * 10_000 + "]" * 10_000 + "\n", ["nesting depth"]),
    ("deep_block_nesting", GOOD + "x:\n" + "".join("  " * i + "- \n" for i in range(1, 60)),
     ["nested deeper than 32 levels"]),
    ("recursive_alias", GOOD + "x: &a [1, *a]\n", ["recursive"]),
    ("undefined_alias", GOOD + "x: *nowhere\n", ["names no earlier anchor"]),
    ("merge_key_bomb", GOOD + bomb(5) + "x:\n  <<: [" + ", ".join(["{a: *l4}"] * 9) + "]\n",
     ["more than 20,000 YAML nodes"]),
    ("huge_int", edit("depth: 3, width: 32", "depth: " + "9" * 5000 + ", width: 32"),
     ["stages[1].depth", "cannot read", "as a number"]),
    ("huge_int_in_expression", with_template("{name: c, op: conv, out: '" + "9" * 400 + "'}"),
     ["stages[1]", "a value beyond"]),
    ("nan", edit("width: 32", "width: .nan"), ["stages[1].width", "not a finite number"]),
    ("inf_float", edit("width: 32", "width: 1.0e+999"), ["stages[1].width", "not a finite"]),
    ("power_tower", with_template("{name: c, op: conv, out: '9**9**9'}"),
     ["templates.t.nodes[0].out", "allowed: arithmetic"]),
    ("string_multiplication", with_template("{name: c, op: conv, out: 's * 999999999999'}",
                                            params="{s: 'ab'}"),
     ["stages[1]", "arithmetic on str"]),
    ("product_overflow", with_template(
        "{name: c, op: conv, out: '" + " * ".join(["width"] * 12) + "'}"),
     ["stages[1]", "beyond"]),
    ("division_by_zero", with_template("{name: c, op: conv, out: 'width // (stride - stride)'}"),
     ["stages[1]", "division or modulo by zero"]),
    ("attribute_access", with_template("{name: c, op: conv, out: 'width.__class__'}"),
     ["templates.t.nodes[0].out", "uses attribute access"]),
    ("dunder_call", with_template("{name: c, op: conv, out: '__import__(\"os\").system(\"x\")'}"),
     ["templates.t.nodes[0].out", "allowed"]),
    ("lambda", with_template("{name: c, op: conv, out: '(lambda: 1)()'}"),
     ["templates.t.nodes[0].out", "allowed"]),
    ("long_expression", with_template("{name: c, op: conv, out: '" + "width+" * 100 + "1'}"),
     ["templates.t.nodes[0].out", "at most 500 characters"]),
    ("kernel_from_expression", with_template("{name: c, op: conv, out: width, "
                                             "kernel: 'width * 1000'}"),
     ["stages[1]", "kernel must be between 1 and 255"]),
    ("long_key", GOOD + "k" * 300 + ": 1\n", ["a key of 300 characters"]),
    ("very_long_key", GOOD + "k" * 300_000 + ": 1\n", ["malformed YAML"]),
    ("non_text_key", GOOD + "yes: 1\n", ["key 'yes' is not text"]),
    ("null_byte", edit("name: resnet20", "name: res\x00net20"),
     ["null_byte.yaml:4", "#x0000 is not allowed"]),
    ("python_tag", GOOD + "x: !!python/object/apply:os.system ['echo pwned']\n",
     ["not allowed here"]),
    ("binary_tag", GOOD + "x: !!binary aGVsbG8=\n", ["tag:yaml.org,2002:binary"]),
    ("two_documents", GOOD + "---\nname: other\n", ["more than one YAML document"]),
    ("cyrillic_lookalike", edit("name: stage2", "name: st\u0430ge2"),
     ["stages[1].name", "should match pattern"]),
    ("right_to_left_override", edit("name: stage2", "name: \"stage\u202e2\""),
     ["stages[1].name", "should match pattern"]),
    ("too_many_ops", edit("depth: 3, width: 64", "depth: 1024, width: 64").replace(
        "depth: 3, width: 32", "depth: 1024, width: 32").replace(
        "depth: 3, width: 16", "depth: 1024, width: 16"),
     ["stages[", "over the limit of 10,000"]),
    ("depth_over_bound", edit("depth: 3, width: 64", "depth: 100000, width: 64"),
     ["stages[2].depth", "less than or equal to 1024"]),
    ("too_many_classes", edit("classes: 10", "classes: 100000000"),
     ["'classes'", "less than or equal to 65536"]),
    ("resolution_over_bound", edit("resolution: 32", "resolution: 100000"),
     ["input.resolution", "less than or equal to 8192"]),
    ("too_many_stages", edit("stages:", "stages:\n" + "".join(
        f"  - {{name: s{i}, block: basic, width: 16}}\n" for i in range(300))),
     ["'stages'", "at most 256 items"]),
    ("template_too_long", with_template(*[f"{{name: n{i}, op: identity}}" for i in range(300)]),
     ["templates.t.nodes", "at most 256 items"]),
    ("grouped_conv_misfit", with_template("{name: c, op: gconv, group_width: 5}"),
     ["stages[1]", "multiple of 5, got 16"]),
    ("split_of_one_conv", with_template("{name: c, op: conv, out: width}",
                                        "{name: s, op: split, chunk: 0}"),
     ["stages[1]", "'split' into 2 chunks needs its input in 2 equal parts"]),
    ("shuffle_of_unequal_halves", with_template(
        "{name: a, op: conv, out: width, inputs: input}",
        "{name: b, op: conv, out: 'width * 2', inputs: input}",
        "{name: cat, op: concat, inputs: [a, b]}", "{name: s, op: shuffle, groups: 2}"),
     ["stages[1]", "interleaves the parts"]),
]


@pytest.mark.parametrize(("name", "text", "expect"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_hostile_spec(cli, tmp_path, name, text, expect):
    p = write(tmp_path, f"{name}.yaml", text)
    refused(cli, "validate", p, file=p, expect=expect)
    with pytest.raises(wtc.errors.UserInputError):  # the library raises the same, typed
        wtc.compile_spec(wtc.load_spec(p))


def test_binary_junk(cli, tmp_path):
    p = write(tmp_path, "junk.yaml", bytes(range(256)) * 20)
    refused(cli, "validate", p, file=p, expect=["not UTF-8 text", "on line 2"], line=False)


@pytest.mark.parametrize("kind", ["symlink_loop", "dev_zero", "fifo", "folder", "dangling"])
def test_paths_that_are_not_files(cli, tmp_path, kind):
    p = tmp_path / f"{kind}.yaml"
    if kind == "symlink_loop":
        os.symlink(p, p)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", p)
    elif kind == "fifo":
        os.mkfifo(p)  # nobody writes: reading it would block forever
    elif kind == "folder":
        p.mkdir()
    else:
        os.symlink(tmp_path / "nowhere.yaml", p)
    refused(cli, "validate", p, file=p, line=False)
    refused(cli, "show", ROOT / "specs" / "resnet20.yaml", "--widths", p, file=p, line=False)


WIDTHS_CASES = [
    ("duplicate_key", '{"format": "wtc.widths/1",\n "groups": {},\n "groups": {}}',
     [":3:", "duplicate key 'groups'"]),
    ("deep_nesting", "[" * 100_000 + "]" * 100_000, ["nested too deeply"]),
    ("huge_int", '{"groups": {"a": ' + "9" * 10_000 + "}}", ["10,000 digits", "far too long"]),
    ("nan", None, ["'stage1.res' has nan channels"]),
    ("float", None, ["'stage1.res' has 16.0 channels"]),
    ("too_big_file", "{" + " " * 1_100_000 + "}", ["over the limit of 1,000,000"]),
    ("binary", b"\xff\xfe\x00junk", ["not UTF-8"]),
]


@pytest.mark.parametrize(("name", "text", "expect"), WIDTHS_CASES,
                         ids=[c[0] for c in WIDTHS_CASES])
def test_hostile_widths_file(cli, tmp_path, name, text, expect):
    spec = ROOT / "specs" / "resnet20.yaml"
    if text is None:
        data = wtc.base_widths(wtc.compile_spec(wtc.load_spec(spec))).to_json()
        data["groups"]["stage1.res"] = float("nan") if name == "nan" else 16.0
        text = json.dumps(data)
    p = write(tmp_path, f"{name}.json", text)
    refused(cli, "show", spec, "--widths", p, file=p, line=False, expect=expect)


def test_hostile_settings_file(cli, tmp_path):
    p = write(tmp_path, "settings.yaml", "strength: 1\n" + bomb())
    refused(cli, "search", ROOT / "specs" / "tiny" / "resnet_tiny.yaml", "--config", p,
            file=p, expect=["more than 20,000 YAML nodes"])
    d = write(tmp_path, "dup.yaml", "strength: 1\nstrength: 2\n")
    refused(cli, "search", ROOT / "specs" / "tiny" / "resnet_tiny.yaml", "--config", d,
            file=d, expect=["duplicate key 'strength'"])


def test_merge_keys_and_anchors_still_work(tmp_path):
    text = edit("  - {name: stage1, block: basic, depth: 3, width: 16, stride: 1}",
                "  - &first {name: stage1, block: basic, depth: 3, width: 16, stride: 1}")
    text = edit("  - {name: stage2, block: basic, depth: 3, width: 32, stride: 2}",
                "  - {<<: *first, name: stage2, width: 32, stride: 2}", text)
    spec = wtc.load_spec(write(tmp_path, "merge.yaml", text))
    assert spec == wtc.load_spec(ROOT / "specs" / "resnet20.yaml")


def test_parse_bytes():
    assert parse_bytes("512M") == 512 * 10**6
    assert parse_bytes("4GiB") == 4 * 2**30
    assert parse_bytes("1000") == 1000
    with pytest.raises(wtc.errors.UserInputError):
        parse_bytes("lots")
