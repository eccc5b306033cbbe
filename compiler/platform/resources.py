"""What a function asks of the platform: GPUs (type and count) and its container's resources. The spec's IR
holds them; the GPU catalog and the price table read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    """One GPU request: a canonical Modal type and a count (``H100`` x 8 is ``"H100:8"``)."""

    type: str
    count: int = 1

    def modal_string(self) -> str:
        return self.type if self.count == 1 else f"{self.type}:{self.count}"


@dataclass(frozen=True)
class Resources:
    cpu: float | None = None  # physical cores
    memory_mib: int | None = None
    gpus: tuple[Gpu, ...] = ()  # ordered fallbacks; empty = CPU only
    timeout_s: int | None = None  # None = Modal's default (300 s)
    ephemeral_disk_mib: int | None = None

    @property
    def gpu(self) -> Gpu | None:
        return self.gpus[0] if self.gpus else None
