"""Split a flat ``SRC/{real,fake}/`` folder into ``DST/{train,val,test}/{real,fake}/``.

The split is stratified (each split gets the class balance of the whole), seeded, and
optionally grouped: with ``--group-pattern`` a regular expression picks a key out of each
file name (its first capture group, else the whole match), and all files with one key land
in the same split, across both classes. Use it so that frames of one video or photos of one
person never sit in both train and test. Files are copied, or hard-linked with ``--link``.
A ``split.json`` manifest (settings, counts, file -> split) is written next to the splits.

    python -m train.split --src data/flat --dst data/mine --ratios 0.7 0.15 0.15 \\
        --group-pattern '^(\\d+)_' --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.options import option, options_from, options_parser, parse_bool, parse_floats
from train.cli import run_command
from train.files import CLASS_FOLDERS, SPLITS, DatasetError, list_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitConfig:
    """How to split: ratios for train/val/test, seed, optional grouping, copy or hard link."""

    ratios: tuple[float, float, float] = option(
        (0.7, 0.15, 0.15), "split proportions", parse_floats, metavar="TRAIN,VAL,TEST"
    )
    seed: int = option(0, "random seed", int)
    group_pattern: str | None = option(
        None,
        "regex on the file name; files with the same key (capture group 1, else the whole "
        "match) stay in one split, e.g. '^(\\d+)_' for <identity>_<frame>.png",
        metavar="REGEX",
    )
    link: bool = option(False, "hard-link files instead of copying them", parse_bool)


def group_key(name: str, pattern: re.Pattern | None) -> str:
    """The group of a file name: regex capture group 1 (or whole match); no match -> itself."""
    if pattern is None:
        return name
    match = pattern.search(name)
    if match is None:
        return name
    return match.group(1) if pattern.groups else match.group(0)


def targets(count: int, ratios: tuple[float, ...]) -> np.ndarray:
    """Integer split sizes summing to ``count`` (largest remainder rounding)."""
    exact = np.asarray(ratios, dtype=np.float64) / sum(ratios) * count
    sizes = np.floor(exact).astype(int)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: count - sizes.sum()]] += 1
    return sizes


def plan_split(files: list[tuple[Path, int]], config: SplitConfig) -> list[int]:
    """Split index (0 train, 1 val, 2 test) for each ``(path, label)``.

    Groups are visited in a seeded random order (largest first) and each goes to the split
    whose per-class quota it fills best, so classes stay balanced and groups stay whole.
    """
    pattern = re.compile(config.group_pattern) if config.group_pattern else None
    members: dict[str, list[int]] = defaultdict(list)
    for index, (path, label) in enumerate(files):
        key = group_key(path.name, pattern) if pattern else f"{label}/{path}"
        members[key].append(index)
    labels = np.array([label for _, label in files], dtype=int)
    quota = np.stack([targets(int((labels == c).sum()), config.ratios) for c in (0, 1)], axis=1)
    filled = np.zeros_like(quota)
    keys = sorted(members)
    rng = np.random.default_rng(config.seed)
    keys = [keys[i] for i in rng.permutation(len(keys))]
    keys.sort(key=lambda k: -len(members[k]))  # stable: random order among equal sizes
    assignment = [0] * len(files)
    for key in keys:
        need = np.bincount(labels[members[key]], minlength=2)
        score = ((quota - filled) * need).sum(axis=1)
        split = int(np.argmax(score))
        filled[split] += need
        for index in members[key]:
            assignment[index] = split
    return assignment


def collect(src: Path) -> list[tuple[Path, int]]:
    """``(path, label)`` for every image in ``src/{real,fake}``; clear errors otherwise."""
    if not src.is_dir():
        raise DatasetError(f"source folder {src} does not exist (expected SRC/{{real,fake}}/)")
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(CLASS_FOLDERS):
        images = list_images(src / name)[0] if (src / name).is_dir() else []
        if not images:
            raise DatasetError(
                f"{src / name} has no images: a split needs both {CLASS_FOLDERS} folders filled"
            )
        files += [(path, label) for path in images]
    return files


def place(source: Path, target: Path, link: bool) -> None:
    """Copy (or hard link, falling back to a copy across file systems) one file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return
        except OSError as exc:
            log.warning("hard link failed (%s); copying %s instead", exc, source)
    shutil.copy2(source, target)


def split_dataset(src: str | Path, dst: str | Path, config: SplitConfig | None = None) -> dict:
    """Write the split layout under ``dst`` and ``dst/split.json``; return the summary."""
    config = config or SplitConfig()
    if len(config.ratios) != 3 or min(config.ratios) < 0 or sum(config.ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers, got {config.ratios}")
    src, dst = Path(src), Path(dst)
    files = collect(src)
    existing = [dst / s for s in SPLITS if (dst / s).exists() and any((dst / s).iterdir())]
    if existing:
        raise DatasetError(f"{existing[0]} already exists and is not empty; pick an empty --dst")
    assignment = plan_split(files, config)
    counts = {s: {c: 0 for c in CLASS_FOLDERS} for s in SPLITS}
    manifest = {}
    for (path, label), split_index in tqdm(
        list(zip(files, assignment, strict=True)), desc="splitting", unit="file", leave=False
    ):
        split, name = SPLITS[split_index], CLASS_FOLDERS[label]
        relative = path.relative_to(src / name)
        place(path, dst / split / name / relative, config.link)
        counts[split][name] += 1
        manifest[f"{name}/{relative.as_posix()}"] = split
    for split, per_class in counts.items():
        for name, count in per_class.items():
            if count == 0:
                log.warning("split %s has no %s images (too few files or groups?)", split, name)
    summary = {"src": str(src), "dst": str(dst), "config": asdict(config), "counts": counts}
    (dst / "split.json").write_text(json.dumps({**summary, "files": manifest}, indent=1))
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = options_parser(
        "python -m train.split",
        "Stratified, seeded train/val/test split of a flat SRC/{real,fake}/ folder\n"
        "into DST/{train,val,test}/{real,fake}/, the layout python -m train reads.\n"
        "Also writes DST/split.json (settings, counts, and which split each file went to).",
        SplitConfig,
        epilog="example:\n  python -m train.split --src data/flat --dst data/mine "
        "--group-pattern '^(\\d+)_'",
    )
    parser.add_argument("--src", required=True, help="flat folder with real/ and fake/ inside")
    parser.add_argument("--dst", required=True, help="output folder (must be empty or new)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: split_dataset(args.src, args.dst, options_from(SplitConfig, args)),
        lambda summary: [summary["counts"]],
        errors=(DatasetError, ValueError, re.error),
        log=log,
    )


if __name__ == "__main__":
    raise SystemExit(main())
