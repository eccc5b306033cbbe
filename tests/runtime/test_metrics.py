"""runtime.metrics against scikit-learn, and the event metrics (sensitivity, false alarms/24 h) by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from runtime.metrics import MetricAccumulator, event_counts, sensitivity_at_false_alarm_rates


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes", [2, 4])
def test_window_metrics_match_scikit_learn_when_fed_in_batches(classes):
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 3000)
    logits = rng.normal(size=(3000, classes)) + 1.2 * np.eye(classes)[labels]
    probs = softmax(logits)
    accumulator = MetricAccumulator(classes, detect_events=False, sample_rate_hz=256)
    for start in range(0, 3000, 256):
        accumulator.update(probs[start : start + 256], labels[start : start + 256])
    result = accumulator.result()
    predicted = probs.argmax(axis=1)
    assert result["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert result["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert result["confusion_matrix"] == confusion_matrix(labels, predicted).tolist()
    if classes == 2:
        assert result["auroc"] == pytest.approx(roc_auc_score(labels, probs[:, 1]), abs=1e-3)
        assert result["auprc"] == pytest.approx(average_precision_score(labels, probs[:, 1]), abs=2e-3)
        assert result["roc"]["fpr"][0] == 0 and result["roc"]["tpr"][-1] == 1
    else:
        assert "auroc" not in result


def test_auroc_is_none_when_only_one_class_is_present():
    accumulator = MetricAccumulator(2, detect_events=False, sample_rate_hz=256)
    accumulator.update(np.array([[0.3, 0.7], [0.6, 0.4]]), np.array([1, 1]))
    result = accumulator.result()
    assert result["auroc"] is None and result["accuracy"] == 0.5


def test_event_counts_by_hand():
    truth = np.array([[0, 1, 1, 0, 0, 0, 1, 1], [1, 1, 0, 0, 0, 0, 0, 0]], dtype=bool)
    predicted = np.array([[0, 0, 1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1]], dtype=bool)
    # row 0: events at 1-2 (hit by 2) and 6-7 (missed); prediction at 4 is a false alarm
    # row 1: event at 0-1 missed; prediction 6-7 is a false alarm (runs do not join across rows)
    assert event_counts(predicted, truth).tolist() == [3, 1, 2]
    ends_and_starts = np.array([[0, 0, 0, 1], [1, 0, 0, 0]], dtype=bool)
    assert event_counts(ends_and_starts, ends_and_starts).tolist() == [2, 2, 0]


def test_false_alarms_per_24h_and_sensitivity_at_targets():
    fs, length = 4.0, 3600 * 4  # one hour per window at 4 Hz
    labels = np.zeros((2, length), dtype=np.int64)
    labels[0, 100:200] = 1
    positive = np.full((2, length), 0.1)
    positive[0, 120:160] = 0.95  # detects the event
    positive[1, 5000:5100] = 0.8  # one false alarm above 0.7, none above 0.9
    probs = np.stack([1 - positive, positive], axis=1)
    accumulator = MetricAccumulator(2, detect_events=True, sample_rate_hz=fs, thresholds=(0.5, 0.7, 0.9))
    accumulator.update(probs, labels)
    events = accumulator.result()["events"]
    assert events["hours"] == pytest.approx(2.0)
    rows = {r["threshold"]: r for r in events["at_thresholds"]}
    assert set(rows) == {0.5, 0.7, 0.9}
    assert rows[0.7]["sensitivity"] == 1.0 and rows[0.7]["false_alarms_per_24h"] == pytest.approx(12.0)
    assert rows[0.9]["sensitivity"] == 1.0 and rows[0.9]["false_alarms_per_24h"] == 0.0
    at = sensitivity_at_false_alarm_rates(events, (12, 1))
    assert at == {"12": 1.0, "1": 1.0}
    assert (rows[0.5]["true_events"], rows[0.5]["detected_events"], rows[0.5]["false_alarms"]) == (1, 1, 1)
