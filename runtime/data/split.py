"""The validation hold-out: stratified by class, grouped by recording, drawn from the seed, and recorded.

When the data gives no val split, ``data.val_fraction`` of train is held out. Windows of one recording are
alike, so a hold-out drawn window by window lets the model be picked on recordings it trained on; with
``data.split_by`` group (or auto, when the data names at least two recordings) whole recordings go to one
side, chosen by scikit-learn's ``StratifiedGroupKFold`` so the classes keep their proportions. Without
recordings, each class is shuffled and its share taken, so even a class of two windows is on both sides.

A window's class for stratification is its label, or for per-timestep labels the highest class it holds (a
window holding a seizure counts as a seizure window).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from runtime.data.cache import CachedSplit
from runtime.data.formats import DataError

HOLDOUT_STREAM = 7  # keeps the val hold-out draw apart from the per-epoch batch orders
FEW_VAL_WINDOWS, FEW_VAL_PER_CLASS = 50, 5  # fewer, and picking best.pt on val is said to be noisy


@dataclass
class HoldOut:
    train: np.ndarray  # rows of the train cache
    val: np.ndarray
    method: str
    record: dict = field(default_factory=dict)  # what split.json holds


def hold_out(cache: CachedSplit, fraction: float, seed: int, split_by: str) -> HoldOut:
    """Split the train cache into train and val rows as ``split_by`` says (see the module docstring)."""
    classes = cache.window_classes
    named = cache.groups[cache.groups >= 0]
    recordings = len(np.unique(named))
    grouped = split_by == "group" or (split_by == "auto" and recordings >= 2)
    if grouped:
        held = _by_group(cache, classes, fraction, seed, recordings)
    else:
        held = _by_window(classes, fraction, seed)
    _check_sides(held, cache, classes)
    held.record = _record(held, cache, classes, fraction, seed)
    return held


def _by_window(classes: np.ndarray, fraction: float, seed: int) -> HoldOut:
    rng = np.random.default_rng([seed, HOLDOUT_STREAM])
    val = []
    for label in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == label))
        take = round(fraction * len(members))
        val.append(members[: max(take, 1) if len(members) > 1 else 0])
    val_rows = np.sort(np.concatenate(val))
    return HoldOut(
        np.setdiff1d(np.arange(len(classes)), val_rows), val_rows, "stratified by class, by window"
    )


def _by_group(
    cache: CachedSplit, classes: np.ndarray, fraction: float, seed: int, recordings: int
) -> HoldOut:
    from sklearn.model_selection import StratifiedGroupKFold

    if recordings < 2:
        raise DataError(
            f"data.split_by is 'group' but the train split names {recordings} recording(s); a grouped val "
            "hold-out needs at least 2: give a val split (data.val), name the recordings (a 'groups' array "
            "in each npz, or the manifest's \"groups\"), or set data.split_by to 'window'"
        )
    groups = np.where(cache.groups >= 0, cache.groups, -1 - np.arange(cache.count))  # unnamed: alone
    folds = min(recordings, max(2, round(1 / fraction)))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "the least populated class has only n members": said by _check_sides
        warnings.simplefilter("ignore", UserWarning)
        train_rows, val_rows = next(splitter.split(np.zeros(len(classes)), classes, groups))
    return HoldOut(
        np.sort(train_rows), np.sort(val_rows), f"stratified by class, grouped by recording ({folds} folds)"
    )


def _check_sides(held: HoldOut, cache: CachedSplit, classes: np.ndarray) -> None:
    if len(held.train) and len(held.val):
        missing = sorted(set(np.unique(classes[held.train])) - set(np.unique(classes[held.val])))
        if not missing:
            return
        counts = np.bincount(classes, minlength=max(missing) + 1)
        shown = ", ".join(f"class {c} ({counts[c]} window(s) in all)" for c in missing)
        raise DataError(
            f"the val hold-out ({held.method}) has no window of {shown}, so best.pt could not be "
            "picked fairly; give a val split (data.val), raise data.val_fraction, or add data of that class"
        )
    raise DataError(
        f"the train split has only {cache.count} window(s) (or recordings): too few to hold out a val split; "
        "give a val split (data.val) or more training data"
    )


def _record(held: HoldOut, cache: CachedSplit, classes: np.ndarray, fraction: float, seed: int) -> dict:
    names = cache.group_names
    val_groups = sorted({names[g] for g in cache.groups[held.val] if g >= 0})
    size = int(classes.max()) + 1
    return {
        "method": held.method,
        "seed": seed,
        "val_fraction": fraction,
        "train_windows": len(held.train),
        "val_windows": len(held.val),
        "train_per_class": np.bincount(classes[held.train], minlength=size).tolist(),
        "val_per_class": np.bincount(classes[held.val], minlength=size).tolist(),
        "val_recordings": val_groups,
        "val_rows": held.val.tolist(),
    }


def windows_per_class(view, num_classes: int) -> list[int]:
    """Windows of ``view`` per class (per-timestep labels: by each window's highest class)."""
    return np.bincount(view.cache.window_classes[view.indices], minlength=num_classes).tolist()


def few_val_warning(val_per_class: list[int], metric: str) -> str | None:
    """A warning when val is too small to pick best.pt by ``metric`` reliably (or misses a class)."""
    total = sum(val_per_class)
    if total >= FEW_VAL_WINDOWS and min(val_per_class) >= FEW_VAL_PER_CLASS:
        return None
    per_class = ", ".join(str(count) for count in val_per_class)
    return (
        f"warning: best.pt is picked by {metric} on {total} val window(s) ({per_class} per class); so few "
        "make the choice noisy: give a larger val split (data.val, data.val_fraction)"
    )
