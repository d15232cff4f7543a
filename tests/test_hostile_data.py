"""Data and messages as hostile input (issue 22, classes 4, 5 and 9): a data root the user
names is used or refused, never silently replaced; a bad image names its file; messages say
what is wrong (the right fragment of an expression, a refused pickle without torch's advice to
turn the safety off, a folder given as a checkpoint, a number of 5,000 digits)."""

from __future__ import annotations

import collections
import json

import pytest
import torch

from tests.helpers import ROOT, refused
from wtc.spec.expr import ExprError, parse

pytestmark = pytest.mark.integration

TINY = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")
RGB = str(ROOT / "specs" / "tiny" / "bottleneck_tiny.yaml")


def test_a_named_fashion_mnist_root_that_does_not_exist_is_an_error(cli, tmp_path):
    run = tmp_path / "run"
    refused(cli, "train", TINY, "--data", "fashion-mnist", "--data-root", tmp_path / "nope",
            "--epochs", "1", "--out", run, expect=["--data-root", str(tmp_path / "nope"),
                                                   "no such folder"])
    refused(cli, "search", TINY, "--data", "fashion-mnist", "--data-root", tmp_path / "nope",
            "-o", tmp_path / "w.json", expect=[str(tmp_path / "nope")])
    assert list(tmp_path.iterdir()) == []


def image_tree(root, bad: dict[str, bytes]):
    from PIL import Image

    for split in ("train", "val"):
        for c, color in enumerate(("red", "green", "blue", "white")):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (10, 10), color).save(d / f"{i}.png")
    noisy = root / "noisy.png"  # large enough that half of it keeps a valid header
    Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48).save(noisy)
    good = noisy.read_bytes()
    noisy.unlink()
    for name, data in bad.items():
        (root / "train" / "class1" / name).write_bytes(data(good) if callable(data) else data)


@pytest.mark.parametrize(("name", "data", "expect"), [
    ("empty.png", b"", "not an image file"),
    ("truncated.png", lambda good: good[: len(good) // 2], "cannot read the image"),
    ("text.jpg", b"this is not a jpeg", "not an image file"),
])
def test_a_bad_image_in_an_imagefolder_names_the_file(cli, tmp_path, name, data, expect):
    image_tree(tmp_path / "tree", {name: data})
    refused(cli, "train", RGB, "--data", "imagefolder", "--data-root", tmp_path / "tree",
            "--resolution", "8", "--batch-size", "4", "--epochs", "1", "--out", tmp_path / "run",
            expect=[str(tmp_path / "tree" / "train" / "class1" / name), expect])
    assert not (tmp_path / "run").exists()  # no checkpoint yet: no partial run folder


@pytest.mark.parametrize(("text", "fragment", "words"), [
    ("[x for x in range(3)][0]", "[x for x in range(3)][0]", "indexing"),
    ("width + [i for i in y]", "[i for i in y]", "a list comprehension"),
    ("9**9**9", "9**9**9", "the power operator **"),
    ("width * 2 + 3 ** 2", "3 ** 2", "the power operator **"),
    ("width.__class__", "width.__class__", "attribute access"),
    ("(width", "(width", "was never closed"),
    ("x in y", "x in y", "the operator in"),
])
def test_an_expression_error_quotes_the_fragment_at_fault(text, fragment, words):
    with pytest.raises(ExprError) as e:
        parse(text)
    msg = str(e.value)
    assert msg.startswith(f"'{fragment}'") and words in msg, msg


def test_deep_nesting_says_so():
    with pytest.raises(ExprError, match=r"nested too deeply|too many nested"):
        parse("-" * 100_000 + "1")


class Evil:
    """Any class: unpickling it would import and run code, so weights_only refuses it."""


def test_a_pickled_checkpoint_is_refused_without_torchs_advice(cli, tmp_path):
    ck = tmp_path / "pickled.pt"
    torch.save({"model": collections.OrderedDict(), "x": Evil()}, ck)
    for args in (("export", TINY, "--onnx", tmp_path / "m.onnx", "--checkpoint", ck),
                 ("eval", TINY, "--checkpoint", ck, "--data", "synthetic")):
        msg = refused(cli, *args, expect=[str(ck), "pickled Python objects", "refused"])
        assert "weights_only=False" not in msg and "re-run" not in msg
    assert not (tmp_path / "m.onnx").exists()


def test_a_folder_given_as_checkpoint_is_said_to_be_a_folder(cli, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for args in (("export", TINY, "--onnx", tmp_path / "m.onnx", "--checkpoint", folder),
                 ("eval", TINY, "--checkpoint", folder, "--data", "synthetic")):
        msg = refused(cli, *args, expect=[str(folder), "is a folder"])
        assert "does not exist" not in msg


def test_a_5000_digit_width_says_it_is_too_long(cli, tmp_path):
    code, _, err = cli("search", TINY, "--method", "uniform", "-o", tmp_path / "w.json")
    assert code == 0, err
    text = (tmp_path / "w.json").read_text()
    group, width = next(iter(json.loads(text)["groups"].items()))
    huge = text.replace(f'"{group}": {width}', f'"{group}": ' + "7" * 5000, 1)
    assert huge != text
    (tmp_path / "w.json").write_text(huge)
    msg = refused(cli, "flops", TINY, "--widths", tmp_path / "w.json",
                  expect=[str(tmp_path / "w.json"), "5,000 digits", "65,536"])
    assert "set_int_max_str_digits" not in msg
    spec = tmp_path / "wide.yaml"
    spec.write_text((ROOT / "specs" / "tiny" / "resnet_tiny.yaml").read_text()
                    .replace("width: 8, kernel: 3", "width: " + "7" * 5000 + ", kernel: 3"))
    msg = refused(cli, "validate", spec, expect=[str(spec), "stem[0].width"])
    assert "set_int_max_str_digits" not in msg


def test_the_classes_limit_is_the_one_the_classifier_takes(cli, tmp_path):
    from wtc.limits import MAX_CHANNELS, MAX_CLASSES

    assert MAX_CLASSES == MAX_CHANNELS
    assert "| classes / resolution | 65,536" in (ROOT / "README.md").read_text()
    spec = tmp_path / "many.yaml"
    spec.write_text((ROOT / "specs" / "tiny" / "resnet_tiny.yaml").read_text()
                    .replace("classes: 4", "classes: 65537"))
    refused(cli, "validate", spec, expect=[str(spec), "'classes'", "65536"])
