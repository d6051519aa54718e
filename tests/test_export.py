"""Export stage: Keras -> ONNX entry with parity gate, CAM, variants and clear errors.

One tiny CNN at the real 224 input is trained for one epoch and exported once per module
(``cnn_export``); a tiny randomly initialised Xception at 71 px is exported once too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.decision import to_logit
from core.modelrepo import ModelRepository
from core.preprocessing import PreprocessConfig, encode_png, preprocess_bytes
from export.__main__ import main as export_main
from export.config import ExportConfig, ExportError, ParityError
from export.parity import ParityImages, check_parity, synthetic_images

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
REPORT = {
    "threshold": 0.42,
    "temperature": 1.3,
    "threshold_rule": "f1",
    "val": {"accuracy": 0.8},
    "test": {"accuracy": 0.75, "f1": 0.7, "roc_auc": 0.8},
}


def _labelled_folder(root: Path, per_class: int = 8) -> Path:
    """PNG files of varied sizes in real/ (dark) and fake/ (bright)."""
    rng = np.random.default_rng(7)
    for label, mean in (("real", 70.0), ("fake", 180.0)):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            height, width = (int(v) for v in rng.integers(40, 300, 2))
            rgb = np.clip(rng.normal(mean, 40.0, (height, width, 3)), 0, 255).astype(np.uint8)
            (root / label / f"{index:02d}.png").write_bytes(encode_png(rgb))
    return root


def _folder_inputs(root: Path, size: int) -> np.ndarray:
    """The labelled folder's images in the order export uses (interleaved real/fake)."""
    real, fake = sorted((root / "real").iterdir()), sorted((root / "fake").iterdir())
    paths = [path for pair in zip(real, fake, strict=True) for path in pair]
    return np.stack([preprocess_bytes(p.read_bytes(), PreprocessConfig(size=size)) for p in paths])


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


HOLDOUT_FOLDS = {  # as python -m train.holdout writes them
    "yonsei": {"kind": "real source", "held_out_sources": ["yonsei-real"], "threshold": 0.61,
               "flagged_fake_rate": 0.449, "flagged_fake_ci": [0.419, 0.478], "met": False},
    "sd21": {"kind": "fake family", "held_out_sources": ["sd21-sdfd"], "auc": 0.836,
             "auc_ci": [0.822, 0.849], "detection_rate": 0.315, "met": False},
}  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def cnn_keras(workdir: Path) -> Path:
    """A tiny CNN at the contract's 224 input, fitted for one epoch on random data."""
    import keras

    from train.models import build_cnn

    keras.utils.set_random_seed(0)
    model = build_cnn(224, filters=(4, 8, 8))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 224, 224, 3)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 127.5).astype(np.float32)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = workdir / "cnn.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def cnn_export(workdir: Path, cnn_keras: Path):
    """The CNN exported once with a report, labelled parity images, FP16 and INT8."""
    from export.pipeline import export_model

    report = workdir / "run" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps(REPORT))
    (report.parent / "holdout.json").write_text(json.dumps({"folds": HOLDOUT_FOLDS}))
    images = _labelled_folder(workdir / "parity")
    config = ExportConfig(
        model_path=cnn_keras,
        name="cnn",
        repo=workdir / "models",
        report_path=report,
        parity_images=images,
        fp16=True,
        int8=True,
        training_data="random noise (test)",
        progress=False,
    )
    return export_model(config)


