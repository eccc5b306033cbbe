"""The local embedded backend of ``mtc run``: one function of the resolved app, run here as Modal would.

The function's ``run`` target is called in a child process (:mod:`compiler.local_child`) with its args.
What the spec declares is enforced here too, so a mistake shows locally before any GPU is billed:

- volumes: each mount path maps to a local folder (``<volumes dir>/<volume name>/``), passed to the child
  in ``MTC_VOLUME_MAP`` so :func:`runtime.paths.resolve` finds it; the image's ``add_local`` dirs are mapped
  the same way. Read-only volumes are read-only: as root through a private mount namespace with a read-only
  bind mount (permission bits do not stop root), otherwise by removing write permission for the run.
- cpu: thread pools (OpenMP, MKL, OpenBLAS, torch) and the CPU affinity are limited to ceil(cpu) cores,
  capped by the cores this process may use.
- memory: the anonymous resident memory of the child's whole process tree is sampled every 50 ms; above the
  declared limit the tree is killed and the attempt ends with exit code 137, what a container killed by the
  kernel's OOM killer reports.
- timeout: per attempt (Modal's default 300 s when the spec has none); the tree is killed, exit code 124.
- processes (``mtc run --processes N`` / ``--ddp``): ``MTC_NPROC`` tells :mod:`runtime.distributed` how many
  data-parallel processes to start, at most one per core the function may use; they share its cores and its
  memory limit (the limit covers the whole process tree).
- retries: a failed attempt is re-run up to ``max_retries`` times, after the declared delays; training
  resumes from its checkpoint because the volumes persist between attempts.

The exit code is the function's: 0 when it returns, the code of a ``SystemExit``, 1 for an uncaught exception.
A user's mistake the runtime reports (a bad config, data or checkpoint) prints as a message, not a traceback,
exits 1 and is not retried: it would fail the same way again.

A sweep (:func:`execute_sweep`) runs each trial as such a run, with the trial's args and config overrides
(its own ``run_name``, so its own run directory), one after another or several at once: each trial on its
own cores, as many at a time as the machine's cores hold. The child saves the target's return value as JSON
(through :func:`compiler.sweep.run_trial`) for the summary table.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compiler import sweep as sweeps
from compiler.model import App, Function
from compiler.plan import MODAL_DEFAULT_TIMEOUT_S, aligned

MODAL_DEFAULT_CPU = 0.125
EXIT_TIMEOUT = 124
EXIT_OUT_OF_MEMORY = 137  # 128 + SIGKILL, as for a container killed by the OOM killer
EXIT_INTERRUPTED = 130
EXIT_REJECTED = 65  # from compiler.local_child: the target rejected its input; a retry cannot help
POLL_S = 0.05
VOLUMES_DIR_ENV = "MTC_VOLUMES_DIR"
DEFAULT_VOLUMES_DIR = Path(".mtc") / "volumes"
CALL_ENV = "MTC_LOCAL_CALL"  # JSON payload for compiler.local_child
NPROC_ENV = "MTC_NPROC"  # read by runtime.distributed
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class LocalMount:
    path: str  # the mount path in the container
    volume: str  # the volume's name in the spec
    local: Path
    read_only: bool


@dataclass(frozen=True)
class LocalRun:
    """Everything needed to run one function locally: built by :func:`prepare`, run by :func:`execute`."""

    function: str
    target: str  # "module:function"
    workdir: Path  # where the child starts: relative paths in args resolve against it, as in `modal run`
    kwargs: dict[str, Any]
    mounts: tuple[LocalMount, ...]
    path_map: dict[str, str]  # container path -> local folder, for runtime.paths
    cores: int
    declared_cpu: float
    memory_mib: int | None
    timeout_s: int
    attempts: int
    retry_delays_s: tuple[float, ...]  # delay before attempt 2, 3, ...
    env: dict[str, str] = field(default_factory=dict)
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttemptResult:
    exit_code: int
    reason: str  # "exited" | "memory" | "timeout" | "interrupted"
    peak_mib: int
    seconds: float


def volumes_dir(option: str | None) -> Path:
    """The folder with one sub-folder per volume: the option, else ``$MTC_VOLUMES_DIR``, else .mtc/volumes."""
    chosen = option or os.environ.get(VOLUMES_DIR_ENV) or DEFAULT_VOLUMES_DIR
    return Path(chosen).expanduser().resolve()


def prepare(app: App, fn: Function, kwargs: dict[str, Any], volumes_root: Path, workdir: Path) -> LocalRun:
    mounts = tuple(
        LocalMount(m.path, m.volume, volumes_root / m.volume, app.volumes[m.volume].read_only)
        for m in fn.mounts
    )
    image = app.images.get(fn.image) if fn.image else None
    path_map = {
        remote: str((workdir / local).resolve()) for local, remote in (image.local_dirs if image else ())
    }
    path_map.update({m.path: str(m.local) for m in mounts})
    declared_cpu = fn.resources.cpu if fn.resources.cpu is not None else MODAL_DEFAULT_CPU
    cores = min(math.ceil(declared_cpu), len(_usable_cores()))
    env = {name: str(value) for name, value in _image_env(app, fn).items()}
    env.update(fn.env)
    env.update({name: str(cores) for name in THREAD_ENV_VARS})
    env["PYTHONUNBUFFERED"] = "1"
    env["MTC_BACKEND"] = "local"
    retries = fn.retries.max_retries if fn.retries else 0
    return LocalRun(
        function=fn.name,
        target=fn.run,
        workdir=workdir,
        kwargs=kwargs,
        mounts=mounts,
        path_map=path_map,
        cores=cores,
        declared_cpu=declared_cpu,
        memory_mib=fn.resources.memory_mib,
        timeout_s=fn.resources.timeout_s or MODAL_DEFAULT_TIMEOUT_S,
        attempts=1 + retries,
        retry_delays_s=_retry_delays(fn, retries),
        env=env,
        notices=tuple(_notices(fn, app)),
    )


def with_processes(run: LocalRun, requested: int, say: Callable[[str], None]) -> LocalRun:
    """``run`` training with ``requested`` data-parallel processes, at most one per core it may use."""
    processes = min(requested, run.cores)
    if processes < requested:
        say(
            f"{requested} data-parallel processes asked for, but {run.function} may use {run.cores} core(s) "
            f"here; running {processes}"
        )
    return replace(run, env={**run.env, NPROC_ENV: str(processes)})


def declared_gpu_count(fn: Function) -> int:
    """The GPUs the function asks for (its first choice), 1 for a CPU function."""
    return fn.resources.gpus[0].count if fn.resources.gpus else 1


def _usable_cores() -> list[int]:
    return (
        sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else list(range(os.cpu_count() or 1))
    )


def _image_env(app: App, fn: Function) -> dict[str, Any]:
    image = app.images.get(fn.image) if fn.image else None
    env: dict[str, Any] = {}
    for step in image.steps if image else ():
        if step.kind == "env" and isinstance(step.value, dict):
            env.update(step.value)
    return env


def _retry_delays(fn: Function, retries: int) -> tuple[float, ...]:
    """Delays before each retry: Modal's backoff when the spec declares a delay, none otherwise."""
    policy = fn.retries
    if policy is None or policy.initial_delay is None:
        return (0.0,) * retries
    coefficient = policy.backoff_coefficient or 2.0
    ceiling = policy.max_delay if policy.max_delay is not None else 60.0
    return tuple(min(policy.initial_delay * coefficient**k, ceiling) for k in range(retries))


