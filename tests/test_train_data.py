"""Dataset folders: listing, clear errors, corrupt images, and the split command."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from train import split as split_cli
from train.files import DatasetError, list_split, load_split
from train.split import SplitConfig, plan_split, split_dataset, targets
from train.synthetic import SyntheticConfig, write_flat, write_splits

TINY = SyntheticConfig(per_class=6, size=16)


def _files_in(root: Path) -> dict[str, set[str]]:
    return {
        split: {p.relative_to(root / split).as_posix() for p in (root / split).rglob("*.png")}
        for split in ("train", "val", "test")
    }


def test_synthetic_split_layout_loads_with_labels(tmp_path):
    root = write_splits(tmp_path / "data", TINY)
    files = load_split(root, "train")
    assert files.counts() == {
        "real": 6,
        "fake": 6,
        "total": 12,
        "skipped_corrupt": 0,
        "ignored_non_image": 0,
    }
    for path, label in zip(files.paths, files.labels, strict=True):
        assert Path(path).parent.name == ("fake" if label else "real")


def test_missing_folder_and_missing_split_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        list_split(tmp_path / "nowhere", "train")
    root = write_splits(tmp_path / "data", TINY)
    for path in (root / "val").rglob("*"):
        if path.is_file():
            path.unlink()
    for folder in sorted((root / "val").rglob("*"), reverse=True):
        folder.rmdir()
    (root / "val").rmdir()
    with pytest.raises(DatasetError, match="no 'val' split folder"):
        list_split(root, "val")


def test_flat_folder_gets_a_hint_to_split(tmp_path):
    flat = write_flat(tmp_path / "flat", TINY)
    with pytest.raises(DatasetError, match="train.split"):
        list_split(flat, "train")


def test_empty_split_is_an_error(tmp_path):
    (tmp_path / "data" / "train" / "real").mkdir(parents=True)
    (tmp_path / "data" / "train" / "fake").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no usable images"):
        list_split(tmp_path / "data", "train")


def test_one_class_split_is_an_error(tmp_path):
    root = write_splits(tmp_path / "data", TINY)
    for path in (root / "test" / "fake").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="only one class.*'fake'"):
        list_split(root, "test")


def test_corrupt_images_are_skipped_counted_and_logged(tmp_path, caplog):
    root = write_splits(tmp_path / "data", TINY)
    good = (root / "train" / "fake" / "id0000_0.png").read_bytes()
    (root / "train" / "fake" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "train" / "real" / "garbage.jpg").write_bytes(b"this is not a jpeg")
    (root / "train" / "real" / "empty.png").write_bytes(b"")
    (root / "train" / "real" / "notes.txt").write_text("not an image")
    (root / "train" / "real" / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level("WARNING"):
        files = load_split(root, "train")
    counts = files.counts()
    assert counts["total"] == 12 and counts["skipped_corrupt"] == 3
    assert counts["ignored_non_image"] == 1
    skipped = {Path(entry["path"]).name for entry in files.skipped}
    assert skipped == {"truncated.png", "garbage.jpg", "empty.png"}
    assert all(entry["reason"] for entry in files.skipped)
    assert "skipping corrupt image" in caplog.text


def test_a_split_of_only_corrupt_images_is_an_error(tmp_path):
    root = write_splits(tmp_path / "data", TINY)
    for path in (root / "val" / "real").iterdir():
        path.write_bytes(b"broken")
    with pytest.raises(DatasetError, match="only one class"):
        load_split(root, "val")


def test_targets_sum_to_count():
    for count in range(0, 40):
        sizes = targets(count, (0.7, 0.15, 0.15))
        assert sizes.sum() == count and (sizes >= 0).all()
    assert targets(20, (0.7, 0.15, 0.15)).tolist() == [14, 3, 3]


def test_split_is_stratified_complete_and_seeded(tmp_path):
    flat = write_flat(tmp_path / "flat", SyntheticConfig(per_class=40, size=8))
    summary = split_dataset(flat, tmp_path / "a", SplitConfig(seed=3))
    assert summary["counts"] == {
        "train": {"real": 28, "fake": 28},
        "val": {"real": 6, "fake": 6},
        "test": {"real": 6, "fake": 6},
    }
    a = _files_in(tmp_path / "a")
    assert sum(len(v) for v in a.values()) == 80
    assert not (a["train"] & a["val"]) and not (a["train"] & a["test"])
    same = _files_in(Path(split_dataset(flat, tmp_path / "b", SplitConfig(seed=3))["dst"]))
    other = _files_in(Path(split_dataset(flat, tmp_path / "c", SplitConfig(seed=4))["dst"]))
    assert a == same and a != other
    manifest = json.loads((tmp_path / "a" / "split.json").read_text())
    assert len(manifest["files"]) == 80 and manifest["config"]["seed"] == 3
    assert load_split(tmp_path / "a", "val").counts()["total"] == 12


def test_grouped_split_keeps_identities_together(tmp_path):
    three_per_identity = SyntheticConfig(per_class=60, size=8, images_per_identity=3)
    flat = write_flat(tmp_path / "flat", three_per_identity)
    config = SplitConfig(ratios=(0.6, 0.2, 0.2), seed=1, group_pattern=r"^(id\d+)_")
    split_dataset(flat, tmp_path / "out", config)
    where: dict[str, set[str]] = {}
    for split, names in _files_in(tmp_path / "out").items():
        for name in names:
            identity = re.match(r"(id\d+)_", Path(name).name).group(1)
            where.setdefault(identity, set()).add(split)
    assert len(where) == 20  # id0000..id0019, shared by both classes
    assert all(len(splits) == 1 for splits in where.values())
    counts = Counter(split for splits in where.values() for split in splits)
    assert counts == {"train": 12, "val": 4, "test": 4}


def test_plan_without_groups_scatters_near_duplicates():
    paths = [(Path(f"id{i // 2:04d}_{i % 2}.png"), i % 2) for i in range(200)]
    plan = plan_split(paths, SplitConfig(seed=0))
    apart = [plan[i] != plan[i + 1] for i in range(0, 200, 2)]  # same id, other label
    assert any(apart)  # so it is the grouping that keeps identities together above


def test_split_refuses_bad_input(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        split_dataset(tmp_path / "missing", tmp_path / "out")
    write_flat(tmp_path / "one_class", TINY)
    for path in (tmp_path / "one_class" / "fake").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="fake has no images"):
        split_dataset(tmp_path / "one_class", tmp_path / "out")
    flat = write_flat(tmp_path / "flat", TINY)
    split_dataset(flat, tmp_path / "out")
    with pytest.raises(DatasetError, match="not empty"):
        split_dataset(flat, tmp_path / "out")
    with pytest.raises(ValueError, match="ratios"):
        split_dataset(flat, tmp_path / "out2", SplitConfig(ratios=(1.0, -0.5, 0.5)))


def test_split_cli_links_and_reports(tmp_path, capsys, caplog):
    flat = write_flat(tmp_path / "flat", TINY)
    argv = ["--src", str(flat), "--dst", str(tmp_path / "out"), "--link", "--seed", "2"]
    assert split_cli.main(argv) == 0
    counts = json.loads(capsys.readouterr().out)
    assert sum(sum(c.values()) for c in counts.values()) == 12
    linked = next((tmp_path / "out" / "train" / "real").iterdir())
    assert linked.stat().st_nlink == 2  # a hard link to the source file
    assert split_cli.main(["--src", str(tmp_path / "nope"), "--dst", str(tmp_path / "x")]) == 2
    assert "does not exist" in caplog.text


def test_split_cli_help_reads_well(capsys):
    with pytest.raises(SystemExit) as exit_info:
        split_cli.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out.lower()
    for word in ("--src", "--dst", "--ratios", "--group-pattern", "--link", "stratified"):
        assert word in text
