"""PNG plots of a run: loss and metric curves, ROC curve, confusion matrix (matplotlib, Agg, no display)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from runtime.train.metrics_log import read_metrics

CURVE_METRICS = ("val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_auroc")


def write_plots(run_dir: Path, metrics: dict, class_names: list[str]) -> list[Path]:
    """Every plot the run's data allows; returns the files written."""
    written = [plot_curves(read_metrics(run_dir), run_dir / "curves.png")]
    if metrics.get("roc"):
        written.append(plot_roc(metrics["roc"], metrics["auroc"], run_dir / "roc.png"))
    written.append(plot_confusion(metrics["confusion_matrix"], class_names, run_dir / "confusion_matrix.png"))
    return written


def plot_curves(records: list[dict], path: Path) -> Path:
    figure = Figure(figsize=(10, 4))
    losses, scores = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    losses.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if val:
        losses.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val loss")
    for name in CURVE_METRICS:
        points = [(r["step"], r[name]) for r in val if r.get(name) is not None]
        if points:
            scores.plot(*zip(*points, strict=True), "o-", label=name.removeprefix("val_"))
    losses.set(xlabel="step", ylabel="loss", title="loss")
    scores.set(xlabel="step", ylim=(0, 1.02), title="validation")
    for axes in (losses, scores):
        if axes.has_data():
            axes.legend()
        axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_roc(roc: dict, auroc: float, path: Path) -> Path:
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.plot(roc["fpr"], roc["tpr"], label=f"AUROC {auroc:.3f}")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    axes.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01)
    )
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_confusion(matrix: list[list[int]], class_names: list[str], path: Path) -> Path:
    size = max(4, 0.6 * len(class_names) + 2)
    figure = Figure(figsize=(size, size))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    ticks = range(len(class_names))
    axes.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix",
    )
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(
                j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black"
            )
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    temp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temp, dpi=100)
    temp.replace(path)
    return path
