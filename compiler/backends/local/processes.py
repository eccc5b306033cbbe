"""The processes of a local run as psutil sees them: which still exist, their labels, signalling them."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import psutil

MIB = 1024 * 1024
KILL_WAIT_S = 10.0


def existing(pids: list[int]) -> Iterator[psutil.Process]:
    for pid in pids:
        try:
            yield psutil.Process(pid)
        except psutil.Error:
            continue


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def label(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        command = "?"
    return f"{command} (pid {process.pid})"


def signal_all(processes: list[psutil.Process], signum: int) -> None:
    for process in processes:
        try:
            process.send_signal(signum)
        except psutil.Error:
            continue


def kill(processes: list[psutil.Process]) -> None:
    signal_all(processes, signal.SIGKILL)
