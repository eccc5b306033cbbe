"""The names of every ``MTC_*`` environment variable mtc reads or sets, in one place."""

FORCE_TORCH_SCAN = "MTC_FORCE_TORCH_SCAN"  # "1": the PyTorch scan everywhere, whatever the config says
LIMITS = "MTC_LIMITS"  # the local backend's memory mechanism: cgroup, pss or none (tests, diagnosis)
LOCAL_CALL = "MTC_LOCAL_CALL"  # the local child's instructions (JSON), set by the local backend
NPROC = "MTC_NPROC"  # data-parallel processes of a training run (mtc run --processes)
READ_TIMEOUT = "MTC_READ_TIMEOUT"  # seconds a FIFO or stream may stay silent before a read gives up
VOLUME_MAP = "MTC_VOLUME_MAP"  # JSON {container path: local folder}, set by the local backend
VOLUMES_DIR = "MTC_VOLUMES_DIR"  # the local backend's folder of volumes
