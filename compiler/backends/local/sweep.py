"""A local sweep: each trial of a function's sweep run as a local run with the trial's args and config
overrides (its own ``run_name``, so its own run directory), one after another or several at once: each trial
on its own cores, as many at a time as the machine's cores hold. The child saves the target's return value as
JSON (through :func:`compiler.backends.local.child.run_trial`) for the summary table.
"""

from __future__ import annotations

import json
import math
import os
import queue
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compiler.backends.local import child as local_child
from compiler.backends.local.prepare import prepare, protected_folders, usable_cores
from compiler.backends.local.supervise import execute, signals_passed_on
from compiler.backends.local.volumes import LocalRunError, make_folders, restore_abandoned, write_protected
from compiler.platform.modal_limits import MODAL_DEFAULT_CPU
from compiler.review.tables import aligned
from compiler.spec import sweep as sweeps
from compiler.spec.ir import App, Function


@dataclass(frozen=True)
class TrialOutcome:
    trial: sweeps.Trial
    exit_code: int
    summary: Any  # what the target returned (JSON), None when it failed or returned nothing


def sweep_parallel(requested: int, trials: int, fn: Function, say: Callable[[str], None]) -> int:
    """How many trials run at once: ``requested``, within the sweep's max_parallel and the cores here."""
    declared_cpu = fn.resources.cpu if fn.resources.cpu is not None else MODAL_DEFAULT_CPU
    per_trial = min(math.ceil(declared_cpu), len(usable_cores()))
    fitting = max(1, len(usable_cores()) // per_trial)
    parallel = min(requested, trials)
    if fn.sweep and fn.sweep.max_parallel and parallel > fn.sweep.max_parallel:
        say(f"--parallel {requested}: the sweep's max_parallel is {fn.sweep.max_parallel}; running that many")
        parallel = fn.sweep.max_parallel
    if parallel > fitting:
        say(
            f"--parallel {parallel}: {parallel} trials x {per_trial} core(s) do not fit the "
            f"{len(usable_cores())} core(s) here; running {fitting} at a time"
        )
        parallel = fitting
    return parallel


def execute_sweep(
    app: App,
    fn: Function,
    kwargs: dict[str, Any],
    volumes_root: Path,
    workdir: Path,
    parallel: int,
    say: Callable[[str], None],
) -> list[TrialOutcome]:
    """Run every trial of ``fn``'s sweep with ``kwargs`` as the base args, ``parallel`` at a time (each on
    its own cores); return their outcomes in trial order."""
    trials = sweeps.function_trials(fn)
    arg_names = set(fn.arg_names)
    cores = prepare(app, fn, kwargs, volumes_root, workdir).cores
    usable = usable_cores()
    slots: queue.Queue[list[int]] = queue.Queue()
    for slot in range(parallel):
        slots.put(usable[slot * cores : (slot + 1) * cores])
    say(f"sweep of {fn.name}: {len(trials)} trials, {parallel} at a time")
    with tempfile.TemporaryDirectory(prefix="mtc-sweep-") as results:

        def run_one(trial: sweeps.Trial) -> TrialOutcome:
            args, overrides = trial.split(arg_names)
            result_file = Path(results) / f"trial-{trial.index}.json"
            call = {
                "target": fn.run,
                "kwargs": {**kwargs, **args, **overrides},
                "result_file": str(result_file),
            }
            run = prepare(app, fn, call, volumes_root, workdir)
            run = replace(run, target=local_child.TRIAL_TARGET)
            label = f"trial {trial.index} ({trial.label()})"
            say(f"{label} starts in run {trial.run_name}")
            cpus = slots.get()
            try:
                with _cores_of_this_thread(cpus):  # the trial's child inherits them
                    code = execute(run, lambda message: say(f"{label}: {message}"))
            finally:
                slots.put(cpus)
            return TrialOutcome(trial, code, _read_summary(result_file) if code == 0 else None)

        read_only = protected_folders(prepare(app, fn, kwargs, volumes_root, workdir).mounts)
        try:
            make_folders(read_only)
        except LocalRunError as exc:
            say(f"error: {exc}")
            return [TrialOutcome(trial, 1, None) for trial in trials]
        restore_abandoned(volumes_root, say)
        # protected once for the whole sweep, so trials at once never restore each other's saved modes
        with signals_passed_on(), write_protected(read_only, volumes_root):
            if parallel == 1:
                return [run_one(trial) for trial in trials]
            with ThreadPoolExecutor(max_workers=parallel) as pool:
                return list(pool.map(run_one, trials))


@contextmanager
def _cores_of_this_thread(cpus: list[int]) -> Iterator[None]:
    """Pin the calling thread (only it, on Linux) to ``cpus`` for the block, then give its cores back."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _read_summary(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


SWEEP_COLUMNS = ("trial", "values", "exit", "run dir", "best metric", "steps")


def sweep_table(outcomes: list[TrialOutcome]) -> str:
    """One line per trial: its values, exit code, and the run directory and metrics its summary reports."""
    rows = []
    for outcome in outcomes:
        summary = outcome.summary if isinstance(outcome.summary, dict) else {}
        best = summary.get("best_metric")
        shown = (
            ", ".join(f"{name} {_number(value)}" for name, value in best.items())
            if isinstance(best, dict)
            else "-"
        )
        rows.append(
            (
                str(outcome.trial.index),
                outcome.trial.label(),
                str(outcome.exit_code),
                str(summary.get("run_dir") or outcome.trial.run_name),
                shown,
                str(summary.get("steps", "-")),
            )
        )
    return aligned(SWEEP_COLUMNS, rows, {"trial", "exit", "steps"})


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
