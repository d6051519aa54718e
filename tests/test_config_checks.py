"""Every configuration dataclass checks its values where it is built: the error names the
config, the field, the value and the allowed range (issue 20)."""

from __future__ import annotations

import importlib

import pytest

CASES = [
    ("core.preprocessing:PreprocessConfig", {"size": 0}, "PreprocessConfig.size must be at least"),
    ("core.preprocessing:PreprocessConfig", {"max_pixels": -1}, "max_pixels must be at least 1"),
    ("train.data:PipelineConfig", {"batch_size": 0}, "PipelineConfig.batch_size must be at"),
    ("train.data:PipelineConfig", {"cache": "disk"}, "cache must be one of memory, none"),
    ("train.synthetic:SyntheticConfig", {"per_class": 0}, "per_class must be at least 1"),
    ("train.synthetic:SyntheticConfig", {"fmt": "gif"}, "fmt must be one of png, jpg"),
    ("train.config:AugmentConfig", {"jpeg_quality": (95, 30)}, "jpeg_quality must be two values"),
    ("train.config:AugmentConfig", {"blur_probability": 2.0}, "blur_probability must be within"),
    ("train.config:AugmentConfig", {"zoom": -0.1}, "zoom must not be negative"),
    ("train.config:TrainConfig", {"data": "d", "out": "o", "epochs": 0}, "epochs and batch size"),
    ("train.config:TrainConfig", {"data": "d", "out": "o", "model": "vit"}, "unknown model 'vit'"),
    ("train.evaluate:EvaluateConfig", {"run": "r", "bootstrap": -1}, "--bootstrap must be >= 0"),
    ("train.robustness:RobustnessConfig", {"run": "r", "batch_size": 0}, "--batch-size"),
    ("bulk.__main__:BulkConfig", {"out": "o.csv", "batch_size": 0}, "BulkConfig.batch_size"),
    ("bulk.__main__:BulkConfig", {"out": "o.csv", "workers": -1}, "workers must be at least 0"),
    ("bulk.__main__:VideoSampling", {"video_fps": 0.0}, "VideoSampling.video_fps must be positive"),
    ("bulk.__main__:VideoSampling", {"video_frames": 0}, "video_frames must be at least 1"),
    ("bulk.engines:HttpSettings", {"url": "u", "concurrency": 0}, "concurrency must be at least 1"),
    ("bulk.engines:HttpSettings", {"url": "u", "timeout_s": 0.0}, "timeout_s must be positive"),
    ("bulk.scorer:ModelChoice", {"version": 0}, "ModelChoice.version must be at least 1, got 0"),
    ("benchmarks.loadgen:LoadLevels", {"concurrency": (1, 0)}, "concurrency must be at least 1"),
    ("benchmarks.loadgen:LoadLevels", {"duration_s": 0.0}, "duration_s must be positive"),
    ("benchmarks.raw:RawConfig", {"batch_sizes": (0,)}, "RawConfig.batch_sizes must be at least 1"),
    ("benchmarks.raw:RawConfig", {"seconds_per_batch_size": -1.0}, "must be positive"),
    ("benchmarks.video:VideoBenchConfig", {"fps": 0.0}, "VideoBenchConfig.fps must be positive"),
    ("benchmarks.video:VideoBenchConfig", {"frames": (0,)}, "frames must be at least 1"),
    ("drills.soak.slowclients:SlowClientSettings", {"host": "h", "port": 1, "connections": 0},
     "connections must be at least 1"),
    ("benchmarks.bulkbench:BulkBenchConfig", {"paths": 0}, "BulkBenchConfig.paths"),
    ("benchmarks.runner:SuiteConfig", {"limit_concurrency": (0,)}, "limit_concurrency must be"),
    ("benchmarks.explain:ExplainBenchConfig", {"model_rows": 0}, "model_rows must be at least 1"),
    ("drills.soak.config:SoakConfig", {"duration_s": 0.0}, "--duration > 0"),
    ("benchmarks.mixed:MixedConfig", {"explanations": 0}, "must be >= 1"),
    ("serving.batcher:BatcherConfig", {"max_queue_delay_ms": -1.0}, "must be at least 0, got -1"),
    ("serving.runtime:RuntimeConfig", {"precision": "fp8"}, "precision must be one of"),
    ("export.config:ExportConfig", {"model_path": "m", "name": "n", "opset": 13}, "--opset"),
    ("export.tensorrt:TensorRTConfig", {"name": "n", "max_batch": 0}, "--max-batch"),
    ("dataprep.build:BuildConfig", {"workers": 0}, "workers must be >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("where", "values", "message"), CASES, ids=[case[0] + str(case[1]) for case in CASES]
)
def test_a_bad_value_is_refused_where_the_config_is_built(where, values, message):
    module_name, class_name = where.split(":")
    if module_name == "train.data":
        pytest.importorskip("tensorflow", reason="train.data needs the training extra")
    config = getattr(importlib.import_module(module_name), class_name)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config(**values)
