"""Datasets: sizes, class balance and shapes of fractions, subsets, resolutions and splits."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import without_fashion_mnist
from wtc.data import (
    FASHION_MNIST_DIR,
    DataConfig,
    TensorLoader,
    make_data,
    make_synthetic,
    random_crop,
    stratified_split,
)
from wtc.errors import DataError

pytestmark = pytest.mark.unit

HAS_FMNIST = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_fmnist = pytest.mark.skipif(
    not HAS_FMNIST, reason=f"real Fashion-MNIST not installed at {FASHION_MNIST_DIR} "
    "(apt-get install dataset-fashion-mnist)")


def all_labels(loader) -> torch.Tensor:
    return torch.cat([y for _, y in loader])


def test_synthetic_shapes_and_determinism():
    cfg = DataConfig(data="synthetic", synthetic_size=300, synthetic_test_size=100,
                     batch_size=64, seed=3)
    a = make_data(cfg, channels=1, resolution=20, num_classes=5)
    b = make_data(cfg, channels=1, resolution=20, num_classes=5)
    assert (a.channels, a.resolution, a.num_classes, a.train_size) == (1, 20, 5, 300)
    xa, ya = next(iter(a.train))
    xb, yb = next(iter(b.train))
    assert xa.shape == (64, 1, 20, 20) and torch.equal(xa, xb) and torch.equal(ya, yb)
    a.train.set_epoch(1)
    assert not torch.equal(next(iter(a.train))[1], ya)  # a new epoch reshuffles
    assert sorted(torch.bincount(all_labels(a.test)).tolist()) == [20] * 5
    x1, _ = make_synthetic(10, seed=1)
    x2, _ = make_synthetic(10, seed=2)
    assert not torch.equal(x1, x2)


def test_stratified_split_per_class():
    labels = torch.arange(1000) % 4
    kept, rest = stratified_split(labels, 0.1, seed=0)
    assert torch.bincount(labels[kept]).tolist() == [25] * 4
    assert len(set(kept.tolist()) & set(rest.tolist())) == 0 and len(kept) + len(rest) == 1000


def test_random_crop_is_a_shift():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    g = torch.Generator().manual_seed(0)
    y = random_crop(x, 2, g)
    assert y.shape == x.shape
    g = torch.Generator().manual_seed(0)
    oy = torch.randint(0, 5, (2,), generator=g)
    ox = torch.randint(0, 5, (2,), generator=g)
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert torch.equal(y[i], xp[i, :, oy[i]:oy[i] + 5, ox[i]:ox[i] + 5])
    assert torch.equal(random_crop(x, 0, g), x)


def test_loader_shards_are_disjoint_per_rank():
    x = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    y = torch.arange(10)
    seen = []
    for rank in range(2):
        ld = TensorLoader(x, y, batch_size=3, mean=(0.0,), std=(1.0,), shuffle=True,
                          rank=rank, world_size=2)
        seen.append(all_labels(ld).tolist())
    assert len(seen[0]) == len(seen[1]) == 5
    assert sorted(seen[0] + seen[1]) == list(range(10))


@needs_fmnist
def test_fashion_mnist_fraction_classes_resolution_val():
    cfg = DataConfig(data="fashion-mnist", fraction=0.1, classes=[2, 5, 7], resolution=14,
                     val_split=0.1, batch_size=100, seed=1)
    d = make_data(cfg)
    # 6000 images per class, 10% kept = 600, of which 10% held out for validation
    assert (d.num_classes, d.resolution, d.channels) == (3, 14, 1)
    assert d.train_size == 3 * 540
    assert torch.bincount(all_labels(d.val)).tolist() == [60, 60, 60]
    d.train.drop_last = False
    assert torch.bincount(all_labels(d.train)).tolist() == [540, 540, 540]
    assert torch.bincount(all_labels(d.test)).tolist() == [1000, 1000, 1000]  # test not cut
    x, y = next(iter(d.train))
    assert x.shape == (100, 1, 14, 14) and x.dtype == torch.float32 and y.max() <= 2
    # a 3-channel model gets the grey image replicated; the full set is 60k / 10k
    full = make_data(DataConfig(data="fashion-mnist", augment=False), channels=3)
    xt, _ = next(iter(full.test))
    assert xt.shape[1:] == (3, 28, 28) and torch.equal(xt[:, 0], xt[:, 2])
    assert full.train_size == 60000 and abs(float(xt.mean())) < 0.3  # normalized


def test_imagefolder_tree(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for c, color in enumerate(("red", "green", "blue")):
            d = tmp_path / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (12, 10), color).save(d / f"{i}.png")
    d = make_data(DataConfig(data="imagefolder", data_root=str(tmp_path), classes=[0, 2],
                             resolution=8, batch_size=4, val_split=0.25))
    assert (d.num_classes, d.class_names, d.train_size) == (2, ["class0", "class2"], 6)
    x, y = next(iter(d.train))
    assert x.shape == (4, 3, 8, 8) and set(y.tolist()) <= {0, 1}
    assert sorted(all_labels(d.test).tolist()) == [0] * 4 + [1] * 4
    assert len(all_labels(d.val)) == 2


def test_data_errors(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        make_data(DataConfig(data="cifar10", data_root=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        make_data(DataConfig(data="cifar10", data_root=str(tmp_path)))
    with pytest.raises(DataError, match="train/"):
        make_data(DataConfig(data="imagefolder", data_root=str(tmp_path)))
    with pytest.raises(DataError, match="do not exist"):
        make_data(DataConfig(data="synthetic", classes=[0, 12]), num_classes=10)
    with pytest.raises(DataError, match="only 4 outputs"):
        make_data(DataConfig(data="synthetic", synthetic_classes=10), num_classes=4)
    with pytest.raises(DataError, match="input channels"):
        make_data(DataConfig(data="synthetic", synthetic_channels=3), channels=1)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    empty = without_fashion_mnist(tmp_path, monkeypatch)  # a root with no data: download fails
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        make_data(DataConfig(data="fashion-mnist", data_root=str(empty)))
    with pytest.raises(DataError, match="no such folder"):  # never the installed copy instead
        make_data(DataConfig(data="fashion-mnist", data_root=str(tmp_path / "nowhere")))


def test_test_set_is_resized_only_when_read():
    """A search never reads the test set, so it costs no resize (issue 11: tiny proxies)."""
    cfg = DataConfig(data="synthetic", synthetic_size=64, synthetic_test_size=32,
                     synthetic_resolution=16, resolution=8, batch_size=16)
    b = make_data(cfg, channels=3)
    assert b.test._resize_to == 8 and b.test._images.shape[-1] == 16
    x, _ = next(iter(b.test))
    assert x.shape[-2:] == (8, 8) and b.test._resize_to is None
    assert next(iter(b.train))[0].shape[-2:] == (8, 8)


def test_held_out_split_keeps_the_training_share_and_floors_the_held_out_share():
    from wtc.data.splits import held_out_split

    labels = torch.arange(10).repeat_interleave(600)  # 10 classes x 600 images
    # without the floor binding: the same sizes as fraction, then val_split
    train, val = held_out_split(labels, 1.0, 0.1, 10, seed=0)
    assert len(val) == 600 and len(train) == 5400
    # a 2% proxy: 12 images per class, of which 1 would be held out; the floor gives 100,
    # drawn from the class's other images, and the training share is unchanged (11)
    train, val = held_out_split(labels, 0.02, 0.1, 100, seed=0)
    assert len(val) == 1000 and len(train) == 110
    assert torch.bincount(labels[val]).tolist() == [100] * 10
    assert torch.bincount(labels[train]).tolist() == [11] * 10
    assert not set(train.tolist()) & set(val.tolist())
    # the held-out share grows with the data fraction once above the floor
    _, big = held_out_split(labels, 0.5, 0.5, 100, seed=0)
    assert len(big) == 1500
    # a class smaller than the floor keeps one training image
    small = torch.tensor([0] * 50 + [1] * 600)
    t, v = held_out_split(small, 1.0, 0.1, 100, seed=1)
    assert torch.bincount(small[t]).tolist()[0] >= 1
    assert torch.bincount(small[v]).tolist()[0] == 49
    # seeded
    assert held_out_split(labels, 0.02, 0.1, 100, seed=0)[1].tolist() == val.tolist()


def test_a_search_proxy_on_2_percent_of_fashion_mnist_decides_on_1000_held_out_images():
    cfg = DataConfig(data="synthetic", synthetic_size=6000, synthetic_classes=10,
                     fraction=0.02, val_split=0.1, val_min_per_class=100)
    data = make_data(cfg, channels=1, resolution=12, num_classes=10)
    assert data.val.num_samples == 1000
    assert data.train_size == 110  # 12 per class, 1 of them held out without the floor


def test_every_declared_dataset_loads():
    """Each `DATASETS.declare` line names a module's `make` that is there."""
    from wtc.data import DATASETS

    assert DATASETS.names() == ["cifar10", "fashion-mnist", "imagefolder", "synthetic"]
    for name in DATASETS:
        assert callable(DATASETS.get(name)), name
