"""The tf.data pipeline and the augmentation layers (TensorFlow, no training)."""

from dataclasses import replace

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="the training extra is not installed")

from core.preprocessing import PreprocessConfig, encode_jpeg, preprocess_bytes, preprocess_file  # noqa: E402
from train.augment import build_augmenter  # noqa: E402
from train.config import AugmentConfig  # noqa: E402
from train.data import PipelineConfig, class_weights, load_image, make_dataset  # noqa: E402
from train.files import load_split  # noqa: E402
from train.synthetic import SyntheticConfig, write_splits  # noqa: E402

SIZE = 24


@pytest.fixture(scope="module")
def train_files(tmp_path_factory):
    root = write_splits(tmp_path_factory.mktemp("data"), SyntheticConfig(per_class=10, size=32))
    return load_split(root, "train")


def _batches(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def test_eval_pipeline_is_the_preprocessing_module_in_file_order(train_files):
    images, labels = _batches(make_dataset(train_files, PipelineConfig(SIZE, batch_size=6)))
    assert images.shape == (20, SIZE, SIZE, 3) and images.dtype == np.float32
    assert labels.tolist() == [float(label) for label in train_files.labels]
    for index in (0, 7, 19):
        expected = preprocess_file(train_files.paths[index], PreprocessConfig(size=SIZE))
        np.testing.assert_array_equal(images[index], expected)


def _order(dataset) -> list[float]:
    """Each image's mean value: a fingerprint that shows the order of the images."""
    return _batches(dataset)[0].mean(axis=(1, 2, 3)).round(3).tolist()


def test_train_pipeline_shuffles_with_its_seed(train_files):
    config = PipelineConfig(SIZE, batch_size=5, seed=1)
    dataset = make_dataset(train_files, config, training=True)
    epoch1, epoch2 = _order(dataset), _order(dataset)
    assert sorted(epoch1) == sorted(_order(make_dataset(train_files, config)))
    assert epoch1 != epoch2  # reshuffled every epoch
    assert epoch1 == _order(make_dataset(train_files, config, training=True))  # seeded
    assert epoch1 != _order(make_dataset(train_files, replace(config, seed=2), training=True))
    labels = _batches(dataset)[1].tolist()
    assert labels != sorted(labels)  # the classes are mixed, not real-then-fake


def _grid_images() -> tf.Tensor:
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, SIZE, dtype=np.float32)
    images = np.stack([np.broadcast_to(smooth[:, None, None], (SIZE, SIZE, 3))] * 8).copy()
    images[:, 4:12, 4:12] = rng.choice([0.0, 255.0], (8, 8, 8, 3))  # sharp detail
    return tf.constant(images)


def test_augmentation_off_is_identity():
    images = _grid_images()
    out = build_augmenter(AugmentConfig.off(), seed=0)(images)
    np.testing.assert_array_equal(out.numpy(), images.numpy())


@pytest.mark.parametrize(
    "config",
    [
        replace(AugmentConfig.off(), rotation=0.2),
        replace(AugmentConfig.off(), zoom=0.3),
        replace(AugmentConfig.off(), translation=0.3),
        replace(AugmentConfig.off(), jpeg_quality=(30, 40), jpeg_probability=1.0),
        replace(AugmentConfig.off(), blur_sigma=(1.0, 1.5), blur_probability=1.0),
        AugmentConfig(),
    ],
    ids=["rotation", "zoom", "shift", "jpeg", "blur", "all"],
)
def test_each_augmentation_changes_images_and_stays_in_range(config):
    images = _grid_images()
    out = build_augmenter(config, seed=0)(images).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert np.abs(out - images.numpy()).mean() > 0.5


def test_blur_removes_detail_and_jpeg_matches_a_real_reencode():
    images = _grid_images()
    blur = replace(AugmentConfig.off(), blur_sigma=(1.5, 1.5), blur_probability=1.0)
    blurred = build_augmenter(blur)(images).numpy()
    detail = np.abs(np.diff(images.numpy(), axis=2)).mean()
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.6 * detail
    assert blurred.mean() == pytest.approx(images.numpy().mean(), rel=0.02)  # energy kept
    jpeg = replace(AugmentConfig.off(), jpeg_quality=(50, 50), jpeg_probability=1.0)
    compressed = build_augmenter(jpeg)(images).numpy()
    pillow = preprocess_bytes(
        encode_jpeg(images.numpy()[0].astype(np.uint8), 50), PreprocessConfig(size=SIZE)
    )
    assert np.abs(compressed[0] - pillow).mean() < 4.0  # libjpeg in TF vs Pillow, same quality


def test_augmentation_runs_inside_the_train_pipeline(train_files):
    augment = build_augmenter(AugmentConfig(), seed=0)
    config = PipelineConfig(SIZE, batch_size=4)
    plain = _batches(make_dataset(train_files, config, training=True))
    augmented = _batches(make_dataset(train_files, config, training=True, augment=augment))
    assert augmented[0].shape == plain[0].shape
    assert augmented[1].tolist() == plain[1].tolist()
    assert not np.array_equal(augmented[0], plain[0])
    assert augmented[0].min() >= 0 and augmented[0].max() <= 255


def test_transform_is_applied_before_preprocessing(train_files):
    path = train_files.paths[0]
    config = PreprocessConfig(size=SIZE)
    jpeg_q30 = load_image(path, config, lambda rgb: encode_jpeg(rgb, 30))
    with open(path, "rb") as handle:
        rgb = preprocess_bytes(handle.read(), PreprocessConfig(size=32)).astype(np.uint8)
    np.testing.assert_array_equal(jpeg_q30, preprocess_bytes(encode_jpeg(rgb, 30), config))
    assert not np.array_equal(jpeg_q30, load_image(path, config))


def test_class_weights_balance_the_classes(train_files):
    assert class_weights(train_files) == {0: 1.0, 1: 1.0}
    skewed = replace(train_files, labels=[0] * 15 + [1] * 5)
    weights = class_weights(skewed)
    assert weights[0] * 15 == pytest.approx(weights[1] * 5)
    assert weights[1] == pytest.approx(2.0)
