"""``config.pbtxt`` for Triton: parsed with Triton's own ModelConfig protobuf, checked against
the ONNX graph and the server's batching defaults."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx
import pytest
from helpers.onnx_models import TinyModelSpec, write_model_entry

from export.triton import CONFIG_FILE, TritonSettings, main, write_configs
from serving.config import ServerConfig


def model_config_pb2():
    """Triton's ModelConfig message (``tritonclient``'s generated module, loaded by path: the
    package's ``grpc`` __init__ wants grpcio, which the message itself does not need)."""
    found = importlib.util.find_spec("tritonclient")
    assert found is not None, "tritonclient is part of the dev group: make install"
    path = Path(found.submodule_search_locations[0]) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_matches_the_graph_and_parses_as_a_triton_model_config(tmp_path: Path):
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    repo = tmp_path / "models"
    write_model_entry(repo, "cnn", 1, TinyModelSpec(size=32, with_cam=True))
    write_model_entry(repo, "cnn", 2, TinyModelSpec(size=48, with_cam=True))
    assert main(["--repo", str(repo), "--max-batch-size", "16"]) == 0
    config = text_format.Parse((repo / "cnn" / CONFIG_FILE).read_text(), pb2.ModelConfig())
    graph = onnx.load(str(repo / "cnn/2/model.onnx")).graph  # the latest version
    assert config.name == "cnn" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16 and config.version_policy.latest.num_versions == 1
    assert config.default_model_filename == "model.onnx"
    assert config.dynamic_batching.max_queue_delay_microseconds == 5000
    for declared, actual in ((config.input, graph.input), (config.output, graph.output)):
        assert [t.name for t in declared] == [t.name for t in actual]
        for tensor, value in zip(declared, actual, strict=True):
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim[1:]]
            assert list(tensor.dims) == dims
            assert tensor.data_type == pb2.DataType.Value("TYPE_FP32")
    assert list(config.input[0].dims) == [48, 48, 3]


def test_shipped_models_have_current_configs():
    root = Path(__file__).resolve().parents[1] / "models"
    texts = {path: path.read_text() for path in sorted(root.glob(f"*/{CONFIG_FILE}"))}
    assert texts, "no config.pbtxt in models/: run python -m export.triton"
    written = write_configs(root)
    assert {path: path.read_text() for path in written} == texts, "stale: python -m export.triton"


def test_batching_defaults_are_the_servers():
    server = ServerConfig()
    assert TritonSettings().max_batch_size == server.max_batch_size
    assert TritonSettings().max_queue_delay_ms == server.max_queue_delay_ms
    with pytest.raises(ValueError, match="max_batch_size"):
        TritonSettings(max_batch_size=0)
