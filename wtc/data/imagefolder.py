"""ImageFolder trees (ImageNet layout: train/CLASS/*.jpg, val/CLASS/*.jpg) through torchvision
transforms and a DataLoader; val/ is the test set."""

from __future__ import annotations

from pathlib import Path

import torch

from wtc.data.config import DataBundle, DataConfig
from wtc.data.loaders import EpochLoader, Remapped, dist_info
from wtc.data.splits import held_out_split, select_classes, stratified_split
from wtc.errors import DataError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_image(path: str) -> object:
    """One RGB image; a file that is empty, truncated or not an image is a DataError naming
    it (exit 2), not a bare OSError from deep inside PIL."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.load()  # decode now: a truncated file fails here, with its name
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file (empty or of an unknown format)") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise DataError(f"{path}: cannot read the image: {e}") from None


def make(cfg: DataConfig, channels: int | None, resolution: int | None,
         num_classes: int | None) -> DataBundle:
    """Loaders over train/ and val/ class folders (ImageNet layout) under --data-root."""
    from torchvision import datasets, transforms

    if not cfg.data_root:
        raise DataError("imagefolder needs --data-root DIR with train/ and val/ class folders "
                        "(ImageNet layout)")
    root = Path(cfg.data_root)
    missing = [d for d in ("train", "val") if not (root / d).is_dir()]
    if missing:
        raise DataError(f"{root} is not an ImageFolder tree: missing {', '.join(missing)}/; "
                        "expected train/CLASS/*.jpg and val/CLASS/*.jpg")
    res = cfg.resolution or resolution or 224
    mean, std = MEAN, STD
    norm = transforms.Normalize(mean, std)
    train_tf = transforms.Compose([
        transforms.RandomResizedCrop(res), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), norm] if cfg.augment else [
        transforms.Resize(round(res * 256 / 224)), transforms.CenterCrop(res),
        transforms.ToTensor(), norm])
    eval_tf = transforms.Compose([transforms.Resize(round(res * 256 / 224)),
                                  transforms.CenterCrop(res), transforms.ToTensor(), norm])
    try:
        tr_aug = datasets.ImageFolder(str(root / "train"), transform=train_tf, loader=load_image)
        tr_eval = datasets.ImageFolder(str(root / "train"), transform=eval_tf, loader=load_image)
        te = datasets.ImageFolder(str(root / "val"), transform=eval_tf, loader=load_image)
    except (FileNotFoundError, OSError) as e:
        raise DataError(f"cannot read ImageFolder tree {root}: {e}") from None
    if tr_aug.classes != te.classes:
        raise DataError(f"{root}/train and {root}/val have different class folders")
    n_cls = len(tr_aug.classes)
    ytr = torch.tensor(tr_aug.targets, dtype=torch.long)
    yte = torch.tensor(te.targets, dtype=torch.long)
    keep, ytr = select_classes(ytr, cfg.classes, n_cls)
    keep_te, yte = select_classes(yte, cfg.classes, n_cls)
    floor = cfg.val_split > 0 and cfg.val_min_per_class > 0
    if floor:
        ti, vi = held_out_split(ytr, cfg.fraction, cfg.val_split, cfg.val_min_per_class,
                                cfg.seed)
    elif cfg.fraction < 1.0:
        sel, _ = stratified_split(ytr, cfg.fraction, cfg.seed)
        keep, ytr = keep[sel], ytr[sel]
    val = None
    rank, world = dist_info()
    eval_bs = cfg.eval_batch_size or max(cfg.batch_size, 256)
    common = {"workers": cfg.workers, "seed": cfg.seed}
    if cfg.val_split > 0:
        if not floor:
            vi, ti = stratified_split(ytr, cfg.val_split, cfg.seed + 1)
        val = EpochLoader(Remapped(tr_eval, keep[vi], ytr[vi]), batch_size=eval_bs,
                           shuffle=False, rank=0, world_size=1, drop_last=False, **common)
        keep, ytr = keep[ti], ytr[ti]
    train = EpochLoader(Remapped(tr_aug, keep, ytr), batch_size=cfg.batch_size, shuffle=True,
                         rank=rank, world_size=world, drop_last=True, **common)
    test = EpochLoader(Remapped(te, keep_te, yte), batch_size=eval_bs, shuffle=False, rank=0,
                        world_size=1, drop_last=False, **common)
    names = [tr_aug.classes[c] for c in cfg.classes] if cfg.classes else list(tr_aug.classes)
    return DataBundle(train=train, val=val, test=test, num_classes=len(names), channels=3,
                      resolution=res, train_size=len(ytr), name="imagefolder",
                      class_names=names)