def test_cnn_224_entry_follows_the_contract(cnn_export, cnn_keras):
    from export.metadata import sha256_of

    entry = ModelRepository(cnn_export.path.parent.parent).entry("cnn")
    assert entry.version == cnn_export.version == 1
    meta = entry.metadata
    assert meta["inputs"] == [{"name": "image", "shape": [-1, 224, 224, 3], "dtype": "float32"}]
    assert [o["name"] for o in meta["outputs"]] == ["probability_fake", "cam"]
    assert meta["outputs"][1]["shape"] == [-1, 56, 56]
    assert meta["class_names"] == ["REAL", "FAKE"] and meta["positive_class"] == "FAKE"
    assert (meta["threshold"], meta["temperature"]) == (0.42, 1.3)
    assert meta["metrics"]["test"] == REPORT["test"] and meta["metrics"]["val"] == REPORT["val"]
    assert meta["metrics"]["holdout"] == {  # what the model card names; the rest stays in reports
        "yonsei": {"kind": "real source", "held_out_sources": ["yonsei-real"],
                   "flagged_fake_rate": 0.449, "met": False},
        "sd21": {"kind": "fake family", "held_out_sources": ["sd21-sdfd"], "auc": 0.836,
                 "met": False},
    }  # fmt: skip
    assert meta["training_data"] == "random noise (test)"
    assert meta["source"]["sha256"] == sha256_of(cnn_keras)
    assert meta["preprocessing"]["module"] == "core.preprocessing"
    assert meta["preprocessing"]["resize"].startswith("whole image to 224x224")
    assert set(meta["export_tools"]) >= {"tensorflow", "tf2onnx", "onnx", "onnxruntime"}
    assert meta["created"].endswith("Z") and "notes" not in meta
    for key in ("onnx", "onnx_portable", "onnx_fp16", "onnx_int8"):
        assert (entry.path / meta["files"][key]).is_file()
    leftovers = [p.name for p in entry.path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_cnn_onnx_matches_keras_at_batch_1_and_7(cnn_export, cnn_keras, workdir):
    import keras

    parity = cnn_export.metadata["parity"]
    assert parity["images"] == 16 and parity["batch_sizes"] == [1, 7]
    assert parity["fp32_max_abs_diff"] <= 1e-4 and parity["cam_max_abs_diff"] is not None
    # independent re-check: the saved Keras model against the published model.onnx
    images = _folder_inputs(workdir / "parity", 224)
    expected = np.asarray(keras.saving.load_model(cnn_keras)(images, training=False))
    session = _session(cnn_export.path / "model.onnx")
    assert session.get_inputs()[0].shape[0] == "N"
    for batch in (1, 7):
        got = np.concatenate(
            [
                session.run(["probability_fake"], {"image": images[i : i + batch]})[0]
                for i in range(0, 16, batch)
            ]  # fmt: skip
        )
        assert np.abs(got - expected).max() <= 1e-4
    assert expected.min() > 0.01 and expected.max() < 0.99  # a meaningful comparison


def test_cam_spatial_mean_is_the_logit(cnn_export, workdir):
    images = _folder_inputs(workdir / "parity", 224)
    probability, cam = _session(cnn_export.path / "model.onnx").run(None, {"image": images})
    assert cam.shape == (16, 56, 56)
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), to_logit(probability[:, 0]), atol=1e-3)
    assert cam.std(axis=(1, 2)).min() > 0  # a map, not a constant


def test_fp16_and_int8_deltas_are_measured_and_recorded(cnn_export, workdir):
    parity = cnn_export.metadata["parity"]
    images = _folder_inputs(workdir / "parity", 224)
    fp32 = _session(cnn_export.path / "model.onnx").run(["probability_fake"], {"image": images})[0]
    for key in ("fp16", "int8"):
        recorded = parity[key]
        path = cnn_export.path / f"model.{key}.onnx"
        session = _session(path)
        assert session.get_inputs()[0].type == "tensor(float)"  # io stays float32
        measured = 0.0
        for batch in (1, 7):  # INT8 activation scales are per batch: check both sizes
            got = np.concatenate(
                [
                    session.run(["probability_fake"], {"image": images[i : i + batch]})[0]
                    for i in range(0, 16, batch)
                ]  # fmt: skip
            )
            assert got.dtype == np.float32
            measured = max(measured, float(np.abs(got - fp32).max()))
        assert recorded["max_abs_diff_vs_fp32"] == pytest.approx(measured, abs=1e-6)
        assert measured < 0.05
        assert {"accuracy", "accuracy_fp32", "accuracy_delta"} <= set(recorded)
    assert parity["fp16"]["max_abs_diff_vs_fp32"] > 0  # really reduced precision