def _notices(fn: Function, app: App) -> Iterator[str]:
    if fn.resources.gpus and not gpu_present():
        gpus = ", ".join(g.modal_string() for g in fn.resources.gpus)
        yield f"{fn.name} declares gpu {gpus}; there is no GPU here, so it runs on CPU"
    secrets = dict.fromkeys((*app.secrets, *fn.secrets))
    if secrets:
        names = ", ".join(secrets)
        yield f"secrets are not injected locally ({names}); export their variables yourself if needed"


def gpu_present() -> bool:
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


# ------------------------------------------------------------------------------------------------ running


def execute(run: LocalRun, say: Callable[[str], None]) -> int:
    """Run every attempt until one succeeds or none are left; return the last attempt's exit code."""
    for mount in run.mounts:
        mount.local.mkdir(parents=True, exist_ok=True)
    _describe(run, say)
    result = None
    with _write_protected([m.local for m in run.mounts if m.read_only]):
        for attempt in range(1, run.attempts + 1):
            if attempt > 1:
                delay = run.retry_delays_s[attempt - 2]
                say(
                    f"retrying {run.function} (attempt {attempt} of {run.attempts})"
                    + (f" in {delay:g} s" if delay else "")
                )
                try:
                    time.sleep(delay)
                except KeyboardInterrupt:
                    say(f"{run.function} interrupted before attempt {attempt}")
                    return EXIT_INTERRUPTED
            result = _attempt(run)
            say(_outcome(run, result, attempt))
            if result.exit_code == EXIT_REJECTED:
                return 1
            if result.exit_code == 0 or result.reason == "interrupted":
                break
    assert result is not None
    return result.exit_code


