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
