"""Small run targets for the local backend's tests: each does one thing the backend must notice or confine."""

from __future__ import annotations

import json
import os
import sys
import time


def allocate(step_mib: int = 32, total_mib: int = 4096) -> None:
    """Touch memory in steps until ``total_mib`` is held (a limit below that must stop it first)."""
    held = []
    for _ in range(total_mib // step_mib):
        held.append(b"\x01" * (step_mib * 1024 * 1024))
        time.sleep(0.01)


def sleep(seconds: float = 60.0) -> None:
    time.sleep(seconds)


def exit_with(code: int = 3) -> None:
    sys.exit(code)


def fail_until(attempts_needed: int = 3, counter: str = "/results/attempts.txt") -> None:
    """Fail (exit 1) until it has been called ``attempts_needed`` times; the count lives on a volume."""
    from runtime.paths import resolve

    path = resolve(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls < attempts_needed:
        raise RuntimeError(f"attempt {calls} fails on purpose")


def fail_recording_pid(log: str = "/results/pids.txt", attempts_needed: int = 2) -> None:
    """Append this process's pid to ``log``; fail until the log holds ``attempts_needed`` pids."""
    from runtime.paths import resolve

    path = resolve(log)
    with path.open("a") as out:
        out.write(f"{os.getpid()}\n")
    if len(path.read_text().split()) < attempts_needed:
        raise RuntimeError("fails on purpose")


def write_file(path: str = "/data/out.txt", text: str = "hello") -> None:
    """Write ``text`` to ``path`` (through the volume map); an OSError propagates as exit code 1."""
    from runtime.paths import resolve

    resolve(path).write_text(text)


def report(out: str = "/results/report.json", flag: bool = False, count: int = 1, ratio: float = 0.5) -> None:
    """Write what the child sees (args with their types, volume map, thread limits, affinity) to ``out``."""
    from runtime.paths import resolve

    seen = {
        "args": {"flag": flag, "count": count, "ratio": ratio},
        "types": [type(v).__name__ for v in (flag, count, ratio)],
        "resolved_out": str(resolve(out)),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "affinity": len(os.sched_getaffinity(0)),
    }
    resolve(out).write_text(json.dumps(seen))


def train_crashing_once(
    config: str, crash_after_steps: int = 3, marker: str = "/results/crashed-once"
) -> None:
    """Train; on the first attempt stop after ``crash_after_steps`` steps and fail, like a preempted run."""
    from runtime.paths import resolve
    from runtime.train import main

    flag = resolve(marker)
    if not flag.exists():
        flag.write_text("1")
        main(config, **{"train.max_steps": crash_after_steps})
        raise RuntimeError(f"simulated crash after {crash_after_steps} steps")
    main(config)


def allocate_in_grandchild(pid_file: str = "/results/grandchild.pid") -> None:
    """Start a process that allocates past any small limit, record its pid, and wait for it."""
    import subprocess

    from runtime.paths import resolve

    code = "import time\nheld = []\nwhile True:\n    held.append(b'x' * 2**25)\n    time.sleep(0.01)\n"
    grandchild = subprocess.Popen([sys.executable, "-c", code])
    resolve(pid_file).write_text(str(grandchild.pid))
    grandchild.wait()


def train_with_a_bad_config(config: str = "/results/bad.yaml", counter: str = "/results/tries.txt") -> None:
    """Count the attempt, then train on a config with an unknown key: a user's mistake the runtime reports."""
    from runtime.paths import resolve
    from runtime.train import main

    path = resolve(counter)
    path.write_text(str(int(path.read_text()) + 1) if path.exists() else "1")
    resolve(config).write_text("run_name: x\noutput_dir: /results/runs\nmodel: {bogus: 1}\n")
    main(config)


def run(**kwargs: object) -> dict:
    """Return the keyword arguments it was called with (the options spec's target: an arg shadows it)."""
    return kwargs


def record_kwargs(out: str = "/results/kwargs.json", **received: object) -> None:
    """Write every keyword argument as received, each with its type's name, to ``out`` (via volumes)."""
    from runtime.paths import resolve

    resolve(out).write_text(
        json.dumps({name: [value, type(value).__name__] for name, value in received.items()})
    )


def record_args(
    out: str = "/results/args.json",
    xs: list[int] | None = None,
    n: int = 1,
    ratio: float = 0.5,
    tag: str = "",
) -> None:
    """Write each argument as the target received it, with its type's name, to ``out`` (via volumes)."""
    from runtime.paths import resolve

    received = {"xs": xs, "n": n, "ratio": ratio, "tag": tag}
    resolve(out).write_text(
        json.dumps({name: [value, type(value).__name__] for name, value in received.items()})
    )


# ------------------------------------------------ local backend limits (tests/compiler/test_local_limits.py)

MIB = 1024 * 1024
DAEMON = """\
import os, sys, time
marker, mib, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
held = b"\\x01" * (mib * 1024 * 1024)
open(ready, "w").close()
time.sleep(300)
"""


def hold_and_fork(hold_mib: int = 400, children: int = 4, seconds: float = 2.0) -> None:
    """Hold ``hold_mib`` of touched memory, then fork idle children that share it copy-on-write."""
    held = b"\x01" * (hold_mib * MIB)
    pids = [pid for pid in (os.fork() for _ in range(children)) if pid]
    if len(pids) < children:  # in a child
        time.sleep(seconds)
        os._exit(0)
    for pid in pids:
        os.waitpid(pid, 0)
    del held


def spawn_and_leave(
    marker: str, daemon_mib: int = 0, ready: str = "/results/ready", wait_s: float = 0.0
) -> None:
    """Start ``sleep``-like and double-forked daemon processes (their command lines carry ``marker``), wait
    until the daemon holds ``daemon_mib``, write ``ready``, then return after ``wait_s``."""
    import subprocess

    from runtime.paths import resolve

    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", marker])
    daemon_ready = resolve(ready).with_suffix(".daemon")
    subprocess.run([sys.executable, "-c", DAEMON, marker, str(daemon_mib), str(daemon_ready)], check=True)
    while not daemon_ready.exists():
        time.sleep(0.05)
    resolve(ready).write_text("ready")
    time.sleep(wait_s)


def hold_shared(mib: int = 600, where: str = "anonymous", name: str = "", seconds: float = 30.0) -> None:
    """Hold ``mib`` of shared memory: a MAP_SHARED anonymous mapping, or a file written to /dev/shm."""
    import mmap

    chunk = b"\x01" * MIB
    if where == "anonymous":
        mapping = mmap.mmap(-1, mib * MIB, flags=mmap.MAP_SHARED)
        for _ in range(mib):
            mapping.write(chunk)
    else:
        with open(f"/dev/shm/{name}", "wb") as file:
            for _ in range(mib):
                file.write(chunk)
    time.sleep(seconds)


async def write_async(path: str = "/results/async.txt", text: str = "awaited") -> None:
    """A coroutine target: it only writes ``path`` when it is awaited."""
    import asyncio

    from runtime.paths import resolve

    await asyncio.sleep(0.01)
    resolve(path).write_text(text)


def count_and_exit(code: int = 65, counter: str = "/results/exits.txt") -> None:
    """Count the attempt on a volume, then exit with ``code``."""
    from runtime.paths import resolve

    path = resolve(counter)
    path.write_text(str(int(path.read_text()) + 1) if path.exists() else "1")
    sys.exit(code)


def train_then_lose_node(config: str, node: int = 1, after_step: int = 6, marker: str = "") -> dict | None:
    """``runtime.train:main``, except that on the first attempt node ``node`` of a multi-node run dies at
    once (SIGKILL to its whole process group, as a preempted container) once the run has logged
    ``after_step``; ``marker`` (a file) records that it has, so the retry trains on."""
    import signal
    import threading

    from runtime.config import load_config
    from runtime.train import entry, metrics_log

    if os.environ.get("NODE_RANK") == str(node) and not os.path.exists(marker):
        run_dir = load_config(config, {}).run_dir

        def watch() -> None:
            while True:
                steps = [r["step"] for r in metrics_log.read_metrics(run_dir) if "step" in r]
                if steps and max(steps) >= after_step:
                    open(marker, "w").close()
                    os.killpg(0, signal.SIGKILL)
                time.sleep(0.02)

        threading.Thread(target=watch, daemon=True).start()
    return entry.main(config)
