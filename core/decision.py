"""From the model's raw probability to a calibrated FAKE/REAL decision.

The models output ``p = sigmoid(logit)`` for the positive class FAKE. Temperature scaling
(fitted on the validation split) turns it into ``sigmoid(logit / T)``; the decision
threshold (also chosen on validation) applies to that calibrated probability.
Used by evaluation and by the server alike.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("REAL", "FAKE")  # label 0, label 1
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


def decide(probability_fake: float, threshold: float = 0.5) -> tuple[str, float]:
    """Label and confidence for one calibrated probability of FAKE."""
    if probability_fake >= threshold:
        return CLASS_NAMES[1], float(probability_fake)
    return CLASS_NAMES[0], float(1.0 - probability_fake)
