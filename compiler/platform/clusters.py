"""What Modal's multi-node clusters (``@modal.clustered``) accept, with where each fact comes from.

Sources, read 2026-11-30: the docstring of ``modal.clustered`` in modal 1.6.4 (installed here:
``modal/_partial_function.py``) and Modal's guide https://modal.com/docs/guide/multi-node-clusters.

- "Each container must request all GPUs on its host (for example, ``gpu="H100:8"``); CPU-only clusters are
  not supported" (SDK docstring): a container's GPU count must be the most its host has,
  :data:`WHOLE_HOST_GPUS` (8 for every type Modal lists with 8 per container; an A10 host has 4, and Modal
  offers no A10 cluster; ``any`` cannot be a whole host: Modal picks the type).
- "``min_containers``, ``max_containers``, and ``buffer_containers`` count individual containers and must be
  multiples of ``size``" (SDK docstring).
- "Up to 32 nodes and 256 GPUs per cluster" (the guide): :data:`MAX_NODES`.
- Inputs are broadcast to every container, only rank 0's return value comes back (SDK docstring): a cluster
  of N containers costs N times one container.
"""

from __future__ import annotations

from compiler.platform import gpus

MIN_NODES = 2  # a cluster of one is a plain function
MAX_NODES = 32
WHOLE_HOST_GPUS = 8
SOURCE = "modal.clustered in modal 1.6.4; https://modal.com/docs/guide/multi-node-clusters (2026-11-30)"


def whole_host(type_name: str) -> bool:
    """Whether ``type_name`` comes in 8-GPU hosts that a cluster node can take whole."""
    return type_name != gpus.ANY and gpus.max_count(type_name) == WHOLE_HOST_GPUS
