"""Classification and detection metrics, accumulated batch by batch so no split has to fit in memory.

:class:`MetricAccumulator` keeps a confusion matrix, histograms of the positive-class probability (binary
tasks: AUROC and AUPRC from them, exact up to the histogram's 1/10,000 resolution) and, for per-timestep
binary labels, event counts at a grid of thresholds: a true event (a run of positive timesteps) is detected
when any predicted-positive timestep overlaps it, and every predicted run that overlaps no true event is a
false alarm. Events are counted on 1-second blocks (mean probability, any positive label), window by window;
false alarms per 24 h divide by the total duration of the windows evaluated.
"""

from __future__ import annotations

import numpy as np

HISTOGRAM_BINS = 10_000
EVENT_BLOCK_SECONDS = 1.0
EVENT_GRID = tuple(np.round(np.linspace(0.01, 0.99, 99), 2))
ROC_POINTS = 200


class MetricAccumulator:
    """``detect_events``: also count events (for per-timestep binary labels)."""

    def __init__(self, num_classes: int, *, detect_events: bool, sample_rate_hz: float, thresholds=(0.5,)):
        self.num_classes = num_classes
        self.detect_events = detect_events
        self.sample_rate_hz = sample_rate_hz
        self.thresholds = tuple(float(t) for t in thresholds)
        self.binary = num_classes == 2
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.positive_hist = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.negative_hist = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.event_grid = np.array(sorted(set(EVENT_GRID) | set(self.thresholds)))
        self.events = np.zeros(
            (len(self.event_grid), 3), dtype=np.int64
        )  # true events, detected, false alarms
        self.seconds = 0.0
        self.loss_sum, self.loss_count = 0.0, 0

    def update(
        self, probs: np.ndarray, labels: np.ndarray, loss_sum: float = 0.0, loss_count: int = 0
    ) -> None:
        """``probs`` (B, K) or (B, K, T) softmax outputs; ``labels`` (B,) or (B, T) class indices, negative
        on padding (which no metric counts)."""
        self.loss_sum += loss_sum
        self.loss_count += loss_count
        valid = (labels >= 0).reshape(-1)
        predicted = probs.argmax(axis=1).reshape(-1)[valid]
        pairs = labels.reshape(-1)[valid] * self.num_classes + predicted
        self.confusion += np.bincount(pairs, minlength=self.num_classes**2).reshape(self.confusion.shape)
        if not self.binary:
            return
        positive = probs[:, 1]
        bins = np.minimum((positive * HISTOGRAM_BINS).astype(np.int64), HISTOGRAM_BINS - 1).reshape(-1)[valid]
        truth = labels.reshape(-1)[valid] == 1
        self.positive_hist += np.bincount(bins[truth], minlength=HISTOGRAM_BINS)
        self.negative_hist += np.bincount(bins[~truth], minlength=HISTOGRAM_BINS)
        if self.detect_events and labels.ndim == 2:
            self._update_events(np.where(labels >= 0, positive, 0.0), np.maximum(labels, 0))
            self.seconds += (labels >= 0).sum() / self.sample_rate_hz

    def _update_events(self, positive: np.ndarray, labels: np.ndarray) -> None:
        length = positive.shape[-1]
        block = max(1, min(round(self.sample_rate_hz * EVENT_BLOCK_SECONDS), length // 16))
        blocks = -(-length // block)
        pad = blocks * block - length
        probability = (
            np.pad(positive, ((0, 0), (0, pad)), mode="edge").reshape(len(positive), blocks, block).mean(-1)
        )
        truth = np.pad(labels == 1, ((0, 0), (0, pad))).reshape(len(labels), blocks, block).any(-1)
        for row, threshold in enumerate(self.event_grid):
            self.events[row] += event_counts(probability >= threshold, truth)

    def result(self) -> dict:
        out = {"windows_or_timesteps": int(self.confusion.sum())}
        if self.loss_count:
            out["loss"] = self.loss_sum / self.loss_count
        out.update(confusion_metrics(self.confusion))
        if self.binary:
            out.update(histogram_metrics(self.positive_hist, self.negative_hist))
        if self.binary and self.seconds:
            out["events"] = self._event_report()
        return out

    def _event_report(self) -> dict:
        hours = self.seconds / 3600
        rows = []
        for threshold, (true_events, detected, false_alarms) in zip(
            self.event_grid, self.events, strict=True
        ):
            rows.append(
                {
                    "threshold": float(threshold),
                    "sensitivity": float(detected / true_events) if true_events else None,
                    "false_alarms_per_24h": float(false_alarms / hours * 24),
                    "true_events": int(true_events),
                    "detected_events": int(detected),
                    "false_alarms": int(false_alarms),
                }
            )
        return {
            "hours": hours,
            "at_thresholds": [r for r in rows if r["threshold"] in self.thresholds],
            "grid": rows,
        }


def event_counts(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[true events, detected true events, false alarms] for (windows, steps) boolean arrays; runs never
    continue from one window into the next."""
    truth_ids, n_true = _run_ids(truth)
    predicted_ids, n_predicted = _run_ids(predicted)
    detected = np.unique(truth_ids[(truth_ids > 0) & (predicted_ids > 0)]).size
    overlapping = np.unique(predicted_ids[(predicted_ids > 0) & (truth_ids > 0)]).size
    return np.array([n_true, detected, n_predicted - overlapping], dtype=np.int64)


def _run_ids(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Each True element's run number (1, 2, ...; 0 for False), runs split at window boundaries."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 1), dtype=bool)  # a False column separates windows
    padded[:, :-1] = mask
    flat = padded.reshape(-1)
    starts = flat & ~np.concatenate(([False], flat[:-1]))
    ids = np.cumsum(starts) * flat
    return ids, int(starts.sum())


def sensitivity_at_false_alarm_rates(event_report: dict, targets) -> dict[str, float | None]:
    """Best event sensitivity over the threshold grid with false alarms per 24 h at or under each target."""
    out = {}
    for target in targets:
        eligible = [
            r["sensitivity"]
            for r in event_report["grid"]
            if r["false_alarms_per_24h"] <= target and r["sensitivity"] is not None
        ]
        out[f"{target:g}"] = max(eligible) if eligible else None
    return out


def confusion_metrics(confusion: np.ndarray) -> dict:
    total = confusion.sum()
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    correct = np.diag(confusion)
    present = support > 0
    recall = np.divide(correct, support, out=np.zeros(len(correct)), where=present)
    precision = np.divide(correct, predicted, out=np.zeros(len(correct)), where=predicted > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(len(correct)), where=denominator > 0)
    scored = present | (predicted > 0)
    return {
        "accuracy": float(correct.sum() / total) if total else None,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else None,
        "macro_f1": float(f1[scored].mean()) if scored.any() else None,
        "confusion_matrix": confusion.tolist(),
    }


def histogram_metrics(positive_hist: np.ndarray, negative_hist: np.ndarray) -> dict:
    """AUROC, AUPRC (average precision) and a down-sampled ROC curve from score histograms."""
    positives, negatives = positive_hist.sum(), negative_hist.sum()
    if not positives or not negatives:
        return {"auroc": None, "auprc": None, "roc": None}
    # thresholds from the highest bin down; each bin acts as one threshold (ties count half, as in sklearn)
    tp = np.concatenate(([0], np.cumsum(positive_hist[::-1])))
    fp = np.concatenate(([0], np.cumsum(negative_hist[::-1])))
    tpr, fpr = tp / positives, fp / negatives
    auroc = float(np.trapezoid(tpr, fpr))
    nonempty = np.flatnonzero(np.diff(tp) + np.diff(fp)) + 1
    precision = tp[nonempty] / (tp[nonempty] + fp[nonempty])
    recall_steps = np.diff(np.concatenate(([0.0], tpr[nonempty])))
    auprc = float(np.sum(recall_steps * precision))
    keep = np.unique(np.linspace(0, len(fpr) - 1, ROC_POINTS).astype(int))
    keep = np.union1d(keep, nonempty[:: max(1, len(nonempty) // ROC_POINTS)])
    return {"auroc": auroc, "auprc": auprc, "roc": {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}}