def test_qdq_int8_for_tensorrt_is_symmetric_and_close(cnn_export, workdir, tmp_path):
    """The explicit-quantization model that TensorRT >= 11 builds INT8 engines from."""
    import onnx

    from export.onnx_tools import to_int8

    images = _folder_inputs(workdir / "parity", 224)
    qdq = tmp_path / "model.qdq.onnx"
    to_int8(cnn_export.path / "model.portable.onnx", qdq, images, for_tensorrt=True, batch_size=4)
    model = onnx.load(str(qdq))
    pairs = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(pairs) >= 6 and [p.name for p in tmp_path.iterdir()] == ["model.qdq.onnx"]
    initialisers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [initialisers[n.input[2]] for n in pairs if len(n.input) > 2]
    assert zero_points and all(not np.any(z) for z in zero_points)  # symmetric, as TRT needs
    fp32 = _session(cnn_export.path / "model.onnx").run(["probability_fake"], {"image": images})[0]
    got = _session(qdq).run(["probability_fake"], {"image": images})[0]
    assert np.abs(got - fp32).max() < 0.05


def test_cpu_int8_is_static_uint8_activations_and_batch_independent(cnn_export, workdir):
    """The CPU INT8 file: uint8 activations with zero points (the U8S8 kernels), int8
    per-channel weights, scales fixed at export, so an image's answer does not depend on
    which images share its batch (dynamic quantisation's did)."""
    import onnx

    model = onnx.load(str(cnn_export.path / "model.int8.onnx"))
    initialisers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and all(initialisers[n.input[2]].dtype == np.uint8 for n in quantize)
    weights = [a for name, a in initialisers.items() if a.dtype == np.int8 and a.ndim == 4]
    assert weights  # conv weights stored as int8
    assert not [
        n for n in model.graph.node if n.op_type in ("DynamicQuantizeLinear", "ConvInteger")
    ]
    images = _folder_inputs(workdir / "parity", 224)
    session = _session(cnn_export.path / "model.int8.onnx")
    together = session.run(["probability_fake"], {"image": images})[0]
    alone = np.concatenate(
        [session.run(["probability_fake"], {"image": i[None]})[0] for i in images]
    )
    np.testing.assert_allclose(alone, together, atol=1e-6)


AGREES = {"verdict_agreement": 0.998, "calibrated_abs_diff_p99": 0.01}


@pytest.mark.parametrize(
    ("int8", "expected"),
    [
        (AGREES | {"images": 3115, "roc_auc_delta": -0.0004}, "int8"),
        (AGREES | {"images": 3115, "roc_auc_delta": 0.002}, "int8"),
        (AGREES | {"images": 3115, "roc_auc_delta": -0.0051}, None),  # lost too much
        (AGREES | {"images": 3115, "roc_auc_delta": 0.0, "verdict_agreement": 0.99}, None),
        (AGREES | {"images": 3115, "roc_auc_delta": 0.0, "calibrated_abs_diff_p99": 0.05}, None),
        ({"images": 3115, "roc_auc_delta": 0.0}, None),  # agreement not measured
        ({"images": 16, "roc_auc_delta": 0.0}, None),  # too few images to trust
        ({"images": 3115}, None),  # unlabelled parity images: no AUC, no gate
        (None, None),  # no INT8 file
    ],
)
def test_int8_is_served_by_default_only_when_it_passes_the_auc_and_agreement_gates(int8, expected):
    from export.pipeline import serve_precision

    parity = {} if int8 is None else {"int8": int8}
    config = ExportConfig(model_path=Path("m.keras"), name="m")
    assert serve_precision(parity, config) == expected


