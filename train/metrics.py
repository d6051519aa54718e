"""Binary detection metrics on arrays (no TensorFlow).

Conventions: ``y`` is 1 for FAKE (the positive class), 0 for REAL; ``p`` is the probability
of FAKE; a prediction is FAKE when ``p >= threshold`` (as in ``core.decision.decide``).
The ROC curve, its area, average precision, log loss and the Brier score are
scikit-learn's (with NaN, not an error, where one class is missing); what it lacks is here:
the equal error rate, TPR at a fixed FPR, the reliability table and the expected
calibration error.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

ECE_BINS = 15


def _arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {p.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (REAL) or 1 (FAKE)")
    if not np.isfinite(p).all():
        raise ValueError("probabilities must be finite numbers (did the model output NaN?)")
    return y, p


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """``[[TN, FP], [FN, TP]]`` (rows: true REAL, FAKE; columns: predicted REAL, FAKE)."""
    y, p = _arrays(y, p)
    predicted = (p >= threshold).astype(int)
    return np.bincount(2 * y + predicted, minlength=4).reshape(2, 2)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Accuracy, precision, recall, F1, specificity and the confusion matrix at a threshold.

    Precision / recall / F1 are 0 where undefined (as scikit-learn's ``zero_division=0``).
    """
    (tn, fp), (fn, tp) = confusion(y, p, threshold)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, tn + fp + fn + tp),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "specificity": _ratio(tn, tn + fp),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(np.sum(y)) < y.size


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` from (0, 0) at threshold inf, one point per distinct score
    (scikit-learn's, every point kept)."""
    y, p = _arrays(y, p)
    return skm.roc_curve(y, p, drop_intermediate=False)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's); NaN with one class only (a bootstrap
    resample may have one)."""
    y, p = _arrays(y, p)
    return float(skm.roc_auc_score(y, p)) if _both_classes(y) else float("nan")


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """PR-AUC as scikit-learn's average precision; NaN with one class only."""
    y, p = _arrays(y, p)
    return float(skm.average_precision_score(y, p)) if _both_classes(y) else float("nan")


def equal_error_rate(y: np.ndarray, p: np.ndarray) -> float:
    """The error rate where FPR equals FNR, interpolated linearly along the ROC curve."""
    y, p = _arrays(y, p)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1.0 - tpr
    gap = fnr - fpr  # decreasing from 1 to -1 along the curve
    index = int(np.flatnonzero(gap <= 0)[0])
    if index == 0 or gap[index] == 0:
        return float(fpr[index])
    weight = gap[index - 1] / (gap[index - 1] - gap[index])
    return float(fpr[index - 1] + weight * (fpr[index] - fpr[index - 1]))


def tpr_at_fpr(y: np.ndarray, p: np.ndarray, max_fpr: float) -> float:
    """Highest TPR among the ROC points with FPR <= ``max_fpr`` (no interpolation)."""
    y, p = _arrays(y, p)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, p)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def reliability(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Per equal-width bin of ``p`` on [0, 1]: count, mean predicted ``p``, share of FAKE."""
    y, p = _arrays(y, p)
    index = np.clip((p * bins).astype(int), 0, bins - 1)  # p == 1 goes into the last bin
    count = np.bincount(index, minlength=bins)
    safe = np.maximum(count, 1)
    confidence = np.bincount(index, weights=p, minlength=bins) / safe
    frequency = np.bincount(index, weights=y, minlength=bins) / safe
    return {"count": count, "mean_probability": confidence, "fraction_fake": frequency}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the FAKE probability: ``sum_b n_b / n * |share of FAKE_b - mean p_b|``."""
    table = reliability(y, p, bins)
    weights = table["count"] / max(1, table["count"].sum())
    return float(np.sum(weights * np.abs(table["fraction_fake"] - table["mean_probability"])))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood (scikit-learn's), probabilities clipped to
    [1e-7, 1 - 1e-7] first: a saturated float32 sigmoid costs at most 16 nats, not 36."""
    y, p = _arrays(y, p)
    return float(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probability of FAKE (scikit-learn's Brier score)."""
    y, p = _arrays(y, p)
    return float(skm.brier_score_loss(y, p, pos_label=1))


def all_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Every metric of the report for one set of (calibrated) probabilities."""
    return {
        **threshold_metrics(y, p, threshold),
        "roc_auc": roc_auc(y, p),
        "pr_auc": average_precision(y, p),
        "eer": equal_error_rate(y, p),
        "tpr_at_fpr_1pct": tpr_at_fpr(y, p, 0.01),
        "tpr_at_fpr_5pct": tpr_at_fpr(y, p, 0.05),
        "ece": expected_calibration_error(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "n": int(np.size(y)),
    }
