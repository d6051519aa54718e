"""The model repository: ``<root>/<name>/<version>/{model.onnx, metadata.json, model.plan?}``.

Export writes entries, the server reads them. Names must be plain identifiers and
versions positive integers, so a request can never point outside the repository.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.decision import DecisionRule
from core.preprocessing import DEFAULT_MAX_PIXELS, PreprocessConfig

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")  # always used with fullmatch
VERSION_PATTERN = re.compile(r"[0-9]{1,9}")
METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
REQUIRED_METADATA = ("name", "version", "inputs", "outputs", "preprocessing", "threshold")


class ModelNotFound(LookupError):
    """No such model or version in the repository (HTTP 404)."""


class InvalidModelName(ValueError):
    """A model name or version that is not a plain identifier / positive integer (HTTP 400)."""


class InvalidMetadata(ValueError):
    """A repository entry whose metadata.json is missing fields or malformed."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain identifier, else raise :class:`InvalidModelName`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidModelName(
            f"invalid model name {name!r}: use letters, digits, '_' or '-', starting with a letter"
        )
    return name


def check_version(version: int | str) -> int:
    """Return ``version`` as a positive int, else raise :class:`InvalidModelName`."""
    text = str(version)
    if not VERSION_PATTERN.fullmatch(text) or int(text) < 1:
        raise InvalidModelName(f"invalid model version {version!r}: use a positive integer")
    return int(text)


@dataclass(frozen=True)
class ModelEntry:
    """One version of one model in the repository."""

    name: str
    version: int
    path: Path
    metadata: dict = field(repr=False)

    @property
    def onnx_path(self) -> Path:
        return self.path / self.metadata.get("files", {}).get("onnx", ONNX_FILE)

    @property
    def plan_path(self) -> Path | None:
        plan = self.path / self.metadata.get("files", {}).get("plan", PLAN_FILE)
        return plan if plan.is_file() else None

    @property
    def threshold(self) -> float:
        return float(self.metadata.get("threshold", 0.5))

    @property
    def decision(self) -> DecisionRule:
        """The verdict's two thresholds (``core.decision.DecisionRule.from_metadata``)."""
        return DecisionRule.from_metadata(self.metadata)

    @property
    def temperature(self) -> float:
        return float(self.metadata.get("temperature", 1.0))

    @property
    def input_name(self) -> str:
        return self.metadata["inputs"][0]["name"]

    @property
    def input_size(self) -> int:
        return int(self.metadata["inputs"][0]["shape"][1])

    @property
    def batching(self) -> dict:
        """This model's own batching settings (``metadata.json`` ``batching``, e.g.
        ``{"max_batch_size": 8}``), overriding the server's for it, as Triton's
        ``config.pbtxt`` does; empty: the server's settings."""
        return dict(self.metadata.get("batching") or {})

    @property
    def face_crop(self) -> bool:
        """Whether the model was trained on face crops (its contract's ``face_crop``)."""
        return bool(self.metadata.get("preprocessing", {}).get("face_crop", False))

    def preprocess_config(
        self, max_pixels: int = DEFAULT_MAX_PIXELS, face_crop: bool | None = None,
        max_faces: int = 1,
    ) -> PreprocessConfig:  # fmt: skip
        """The model's preprocessing contract; ``face_crop`` overrides its face-crop setting;
        ``max_faces``: how many faces of an upload to judge."""
        crop = self.face_crop if face_crop is None else face_crop
        align = self.metadata.get("preprocessing", {}).get("face_align") if crop else None
        return PreprocessConfig(
            size=self.input_size, max_pixels=max_pixels, face_crop=crop, face_align=align,
            max_faces=max_faces,
        )  # fmt: skip

    def output_names(self) -> list[str]:
        return [output["name"] for output in self.metadata["outputs"]]

    def summary(self) -> dict:
        """What ``GET /v1/models`` shows about this version."""
        return {
            "name": self.name,
            "version": self.version,
            "inputs": self.metadata["inputs"],
            "outputs": self.metadata["outputs"],
            "threshold": self.threshold,
            "decision": self.decision.as_json(),
            "temperature": self.temperature,
            "face_crop": self.face_crop,
            "face_align": self.preprocess_config().face_align,
            "metrics": self.metadata.get("metrics", {}),
            "training_data": self.metadata.get("training_data"),
            "has_tensorrt_plan": self.plan_path is not None,
        }


def read_metadata(version_dir: Path) -> dict:
    """Load and validate ``metadata.json`` of one repository entry."""
    path = version_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidMetadata(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise InvalidMetadata(f"{path} is not valid JSON: {exc}") from None
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise InvalidMetadata(f"{path} lacks required fields: {', '.join(missing)}")
    if not metadata["inputs"] or not metadata["outputs"]:
        raise InvalidMetadata(f"{path} must list at least one input and one output")
    return metadata


class ModelRepository:
    """Read access to a model repository folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        """Model names with at least one valid version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            child.name
            for child in self.root.iterdir()
            if child.is_dir() and NAME_PATTERN.fullmatch(child.name) and self.versions(child.name)
        )

    def versions(self, name: str) -> list[int]:
        """Versions of ``name`` that hold a metadata file and an ONNX model, ascending."""
        model_dir = self.root / check_name(name)
        if not model_dir.is_dir():
            return []
        return sorted(
            int(child.name)
            for child in model_dir.iterdir()
            if child.is_dir()
            and VERSION_PATTERN.fullmatch(child.name)
            and int(child.name) > 0
            and (child / METADATA_FILE).is_file()
        )

    def entry(self, name: str, version: int | str | None = None) -> ModelEntry:
        """The given version of ``name``, or its latest when ``version`` is None."""
        check_name(name)
        versions = self.versions(name)
        if not versions:
            raise ModelNotFound(f"model {name!r} not found")
        chosen = versions[-1] if version in (None, "") else check_version(version)
        if chosen not in versions:
            raise ModelNotFound(f"model {name!r} has no version {chosen}")
        path = self.root / name / str(chosen)
        metadata = read_metadata(path)
        entry = ModelEntry(name=name, version=chosen, path=path, metadata=metadata)
        if not entry.onnx_path.is_file():
            raise InvalidMetadata(f"{entry.onnx_path} is missing")
        return entry

    def entries(self, latest_only: bool = False) -> list[ModelEntry]:
        """All valid entries (or only each model's latest), sorted by name then version."""
        found = []
        for name in self.names():
            versions = self.versions(name)
            for version in versions[-1:] if latest_only else versions:
                found.append(self.entry(name, version))
        return found
