"""Source-holdout report: for each fold of ``python -m dataprep folds``, a head trained
without one real source or fake family, scored on it.

The head is a logistic regression on cached frozen-backbone features (``train.frozen_features``),
which fits every fold on 2 cores in minutes. Per fold:

* the threshold flags ``flag_rate`` (5 %) of the fold's validation reals (held-out sources
  are in neither train nor val);
* a held-out **real** source: the share of its photos flagged FAKE at that threshold;
* a held-out **fake** family: its AUC against the fold's test reals (the test split of the
  sources it trained on) and its detection rate at the threshold;
* the share of the held-out images given each verdict by the served three-way rule, fitted
  on the fold's validation split as the evaluation fits it (temperature, then FAKE from where
  1 % of validation reals lie, REAL below where 1 % of validation fakes lie);
* every fold also reports the in-distribution test AUC, for contrast.

Intervals are 95 %: Wilson for rates (scipy), a percentile bootstrap for AUCs.

    python -m train.holdout --data data/detector --out reports/holdout-probe/aligned
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.decision import calibrate
from core.options import option, options_parser, parse_config
from dataprep.folds import FOLDS, load_folds
from train.frozen_features import cached_features
from train.report import fit_decision, fit_temperature, verdict_shares

TARGETS = {"real": 0.10, "fake": 0.90}  # flagged-FAKE rate at most; AUC at least
HEADS = ("logistic", "boosted")
HEAD_NAMES = {
    "logistic": "standardised logistic regression on frozen features, class-balanced",
    "boosted": "gradient-boosted trees on frozen features, class-balanced",
}


@dataclass(frozen=True)
class HoldoutConfig:
    """Which dataset and features, where the report goes, and the head's settings."""

    data: Path = option(Path("data/detector"), "dataset with folds.json", Path, metavar="DIR")
    out: Path = option(Path("reports/holdout-probe"), "report folder", Path, metavar="DIR")
    features: str = option("lite0-imagenet", "frozen features (train.frozen_features)")
    flag_rate: float = option(0.05, "share of validation reals flagged at the threshold", float)
    c: float = option(0.05, "logistic regression's inverse regularisation strength", float)
    head: str = option(
        "logistic",
        "the head: logistic (linear, as the texture detector ships) or boosted (scikit-learn's "
        "gradient-boosted trees, a nonlinear control)",
        choices=HEADS,
    )
    bootstrap: int = option(500, "bootstrap resamples for AUC intervals", int)
    sample: float = option(
        1.0, "share of the files used (a fixed hash of each name; slow features)", float
    )
    seed: int = option(0, "seed of the bootstrap", int)

    def __post_init__(self) -> None:
        if not 0.0 < self.flag_rate < 1.0:
            raise ValueError(f"flag_rate must be in (0, 1), got {self.flag_rate}")
        if not 0.0 < self.sample <= 1.0:
            raise ValueError(f"sample must be in (0, 1], got {self.sample}")


def wilson(hits: int, total: int) -> list[float]:
    """95 % Wilson interval of a rate."""
    if total == 0:
        return [float("nan"), float("nan")]
    interval = binomtest(hits, total).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def auc_interval(y: np.ndarray, p: np.ndarray, resamples: int, seed: int) -> list[float]:
    """Percentile 95 % bootstrap interval of the ROC-AUC, resampling each class apart."""
    rng = np.random.default_rng(seed)
    positives, negatives = p[y == 1], p[y == 0]
    values = []
    for _ in range(resamples):
        pos = rng.choice(positives, positives.size)
        neg = rng.choice(negatives, negatives.size)
        values.append(roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg]))
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def fit_head(x: np.ndarray, y: np.ndarray, c: float):
    """A class-balanced logistic regression on standardised features (scikit-learn)."""
    head = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    )
    return head.fit(x, y)


