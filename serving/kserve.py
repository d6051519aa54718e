"""KServe v2 (Open Inference Protocol) JSON: model metadata and tensor inference."""

from __future__ import annotations

import json

import numpy as np

from serving.errors import APIError, bad_parameter
from serving.models import LoadedModel

DATATYPES = {"float32": "FP32", "float16": "FP16", "int64": "INT64", "int32": "INT32"}
PLATFORM = "onnxruntime_onnx"


def _tensor_metadata(spec: dict) -> dict:
    return {
        "name": spec["name"],
        "datatype": DATATYPES.get(spec.get("dtype", "float32"), "FP32"),
        "shape": spec["shape"],
    }


def model_metadata(models: list[LoadedModel]) -> dict:
    """v2 metadata for one model; ``models`` are the versions to list, the last one described."""
    described = models[-1]
    return {
        "name": described.name,
        "versions": [str(model.version) for model in models],
        "platform": PLATFORM,
        "inputs": [_tensor_metadata(spec) for spec in described.entry.metadata["inputs"]],
        "outputs": [_tensor_metadata(spec) for spec in described.entry.metadata["outputs"]],
    }


def parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise APIError(400, "malformed_json", "request body JSON is nested too deeply") from None


def parse_infer_request(
    payload: object, model: LoadedModel
) -> tuple[np.ndarray, list[str], object]:
    """The input batch, the requested output names and the request id of a v2 infer body."""
    if not isinstance(payload, dict):
        raise bad_parameter("the infer body must be a JSON object with 'inputs'")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs or not isinstance(inputs[0], dict):
        raise bad_parameter("'inputs' must be a non-empty list of tensors")
    tensor = inputs[0]
    if tensor.get("name") != model.runtime.input_name:
        raise bad_parameter(f"inputs[0].name must be {model.runtime.input_name!r}")
    if tensor.get("datatype") != "FP32":
        raise bad_parameter("inputs[0].datatype must be 'FP32'")
    size = model.entry.input_size
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 4
        or not all(isinstance(dim, int) and not isinstance(dim, bool) for dim in shape)
        or shape[0] < 1
        or shape[1:] != [size, size, 3]
    ):
        raise bad_parameter(f"inputs[0].shape must be [N, {size}, {size}, 3] with N >= 1")
    try:
        data = np.asarray(tensor.get("data"), dtype=np.float32)
    except (TypeError, ValueError):
        raise bad_parameter("inputs[0].data must be a flat or nested list of numbers") from None
    if not np.isfinite(data).all():
        raise bad_parameter("inputs[0].data must be finite FP32 numbers (no NaN or infinity)")
    if data.size != int(np.prod(shape)):
        raise bad_parameter(
            f"inputs[0].data has {data.size} values; shape {shape} needs {np.prod(shape)}"
        )
    wanted = payload.get("outputs") or [{"name": "probability_fake"}]
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise bad_parameter("'outputs' must be a list of {\"name\": ...} objects")
    names = [o.get("name") for o in wanted]
    unknown = [name for name in names if name not in model.runtime.output_names]
    if unknown:
        raise bad_parameter(
            f"unknown outputs {unknown}; this model has {', '.join(model.runtime.output_names)}"
        )
    return data.reshape(shape), names, payload.get("id")


def infer_response(
    model: LoadedModel, outputs: dict[str, np.ndarray], names: list[str], request_id: object
) -> dict:
    body = {
        "model_name": model.name,
        "model_version": str(model.version),
        "outputs": [
            {
                "name": name,
                "datatype": DATATYPES.get(str(outputs[name].dtype), "FP32"),
                "shape": list(outputs[name].shape),
                "data": outputs[name].reshape(-1).tolist(),
            }
            for name in names
        ],
    }
    if request_id is not None:
        body["id"] = request_id
    return body
