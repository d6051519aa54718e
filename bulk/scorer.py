"""Score a batch of files with one model: the server's preprocessing contract and calibrated
decision (``core``), one onnxruntime session, and the server's provenance evidence
(``core.provenance``); a file that cannot be read or decoded gets an error row instead of a
result."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.decision import calibrate, decide
from core.modelrepo import ModelEntry, ModelRepository
from core.preprocessing import DEFAULT_MAX_PIXELS, ImageError, preprocess_bytes
from core.provenance import EvidenceConfig, EvidenceReader


@dataclass(frozen=True)
class ModelChoice:
    """Which model scores, how its session is built, and how evidence is read (None: not)."""

    models: Path = Path("models")
    name: str | None = None  # None: the server's default (serving.models.preferred_default)
    version: int | None = None
    intra_op_threads: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    evidence: EvidenceConfig | None = EvidenceConfig()

    def entry(self) -> ModelEntry:
        from serving.models import preferred_default

        repository = ModelRepository(self.models)
        name = self.name or preferred_default(repository.names())
        if name is None:
            raise ValueError(f"no model in {self.models}")
        return repository.entry(name, self.version)


class Scorer:
    """One model session; :meth:`score` turns paths into result rows."""

    def __init__(self, choice: ModelChoice) -> None:
        from serving.runtime import ModelRuntime, RuntimeConfig

        self.entry = choice.entry()
        self.config = self.entry.preprocess_config(choice.max_pixels)
        self.runtime = ModelRuntime(
            self.entry, RuntimeConfig(providers=("cpu",), intra_op_threads=choice.intra_op_threads)
        )
        self.evidence = EvidenceReader(choice.evidence) if choice.evidence else None

    def _read(self, path: str) -> tuple[dict, np.ndarray | None]:
        row = {"path": path, "model": self.entry.name, "version": self.entry.version}
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return row | {"error_code": "unreadable", "error_message": str(exc)}, None
        row["sha256"] = hashlib.sha256(data).hexdigest()
        try:
            model_input = preprocess_bytes(data, self.config)
        except ImageError as exc:
            return row | {"error_code": exc.code, "error_message": str(exc)}, None
        if self.evidence is not None:
            row["evidence"] = self.evidence.read(data)
        return row, model_input

    def score(self, paths: list[str]) -> list[dict]:
        """One row per path, in order."""
        read = [self._read(path) for path in paths]
        inputs = [model_input for _, model_input in read if model_input is not None]
        probabilities = iter(())
        if inputs:
            outputs = self.runtime.run(np.stack(inputs))
            raw = np.asarray(outputs["probability_fake"], dtype=np.float64).reshape(-1)
            probabilities = iter(calibrate(raw, self.entry.temperature))
        rows = []
        for row, model_input in read:
            if model_input is not None:
                probability = float(next(probabilities))
                label, confidence = decide(probability, self.entry.threshold)
                row |= {"label": label, "probability_fake": probability, "confidence": confidence}
            rows.append(row)
        return rows
