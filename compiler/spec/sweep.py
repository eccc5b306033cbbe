"""Hyperparameter sweeps: expand a function's ``sweep:`` into its trials, in one stable order.

A sweep has a ``grid`` (every combination of its values: the cartesian product, the first key varying
slowest) and ``trials`` (an explicit list, appended after the grid's). A key is either one of the
function's ``args`` or a dotted training-config key (``optim.lr``) that the target receives in
``**overrides``. Every trial gets its own run: the override ``run_name`` is set to a deterministic name made
of the sweep's name, the trial's index and its values (``train-t03-lr_0.001-d_model_64``), so trials never
share checkpoints and a retried trial resumes its own.

Expansion is a pure function of the model: the generated module, ``mtc plan`` and ``mtc run --sweep`` all
read the same trial list from here.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from compiler.spec.ir import Function, Sweep

RUN_NAME_KEY = "run_name"  # the training config key that names a run's directory under output_dir
OVERRIDES_PARAM = "overrides"  # the parameter a sweeping function gains: its trial's config overrides
NAME_LIMIT = 120  # a run directory name stays well under file systems' 255 bytes
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")  # the training config's run_name pattern allows only these


@dataclass(frozen=True)
class Trial:
    index: int
    values: tuple[tuple[str, Any], ...]  # swept key -> value, in the order the spec declares the keys
    run_name: str

    def split(self, arg_names: set[str] | frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(args, config overrides): values of the function's args, and everything else plus ``run_name``."""
        args = {key: value for key, value in self.values if key in arg_names}
        overrides = {RUN_NAME_KEY: self.run_name}
        overrides.update((key, value) for key, value in self.values if key not in arg_names)
        return args, overrides

    def label(self) -> str:
        return ", ".join(f"{key}={_shown(value)}" for key, value in self.values)


def expand(sweep: Sweep, name: str) -> tuple[Trial, ...]:
    """The trials of ``sweep`` in order: the grid's combinations, then the explicit trials; ``name`` is the
    first part of every run name."""
    keys = [key for key, _ in sweep.grid]
    grid = itertools.product(*(values for _, values in sweep.grid)) if sweep.grid else ()
    listed = [tuple(zip(keys, values, strict=True)) for values in grid] + list(sweep.trials)
    digits = max(2, len(str(len(listed) - 1)))
    return tuple(
        Trial(index, values, run_name(name, index, values, digits)) for index, values in enumerate(listed)
    )


def function_trials(fn: Function) -> tuple[Trial, ...]:
    """The trials of ``fn``'s sweep (none without one)."""
    return expand(fn.sweep, fn.sweep.name or fn.name) if fn.sweep else ()


def run_name(name: str, index: int, values: tuple[tuple[str, Any], ...], digits: int = 2) -> str:
    """``train-t03-lr_0.001-d_model_64``: the last part of each dotted key, '_', the value; only the
    characters a run name may hold (letters, digits, '.', '_', '-')."""
    parts = [f"{name}-t{index:0{digits}d}", *(f"{key.rsplit('.', 1)[-1]}_{_shown(v)}" for key, v in values)]
    text = UNSAFE.sub("_", "-".join(parts)).strip("._")
    return text[:NAME_LIMIT]


def _shown(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return ",".join(_shown(item) for item in value)
    return str(value)
