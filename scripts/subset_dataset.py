"""Seeded per-class subset of a split dataset, as symlinks (for short training budgets).

    python scripts/subset_dataset.py --src data/combined --dst data/combined_small \\
        --train-per-class 1200 --val-per-class 200

Test is linked whole unless ``--test-per-class`` is given. The subset keeps each split's
files in that split, so the source's grouping (no near-duplicate across splits) still holds.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

SPLITS = ("train", "val", "test")
CLASSES = ("real", "fake")


def link_subset(src: Path, dst: Path, per_class: dict[str, int | None], seed: int) -> dict:
    """Symlink a seeded sample of each split/class of ``src`` into ``dst``; return counts."""
    counts: dict = {}
    for split in SPLITS:
        for name in CLASSES:
            files = sorted(p for p in (src / split / name).iterdir() if p.is_file())
            limit = per_class[split]
            if limit is not None and limit < len(files):
                files = sorted(random.Random(f"{seed}/{split}/{name}").sample(files, limit))
            target = dst / split / name
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                (target / path.name).symlink_to(path.resolve())
            counts.setdefault(split, {})[name] = len(files)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Seeded per-class subset of DATA/{train,val,test}/{real,fake} as symlinks.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--src", type=Path, required=True, help="split dataset folder")
    parser.add_argument("--dst", type=Path, required=True, help="new folder (must not exist)")
    parser.add_argument("--train-per-class", type=int, default=None, help="None: all")
    parser.add_argument("--val-per-class", type=int, default=None, help="None: all")
    parser.add_argument("--test-per-class", type=int, default=None, help="None: all")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = parser.parse_args(argv)
    if args.dst.exists():
        print(f"error: {args.dst} exists", file=sys.stderr)
        return 2
    if not all((args.src / split / name).is_dir() for split in SPLITS for name in CLASSES):
        print(f"error: {args.src} is not DATA/{{train,val,test}}/{{real,fake}}", file=sys.stderr)
        return 2
    limits = {"train": args.train_per_class, "val": args.val_per_class}
    limits["test"] = args.test_per_class
    print(link_subset(args.src, args.dst, limits, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
