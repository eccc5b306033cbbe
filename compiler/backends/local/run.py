"""The local embedded backend of ``mtc run``: one function of the resolved app, run here as Modal would.

The function's ``run`` target is called in a child process (:mod:`compiler.backends.local.child`) with its
args. What the spec declares is enforced here too, so a mistake shows locally before any GPU is billed:

- volumes: each mount path maps to a local folder named after the storage, so two spec entries over the same
  storage share it: ``<volumes dir>/<Modal volume name>/``, ``<volumes dir>/bucket-<bucket>/<key prefix>/``.
  The map reaches the child in ``MTC_VOLUME_MAP`` so :func:`runtime.paths.resolve` finds it; the image's
  ``add_local`` dirs are mapped the same way. Read-only volumes are read-only: through a read-only bind mount
  in a private mount namespace (inside a user namespace when not root); where no namespace can be made, by
  removing write permission for the run (never through a symlink), recorded first in a journal in the
  volumes dir so that a run killed before it could restore them is undone by the next one.
- cpu: thread pools (OpenMP, MKL, OpenBLAS, torch) and the CPU affinity are limited to ceil(cpu) cores,
  capped by the cores this process may use.
- memory: the run's processes are watched by :mod:`compiler.backends.local.limits` (a cgroup when the machine
  offers one, else the PSS of the process tree); above the declared limit they are all killed and the attempt
  ends with exit code 137, what a container killed by the kernel's OOM killer reports.
- timeout: per attempt (Modal's default 300 s when the spec has none); the tree is killed, exit code 124.
- no process outlives the run: the child (:mod:`compiler.backends.local.child`) dies with ``mtc`` and takes
  the function's processes with it; a TERM, INT or HUP ``mtc`` receives is passed on to them; processes the
  function leaves behind are killed and named.
- processes (``mtc run --processes N`` / ``--ddp``): ``MTC_NPROC`` tells :mod:`runtime.train.distributed` how
  many data-parallel processes to start, at most one per core the function may use; they share its cores and
  its memory limit (the limit covers the whole process tree).
- retries: a failed attempt is re-run up to ``max_retries`` times, after the declared delays; training
  resumes from its checkpoint because the volumes persist between attempts.

The exit code is the function's: 0 when it returns, the code of a ``SystemExit``, 1 for an uncaught exception.
A user's mistake the runtime reports (a bad config, data or checkpoint) prints as a message, not a traceback,
exits 1 and is not retried: it would fail the same way again (the child says so through a side channel, not
an exit code, so a function's own ``sys.exit(65)`` is only its exit code).

A sweep (:func:`execute_sweep`) runs each trial as such a run, with the trial's args and config overrides
(its own ``run_name``, so its own run directory), one after another or several at once: each trial on its
own cores, as many at a time as the machine's cores hold. The child saves the target's return value as JSON
(through :func:`compiler.backends.local.child.run_trial`) for the summary table.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.backends.local import child as local_child
from compiler.backends.local.child import CALL_ENV, FORWARDED, GRACE_S, LEFT_BEHIND_FILE, REJECTED_FILE
from compiler.platform.modal_limits import MODAL_DEFAULT_CPU, MODAL_DEFAULT_TIMEOUT_S
from compiler.review.plan import aligned
from compiler.spec import sweep as sweeps
from compiler.spec.ir import App, Function, Volume
from runtime.core.env import NPROC as NPROC_ENV
from runtime.core.env import VOLUME_MAP
from runtime.core.env import VOLUMES_DIR as VOLUMES_DIR_ENV

if TYPE_CHECKING:
    from compiler.backends.local import limits

EXIT_TIMEOUT = 124
EXIT_OUT_OF_MEMORY = 137  # 128 + SIGKILL, as for a container killed by the OOM killer
EXIT_INTERRUPTED = 130
POLL_S = 0.05
DEFAULT_VOLUMES_DIR = Path(".mtc") / "volumes"
JOURNAL_PREFIX = ".read-only-journal-"  # + "<pid>-<n>.json" in the volumes dir: modes to restore
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class LocalMount:
    path: str  # the mount path in the container
    volume: str  # the volume's name in the spec
    local: Path  # named after the storage (the Modal volume, the bucket and prefix), not the spec's name
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
    volumes_root: Path = DEFAULT_VOLUMES_DIR  # where a journal of write-protected modes is kept


@dataclass(frozen=True)
class AttemptResult:
    exit_code: int
    reason: str  # "exited" | "rejected" | "memory" | "timeout" | "interrupted"
    peak_mib: int
    seconds: float
    left_behind: tuple[str, ...] = ()  # processes killed after the function ended: "sleep 300 (pid 12)"


def volumes_dir(option: str | None) -> Path:
    """The folder with one sub-folder per volume: the option, else ``$MTC_VOLUMES_DIR``, else .mtc/volumes."""
    chosen = option or os.environ.get(VOLUMES_DIR_ENV) or DEFAULT_VOLUMES_DIR
    return Path(chosen).expanduser().resolve()


def prepare(app: App, fn: Function, kwargs: dict[str, Any], volumes_root: Path, workdir: Path) -> LocalRun:
    mounts = tuple(
        LocalMount(
            m.path,
            m.volume,
            volumes_root / storage_folder(app.volumes[m.volume]),
            app.volumes[m.volume].read_only,
        )
        for m in fn.mounts
    )
    image = app.images.get(fn.image) if fn.image else None
    path_map = {remote: str(app.local_source(local)) for local, remote in (image.local_dirs if image else ())}
    path_map.update({m.path: str(m.local) for m in mounts})
    declared_cpu = fn.resources.cpu if fn.resources.cpu is not None else MODAL_DEFAULT_CPU
    cores = min(math.ceil(declared_cpu), len(_usable_cores()))
    env = {name: str(value) for name, value in _image_env(app, fn).items()}
    env.update(fn.env)
    env.update({name: str(cores) for name in THREAD_ENV_VARS})
    env["PYTHONUNBUFFERED"] = "1"
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
        notices=(*_notices(fn, app), *_moved_folders(mounts, volumes_root), *_shared_with_writable(mounts)),
        volumes_root=volumes_root,
    )


def storage_folder(volume: Volume) -> Path:
    """The folder of a volume under the volumes dir, named after what it stores, so that spec entries over
    the same storage share it: the Modal volume's name, or ``bucket-<bucket>/<key prefix>``."""
    if volume.kind == "bucket":
        prefix = [_safe_name(part) for part in (volume.key_prefix or "").split("/") if part]
        return Path(_safe_name(f"bucket-{volume.bucket}"), *prefix)
    return Path(_safe_name(volume.volume or volume.name))


