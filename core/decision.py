"""From the model's raw probability to a calibrated REAL / UNCERTAIN / FAKE verdict.

The models output ``p = sigmoid(logit)`` for the positive class FAKE. Temperature scaling
(fitted on the validation split) turns it into ``sigmoid(logit / T)``. Two thresholds on
that calibrated probability make the verdict (:class:`DecisionRule`): REAL below the first,
FAKE from the second, UNCERTAIN in between. A verdict never contradicts its probability:
FAKE never comes with P(fake) < 0.5 nor REAL with P(fake) > 0.5, unless ``metadata.json``
states why (``decision.reason``). Used by evaluation and by the server alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("REAL", "FAKE")  # label 0, label 1
UNCERTAIN = "UNCERTAIN"
VERDICTS = (CLASS_NAMES[0], UNCERTAIN, CLASS_NAMES[1])
NO_FACE = "NO_FACE"  # a face-crop model found no face in the image: no verdict at all
_EPS = 1e-7


def to_logit(probability: np.ndarray) -> np.ndarray:
    """Inverse sigmoid, clipped away from 0 and 1."""
    p = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def calibrate(probability: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled probability ``sigmoid(logit(p) / T)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if temperature == 1.0:
        return np.asarray(probability, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-to_logit(probability) / temperature))


@dataclass(frozen=True)
class DecisionRule:
    """REAL where P(fake) < ``real_below``, FAKE where P(fake) >= ``fake_from``, UNCERTAIN in
    between. ``reason`` (from ``metadata.json``) is what allows FAKE below 0.5 or REAL above."""

    real_below: float = 0.5
    fake_from: float = 0.5
    reason: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_below <= self.fake_from <= 1.0:
            raise ValueError(
                f"need 0 <= real_below <= fake_from <= 1, got {self.real_below}, {self.fake_from}"
            )
        if self.reason is None and not self.real_below <= 0.5 <= self.fake_from:
            raise ValueError("a verdict may not contradict its probability without a reason")

    @classmethod
    def from_threshold(cls, threshold: float) -> DecisionRule:
        """One fitted threshold: REAL below it, FAKE from 0.5 up (from it, if it is higher),
        UNCERTAIN between the two."""
        return cls(min(threshold, 0.5), max(threshold, 0.5))

    @classmethod
    def from_metadata(cls, metadata: dict) -> DecisionRule:
        """``metadata.json``'s ``decision`` (``real_below``, ``fake_from``, optional
        ``reason``), else its single ``threshold``; thresholds that would contradict the
        probability are moved to 0.5 unless a reason is given."""
        decision = metadata.get("decision")
        if not decision:
            return cls.from_threshold(float(metadata.get("threshold", 0.5)))
        real, fake = float(decision["real_below"]), float(decision["fake_from"])
        reason = decision.get("reason")
        if reason is None:
            real, fake = min(real, 0.5), max(fake, 0.5)
        return cls(real, fake, reason)

    def as_json(self) -> dict:
        shown = {"real_below": self.real_below, "fake_from": self.fake_from}
        return shown if self.reason is None else shown | {"reason": self.reason}


def decide(
    probability_fake: float, rule: DecisionRule | float = DecisionRule()
) -> tuple[str, float]:
    """Verdict and confidence for one calibrated probability of FAKE (a bare number is one
    fitted threshold, :meth:`DecisionRule.from_threshold`). Confidence is the probability of
    the verdict's class; for UNCERTAIN, of the more likely class."""
    if not isinstance(rule, DecisionRule):
        rule = DecisionRule.from_threshold(float(rule))
    p = float(probability_fake)
    if p >= rule.fake_from:
        return CLASS_NAMES[1], p
    if p < rule.real_below:
        return CLASS_NAMES[0], 1.0 - p
    return UNCERTAIN, max(p, 1.0 - p)


OVERALL_RULE = (
    "the most suspicious face: the verdict of the face with the highest calibrated P(fake)"
)


def verdict(probability_fake: float, rule: DecisionRule) -> dict:
    """``label``, ``probability_fake`` and ``confidence`` of one calibrated probability."""
    label, confidence = decide(probability_fake, rule)
    return {"label": label, "probability_fake": float(probability_fake), "confidence": confidence}


def judge_faces(calibrated: np.ndarray, rule: DecisionRule, faces: list[dict]) -> dict:
    """One image's verdict from its faces' calibrated probabilities: the most suspicious
    face's verdict and ``face``; with ``faces`` (each face's JSON, in the order of
    ``calibrated``), every face with its own verdict and the ``overall`` rule. The server and
    the bulk command answer alike."""
    verdicts = [verdict(float(p), rule) for p in np.asarray(calibrated).reshape(-1)]
    worst = int(np.argmax(calibrated))
    judged = verdicts[worst] | {"face": faces[worst] if faces else None}
    if faces:
        judged["faces"] = [{"face": face} | v for face, v in zip(faces, verdicts, strict=True)]
        judged["overall"] = {"rule": OVERALL_RULE, "face": worst}
    return judged
