"""What a local run of one function is: :class:`LocalRun`, built from the resolved app by :func:`prepare`.

Volumes map to folders named after their storage (:mod:`compiler.platform.local_storage`); the image's
``add_local`` dirs and files (with those of the images it is built on) are mapped to their local sources,
and the map reaches the child in ``MTC_VOLUME_MAP``. The cores (ceil(cpu), capped by those this process may
use), the thread pools' variables, the memory limit, the timeout (Modal's default 300 s when the spec has
none), the retries and their delays are decided here;
:mod:`compiler.backends.local.supervise` enforces them.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compiler.platform.local_storage import DEFAULT_VOLUMES_DIR, storage_folder
from compiler.platform.modal_limits import MODAL_DEFAULT_CPU, MODAL_DEFAULT_TIMEOUT_S
from compiler.spec.ir import App, Function
from runtime.core.env import NPROC as NPROC_ENV

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class LocalMount:
    path: str  # the mount path in the container
    volume: str  # the volume's name in the spec
    local: Path  # named after the storage (the Modal volume, the bucket and prefix), not the spec's name
    read_only: bool


@dataclass(frozen=True)
class LocalRun:
    """Everything needed to run one function locally: built by :func:`prepare`, run by
    :func:`compiler.backends.local.supervise.execute`."""

    function: str
    target: str  # "module:function"
    workdir: Path  # where the child starts: relative paths in args resolve against it, as in `modal run`
    kwargs: dict[str, Any]
    mounts: tuple[LocalMount, ...]
    path_map: dict[str, str]  # container path -> local folder, for runtime.paths
    cores: int
    declared_cpu: float
    memory_mib: int | None
    timeout_s: int | None  # None: a server, run until stopped
    attempts: int
    retry_delays_s: tuple[float, ...]  # delay before attempt 2, 3, ...
    startup_timeout_s: int | None = None  # from the child's start to the target's call; None: timeout_s only
    env: dict[str, str] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    volumes_root: Path = DEFAULT_VOLUMES_DIR  # where a journal of write-protected modes is kept
    nodes: int = 1  # emulated cluster nodes, one child each (compiler.backends.local.nodes)


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
    image = app.effective_image(fn.image)
    shipped = (*image.local_dirs, *image.local_files) if image else ()
    path_map = {remote: str(app.local_source(local)) for local, remote in shipped}
    path_map.update({m.path: str(m.local) for m in mounts})
    declared_cpu = fn.resources.cpu if fn.resources.cpu is not None else MODAL_DEFAULT_CPU
    cores = min(math.ceil(declared_cpu), len(usable_cores()))
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
        startup_timeout_s=fn.startup_timeout_s,
        retry_delays_s=_retry_delays(fn, retries),
        env=env,
        notices=(*_notices(fn, app), *_moved_folders(mounts, volumes_root), *_shared_with_writable(mounts)),
        volumes_root=volumes_root,
    )


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


def usable_cores() -> list[int]:
    return (
        sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else list(range(os.cpu_count() or 1))
    )


def _image_env(app: App, fn: Function) -> dict[str, Any]:
    image = app.effective_image(fn.image)
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
        names = ", ".join(map(str, secrets))
        yield f"secrets are not injected locally ({names}); export their variables yourself if needed"
    if fn.block_network:
        yield f"{fn.name} declares block_network; it is not enforced locally: the function has this network"


def gpu_present() -> bool:
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None
