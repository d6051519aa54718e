"""From predictions to the evaluation report (numpy + scipy, no TensorFlow).

Everything that is *fitted* is fitted on the validation split only, never on test:

* temperature ``T`` minimises the validation negative log-likelihood of
  ``sigmoid(logit(p) / T)`` (1-D bounded search over ``log T``, ``T`` in [0.05, 20]);
* the decision threshold maximises F1 (default) or Youden's J = TPR - FPR on the
  *calibrated* validation probabilities; it sits halfway between the chosen validation
  score and the next lower one.

The test split is then scored once with that temperature and threshold, plus seeded
bootstrap 95 % confidence intervals.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from core.decision import VERDICTS, DecisionRule, calibrate, decide, to_logit
from train import metrics

TEMPERATURE_BOUNDS = (0.05, 20.0)
THRESHOLD_RULES = ("f1", "youden")
CI_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "eer", "ece")


def fit_temperature(y: np.ndarray, p: np.ndarray) -> float:
    """Temperature minimising the NLL of ``calibrate(p, T)`` on (validation) labels ``y``."""
    y = np.asarray(y, dtype=np.float64).ravel()
    signed = (2.0 * y - 1.0) * to_logit(p).ravel()  # positive when the model is right

    def nll(log_t: float) -> float:
        return float(np.mean(np.logaddexp(0.0, -signed / np.exp(log_t))))

    bounds = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(nll, bounds=tuple(bounds), method="bounded")
    best = float(np.exp(result.x))
    return 1.0 if nll(0.0) <= nll(np.log(best)) else best


def choose_threshold(y: np.ndarray, p: np.ndarray, rule: str = "f1") -> float:
    """Threshold on ``p`` maximising F1 or Youden's J on (validation) data (``p >= t``)."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {rule!r}: use one of {THRESHOLD_RULES}")
    y = np.asarray(y, dtype=int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    fpr, tpr, scores = metrics.roc_curve(y, p)
    fpr, tpr, scores = fpr[1:], tpr[1:], scores[1:]  # drop the "nothing positive" point
    if rule == "youden":
        objective = tpr - fpr
    else:
        positives, negatives = y.sum(), y.size - y.sum()
        tp, fp = tpr * positives, fpr * negatives
        objective = np.where(tp > 0, 2 * tp / np.maximum(tp + fp + positives, 1), 0.0)
    objective = np.nan_to_num(objective, nan=-1.0)
    best = int(np.argmax(objective))  # ties: the highest threshold
    if best + 1 < scores.size:
        return float((scores[best] + scores[best + 1]) / 2.0)
    return float(scores[best])


def bootstrap_ci(
    y: np.ndarray, p: np.ndarray, threshold: float, resamples: int = 1000, seed: int = 0
) -> dict:
    """Percentile 95 % intervals of :data:`CI_METRICS` over seeded bootstrap resamples."""
    y = np.asarray(y, dtype=int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    values = {name: np.empty(resamples) for name in CI_METRICS}
    for row in range(resamples):
        index = rng.integers(0, y.size, y.size)
        ys, ps = y[index], p[index]
        scores = metrics.threshold_metrics(ys, ps, threshold)
        scores["roc_auc"] = metrics.roc_auc(ys, ps)
        scores["pr_auc"] = metrics.average_precision(ys, ps)
        scores["eer"] = metrics.equal_error_rate(ys, ps)
        scores["ece"] = metrics.expected_calibration_error(ys, ps)
        for name in CI_METRICS:
            values[name][row] = scores[name]
    intervals = {}
    for name, column in values.items():
        valid = column[~np.isnan(column)]
        low, high = np.percentile(valid, [2.5, 97.5]) if valid.size else (np.nan, np.nan)
        intervals[name] = {"low": float(low), "high": float(high), "resamples": int(valid.size)}
    return {"level": 0.95, "method": "percentile bootstrap", "seed": seed, **intervals}


def split_metrics(y: np.ndarray, p_raw: np.ndarray, temperature: float, threshold: float) -> dict:
    """All metrics on calibrated probabilities, plus ECE / NLL before the temperature."""
    p_cal = calibrate(p_raw, temperature)
    return {
        **metrics.all_metrics(y, p_cal, threshold),
        "ece_before_temperature": metrics.expected_calibration_error(y, p_raw),
        "ece_after_temperature": metrics.expected_calibration_error(y, p_cal),
        "log_loss_before_temperature": metrics.log_loss(y, p_raw),
    }


DECISION_ERROR = 0.01  # at most this share of validation reals FAKE, of validation fakes REAL


def fit_decision(y: np.ndarray, p_cal: np.ndarray, error: float = DECISION_ERROR) -> dict:
    """The two verdict thresholds on calibrated validation probabilities: FAKE from where at
    most ``error`` of the reals lie, REAL below where at most ``error`` of the fakes lie,
    moved to 0.5 where they would contradict the probability (``core.decision``)."""
    y, p_cal = np.asarray(y).ravel(), np.asarray(p_cal, dtype=np.float64).ravel()
    fake_fit = float(np.quantile(p_cal[y == 0], 1.0 - error))
    real_fit = float(np.quantile(p_cal[y == 1], error))
    rule = DecisionRule(min(real_fit, 0.5), max(fake_fit, 0.5))
    return {"real_below": rule.real_below, "fake_from": rule.fake_from,
            "fitted": {"real_below": real_fit, "fake_from": fake_fit, "error": error}}  # fmt: skip


def verdict_shares(y: np.ndarray, p_cal: np.ndarray, decision: dict) -> dict:
    """Share of each class's images per verdict under ``decision``."""
    rule = DecisionRule(decision["real_below"], decision["fake_from"])
    labels = np.asarray([decide(p, rule)[0] for p in np.asarray(p_cal).ravel()])
    y = np.asarray(y).ravel()
    return {
        cls: {v: float(np.mean(labels[y == index] == v)) for v in VERDICTS}
        for index, cls in enumerate(("real", "fake"))
        if (y == index).any()
    }


def evaluate_predictions(
    y_val: np.ndarray,
    p_val: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    threshold_rule: str = "f1",
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Fit temperature and threshold on validation, score test; arrays in, report dict out.

    ``p_*`` are the model's raw probabilities of FAKE, ``y_*`` the labels (1 = FAKE).
    """
    temperature = fit_temperature(y_val, p_val)
    threshold = choose_threshold(y_val, calibrate(p_val, temperature), threshold_rule)
    report = {
        "threshold": threshold,
        "temperature": temperature,
        "threshold_rule": threshold_rule,
        "val": split_metrics(y_val, p_val, temperature, threshold),
        "test": split_metrics(y_test, p_test, temperature, threshold),
    }
    report["decision"] = fit_decision(y_val, calibrate(p_val, temperature))
    report["verdicts"] = {
        split: verdict_shares(y, calibrate(p, temperature), report["decision"])
        for split, y, p in (("val", y_val, p_val), ("test", y_test, p_test))
    }
    report["ci"] = (
        bootstrap_ci(y_test, calibrate(p_test, temperature), threshold, bootstrap, seed)
        if bootstrap > 0
        else None
    )
    return report
