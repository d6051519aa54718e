"""PNG plots of an evaluation: ROC, precision-recall, confusion matrix, reliability diagram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from train import metrics  # noqa: E402


def _save(figure: plt.Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def plot_roc(y: np.ndarray, p: np.ndarray, path: Path) -> str:
    fpr, tpr, _ = metrics.roc_curve(y, p)
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot(fpr, tpr, label=f"AUC = {metrics.roc_auc(y, p):.3f}")
    axes.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    axes.set(xlabel="false positive rate (REAL called FAKE)", ylabel="true positive rate")
    axes.set(title="ROC, test split", xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_pr(y: np.ndarray, p: np.ndarray, path: Path) -> str:
    precision, recall, _ = precision_recall_curve(y, p)  # recall falling to 0
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.step(recall, precision, where="post")  # as scikit-learn's PrecisionRecallDisplay
    axes.axhline(float(np.mean(y)), linestyle="--", color="grey", linewidth=0.8)
    axes.set(xlabel="recall (FAKE)", ylabel="precision (FAKE)", xlim=(0, 1), ylim=(0, 1.01))
    axes.set(title=f"Precision-recall, AP = {metrics.average_precision(y, p):.3f}")
    return _save(figure, path)


def plot_confusion(matrix: list[list[int]], threshold: float, path: Path) -> str:
    values = np.asarray(matrix)
    figure, axes = plt.subplots(figsize=(4, 3.6))
    axes.imshow(values, cmap="Blues")
    for (row, column), count in np.ndenumerate(values):
        colour = "white" if count > values.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    axes.set_xticks([0, 1], ["REAL", "FAKE"])
    axes.set_yticks([0, 1], ["REAL", "FAKE"])
    axes.set(xlabel="predicted", ylabel="true", title=f"Test, threshold {threshold:.3f}")
    return _save(figure, path)


def plot_reliability(
    y: np.ndarray, p_raw: np.ndarray, p_calibrated: np.ndarray, temperature: float, path: Path
) -> str:
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    for label, p in (("raw", p_raw), (f"T = {temperature:.2f}", p_calibrated)):
        table = metrics.reliability(y, p)
        used = table["count"] > 0
        ece = metrics.expected_calibration_error(y, p)
        axes.plot(
            table["mean_probability"][used],
            table["fraction_fake"][used],
            "o-",
            label=f"{label}, ECE {ece:.3f}",
        )
    axes.set(xlabel="predicted probability of FAKE", ylabel="observed share of FAKE")
    axes.set(title="Reliability, test split (15 bins)", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left")
    return _save(figure, path)


def write_plots(
    folder: Path,
    y: np.ndarray,
    p_raw: np.ndarray,
    p_calibrated: np.ndarray,
    temperature: float,
    threshold: float,
) -> dict[str, str]:
    """Write the four PNGs into ``folder``; returns ``{plot: file name}``."""
    folder.mkdir(parents=True, exist_ok=True)
    matrix = metrics.confusion(y, p_calibrated, threshold).tolist()
    return {
        "roc": plot_roc(y, p_calibrated, folder / "roc.png"),
        "pr": plot_pr(y, p_calibrated, folder / "pr.png"),
        "confusion_matrix": plot_confusion(matrix, threshold, folder / "confusion_matrix.png"),
        "reliability": plot_reliability(
            y, p_raw, p_calibrated, temperature, folder / "reliability.png"
        ),
    }
