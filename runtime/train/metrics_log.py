"""The run's metrics log: metrics.jsonl (one JSON object per line, its one reader) and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.core import files
from runtime.train.errors import TrainingError

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """metrics.jsonl in the run directory (one JSON object per line), plus TensorBoard when installed."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.path = run_dir / METRICS_FILE
        self.enabled = enabled
        self.tensorboard = _tensorboard_writer(run_dir) if enabled else None

    def reset(self, keep_until_step: int) -> None:
        """Drop lines logged after ``keep_until_step`` (a killed run wrote them after its last checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [record for record in read_metrics(self.path.parent) if record["step"] <= keep_until_step]
        files.write_atomic(self.path, "".join(json.dumps(record) + "\n" for record in kept).encode())

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard:
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self.tensorboard.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; metrics.jsonl always has everything
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of the run's metrics.jsonl; a line that is not a whole record (the last one, cut short when
    a run was killed mid-write) is skipped. A file that is not text at all was damaged otherwise: an error."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TrainingError(
            f"{path}: not a metrics log (not UTF-8 text), so it was damaged; move it aside and start again "
            "(training writes a new one, the checkpoints are not affected)"
        ) from None
    return [record for line in text.splitlines() if (record := _record(line))]


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    valid = isinstance(record, dict) and isinstance(record.get("step"), int)
    return record if valid else None
