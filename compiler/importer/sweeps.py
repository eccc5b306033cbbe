"""The sweeps of a module mtc generated: ``SWEEPS[function]`` lists each trial's arguments and config
overrides (with the ``run_name`` mtc derived), and the function's ``max_containers`` is the sweep's
``max_parallel``. The importer writes them back as ``sweep: {trials: [...], max_parallel, name}``: the same
trials in the same order, so the run names (and the checkpoints they hold) stay the same."""

from __future__ import annotations

import re
from typing import Any

from compiler.importer.notes import Unreadable
from compiler.importer.values import Scope
from compiler.spec.sweep import OVERRIDES_PARAM, RUN_NAME_KEY

SWEEPS_CONSTANT = "SWEEPS"
FIRST_RUN = re.compile(r"^(?P<name>.+)-t0+(?:-|$)")


def generated_sweep(
    function: str, scope: Scope, entry: dict[str, Any], containers_per_trial: int = 1
) -> dict[str, Any] | None:
    """The ``sweep:`` of ``function`` read from the module's ``SWEEPS``; None when it has none. Takes
    ``max_containers`` out of ``entry`` (the generated module sets it to ``max_parallel`` x the containers of
    one trial: a cluster's size)."""
    node = scope.constants.get(SWEEPS_CONSTANT)
    if node is None:
        return None
    try:
        listed = scope.evaluate(node)
    except Unreadable:
        return None
    trials = listed.get(function) if isinstance(listed, dict) else None
    if not isinstance(trials, list) or not trials or not all(isinstance(t, dict) for t in trials):
        return None
    sweep: dict[str, Any] = {"trials": [_values(trial) for trial in trials]}
    if "max_containers" in entry:
        sweep["max_parallel"] = entry.pop("max_containers") // containers_per_trial
    first = FIRST_RUN.match(str((trials[0].get(OVERRIDES_PARAM) or {}).get(RUN_NAME_KEY, "")))
    if first and first["name"] != function:
        sweep["name"] = first["name"]
    return sweep


def _values(trial: dict[str, Any]) -> dict[str, Any]:
    overrides = dict(trial.get(OVERRIDES_PARAM) or {})
    overrides.pop(RUN_NAME_KEY, None)
    return {**{k: v for k, v in trial.items() if k != OVERRIDES_PARAM}, **overrides}
