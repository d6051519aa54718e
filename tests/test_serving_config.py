"""Server configuration (flags, DFD_* variables, validation) and provider choice."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from serving.config import ServerConfig, build_parser, env_name, parse_args
from serving.runtime import PROVIDER_NAMES, choose_providers


def test_defaults_match_the_brief():
    config = ServerConfig()
    assert config.max_batch_size == 32
    assert config.max_body_bytes == 10 * 1024 * 1024
    assert config.providers == ("tensorrt", "cuda", "cpu")
    assert config.warmup_sizes == (1, 32)


def test_flags_beat_environment_beat_defaults():
    env = {"DFD_PORT": "9100", "DFD_MAX_BATCH_SIZE": "8", "DFD_PROVIDERS": "cuda,cpu"}
    config = parse_args(["--port", "9200", "--models", "repo"], environ=env)
    assert config.port == 9200  # flag wins
    assert config.max_batch_size == 8  # environment
    assert config.providers == ("cuda", "cpu")
    assert config.models_dir == Path("repo")
    assert config.max_queue_delay_ms == ServerConfig().max_queue_delay_ms  # default


def test_env_round_trip_carries_every_field_to_workers():
    config = ServerConfig(
        models_dir=Path("/x/models"), port=1234, trt_fp16=False, default_model="cnn",
        warmup_batch_sizes=(1, 4), webui_dir=None, max_queue_delay_ms=2.5,
    )  # fmt: skip
    env = config.to_env()
    assert set(env) == {env_name(f.name) for f in fields(ServerConfig)}
    assert ServerConfig.from_env(env) == config


def test_help_lists_every_flag_with_its_variable(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser({}).parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for item in fields(ServerConfig):
        assert env_name(item.name) in text
    for flag in ("--models", "--host", "--port", "--workers", "--max-batch-size", "--webui"):
        assert flag in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-batch-size", "0"],
        ["--port", "eighty"],
        ["--providers", "tpu"],
        ["--graph-optimization", "max"],
        ["--trt-fp16", "maybe"],
        ["--max-batch-size", "64", "--max-queue-size", "32"],
        ["--background-nice", "20"],
        ["--background-nice", "-1"],
    ],
)
def test_bad_values_exit_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv, environ={})
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_environment_value_is_reported_with_its_name(capsys):
    with pytest.raises(SystemExit):
        parse_args([], environ={"DFD_WORKERS": "two"})
    assert "DFD_WORKERS" in capsys.readouterr().err


def test_providers_follow_preference_and_availability_with_cpu_last():
    cpu, cuda, trt = (PROVIDER_NAMES[k] for k in ("cpu", "cuda", "tensorrt"))
    assert choose_providers(("tensorrt", "cuda", "cpu"), [cpu]) == [cpu]
    assert choose_providers(("tensorrt", "cuda", "cpu"), [cuda, cpu, trt]) == [trt, cuda, cpu]
    assert choose_providers(("cuda",), [trt, cuda, cpu]) == [cuda, cpu]
    assert choose_providers(("cpu", "cuda"), [cuda, cpu]) == [cuda, cpu]


def test_serving_docs_list_every_flag_and_variable():
    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "SERVING.md").read_text()
    section = page.split("## Serving", 1)[1].split("\n## ", 1)[0]
    for item in fields(ServerConfig):
        assert f"`{env_name(item.name)}`" in section, env_name(item.name)
    for text in (section, (root / "README.md").read_text()):
        assert "curl -F file=@face.jpg localhost:8000/v1/predict" in text


def test_gpu_providers_load_the_portable_onnx_file(tmp_path):
    from core.modelrepo import ModelEntry
    from serving.runtime import model_file

    for name in ("model.onnx", "model.portable.onnx"):
        (tmp_path / name).write_bytes(b"onnx")
    metadata = {"files": {"onnx": "model.onnx", "onnx_portable": "model.portable.onnx"}}
    entry = ModelEntry(name="cnn", version=1, path=tmp_path, metadata=metadata)
    assert model_file(entry, "fp32", on_gpu=False).name == "model.onnx"
    assert model_file(entry, "fp32", on_gpu=True).name == "model.portable.onnx"
    (tmp_path / "model.portable.onnx").unlink()
    assert model_file(entry, "fp32", on_gpu=True).name == "model.onnx"


def test_auto_precision_serves_what_the_entry_names(tmp_path):
    """``auto`` (the default) serves the entry's ``serve_precision`` on the CPU, fp32 where
    that file is missing and on GPU providers (they build their own reduced precision)."""
    from core.modelrepo import ModelEntry
    from serving.runtime import RuntimeConfig, model_file

    assert RuntimeConfig().precision == "auto"
    for name in ("model.onnx", "model.int8.onnx"):
        (tmp_path / name).write_bytes(b"onnx")
    files = {"onnx": "model.onnx", "onnx_int8": "model.int8.onnx"}
    entry = ModelEntry("m", 1, tmp_path, {"files": files, "serve_precision": "int8"})
    assert model_file(entry, "auto").name == "model.int8.onnx"
    assert model_file(entry, "fp32").name == "model.onnx"  # an explicit choice wins
    assert model_file(entry, "auto", on_gpu=True).name == "model.onnx"
    plain = ModelEntry("m", 1, tmp_path, {"files": files})
    assert model_file(plain, "auto").name == "model.onnx"
    (tmp_path / "model.int8.onnx").unlink()
    assert model_file(entry, "auto").name == "model.onnx"
    odd = ModelEntry("m", 1, tmp_path, {"files": files, "serve_precision": "fp8"})
    with pytest.raises(ValueError, match="unknown serve_precision 'fp8'"):
        model_file(odd, "auto")


def test_session_options_follow_the_server_config():
    import onnxruntime as ort

    from serving.runtime import session_options

    config = ServerConfig(
        workers=2, intra_op_threads=4, graph_optimization="basic", memory_arena=False
    )
    options = session_options(config.runtime_config())
    assert options.intra_op_num_threads == 2  # the server's 4 threads shared by 2 workers
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert options.enable_cpu_mem_arena is False
    assert session_options(ServerConfig().runtime_config()).enable_cpu_mem_arena is True
    assert parse_args(["--no-memory-arena"]).memory_arena is False
    spinning = "session.intra_op.allow_spinning"
    assert options.get_session_config_entry(spinning) == "0"  # spinning took decode's cores
    spin = ServerConfig(spin_wait=True).runtime_config()
    assert session_options(spin).get_session_config_entry(spinning) == "1"
    assert parse_args(["--spin-wait"]).spin_wait is True
    lone = session_options(config.runtime_config(), lone=True)  # spins during a run only
    assert lone.get_session_config_entry(spinning) == "1"
    assert lone.get_session_config_entry("session.force_spinning_stop") == "1"
    assert lone.intra_op_num_threads == 2
    assert ServerConfig().lone_spin is True and parse_args(["--no-lone-spin"]).lone_spin is False


def test_the_lone_session_gives_the_batched_session_s_outputs(tiny_repo):
    """Same file, same graph: a lone request scores as it would in a batch; without
    ``lone_spin`` there is one session and ``lone=True`` uses it."""
    from core.modelrepo import ModelRepository
    from serving.runtime import ModelRuntime, RuntimeConfig

    entry = ModelRepository(tiny_repo).entry("cnn")
    batch = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    runtime = ModelRuntime(entry, RuntimeConfig(providers=("cpu",)))
    assert runtime.lone_session is not None
    for row in batch:
        lone, batched = runtime.run(row[None], lone=True), runtime.run(row[None])
        assert lone.keys() == batched.keys()
        for name in lone:
            np.testing.assert_allclose(lone[name], batched[name], rtol=1e-6, atol=1e-7)
    single = ModelRuntime(entry, RuntimeConfig(providers=("cpu",), lone_spin=False))
    assert single.lone_session is None
    np.testing.assert_allclose(
        single.run(batch, lone=True)["probability_fake"], runtime.run(batch)["probability_fake"]
    )


def test_fastest_batch_size_picks_the_least_time_per_row_and_ignores_first_runs():
    from serving.runtime import fastest_batch_size

    now, seen = [0.0], []
    row_cost = {2: 1.0, 4: 0.6, 8: 0.7}  # seconds per row; the first run of a size is slow

    def run(batch):
        size = len(batch)
        first = size not in seen
        seen.append(size)
        now[0] += row_cost[size] * size * (10 if first else 1)

    size, per_row = fastest_batch_size(run, [2, 4, 8], 4, rounds=2, clock=lambda: now[0])
    assert size == 4 and per_row == pytest.approx(row_cost)
    assert seen == [2, 4, 8, 8, 4, 2]


def test_a_stop_signal_ends_a_run_early_and_an_unused_one_changes_nothing(tiny_repo):
    """onnxruntime's terminate flag behind ``run(stop=...)``: a stop given before or during
    the run raises RunStopped; a run not stopped gives the plain run's outputs, and the
    session runs normally afterwards."""
    from core.modelrepo import ModelRepository
    from serving.batcher import RunStopped, StopSignal
    from serving.runtime import ModelRuntime, RuntimeConfig

    entry = ModelRepository(tiny_repo).entry("cnn")
    batch = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    runtime = ModelRuntime(entry, RuntimeConfig(providers=("cpu",), lone_spin=False))
    plain = runtime.run(batch)
    kept = runtime.run(batch, stop=StopSignal())
    np.testing.assert_array_equal(kept["probability_fake"], plain["probability_fake"])
    stopped = StopSignal()
    stopped.stop()
    with pytest.raises(RunStopped):
        runtime.run(batch, stop=stopped)
    np.testing.assert_array_equal(runtime.run(batch)["probability_fake"], plain["probability_fake"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"providers": ("tpu",)}, "providers must be some of tensorrt, cuda, cpu"),
        ({"providers": ()}, "providers must be some of"),
        ({"intra_op_threads": -1}, "RuntimeConfig.intra_op_threads must be at least 0, got -1"),
        ({"device_id": -2}, "RuntimeConfig.device_id must be at least 0, got -2"),
        ({"max_batch_size": 0}, "max_batch_size must be at least 1, got 0"),
        ({"graph_optimization": "max"}, "graph_optimization must be one of"),
        ({"precision": "fp8"}, "precision must be one of auto, fp32, fp16, int8"),
    ],
)
def test_runtime_settings_are_checked_where_built(values, message):
    from serving.runtime import RuntimeConfig

    with pytest.raises(ValueError, match=message):
        RuntimeConfig(**values)


def test_the_servers_batching_and_session_flags_are_the_batchers_and_the_sessions_options():
    from serving.batcher import BatcherConfig
    from serving.runtime import RuntimeConfig

    assert ServerConfig().pick(BatcherConfig) == BatcherConfig()
    help_text = " ".join(build_parser({}).format_help().split())
    assert "most image rows per model run [env DFD_MAX_BATCH_SIZE; default 32]" in help_text
    assert ServerConfig().graph_optimization == RuntimeConfig().graph_optimization
    with pytest.raises(ValueError, match="BatcherConfig.max_queue_size .16. must be at least"):
        ServerConfig(max_batch_size=32, max_queue_size=16)