def _safe_name(text: str) -> str:
    """One path component from a storage name: letters, digits, ``.-_`` kept, the rest ``_``; never ``..``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    return "_" if set(safe) <= {"."} else safe


def protected_folders(mounts: tuple[LocalMount, ...]) -> list[Path]:
    """The folders of read-only mounts, except one the function also mounts read-write (it shares the
    storage: on Modal one path refuses writes and the other takes them; here both are the same folder)."""
    writable = {m.local for m in mounts if not m.read_only}
    return list(dict.fromkeys(m.local for m in mounts if m.read_only and m.local not in writable))


def _shared_with_writable(mounts: tuple[LocalMount, ...]) -> Iterator[str]:
    protected = protected_folders(mounts)
    for mount in mounts:
        if mount.read_only and mount.local not in protected:
            yield (
                f"volume {mount.volume} is read-only, but {mount.path} shares its storage with a read-write "
                "mount of the same function: locally that folder stays writable"
            )


def _moved_folders(mounts: tuple[LocalMount, ...], volumes_root: Path) -> Iterator[str]:
    """A notice for each volume whose data still lives in the folder named after its spec key."""
    for mount in mounts:
        old = volumes_root / mount.volume
        if old != mount.local and old.is_dir() and not mount.local.exists():
            yield (
                f"volume {mount.volume}: its local folder is now {mount.local} (named after its storage, "
                f"shared by every spec entry over it); {old} (named after the spec key) was left as it is: "
                "move its contents there to keep using them"
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
    from compiler.backends.local import (
        limits,  # imports psutil: when a run starts, not when the lint imports this module
    )

    try:
        mechanism = limits.describe_choice()
        _make_folders([m.local for m in run.mounts])
    except (limits.LimitsError, LocalRunError) as exc:
        say(f"error: {exc}")
        return 1
    _describe(run, limits.MECHANISM_TEXT[mechanism], say)
    _restore_abandoned(run.volumes_root, say)
    result = None
    with (
        _signals_passed_on(),
        _write_protected(protected_folders(run.mounts), run.volumes_root),
    ):
        for attempt in range(1, run.attempts + 1):
            delay = run.retry_delays_s[attempt - 2] if attempt > 1 else 0
            if attempt > 1:
                say(
                    f"retrying {run.function} (attempt {attempt} of {run.attempts})"
                    + (f" in {delay:g} s" if delay else "")
                )
            if _stop.wait(delay):
                say(f"{run.function} interrupted before attempt {attempt}")
                return 128 + _stop_signal[0]
            try:
                result = _attempt(run)
            except limits.LimitsError as exc:
                say(f"error: {exc}")
                return 1
            for process in result.left_behind:
                say(f"killed a process left behind by {run.function}: {process}")
            say(_outcome(run, result, attempt))
            if result.reason == "rejected":
                return 1
            if result.exit_code == 0 or result.reason == "interrupted":
                break
    assert result is not None
    return result.exit_code


class LocalRunError(Exception):
    """The run cannot start here (a volume's folder cannot be made); the message says what to do."""


def _make_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise LocalRunError(
                f"{folder} (a volume's local folder) exists but is not a folder; move it away, or choose "
                "another place with --volumes-dir"
            ) from None
        except OSError as exc:
            raise LocalRunError(
                f"cannot create {folder} (a volume's local folder): {exc.strerror}; choose a writable place "
                "with --volumes-dir or $MTC_VOLUMES_DIR"
            ) from None


def _describe(run: LocalRun, mechanism: str, say: Callable[[str], None]) -> None:
    memory = f"{run.memory_mib} MiB through {mechanism}" if run.memory_mib else "not limited (none declared)"
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
    if result.reason == "rejected":
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
    """One call of the target in a fresh child, watched until it ends; nothing of it is left running."""
    from compiler.backends.local import limits

    started = time.monotonic()
    watch = limits.choose(run.memory_mib, uuid.uuid4().hex[:12])
    with tempfile.TemporaryDirectory(prefix="mtc-call-") as channel:
        child = _start_child(run, watch, Path(channel))
        try:
            reason, code = _supervise(child, watch, started + run.timeout_s)
        finally:
            stragglers = watch.kill_all()  # what escaped the child (none, unless it was killed itself)
            child.wait()
            watch.close()
        left_behind = [*_read_left_behind(Path(channel)), *stragglers] if reason == "exited" else []
        if reason == "exited" and (Path(channel) / REJECTED_FILE).exists():
            reason = "rejected"
    return AttemptResult(code, reason, watch.peak_mib(), time.monotonic() - started, tuple(left_behind))


def _start_child(run: LocalRun, watch: limits.Watch, channel: Path) -> subprocess.Popen:
    """Start compiler.backends.local.child and add it to ``watch`` before it may go on (it waits on a
    pipe)."""
    go_read, go_write = os.pipe()
    payload = {
        "target": run.target,
        "kwargs": run.kwargs,
        "cores": run.cores,
        "read_only": [str(folder) for folder in protected_folders(run.mounts)],
        "namespaces": namespaces_available(),
        "channel": str(channel),
        "supervisor": os.getpid(),
        "go_fd": go_read,
    }
    env = {**os.environ, **run.env, CALL_ENV: json.dumps(payload), VOLUME_MAP: json.dumps(run.path_map)}
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "compiler.backends.local.child"],
            cwd=run.workdir,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C reaches mtc, which passes it on
            pass_fds=(go_read,),
        )
    finally:
        os.close(go_read)
    try:
        watch.add(child.pid)
        os.write(go_write, b"go")
    except (OSError, ProcessLookupError):
        pass  # it died already: the exit code says why
    finally:
        os.close(go_write)
    return child