def _describe(run: LocalRun, say: Callable[[str], None]) -> None:
    memory = f"{run.memory_mib} MiB" if run.memory_mib else "not limited (none declared)"
    say(
        f"running {run.function} ({run.target}) locally: {run.cores} core(s) for cpu {run.declared_cpu:g}, "
        f"memory {memory}, timeout {run.timeout_s} s per attempt, {run.attempts} attempt(s)"
    )
    for mount in run.mounts:
        access = "read-only" if mount.read_only else "read-write"
        say(f"volume {mount.volume} at {mount.path} lives in {mount.local} ({access})")
    processes = int(run.env.get(NPROC_ENV, "1"))
    if processes > 1:
        threads = max(1, run.cores // processes)
        say(f"data-parallel: {processes} processes on {run.cores} core(s), {threads} thread(s) each")
    for notice in run.notices:
        say(notice)


def _outcome(run: LocalRun, result: AttemptResult, attempt: int) -> str:
    of = f" (attempt {attempt} of {run.attempts})" if run.attempts > 1 else ""
    if result.reason == "memory":
        return (
            f"error: {run.function} exceeded {run.memory_mib} MiB of memory{of} and was stopped, as Modal's "
            f"OOM killer would; raise its memory in the spec or use less (exit {result.exit_code})"
        )
    if result.reason == "timeout":
        return (
            f"error: {run.function} timed out after {run.timeout_s} s{of} and was stopped; raise its timeout "
            f"in the spec (exit {result.exit_code})"
        )
    if result.reason == "interrupted":
        return f"{run.function} interrupted (exit {result.exit_code})"
    if result.exit_code == EXIT_REJECTED:
        return (
            f"error: {run.function} rejected its input after {result.seconds:.1f} s{of}; not retried: it "
            "would fail the same way again. Fix what the message above says (exit 1)"
        )
    status = "finished" if result.exit_code == 0 else "failed"
    return (
        f"{run.function} {status} with exit code {result.exit_code} in {result.seconds:.1f} s{of}, "
        f"peak memory {result.peak_mib} MiB"
    )


def _attempt(run: LocalRun) -> AttemptResult:
    payload = {
        "target": run.target,
        "kwargs": run.kwargs,
        "cores": run.cores,
        "read_only": [str(m.local) for m in run.mounts if m.read_only],
    }
    env = {**os.environ, **run.env, CALL_ENV: json.dumps(payload), "MTC_VOLUME_MAP": json.dumps(run.path_map)}
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "compiler.local_child"], cwd=run.workdir, env=env, start_new_session=True
    )
    try:
        reason, code, peak = _supervise(child, run.memory_mib, started + run.timeout_s)
    except KeyboardInterrupt:
        _kill_tree(child)
        reason, code, peak = "interrupted", EXIT_INTERRUPTED, 0
    return AttemptResult(code, reason, peak, time.monotonic() - started)


