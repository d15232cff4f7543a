"""Cutting a labelled set: a stratified share per class (fractions, val hold-out) and a class
subset relabelled 0..k-1."""

from __future__ import annotations

import torch

from wtc.errors import DataError


def stratified_split(labels: torch.Tensor, share: float, seed: int,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, rest) indices: `share` of each class kept (at least one), seeded."""
    g = torch.Generator().manual_seed(seed)
    kept, rest = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(len(idx), max(1, round(share * len(idx))))
        kept.append(idx[:k])
        rest.append(idx[k:])
    return torch.sort(torch.cat(kept)).values, torch.sort(torch.cat(rest)).values


def held_out_split(labels: torch.Tensor, fraction: float, val_split: float, min_per_class: int,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) indices when the held-out split has a floor of `min_per_class` images
    per class. Per class: the training share is what `fraction` then `val_split` leave
    (fraction × (1 − val_split) of the class, as without a floor), and the held-out share is
    val_split × fraction of the class, at least `min_per_class`, drawn from the class's other
    images (a proxy that trains on 2% of the images still decides on enough of them). The
    held-out images never overlap the training ones; each class keeps at least one training
    image."""
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = len(idx)
        kept = min(n, max(1, round(fraction * n)))
        n_val = min(n - 1, max(min_per_class, round(val_split * kept)))
        n_train = max(1, min(n - n_val, kept - round(val_split * kept)))
        val.append(idx[:n_val])
        train.append(idx[n_val:n_val + n_train])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(val)).values


def select_classes(labels: torch.Tensor, classes: list[int] | None, n_classes: int,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices to keep, relabelled labels) for a class subset; identity without one."""
    if classes is None:
        return torch.arange(len(labels)), labels
    bad = [c for c in classes if c >= n_classes]
    if bad:
        raise DataError(f"classes {bad} do not exist: the dataset has classes 0..{n_classes - 1}")
    remap = torch.full((n_classes,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    new = remap[labels]
    keep = torch.nonzero(new >= 0).flatten()
    return keep, new[keep]
