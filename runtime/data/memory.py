"""How much memory this process may still take: RAM (within the container's cgroup limit) or a GPU's free
memory. Used to refuse, with a message, inputs whose size would otherwise end in an allocation failure."""

from __future__ import annotations

from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
# (limit, usage, statistics, reclaimable page-cache entry) for cgroup v2 and v1
CGROUP_FILES = (
    ("memory.max", "memory.current", "memory.stat", "inactive_file"),
    (
        "memory/memory.limit_in_bytes",
        "memory/memory.usage_in_bytes",
        "memory/memory.stat",
        "total_inactive_file",
    ),
)


def available_memory(device=None) -> int:
    """Bytes this process can still allocate on ``device`` (a torch.device; None or CPU: RAM)."""
    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    import psutil

    available = psutil.virtual_memory().available
    room = _cgroup_room()
    return available if room is None else min(available, room)


def _cgroup_room() -> int | None:
    """What the container's memory limit leaves (page cache it can reclaim counts as free); None: no limit."""
    for limit_name, usage_name, stat_name, reclaimable in CGROUP_FILES:
        try:
            limit = (CGROUP / limit_name).read_text().strip()
            usage = int((CGROUP / usage_name).read_text())
            stats = dict(line.split() for line in (CGROUP / stat_name).read_text().splitlines())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:  # v1 writes "no limit" as a huge number
            return None
        return int(limit) - usage + int(stats.get(reclaimable, 0))
    return None


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"
