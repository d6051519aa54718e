"""Metric functions, temperature, threshold and bootstrap on arrays (no TensorFlow)."""

import numpy as np
import pytest
from sklearn import metrics as skm

from core.decision import calibrate
from train import metrics
from train.report import bootstrap_ci, choose_threshold, evaluate_predictions, fit_temperature


def _scores(seed: int, n: int = 120, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = (0, 1)  # both classes, always
    p = np.clip(rng.random(n) * 0.7 + 0.3 * y * rng.random(n), 0, 1)
    if ties:
        p = np.round(p, 1)  # many equal scores
    return y, p


def _eer_brute_force(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    t = np.linspace(0, 1, 2001)[:, None]
    x = (fpr[:-1] + t * np.diff(fpr)).ravel()  # every ROC segment, densely
    fnr = 1 - (tpr[:-1] + t * np.diff(tpr)).ravel()
    best = np.argmin(np.abs(fnr - x))
    return float((fnr[best] + x[best]) / 2)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_own_metrics_equal_scikit_learn_or_a_brute_force(seed, ties):
    """The threshold metrics, TPR at a fixed FPR and the EER are ours (AUC, AP and Brier
    are scikit-learn's own)."""
    y, p = _scores(seed, ties=ties)
    threshold = 0.45
    predicted = (p >= threshold).astype(int)
    got = metrics.all_metrics(y, p, threshold)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert got["precision"] == pytest.approx(skm.precision_score(y, predicted, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert got["f1"] == pytest.approx(skm.f1_score(y, predicted))
    assert got["confusion_matrix"] == skm.confusion_matrix(y, predicted, labels=[0, 1]).tolist()
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    assert got["tpr_at_fpr_5pct"] == pytest.approx(tpr[fpr <= 0.05].max())
    assert got["tpr_at_fpr_1pct"] == pytest.approx(tpr[fpr <= 0.01].max())
    assert got["eer"] == pytest.approx(_eer_brute_force(y, p), abs=2e-3)


def test_ece_matches_a_direct_computation():
    y, p = _scores(3, n=500)
    edges = np.linspace(0, 1, 16)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (p >= low) & ((p < high) if high < 1 else (p <= high))
        if inside.any():
            total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    assert metrics.expected_calibration_error(y, p) == pytest.approx(total)
    perfectly_calibrated = np.full(1000, 0.3)
    labels = (np.arange(1000) < 300).astype(int)
    assert metrics.expected_calibration_error(labels, perfectly_calibrated) == pytest.approx(0)


def test_metrics_reject_bad_input_and_handle_one_class():
    with pytest.raises(ValueError, match="length"):
        metrics.all_metrics([0, 1], [0.5], 0.5)
    with pytest.raises(ValueError, match="labels"):
        metrics.all_metrics([0, 2], [0.5, 0.5], 0.5)
    with pytest.raises(ValueError, match="finite"):
        metrics.all_metrics([0, 1], [0.5, float("nan")], 0.5)
    one_class = ([1, 1, 1], [0.2, 0.5, 0.9])  # as in a bootstrap resample: NaN, not an error
    for name in ("roc_auc", "average_precision", "equal_error_rate"):
        assert np.isnan(getattr(metrics, name)(*one_class)), name
    assert metrics.log_loss([0, 1], [0.0, 1.0]) == pytest.approx(0.0, abs=1e-6)
    assert metrics.log_loss([1], [0.0]) == pytest.approx(-np.log(1e-7))  # clipped, one class


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    calibrated_logit = (2 * y - 1) * 1.0 + rng.normal(0, 1, y.size) * 1.0
    # With class means +-1 and unit noise, the true log-odds are 2x; a model 3x too sure:
    p_overconfident = 1 / (1 + np.exp(-3 * 2 * calibrated_logit))
    assert fit_temperature(y, p_overconfident) == pytest.approx(3.0, rel=0.05)
    p_right = 1 / (1 + np.exp(-2 * calibrated_logit))
    assert fit_temperature(y, p_right) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("seed", range(4))
def test_threshold_maximises_validation_f1_and_youden(seed):
    y, p = _scores(seed, n=80, ties=seed % 2 == 1)
    candidates = np.unique(np.r_[p, 1.1])
    best_f1 = max(skm.f1_score(y, (p >= c).astype(int), zero_division=0) for c in candidates)
    threshold = choose_threshold(y, p, "f1")
    assert skm.f1_score(y, (p >= threshold).astype(int)) == pytest.approx(best_f1)

    def youden(c):
        predicted = p >= c
        return predicted[y == 1].mean() - predicted[y == 0].mean()

    best_j = max(youden(c) for c in candidates)
    assert youden(choose_threshold(y, p, "youden")) == pytest.approx(best_j)
    with pytest.raises(ValueError, match="rule"):
        choose_threshold(y, p, "accuracy")


def test_fitting_uses_validation_only():
    y_val, p_val = _scores(1)
    y_test, p_test = _scores(2)
    first = evaluate_predictions(y_val, p_val, y_test, p_test, bootstrap=0)
    second = evaluate_predictions(y_val, p_val, 1 - y_test, p_test[::-1], bootstrap=0)
    assert first["threshold"] == second["threshold"]
    assert first["temperature"] == second["temperature"]
    assert first["test"] != second["test"]
    p_cal = calibrate(p_test, first["temperature"])
    predicted = (p_cal >= first["threshold"]).astype(int)
    assert first["test"]["f1"] == pytest.approx(skm.f1_score(y_test, predicted))


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    y, p = _scores(5, n=300)
    first = bootstrap_ci(y, p, 0.5, resamples=300, seed=7)
    assert first == bootstrap_ci(y, p, 0.5, resamples=300, seed=7)
    assert first != bootstrap_ci(y, p, 0.5, resamples=300, seed=8)
    point = metrics.all_metrics(y, p, 0.5)
    for name in ("accuracy", "f1", "roc_auc", "pr_auc", "eer"):
        assert first[name]["low"] <= point[name] <= first[name]["high"], name
        assert first[name]["high"] - first[name]["low"] < 0.3


def test_two_verdict_thresholds_are_fitted_on_validation_and_never_contradict():
    from core.decision import DecisionRule, decide
    from train.report import fit_decision, verdict_shares

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(2000), np.ones(2000)].astype(int)
    p = np.r_[rng.beta(2, 8, 2000), rng.beta(8, 2, 2000)]  # overlapping classes
    decision = fit_decision(y, p)
    rule = DecisionRule(decision["real_below"], decision["fake_from"])
    assert rule.real_below <= 0.5 <= rule.fake_from
    flagged = np.mean([decide(q, rule)[0] == "FAKE" for q in p[y == 0]])
    missed = np.mean([decide(q, rule)[0] == "REAL" for q in p[y == 1]])
    assert flagged <= 0.011 and missed <= 0.011  # at most 1 % each way on validation
    shares = verdict_shares(y, p, decision)
    assert shares["real"]["FAKE"] == pytest.approx(flagged)
    assert sum(shares["fake"].values()) == pytest.approx(1.0)
    apart = fit_decision(y, np.r_[np.full(2000, 0.1), np.full(2000, 0.9)])
    assert (apart["real_below"], apart["fake_from"]) == (0.5, 0.5)  # no band needed