def test_exported_model_runs_without_tensorflow(cnn_export, workdir):
    script = f"""
import sys, json, numpy as np, onnxruntime as ort
from core.modelrepo import ModelRepository
from core.preprocessing import preprocess_file
entry = ModelRepository({str(workdir / "models")!r}).entry("cnn")
session = ort.InferenceSession(str(entry.onnx_path), providers=["CPUExecutionProvider"])
image = preprocess_file({str(workdir / "parity" / "fake" / "00.png")!r})[None]
p, cam = session.run(None, {{entry.input_name: image}})
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TF was imported"
print(json.dumps({{"p": float(p[0, 0]), "cam": list(cam.shape)}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert 0.0 <= result["p"] <= 1.0 and result["cam"] == [1, 56, 56]


def test_existing_version_needs_force_then_replaces(cnn_keras, tmp_path, capsys):
    repo = tmp_path / "models"
    old = repo / "cnn" / "1"
    old.mkdir(parents=True)
    (old / "metadata.json").write_text("{}")
    (old / "stale.txt").write_text("from an earlier export")
    args = ["--model", str(cnn_keras), "--name", "cnn", "--repo", str(repo), "--no-progress"]
    assert export_main([*args, "--version", "1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (old / "stale.txt").is_file()
    assert export_main([*args, "--version", "1", "--force", "--parity-count", "4"]) == 0
    assert not (old / "stale.txt").exists()
    meta = json.loads((old / "metadata.json").read_text())
    assert meta["version"] == 1 and meta["parity"]["images"] == 4 and meta["metrics"] == {}
    assert meta["threshold"] == 0.5 and meta["temperature"] == 1.0 and meta["notes"]
    assert export_main([*args, "--parity-count", "2"]) == 0  # default: next free version
    assert ModelRepository(repo).versions("cnn") == [1, 2]
    # the two versions and Triton's model configuration, nothing left over from staging
    assert sorted(p.name for p in (repo / "cnn").iterdir()) == ["1", "2", "config.pbtxt"]


def test_failed_parity_fails_loudly_and_writes_nothing(cnn_keras, tmp_path, capsys):
    repo = tmp_path / "models"
    argv = ["--model", str(cnn_keras), "--name", "cnn", "--repo", str(repo), "--no-progress"]
    assert export_main([*argv, "--tolerance", "1e-30", "--parity-count", "4"]) == 1
    assert "disagree" in capsys.readouterr().err
    assert list((repo / "cnn").iterdir()) == []  # no version, no staging folder


def test_parity_gate_rejects_a_differing_reference(cnn_export, workdir):
    images = _folder_inputs(workdir / "parity", 224)
    probability, cam = _session(cnn_export.path / "model.onnx").run(None, {"image": images})
    parity_images = ParityImages(images, None, "test")
    ok = check_parity(cnn_export.path / "model.onnx", parity_images, probability, cam, [1, 7], 1e-4)
    assert ok.probability_max_abs_diff <= 1e-6
    with pytest.raises(ParityError, match="probability"):
        check_parity(
            cnn_export.path / "model.onnx", parity_images, probability + 1e-3, cam, [7], 1e-4
        )
    with pytest.raises(ParityError, match="cam"):
        check_parity(
            cnn_export.path / "model.onnx", parity_images, probability, cam * 1.01, [7], 1e-4
        )


def test_tiny_xception_71_parity(tmp_path):
    """Xception (weights=None) with the features layer after the nested base model."""
    import keras

    from export.pipeline import export_model
    from train.models import build_xception

    keras.utils.set_random_seed(1)
    model = build_xception(71, weights=None)
    # rescale the random head so probabilities spread over (0, 1) instead of all ~0.5
    inputs = synthetic_images(16, 71, seed=0).images
    features = keras.Model(model.inputs, model.get_layer("features").output)(inputs)
    pooled = np.asarray(features).mean(axis=(1, 2))
    direction = np.random.default_rng(0).normal(size=(pooled.shape[1], 1))
    logits = (pooled - pooled.mean(axis=0)) @ direction
    scale = 2.0 / float(logits.std())
    bias = -float(pooled.mean(axis=0) @ direction[:, 0]) * scale
    model.get_layer("classifier").set_weights([direction * scale, np.array([bias])])
    path = tmp_path / "xception.keras"
    model.save(path)
    result = export_model(
        ExportConfig(model_path=path, name="xception", repo=tmp_path / "models", progress=False)
    )
    parity = result.metadata["parity"]
    assert parity["fp32_max_abs_diff"] <= 1e-4 and parity["batch_sizes"] == [1, 7]
    assert parity["images"] == 16 and parity["images_source"].startswith("synthetic")
    assert result.metadata["outputs"][1]["shape"] == [-1, 3, 3]
    assert result.metadata["model_kind"] == "xception"
    probability, cam = _session(result.path / "model.onnx").run(None, {"image": inputs})
    assert probability.std() > 0.1  # the comparison covers a real spread of outputs
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), to_logit(probability[:, 0]), atol=1e-3)


# --- clear errors, no TensorFlow needed ----------------------------------------------------


def test_missing_model_is_a_clear_error_from_the_cli(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "export",
            "--model",
            str(tmp_path / "nope.keras"),
            "--name",
            "cnn",
            "--repo",
            str(tmp_path / "models"),
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 1
    assert "nope.keras does not exist" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists()


def test_unwritable_repository_is_a_clear_error(tmp_path, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes(b"not used: the repository check comes first")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    argv = ["--model", str(model), "--name", "cnn", "--repo", str(blocker / "models")]
    assert export_main(argv) == 1
    assert "cannot write to the model repository" in capsys.readouterr().err


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    base = ["--model", str(model), "--repo", str(tmp_path / "models")]
    assert export_main([*base, "--name", "../etc"]) == 1
    assert "invalid model name" in capsys.readouterr().err
    assert export_main([*base, "--name", "cnn", "--version", "0"]) == 1
    assert "positive integer" in capsys.readouterr().err
    assert export_main([*base, "--name", "cnn", "--opset", "13"]) == 2
    assert "--opset must be >= 17" in capsys.readouterr().err
    assert export_main([*base, "--name", "cnn", "--report", str(tmp_path / "no.json")]) == 1
    assert "report" in capsys.readouterr().err
    bad_report = tmp_path / "report.json"
    bad_report.write_text(json.dumps({"threshold": 0.5}))
    assert export_main([*base, "--name", "cnn", "--report", str(bad_report)]) == 1
    assert "lacks 'temperature'" in capsys.readouterr().err
    assert export_main([*base, "--name", "cnn", "--parity-images", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_file_that_is_not_a_keras_model_is_a_clear_error(tmp_path, capsys):
    model = tmp_path / "broken.keras"
    model.write_bytes(b"this is not a zip archive")
    argv = ["--model", str(model), "--name", "cnn", "--repo", str(tmp_path / "models")]
    argv.append("--no-progress")
    assert export_main(argv) == 1
    assert "cannot load Keras model" in capsys.readouterr().err
    assert list((tmp_path / "models" / "cnn").iterdir()) == []


def test_staged_entry_is_all_or_nothing(tmp_path):
    from export.repository import next_version, staged_entry

    target = tmp_path / "cnn" / "3"
    with pytest.raises(RuntimeError), staged_entry(target, force=False) as staging:
        (staging / "model.onnx").write_bytes(b"half")
        raise RuntimeError("conversion broke")
    assert not target.exists() and list((tmp_path / "cnn").iterdir()) == []
    with staged_entry(target, force=False) as staging:
        (staging / "metadata.json").write_text("{}")
    assert (target / "metadata.json").is_file() and next_version(tmp_path, "cnn") == 4
    with pytest.raises(ExportError, match="appeared"), staged_entry(target, force=False):
        pass
    with staged_entry(target, force=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in (tmp_path / "cnn").iterdir()] == ["3"]


def test_a_model_without_the_graph_contract_is_refused(tmp_path, capsys):
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    outputs = keras.layers.Dense(1, activation="sigmoid")(pooled)
    path = tmp_path / "plain.keras"
    keras.Model(inputs, outputs).save(path)
    argv = ["--model", str(path), "--name", "cnn", "--repo", str(tmp_path / "models")]
    argv.append("--no-progress")
    assert export_main(argv) == 1
    assert "no layer named features, classifier" in capsys.readouterr().err


def test_parity_folder_without_labels_and_with_broken_files(tmp_path):
    from export.parity import folder_images

    rng = np.random.default_rng(3)
    for index in range(5):
        rgb = rng.integers(0, 255, (20 + index, 30, 3), dtype=np.uint8)
        (tmp_path / f"{index}.png").write_bytes(encode_png(rgb))
    (tmp_path / "5.png").write_bytes(b"not a png")  # skipped, not fatal
    (tmp_path / "notes.txt").write_text("ignored")
    found = folder_images(tmp_path, count=16, preprocess=PreprocessConfig(size=24))
    assert found.images.shape == (5, 24, 24, 3) and found.labels is None
    labelled_folder = _labelled_folder(tmp_path / "l", per_class=3)
    labelled = folder_images(labelled_folder, count=4, preprocess=PreprocessConfig(size=24))
    assert labelled.labels.tolist() == [0, 1, 0, 1]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no readable images"):
        folder_images(tmp_path / "empty", 4, PreprocessConfig(size=24))


def test_a_reduced_precision_twin_with_the_same_auc_but_other_verdicts_is_not_served(tmp_path):
    """A twin whose probabilities are stretched (scale x1.6) ranks every image as FP32 does
    (same ROC-AUC) yet moves single verdicts: the per-image gate keeps FP32 served."""
    from helpers import TinyModelSpec, write_model_entry

    from export.parity import ParityImages, compare_variant
    from export.pipeline import serve_precision

    fp32 = write_model_entry(tmp_path / "a", "m", 1, TinyModelSpec(size=16)) / "model.onnx"
    twin = write_model_entry(tmp_path / "b", "m", 1, TinyModelSpec(size=16, scale=0.08))
    same = write_model_entry(tmp_path / "c", "m", 1, TinyModelSpec(size=16)) / "model.onnx"
    rng = np.random.default_rng(0)
    means = rng.uniform(60, 195, 1200)
    images = (means[:, None, None, None] + rng.normal(0, 5, (1200, 16, 16, 3))).astype(np.float32)
    labels = (means > 127.5).astype(int)
    parity = ParityImages(images, labels, "synthetic, labelled by brightness")
    config = ExportConfig(model_path=Path("m.keras"), name="m")
    stretched = compare_variant(twin / "model.onnx", fp32, parity, 0.5, 1.0, [1, 7])
    assert abs(stretched["roc_auc_delta"]) < 1e-9  # the AUC gate alone would pass it
    assert stretched["verdict_agreement"] == 1.0  # both cross 0.5 at the same image ...
    assert stretched["calibrated_abs_diff_p99"] > 0.02  # ... but move probabilities a lot
    assert serve_precision({"int8": stretched}, config) is None
    shifted = compare_variant(twin / "model.onnx", fp32, parity, 0.35, 1.0, [1])
    assert shifted["verdict_agreement"] < 0.995  # an off-centre threshold: verdicts move too
    identical = compare_variant(same, fp32, parity, 0.5, 1.0, [1])
    assert identical["verdict_agreement"] == 1.0 and identical["calibrated_abs_diff_p99"] == 0.0
    assert serve_precision({"int8": identical}, config) == "int8"
