"""Modal's platform facts that the spec, lint, plan and the local backend rely on, in one place.

From Modal's documentation and behaviour (a function's defaults and the ranges its decorator accepts); when
Modal changes one, change it here.
"""

MODAL_DEFAULT_TIMEOUT_S = 300  # s, a function without `timeout`
MODAL_DEFAULT_CPU = 0.125  # physical cores, a function without `cpu`
MAX_TIMEOUT_S = 24 * 3600  # s, the longest `timeout` Modal accepts
MIN_MEMORY_MIB = 128  # the least `memory` Modal accepts
MAX_GPUS_PER_CONTAINER = 8  # GPUs of one type per container, unless the catalog says fewer
SCALEDOWN_RANGE_S = (2, 3600)  # s, the range of `scaledown_window`
RESERVED_MOUNTS = ("/", "/root", "/tmp")  # paths a volume cannot be mounted at
MODAL_NAME_MAX = 64  # characters in an app name