def _supervise(child: subprocess.Popen, limit_mib: int | None, deadline: float) -> tuple[str, int, int]:
    import psutil

    root = psutil.Process(child.pid)
    peak = 0
    while True:
        try:
            code = child.wait(timeout=POLL_S)
            return "exited", _exit_code(code), peak
        except subprocess.TimeoutExpired:
            pass
        used = _tree_memory_mib(root)
        peak = max(peak, used)
        if limit_mib is not None and used > limit_mib:
            _kill_tree(child)
            return "memory", EXIT_OUT_OF_MEMORY, peak
        if time.monotonic() > deadline:
            _kill_tree(child)
            return "timeout", EXIT_TIMEOUT, peak


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by a signal -> the shell's 128 + N


def _tree_memory_mib(root: Any) -> int:
    """Anonymous resident memory of a process and its descendants (file-backed and shared pages excluded, so a
    memory-mapped dataset or forked DataLoader workers are not counted twice)."""
    import psutil

    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            info = process.memory_info()
        except psutil.Error:
            continue
        total += info.rss - getattr(info, "shared", 0)
    return total // (1024 * 1024)


def _kill_tree(child: subprocess.Popen) -> None:
    import psutil

    try:
        descendants = psutil.Process(child.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for process in descendants:  # any that left the process group
        try:
            process.kill()
        except psutil.Error:
            pass
    child.wait()
    psutil.wait_procs(descendants, timeout=10)  # gone before a retry starts, not merely signalled


# ------------------------------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class TrialOutcome:
    trial: sweeps.Trial
    exit_code: int
    summary: Any  # what the target returned (JSON), None when it failed or returned nothing


def sweep_parallel(requested: int, trials: int, fn: Function, say: Callable[[str], None]) -> int:
    """How many trials run at once: ``requested``, within the sweep's max_parallel and the cores here."""
    declared_cpu = fn.resources.cpu if fn.resources.cpu is not None else MODAL_DEFAULT_CPU
    per_trial = min(math.ceil(declared_cpu), len(_usable_cores()))
    fitting = max(1, len(_usable_cores()) // per_trial)
    parallel = min(requested, trials)
    if fn.sweep and fn.sweep.max_parallel and parallel > fn.sweep.max_parallel:
        say(f"--parallel {requested}: the sweep's max_parallel is {fn.sweep.max_parallel}; running that many")
        parallel = fn.sweep.max_parallel
    if parallel > fitting:
        say(
            f"--parallel {parallel}: {parallel} trials x {per_trial} core(s) do not fit the "
            f"{len(_usable_cores())} core(s) here; running {fitting} at a time"
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
    arg_names = set(fn.arg_dict)
    cores = prepare(app, fn, kwargs, volumes_root, workdir).cores
    usable = _usable_cores()
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
            run = replace(run, target=f"{sweeps.__name__}:{sweeps.run_trial.__name__}")
            label = f"trial {trial.index} ({trial.label()})"
            say(f"{label} starts in run {trial.run_name}")
            cpus = slots.get()
            try:
                with _cores_of_this_thread(cpus):  # the trial's child inherits them
                    code = execute(run, lambda message: say(f"{label}: {message}"))
            finally:
                slots.put(cpus)
            return TrialOutcome(trial, code, _read_summary(result_file) if code == 0 else None)

        read_only = [volumes_root / m.volume for m in fn.mounts if app.volumes[m.volume].read_only]
        for folder in read_only:
            folder.mkdir(parents=True, exist_ok=True)
        # protected once for the whole sweep, so trials at once never restore each other's saved modes
        with _write_protected(read_only):
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


@contextmanager
def _write_protected(folders: list[Path]) -> Iterator[None]:
    """For a user who is not root, remove write permission from read-only volumes for the run, then restore
    it. Root ignores permission bits; the child protects those folders with a read-only bind mount instead."""
    if not folders or os.geteuid() == 0:
        yield
        return
    saved = [(path, path.stat().st_mode) for folder in folders for path in [folder, *folder.rglob("*")]]
    for path, mode in saved:
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for path, mode in reversed(saved):
            path.chmod(mode)