def fit_boosted(x: np.ndarray, y: np.ndarray, seed: int):
    """Class-balanced gradient-boosted trees (scikit-learn), the nonlinear control."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    head = HistGradientBoostingClassifier(
        max_iter=300, l2_regularization=1.0, class_weight="balanced", random_state=seed
    )
    return head.fit(x, y)


def score_fold(
    roles: dict[str, np.ndarray], labels: dict[str, np.ndarray], scored: str, config: HoldoutConfig
) -> dict:
    """Fit the head on ``train``, set the threshold on ``val`` reals, score ``heldout``."""
    if config.head == "boosted":
        head = fit_boosted(roles["train"], labels["train"], config.seed)
    else:
        head = fit_head(roles["train"], labels["train"], config.c)
    p = {role: head.predict_proba(x)[:, 1] for role, x in roles.items() if len(x)}
    threshold = float(np.quantile(p["val"][labels["val"] == 0], 1.0 - config.flag_rate))
    both = len(set(labels["test"].tolist())) == 2
    test_auc = float(roc_auc_score(labels["test"], p["test"])) if both else float("nan")
    held_class = 1 if scored == "fake" else 0
    held = p["heldout"][labels["heldout"] == held_class]
    flagged = int((held >= threshold).sum())
    temperature = fit_temperature(labels["val"], p["val"])
    decision = fit_decision(labels["val"], calibrate(p["val"], temperature))
    shares = verdict_shares(np.full(held.size, held_class), calibrate(held, temperature), decision)
    result = {
        "trained_on": {
            "real": int((labels["train"] == 0).sum()),
            "fake": int(labels["train"].sum()),
        },
        "threshold": round(threshold, 6),
        "verdicts": {v: round(share, 4) for v, share in shares[scored].items()},
        "test_auc_in_distribution": round(test_auc, 4),
        "heldout_count": int(held.size),
    }
    if scored == "real":
        rate = flagged / held.size
        return result | {
            "flagged_fake_rate": round(rate, 4),
            "flagged_fake_ci": wilson(flagged, held.size),
            "target": f"<= {TARGETS['real']}",
            "met": rate <= TARGETS["real"],
        }
    reals = p["test"][labels["test"] == 0]
    y = np.r_[np.zeros(reals.size), np.ones(held.size)]
    scores = np.r_[reals, held]
    auc = float(roc_auc_score(y, scores))
    return result | {
        "auc": round(auc, 4),
        "auc_ci": auc_interval(y, scores, config.bootstrap, config.seed),
        "detection_rate": round(flagged / held.size, 4),
        "detection_ci": wilson(flagged, held.size),
        "target": f"AUC >= {TARGETS['fake']}",
        "met": auc >= TARGETS["fake"],
    }


def sampled(name: str, share: float) -> bool:
    """Whether file ``name`` is in the ``share`` of files kept (a fixed hash of the name)."""
    return share >= 1.0 or zlib.crc32(name.encode()) % 10_000 < share * 10_000


def holdout_report(config: HoldoutConfig) -> dict:
    """Every fold's numbers; writes ``out/holdout.json`` and ``out/holdout.md``."""
    folds = load_folds(config.data)
    rows = json.loads((config.data / "manifest.json").read_text())["files"]
    label_of = {
        row["file"]: int(row["label"]) for row in rows if sampled(row["file"], config.sample)
    }
    files = sorted(label_of)
    index = {name: i for i, name in enumerate(files)}
    features = cached_features(config.data, files, config.features)
    results = {}
    for fold in FOLDS:
        if fold.name not in folds:
            continue
        members = {
            role: [f for f in names if f in label_of] for role, names in folds[fold.name].items()
        }
        roles = {role: features[[index[f] for f in names]] for role, names in members.items()}
        labels = {role: np.asarray([label_of[f] for f in names]) for role, names in members.items()}
        results[fold.name] = {"kind": fold.kind, "held_out_sources": list(fold.sources)}
        results[fold.name] |= score_fold(roles, labels, fold.scored, config)
    report = {
        "dataset": str(config.data),
        "settings": {k: str(v) for k, v in asdict(config).items()},
        "head": HEAD_NAMES[config.head],
        "folds": results,
    }
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "holdout.json").write_text(json.dumps(report, indent=1))
    (config.out / "holdout.md").write_text(render(report))
    return report


def sample_note(report: dict) -> str:
    share = float(report["settings"].get("sample", 1.0))
    return "" if share >= 1.0 else f" ({share:.0%} of its files, a fixed hash of each name)"


def verdicts(fold: dict) -> str:
    shares = fold.get("verdicts") or {}
    return " / ".join(f"{shares.get(v, float('nan')):.0%}" for v in ("FAKE", "UNCERTAIN", "REAL"))


def render(report: dict) -> str:
    """The report as a Markdown table."""
    lines = [
        f"# Source holdout: {report['head']} ({report['settings']['features']})",
        "",
        f"Dataset `{report['dataset']}`{sample_note(report)}; "
        f"threshold: {float(report['settings']['flag_rate']):.0%} "
        "of the fold's validation reals flagged. 95 % intervals (Wilson; bootstrap for AUC). "
        "Served verdicts: the held-out images under the three-way rule fitted on the fold's "
        "validation split.",
        "",
        "| fold | held out | trained on (real / fake) | held-out n | result | target | met "
        "| served verdicts (FAKE / UNCERTAIN / REAL) | in-distribution test AUC |",
        "|---|---|---:|---:|---|---|---|---|---:|",
    ]
    for name, fold in report["folds"].items():
        if "flagged_fake_rate" in fold:
            low, high = fold["flagged_fake_ci"]
            result = f"flagged FAKE {fold['flagged_fake_rate']:.1%} [{low:.1%}, {high:.1%}]"
        else:
            low, high = fold["auc_ci"]
            result = (
                f"AUC {fold['auc']:.3f} [{low:.3f}, {high:.3f}], detected "
                f"{fold['detection_rate']:.1%}"
            )
        trained = fold["trained_on"]
        lines.append(
            f"| {name} | {fold['kind']}: {', '.join(fold['held_out_sources'])} | "
            f"{trained['real']:,} / {trained['fake']:,} | {fold['heldout_count']:,} | {result} | "
            f"{fold['target']} | {'yes' if fold['met'] else '**no**'} | {verdicts(fold)} | "
            f"{fold['test_auc_in_distribution']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = options_parser(
        "python -m train.holdout",
        "Train a head on frozen features without each held-out source or family\n"
        "(python -m dataprep folds) and score it on that source.",
        HoldoutConfig,
    )
    report = holdout_report(parse_config(parser, HoldoutConfig, argv))
    print(render(report))


if __name__ == "__main__":
    main()
