"""Malformed specs and widths files: each rejected with one located paragraph and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wtc

pytestmark = pytest.mark.unit

GOOD = Path("specs/resnet20.yaml").read_text()


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


TEMPLATE_HEAD = """name: t
input: {channels: 3, resolution: 16}
classes: 4
templates:
  mine:
    nodes:
"""
TEMPLATE_TAIL = """stages:
  - {name: s1, block: mine, depth: 1, width: 8}
head:
  - {block: classifier}
"""


def template(*nodes: str, params: str = "") -> str:
    body = "".join(f"      - {n}\n" for n in nodes)
    return TEMPLATE_HEAD.replace("    nodes:\n", f"    {params}\n    nodes:\n" if params else
                                 "    nodes:\n") + body + TEMPLATE_TAIL


# (name, YAML text, substrings the message must contain: the key path and what is wrong)
BAD_SPECS = [
    ("yaml_syntax", GOOD.replace("{name: stage2,", "{name: stage2 [,"), ["malformed YAML",
                                                                          "yaml_syntax.yaml:11"]),
    ("not_a_mapping", "- just\n- a list\n", ["a spec is a YAML mapping"]),
    ("empty_file", "", ["a spec is a YAML mapping"]),
    ("unknown_top_key", GOOD + "stagez: []\n", ["'stagez'", "unknown key"]),
    ("missing_stages", GOOD.split("stages:")[0] + "head:\n  - {block: classifier}\n",
     ["'stages'", "required key is missing"]),
    ("missing_head", GOOD.split("head:")[0], ["'head'", "required key is missing"]),
    ("depth_not_int", edit("depth: 3, width: 32", "depth: three, width: 32"),
     ["'stages[1].depth'", "valid integer", "'three'"]),
    ("negative_width", edit("width: 32", "width: -32"), ["'stages[1].width'", "greater than 0"]),
    ("zero_depth", edit("depth: 3, width: 64", "depth: 0, width: 64"),
     ["'stages[2].depth'", "greater than 0"]),
    ("unknown_block", edit("block: basic, depth: 3, width: 32",
                           "block: basik, depth: 3, width: 32"),
     ["stages[1].block", "unknown block 'basik'", "bottleneck"]),
    ("unknown_param", edit("block: basic, depth: 3, width: 32",
                           "block: basic, expnsion: 2, depth: 3, width: 32"),
     ["stages[1].expnsion", "unknown parameter 'expnsion'", "act"]),
    ("param_wrong_type", edit("block: basic, depth: 3, width: 32",
                              "block: bottleneck, expansion: six, depth: 3, width: 32"),
     ["stages[1].expansion", "should be a int"]),
    ("unknown_activation", edit("{block: conv_bn_act, width: 16, kernel: 3}",
                                "{block: conv_bn_act, width: 16, kernel: 3, act: swish}"),
     ["stem[0].act", "unknown activation 'swish'", "relu6"]),
    ("duplicate_stage", edit("name: stage2", "name: stage1"), ["stages[1].name", "used twice"]),
    ("reserved_stage", edit("name: stage2", "name: head"), ["stages[1].name", "reserved"]),
    ("missing_channels", edit("{channels: 3, resolution: 32}", "{resolution: 32}"),
     ["'input.channels'", "required"]),
    ("zero_classes", edit("classes: 10", "classes: 0"), ["'classes'", "greater than 0"]),
    ("bad_stage_name", edit("name: stage2", "name: 'stage 2'"), ["stages[1].name", "pattern"]),
    ("divisor_text", edit("classes: 10", "classes: 10\ndivisor: eight"), ["'divisor'",
                                                                         "valid integer"]),
    ("unknown_op", template("{name: c, op: conv3d, out: width}"), ["templates.mine.nodes[0].op",
                                                                    "'conv'"]),
    ("dangling_input", template("{name: c, op: conv, out: width}",
                                "{name: a, op: add, inputs: [c, nowhere]}"),
     ["templates.mine.nodes[1].inputs", "'nowhere'", "earlier node"]),
    ("unknown_name_in_expr", template("{name: c, op: conv, out: 'widht * 2'}"),
     ["templates.mine.nodes[0].out", "unknown name 'widht'", "width"]),
    ("expr_syntax", template("{name: c, op: conv, out: 'width *'}"),
     ["templates.mine.nodes[0].out", "not a valid expression"]),
    ("field_not_allowed", template("{name: c, op: conv, out: width}", "{name: b, op: bn, out: 4}"),
     ["templates.mine.nodes[1].out", "op 'bn' takes no 'out'"]),
    ("conv_without_out", template("{name: c, op: conv, kernel: 3}"),
     ["templates.mine.nodes[0]", "needs 'out'"]),
    ("add_one_input", template("{name: c, op: conv, out: width}",
                               "{name: a, op: add, inputs: [c]}"),
     ["templates.mine.nodes[1].inputs", "takes 2..8 inputs, got 1"]),
    ("shadows_builtin", GOOD + "templates:\n  basic:\n    nodes:\n      - {name: b, op: bn}\n",
     ["templates.basic", "shadows a built-in"]),
    ("add_channel_mismatch", template("{name: c, op: conv, out: 'width * 2'}",
                                      "{name: a, op: add, inputs: [c, input]}"),
     ["stages[0]", "node 'a'", "joins 16 and 3 channels"]),
    ("head_without_logits", edit("  - {block: classifier}", "  - {block: conv_bn_act, width: 8}"),
     ["head[0]", "must end in (N, classes)"]),
    ("resolution_too_small", edit("resolution: 32", "resolution: 1").replace(
        "{block: conv_bn_act, width: 16, kernel: 3}",
        "{block: conv_bn_act, width: 16, kernel: 3}\n  - {block: maxpool, kernel: 2, stride: 2}"),
     ["stem", "does not fit"]),
    ("linear_without_flatten", template("{name: p, op: gap}", "{name: f, op: linear, out: 4}"),
     ["stages[0]", "flatten"]),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_is_rejected_with_a_located_message(tmp_path, cli, name, text, expected):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    code, stdout, stderr = cli("validate", path)
    assert code == 2, stdout + stderr
    message = " ".join(stderr.split())  # rich wraps long lines
    assert str(path.name) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "Traceback" not in stdout + stderr
    # the library raises the same, typed
    with pytest.raises(wtc.errors.UserInputError):
        wtc.compile_spec(wtc.load_spec(path))


def test_located_errors_carry_the_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(edit("depth: 3, width: 64", "depth: 0, width: 64"))
    with pytest.raises(wtc.errors.SpecError) as info:
        wtc.load_spec(path)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "depth: 0" in t)
    assert info.value.line == line and info.value.path == "stages[2].depth"
    assert f"{path}:{line}" in str(info.value)


def widths_json(groups, spec_name="resnet20", spec_hash=None):
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    return {"format": "wtc.widths/1",
            "spec": {"name": spec_name, "hash": spec_hash or graph.spec_hash},
            "groups": groups}


def base_groups():
    return dict(wtc.base_widths(wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))).groups)


def _drop(d, key):
    d = dict(d)
    d.pop(key)
    return d


BAD_WIDTHS = [
    ("not_json", "{groups: 1", "specs/resnet20.yaml", ["not valid JSON"]),
    ("wrong_format", {"format": "other/2", "groups": {}}, "specs/resnet20.yaml",
     ["not a wtc widths file", "wtc.widths/1"]),
    ("missing_group", widths_json(_drop(base_groups(), "stage2.res")), "specs/resnet20.yaml",
     ["missing group(s) 'stage2.res'"]),
    ("extra_group", widths_json({**base_groups(), "stage9.res": 4}), "specs/resnet20.yaml",
     ["unknown group(s) 'stage9.res'"]),
    ("negative_width", widths_json({**base_groups(), "stage1.res": -3}), "specs/resnet20.yaml",
     ["'stage1.res' has -3 channels"]),
    ("string_width", widths_json({**base_groups(), "stage1.res": "16"}), "specs/resnet20.yaml",
     ["'stage1.res' has '16' channels"]),
    ("fixed_group", widths_json({**base_groups(), "logits": 12}), "specs/resnet20.yaml",
     ["fixed group(s) 'logits'"]),
    ("other_spec_same_groups", widths_json(base_groups()), "specs/resnet20_fmnist.yaml",
     ["made for spec 'resnet20'", "not 'resnet20_fmnist'", "wtc transfer"]),
    ("other_spec_other_groups", widths_json(base_groups()), "specs/resnet32.yaml",
     ["missing group(s) 'stage1.block3.conv1'"]),
    ("no_groups_object", {"format": "wtc.widths/1", "spec": {}, "groups": [1, 2]},
     "specs/resnet20.yaml", ["'groups' object"]),
]


@pytest.mark.parametrize(("name", "content", "spec", "expected"), BAD_WIDTHS,
                         ids=[b[0] for b in BAD_WIDTHS])
def test_bad_widths_file_is_rejected(tmp_path, cli, name, content, spec, expected):
    path = tmp_path / f"{name}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, stdout, stderr = cli("show", spec, "--widths", path)
    assert code == 2, stdout + stderr
    message = " ".join(stderr.split())
    assert path.name in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "Traceback" not in stdout + stderr


def test_missing_files(cli, tmp_path):
    code, _, stderr = cli("validate", tmp_path / "nope.yaml")
    assert code == 2 and "no such spec file" in stderr
    code, _, stderr = cli("flops", "specs/resnet20.yaml", "--widths", tmp_path / "nope.json")
    assert code == 2 and "no such widths file" in stderr
