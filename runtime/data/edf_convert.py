"""format edf in the cache: a split's recordings converted in a process pool, appended in recording order.

The cache builder (:mod:`runtime.data.cache_build`) calls one loader per recording, in order, skipping the
recordings a killed build already wrote. Here each loader hands back the result of a pool of processes that
reads and preprocesses the recordings ahead of the one being appended (at most ``AHEAD_PER_WORKER`` per
process in flight, so memory stays bounded), so the cache is byte for byte what one process would write,
and a resumed build starts its workers at the first recording not yet written. A recording that cannot be
used stops the build, or with ``data.edf.unreadable: skip`` is reported with its path and reason and adds
no windows.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from runtime.core.errors import UserError
from runtime.data.annotations import SIDECAR_SUFFIXES
from runtime.data.edf import (
    cut_windows,
    edf_files,
    edf_reader,
    empty_chunk,
    preprocess_recording,
    recording_id,
)
from runtime.data.formats import SPLITS, Chunk, DataError, SplitSource
from runtime.paths import resolve

AHEAD_PER_WORKER = 2
PR_SET_PDEATHSIG = 1  # linux/prctl.h
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def edf_sources(data) -> dict[str, SplitSource]:
    """One source per split the config names: its recordings in path order, each with its recording id."""
    sources = {}
    for split in SPLITS:
        shown_root = getattr(data, split)
        if shown_root:
            root = resolve(shown_root)
            files, shown = edf_files(root, shown_root)
            groups = tuple(recording_id(file, root) for file in files)
            sources[split] = SplitSource(split, "edf", tuple(files), tuple(shown), groups=groups)
    return sources


def edf_settings(data, source: SplitSource) -> dict:
    """What the windows depend on besides the recordings: the conversion settings and the events files
    beside the recordings (size and modification time, so an edited label file converts again)."""
    sidecars = []
    for path in source.files:
        for suffix in SIDECAR_SUFFIXES:
            try:
                stat = path.with_suffix(suffix).stat()
            except OSError:
                continue
            sidecars.append([path.with_suffix(suffix).name, stat.st_size, stat.st_mtime_ns])
    return {"edf": data.edf.settings(), "events_files": sidecars}


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's cpu)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def conversion_workers(setting: int | str, recordings: int) -> int:
    """Processes for a conversion: data.edf.workers (auto: the CPUs available), never more than recordings."""
    wanted = available_cpus() if setting == "auto" else int(setting)
    return max(1, min(wanted, recordings))


@contextmanager
def recording_chunks(source: SplitSource, data, log: Callable[[str], None]) -> Iterator[list[Callable]]:
    """One loader per recording of ``source`` for the cache builder; the pool lives as long as the block."""
    cfg, rate = data.edf, data.sample_rate_hz
    loads = [
        partial(preprocess_recording, path, shown, cfg, rate)
        for path, shown in zip(source.files, source.shown, strict=True)
    ]
    workers = conversion_workers(cfg.workers, len(loads))
    tally = _Tally(source.split, workers)
    with _OrderedPool(loads, workers) as pool:
        yield [partial(_recording, pool, index, source, tally, data, log) for index in range(len(loads))]
    tally.report(log)


def _recording(
    pool: _OrderedPool, index: int, source: SplitSource, tally: _Tally, data, log: Callable[[str], None]
) -> Chunk:
    """Recording ``index``'s chunk; an unusable one stops the build or, with unreadable: skip, adds none."""
    shown = source.shown[index]
    pool.start()
    try:
        signals, labels = pool.result(index)
    except DataError as exc:
        if data.edf.unreadable == "error":
            raise DataError(
                f"{exc}; set data.edf.unreadable to 'skip' to convert the other recordings without it"
            ) from None
        log(f"edf: skipped {exc}")
        tally.add(skipped=True)
        return empty_chunk(shown, data.edf, data.sample_rate_hz)
    tally.add(skipped=False)
    return cut_windows(shown, signals, labels, source.groups[index], data.edf, data.sample_rate_hz)


class _Tally:
    """Recordings converted by this build (a resumed one counts only its own) and how fast."""

    def __init__(self, split: str, workers: int):
        self.split, self.workers = split, workers
        self.converted = self.skipped = 0
        self.started = time.perf_counter()

    def add(self, *, skipped: bool) -> None:
        self.converted += 1
        self.skipped += skipped

    def report(self, log: Callable[[str], None]) -> None:
        if not self.converted:
            return
        seconds = time.perf_counter() - self.started
        skipped = f" ({self.skipped} skipped)" if self.skipped else ""
        log(
            f"edf: {self.split}: {self.converted} recordings{skipped} in {seconds:.1f}s, "
            f"{self.converted / seconds:.2f} recordings/s with {self.workers} process(es)"
        )


def _die_with_parent(parent: int) -> None:
    """Worker start: ask Linux to kill this process when the parent dies (a killed or preempted build must
    not leave workers converting for nobody, holding its output pipes open)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


class _OrderedPool:
    """Results of ``loads`` by index, computed ahead in ``workers`` processes (in this one when 1)."""

    def __init__(self, loads: list[partial], workers: int):
        self.loads, self.workers = loads, workers
        self.executor: ProcessPoolExecutor | None = None
        self.futures: dict[int, Future] = {}
        self.submitted, self.started = 0, False

    def __enter__(self) -> _OrderedPool:
        return self

    def __exit__(self, *exc) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def start(self) -> None:
        """Before the first recording (a reused cache needs neither edfio nor processes): say a missing extra
        once, then start the workers."""
        if self.started:
            return
        edf_reader()
        self.started = True
        if self.workers > 1:
            self.executor = ProcessPoolExecutor(
                self.workers,
                mp_context=get_context("fork"),
                initializer=_die_with_parent,
                initargs=(os.getpid(),),
            )

    def result(self, index: int):
        """Recording ``index``'s filtered signals and labels; a dead worker process (not one recording's
        fault) is never skipped."""
        if self.executor is None:
            return self.loads[index]()
        self.submitted = max(self.submitted, index)
        while self.submitted < min(len(self.loads), index + 1 + AHEAD_PER_WORKER * self.workers):
            self.futures[self.submitted] = self.executor.submit(self.loads[self.submitted])
            self.submitted += 1
        try:
            return self.futures.pop(index).result()
        except BrokenProcessPool:
            raise UserError(
                f"{self.loads[index].args[1]}: a conversion process died (out of memory?); lower "
                "data.edf.workers or raise the function's memory"
            ) from None
