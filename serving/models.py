"""The loaded models: one runtime and one batcher per repository entry, and name resolution."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from core.modelrepo import (
    InvalidMetadata,
    ModelEntry,
    ModelNotFound,
    ModelRepository,
    check_name,
    check_version,
)
from core.preprocessing import PreprocessConfig
from serving.batcher import DynamicBatcher
from serving.runtime import ModelRuntime, served_metrics

logger = logging.getLogger("serving.models")

# The default model when none is named: the first of these in the repository, else the first
# name. texture is the detector that generalises best to unseen sources (docs/TRAINING.md);
# lite0 is the fine-tuned one, more accurate on its own test split.
PREFERRED_DEFAULTS = ("texture", "lite0")


def preferred_default(names: list[str]) -> str | None:
    """The model a request without ``model=`` gets, among ``names``."""
    return next((name for name in PREFERRED_DEFAULTS if name in names), min(names, default=None))


@dataclass
class LoadedModel:
    """One model version ready to serve."""

    entry: ModelEntry
    runtime: ModelRuntime
    batcher: DynamicBatcher

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def version(self) -> int:
        return self.entry.version

    @property
    def has_cam(self) -> bool:
        return "cam" in self.runtime.output_names

    def preprocess_config(
        self, max_pixels: int, face_crop: bool | None = None, max_faces: int = 1
    ) -> PreprocessConfig:
        """The model's contract; ``face_crop`` overrides its face-crop setting when given;
        ``max_faces``: faces judged per upload."""
        return self.entry.preprocess_config(max_pixels, face_crop, max_faces)

    def summary(self, ready: bool) -> dict:
        """``ModelEntry.summary()`` plus readiness, the providers and the batching in use."""
        return {
            **self.entry.summary(),
            "providers": self.runtime.providers,
            "model_file": self.runtime.path.name,
            "precision": self.runtime.precision,
            "precision_metrics": served_metrics(self.entry, self.runtime.precision),
            "batching": asdict(self.batcher.config),
            "ready": ready,
        }


def find_entries(repository: ModelRepository, latest_only: bool) -> list[ModelEntry]:
    """Valid entries of the repository; broken ones are logged and skipped."""
    entries = []
    for name in repository.names():
        versions = repository.versions(name)
        for version in versions[-1:] if latest_only else versions:
            try:
                entries.append(repository.entry(name, version))
            except (InvalidMetadata, ModelNotFound, KeyError, ValueError) as exc:
                logger.error("skipping %s:%s: %s", name, version, exc)
    return entries


class ModelPool:
    """Loaded model versions by name, and which one a request means."""

    def __init__(self, models: list[LoadedModel], default_name: str | None = None) -> None:
        self._models: dict[str, dict[int, LoadedModel]] = {}
        for model in models:
            self._models.setdefault(model.name, {})[model.version] = model
        if default_name is not None and default_name not in self._models:
            raise ModelNotFound(f"default model {default_name!r} is not in the repository")
        names = sorted(self._models)
        if default_name is None and names:
            default_name = preferred_default(names)
        self.default_name = default_name

    def __iter__(self):
        for name in sorted(self._models):
            for version in sorted(self._models[name]):
                yield self._models[name][version]

    def __len__(self) -> int:
        return sum(len(versions) for versions in self._models.values())

    def versions(self, name: str) -> list[int]:
        return sorted(self._models.get(check_name(name), {}))

    def resolve(self, name: str | None = None, version: str | int | None = None) -> LoadedModel:
        """The named (default) model at ``version`` (latest); 400 for bad names, 404 if absent."""
        if name in (None, ""):
            if self.default_name is None:
                raise ModelNotFound("no model is loaded")
            name = self.default_name
        versions = self._models.get(check_name(name))
        if not versions:
            raise ModelNotFound(f"model {name!r} not found; loaded: {', '.join(self._models)}")
        if version in (None, ""):
            return versions[max(versions)]
        number = check_version(version)
        if number not in versions:
            raise ModelNotFound(
                f"model {name!r} has no version {number}; loaded: "
                + ", ".join(str(v) for v in sorted(versions))
            )
        return versions[number]