def _supervise(child: subprocess.Popen, watch: limits.Watch, deadline: float) -> tuple[str, int]:
    """Wait for the child while sampling memory; end the run on the limit, the timeout or a signal."""
    forwarded_at = None
    while True:
        try:
            code = child.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            code = None
        watch.usage_mib()
        if watch.exceeded():
            watch.kill_all()
            return "memory", EXIT_OUT_OF_MEMORY
        if _stop.is_set():
            if code is not None or (forwarded_at and time.monotonic() > forwarded_at + GRACE_S + 1):
                return "interrupted", 128 + _stop_signal[0]
            if forwarded_at is None:
                child.send_signal(_stop_signal[0])  # the child passes it on to every process under it
                forwarded_at = time.monotonic()
            continue
        if code is not None:
            return "exited", _exit_code(code)
        if time.monotonic() > deadline:
            watch.kill_all()
            return "timeout", EXIT_TIMEOUT


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by a signal -> the shell's 128 + N


def _read_left_behind(channel: Path) -> list[str]:
    try:
        return json.loads((channel / LEFT_BEHIND_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


_stop = threading.Event()  # set when mtc received a TERM, INT or HUP: runs end, no new one starts
_stop_signal = [0]


def _record_stop(signum: int, _frame: object) -> None:
    _stop_signal[0] = signum
    _stop.set()


@contextmanager
def _signals_passed_on() -> Iterator[None]:
    """While runs go on, a TERM, INT or HUP to mtc is passed on to the run's processes instead of ending mtc
    (which would leave them unsupervised). Only the main thread can set handlers; sweeps set them once."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is (
        _record_stop
    ):
        yield
        return
    _stop.clear()
    previous = {signum: signal.signal(signum, _record_stop) for signum in FORWARDED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_namespaces: list[bool] = []


def namespaces_available() -> bool:
    """Whether the child can make a mount namespace: as root, or through a user namespace (probed once)."""
    if os.geteuid() == 0:
        return True
    if not _namespaces:
        probe = "import ctypes, os; os._exit(ctypes.CDLL(None).unshare(0x10000000 | 0x20000) != 0)"
        _namespaces.append(subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0)
    return _namespaces[0]


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
            run = replace(run, target=f"{local_child.__name__}:{local_child.run_trial.__name__}")
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
            _make_folders(read_only)
        except LocalRunError as exc:
            say(f"error: {exc}")
            return [TrialOutcome(trial, 1, None) for trial in trials]
        _restore_abandoned(volumes_root, say)
        # protected once for the whole sweep, so trials at once never restore each other's saved modes
        with _signals_passed_on(), _write_protected(read_only, volumes_root):
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
def _write_protected(folders: list[Path], volumes_root: Path) -> Iterator[None]:
    """Where the child cannot make a mount namespace, remove write permission from read-only volumes for the
    run, then restore it. Symlinks are never followed (a link to a folder outside the volume is left alone).
    The modes are first written to a journal, so that a run killed before restoring them is undone by the
    next one (:func:`_restore_abandoned`)."""
    if not folders or namespaces_available():
        yield
        return
    saved = {str(path): path.lstat().st_mode for folder in folders for path in _tree_without_links(folder)}
    journal = volumes_root / f"{JOURNAL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    _write_journal(journal, saved)
    for path, mode in saved.items():
        os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        _restore_modes(saved)
        journal.unlink(missing_ok=True)


def _tree_without_links(folder: Path) -> Iterator[Path]:
    """``folder`` and everything under it that is not a symlink, never descending through one."""
    yield folder
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for name in (*dirs, *files):
            path = Path(parent, name)
            if not path.is_symlink():
                yield path


def _write_journal(journal: Path, modes: dict[str, int]) -> None:
    """Atomically: the owner (pid and start time, so a reused pid is not taken for it) and the modes."""
    import psutil

    owner = {"pid": os.getpid(), "started": psutil.Process().create_time()}
    temporary = journal.with_name(journal.name + ".tmp")
    temporary.write_text(json.dumps({"owner": owner, "modes": modes}), encoding="utf-8")
    os.replace(temporary, journal)


def _restore_modes(modes: dict[str, int]) -> None:
    for path in reversed(list(modes)):  # children before their folder, which may have no write bit yet
        try:
            if not Path(path).is_symlink():
                os.chmod(path, stat.S_IMODE(modes[path]))
        except FileNotFoundError:
            continue


def _restore_abandoned(volumes_root: Path, say: Callable[[str], None]) -> None:
    """Restore the modes a killed run left removed, from its journal, when that run's process is gone."""
    import psutil

    for journal in sorted(volumes_root.glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
            owner = record["owner"]
            alive = (
                psutil.pid_exists(owner["pid"])
                and psutil.Process(owner["pid"]).create_time() == owner["started"]
            )
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            continue
        if alive:
            continue
        _restore_modes(record["modes"])
        journal.unlink(missing_ok=True)
        say(
            f"restored the write permission that a killed run (pid {owner['pid']}) had removed from "
            "read-only volumes"
        )
