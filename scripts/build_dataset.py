"""Rebuild the real/fake face dataset from a public git snapshot (no network needed).

Reads images straight out of a git object store (a bare snapshot, or the ``.git`` of an
ordinary ``git clone``) of https://github.com/Rees451/faces-fake-vs-real, which holds

* ``yonsei``: a copy of "Real and Fake Face Detection" (Yonsei CIPLab, 1081 real / 960
  photoshopped fakes, 600x600 JPEG) -> ``data/faces/{train,val,test}/{real,fake}/``;
* ``lfw_faceswap``: LFW photos and FaceSwap (MarekKowalski) swaps between LFW faces,
  250x250 JPEG -> ``data/faces_cross/test/{real,fake}/`` (a different source and a
  different manipulation; never used for training).

Every blob is checked: Git LFS pointers and undecodable images (``core.preprocessing``)
are skipped and counted, exact duplicates (sha256) are dropped, and near-duplicates
(16x16 average hash within ``--near-dup-bits``, or a near-identical background ring) are
grouped so that a group never spans two splits. The split is stratified and seeded
(``train.split.plan_split``). Original bytes are copied unchanged. A ``manifest.json``
next to each output records per file: source repo, commit, path, sha256, split, label,
group, size, resolution and estimated JPEG quality, plus per-class statistics.

    python scripts/build_dataset.py --snapshot /work/.mirror/Rees451+faces-fake-vs-real/repo
    git clone https://github.com/Rees451/faces-fake-vs-real /tmp/rees && \\
        python scripts/build_dataset.py --snapshot /tmp/rees --rev 69c112d3
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import random
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from core.preprocessing import ImageError, decode_rgb, resize_rgb  # noqa: E402
from dataprep.gitsnapshot import GitSnapshot  # noqa: E402
from dataprep.imaging import average_hash, estimate_jpeg_quality  # noqa: E402
from dataprep.unionfind import UnionFind  # noqa: E402
from train.split import SplitConfig, plan_split  # noqa: E402

log = logging.getLogger("build_dataset")

CLASSES = ("real", "fake")  # index = label (core.decision.CLASS_NAMES order)
SPLITS = ("train", "val", "test")
LFS_MAGIC = b"version https://git-lfs"
BORDER_THUMB, BORDER_WIDTH = 32, 6  # thumbnail side and ring width for border_ring()
DEFAULT_SNAPSHOT = Path("/work/.mirror/Rees451+faces-fake-vs-real/repo")


@dataclass(frozen=True)
class Source:
    """One real/fake image collection inside a git repository."""

    name: str
    repo: str
    real_prefix: str
    fake_prefix: str
    role: str  # "main" (train/val/test) or "cross" (extra test set only)


SOURCES = (
    Source(
        "yonsei",
        "Rees451/faces-fake-vs-real",
        "data/raw/real_and_fake_face/real/",
        "data/raw/real_and_fake_face/fake/",
        "main",
    ),
    Source(
        "lfw_faceswap",
        "Rees451/faces-fake-vs-real",
        "data/raw/LFW_faceswap/real/",
        "data/raw/LFW_faceswap/fake/",
        "cross",
    ),
)


@dataclass(frozen=True)
class BuildConfig:
    """Where to read, where to write and how to split."""

    snapshot: Path = DEFAULT_SNAPSHOT
    rev: str = "HEAD"
    out: Path = Path("data/faces")
    cross_out: Path = Path("data/faces_cross")
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    hash_size: int = 16
    near_dup_bits: int = 12
    border_diff: float = 13.0
    cross_per_class: int = 1000
    combined_out: Path = Path("data/combined")
    combined_per_class: int = 2000
    overwrite: bool = False


@dataclass
class Item:
    """One accepted image and what we know about it."""

    source: str
    repo: str
    commit: str
    path: str
    label: int
    data: bytes = field(repr=False)
    sha256: str
    width: int
    height: int
    jpeg_quality: int | None
    ahash: np.ndarray = field(repr=False)
    border: np.ndarray = field(repr=False)
    group: int = -1
    split: str = ""
    file: str = ""


def border_ring(rgb: np.ndarray) -> np.ndarray:
    """Grey levels of the outer ring of a 32x32 thumbnail: background, hair, clothes.

    A face edit (the Yonsei fakes) leaves them alone, so an edited copy of a photo keeps
    its ring even where the whole-image hash moves.
    """
    grey = resize_rgb(rgb, BORDER_THUMB).astype(np.float32).mean(axis=2)
    inner = slice(BORDER_WIDTH, BORDER_THUMB - BORDER_WIDTH)
    mask = np.ones_like(grey, dtype=bool)
    mask[inner, inner] = False
    return grey[mask]


def inspect(data: bytes, hash_size: int) -> tuple[int, int, int | None, np.ndarray, np.ndarray]:
    """Validate via core.preprocessing; header size, JPEG quality, average hash, border ring."""
    rgb = decode_rgb(data)  # raises ImageError for anything the model could not read
    header = Image.open(io.BytesIO(data))  # header only: original size and quant tables
    width, height = header.size
    quality = estimate_jpeg_quality(header)
    return width, height, quality, average_hash(rgb, hash_size), border_ring(rgb)


def load_items(
    snapshot: GitSnapshot,
    source: Source,
    config: BuildConfig,
    skipped: Counter,
    seen: dict[str, str],
    limit_per_class: int | None = None,
) -> list[Item]:
    """Read, validate and de-duplicate one source's images (optionally a seeded sample)."""
    items: list[Item] = []
    for label, prefix in enumerate((source.real_prefix, source.fake_prefix)):
        blobs = snapshot.list_blobs(prefix)
        if not blobs:
            raise SystemExit(f"error: no files under {prefix} at {snapshot.commit}")
        if limit_per_class is not None:
            random.Random(f"{config.seed}/{source.name}/{label}").shuffle(blobs)
        accepted = 0
        desc = f"{source.name}/{CLASSES[label]}"
        for oid, path in tqdm(blobs, desc=desc, unit="img", leave=False):
            if limit_per_class is not None and accepted >= limit_per_class:
                break
            data = snapshot.read(oid)
            if data is None:
                skipped["missing_from_snapshot"] += 1
                continue
            if data.startswith(LFS_MAGIC):
                skipped["lfs_pointer"] += 1
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                skipped["exact_duplicate"] += 1
                log.info("exact duplicate %s of %s dropped", path, seen[digest])
                continue
            try:
                width, height, quality, ahash, border = inspect(data, config.hash_size)
            except ImageError as exc:
                skipped["undecodable"] += 1
                log.warning("skipping %s: %s", path, exc)
                continue
            seen[digest] = path
            accepted += 1
            items.append(
                Item(
                    source.name, source.repo, snapshot.commit, path, label, data, digest,
                    width, height, quality, ahash, border,
                )
            )  # fmt: skip
    return items


def near_duplicate_groups(items: list[Item], max_bits: int, max_border_diff: float) -> list[int]:
    """Group id per item: connected components of the near-duplicate relation.

    Two images are near-duplicates when their average hashes differ in <= ``max_bits`` bits
    or their border rings differ by <= ``max_border_diff`` grey levels on average.
    """
    sets = UnionFind(len(items))
    if items:
        bits = np.stack([item.ahash for item in items])
        rings = np.stack([item.border for item in items])
        for i in range(len(items) - 1):
            distance = (bits[i + 1 :] != bits[i]).sum(axis=1)
            border = np.abs(rings[i + 1 :] - rings[i]).mean(axis=1)
            for j in np.nonzero((distance <= max_bits) | (border <= max_border_diff))[0]:
                sets.union(i, i + 1 + int(j))
    return [sets.find(i) for i in range(len(items))]


def class_stats(items: list[Item]) -> dict:
    """Per class: count, file size, resolution and JPEG quality (shortcut-risk check)."""
    stats = {}
    for label, name in enumerate(CLASSES):
        chosen = [item for item in items if item.label == label]
        if not chosen:
            continue
        sizes = np.array([len(item.data) for item in chosen], dtype=np.float64)
        qualities = [item.jpeg_quality for item in chosen if item.jpeg_quality is not None]
        resolutions = Counter(f"{item.width}x{item.height}" for item in chosen)
        stats[name] = {
            "count": len(chosen),
            "bytes_mean": round(float(sizes.mean())),
            "bytes_median": round(float(np.median(sizes))),
            "bytes_per_pixel_mean": round(
                float(np.mean([len(i.data) / (i.width * i.height) for i in chosen])), 4
            ),
            "resolutions_top": dict(resolutions.most_common(5)),
            "jpeg_quality_mean": round(float(np.mean(qualities)), 1) if qualities else None,
            "jpeg_quality_top": dict(Counter(qualities).most_common(5)),
        }
    return stats


def prepare_output(folder: Path, subfolders: tuple[str, ...], overwrite: bool) -> None:
    """Refuse to mix with an earlier build unless ``overwrite``; then clear only our outputs."""
    ours = [folder / name for name in (*subfolders, "manifest.json")]
    present = [path for path in ours if path.exists()]
    if present and not overwrite:
        raise SystemExit(f"error: {present[0]} exists; pass --overwrite to rebuild")
    for path in present:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def write_items(items: list[Item], folder: Path) -> None:
    """Write original bytes to ``folder/<split>/<class>/<source>__<name>``."""
    for item in tqdm(items, desc=f"writing {folder}", unit="img", leave=False):
        target = (
            folder / item.split / CLASSES[item.label] / f"{item.source}__{Path(item.path).name}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
        item.file = target.relative_to(folder).as_posix()


def counts(items: list[Item]) -> dict:
    table: dict = defaultdict(lambda: {name: 0 for name in CLASSES})
    for item in items:
        table[item.split][CLASSES[item.label]] += 1
    return {split: table[split] for split in SPLITS if split in table}


def write_manifest(folder: Path, items: list[Item], extra: dict) -> None:
    files = [
        {
            "file": item.file, "split": item.split, "label": CLASSES[item.label],
            "source": item.source, "repo": f"https://github.com/{item.repo}",
            "commit": item.commit, "path": item.path, "sha256": item.sha256,
            "group": item.group, "bytes": len(item.data), "width": item.width,
            "height": item.height, "jpeg_quality_est": item.jpeg_quality,
        }
        for item in items
    ]  # fmt: skip
    manifest = {"created_by": "scripts/build_dataset.py", **extra, "counts": counts(items)}
    manifest["files"] = files
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def assign_splits(items: list[Item], config: BuildConfig, group_offset: int = 0) -> dict:
    """Group near-duplicates and give every item a split (groups stay whole); group stats."""
    groups = near_duplicate_groups(items, config.near_dup_bits, config.border_diff)
    sizes = Counter(groups)
    for item, group in zip(items, groups, strict=True):
        item.group = group + group_offset
    split_config = SplitConfig(ratios=config.ratios, seed=config.seed, group_pattern=r"^g(\d+)__")
    keyed = [(Path(f"g{item.group}__{Path(item.path).name}"), item.label) for item in items]
    for item, split_index in zip(items, plan_split(keyed, split_config), strict=True):
        item.split = SPLITS[split_index]
    by_group: dict[int, set[str]] = defaultdict(set)
    for item in items:
        by_group[item.group].add(item.split)
    return {
        "groups_with_2_or_more": sum(1 for n in sizes.values() if n > 1),
        "images_in_such_groups": sum(n for n in sizes.values() if n > 1),
        "largest": max(sizes.values(), default=0),
        "groups_crossing_splits": sum(1 for splits in by_group.values() if len(splits) > 1),
    }


def load_both_sources(
    config: BuildConfig, second_per_class: int | None
) -> tuple[str, list[Item], Counter, list[Item], Counter]:
    """The snapshot's commit, then items and skip counts of the main source and of the
    second source (sampled to ``second_per_class`` per class), de-duplicated across both."""
    snapshot = GitSnapshot(config.snapshot, config.rev)
    main_source, second_source = SOURCES
    main_skipped: Counter = Counter()
    second_skipped: Counter = Counter()
    seen: dict[str, str] = {}
    try:
        main = load_items(snapshot, main_source, config, main_skipped, seen)
        second = load_items(snapshot, second_source, config, second_skipped, seen, second_per_class)
    finally:
        snapshot.close()
    return snapshot.commit, main, main_skipped, second, second_skipped


def build_combined(config: BuildConfig) -> dict:
    """``data/combined``: the Yonsei split unchanged + a seeded LFW/FaceSwap sample split alike.

    The LFW/FaceSwap sample (``combined_per_class`` per class, the same seeded order as the
    cross set, so it contains every ``data/faces_cross`` image) gets its own near-duplicate
    grouping and a grouped, stratified 70/15/15 split. Each manifest row names its source,
    so results can be reported per source.
    """
    main_source, extra_source = SOURCES
    commit, main, skipped, extra, extra_skipped = load_both_sources(
        config, config.combined_per_class
    )
    main_groups = assign_splits(main, config)
    offset = 1 + max((item.group for item in main), default=0)
    extra_groups = assign_splits(extra, config, group_offset=offset)
    main_bits = np.stack([item.ahash for item in main])
    extra_near_main = sum(
        int(((main_bits != item.ahash).sum(axis=1) <= config.near_dup_bits).any()) for item in extra
    )
    items = main + extra
    settings = {key: str(value) for key, value in asdict(config).items()}
    summary = {
        "sources": [asdict(main_source), asdict(extra_source)],
        "commit": commit,
        "skipped": {main_source.name: dict(skipped), extra_source.name: dict(extra_skipped)},
        "near_duplicate_groups": {main_source.name: main_groups, extra_source.name: extra_groups},
        "lfw_images_hash_near_duplicate_of_a_yonsei_image": extra_near_main,
        "stats": {
            source.name: {
                split: class_stats(
                    [i for i in items if i.split == split and i.source == source.name]
                )
                for split in SPLITS
            }
            for source in (main_source, extra_source)
        },
        "counts_by_source": {
            main_source.name: counts(main),
            extra_source.name: counts(extra),
        },
    }
    prepare_output(config.combined_out, SPLITS, config.overwrite)
    write_items(items, config.combined_out)
    write_manifest(config.combined_out, items, summary | {"settings": settings})
    summary["counts"] = counts(items)
    return summary


def build(config: BuildConfig) -> dict:
    """Build the main split and the cross-dataset test set; return a summary."""
    main_source, cross_source = SOURCES
    commit, main, skipped, cross, cross_skipped = load_both_sources(config, config.cross_per_class)

    groups = near_duplicate_groups(main, config.near_dup_bits, config.border_diff)
    sizes = Counter(groups)
    for item, group in zip(main, groups, strict=True):
        item.group = group
    split_config = SplitConfig(ratios=config.ratios, seed=config.seed, group_pattern=r"^g(\d+)__")
    keyed = [(Path(f"g{item.group}__{Path(item.path).name}"), item.label) for item in main]
    for item, split_index in zip(main, plan_split(keyed, split_config), strict=True):
        item.split = SPLITS[split_index]
    for item in cross:
        item.split = "test"

    cross_bits = np.stack([item.ahash for item in cross]) if cross else np.zeros((0, 1))
    cross_near_main = sum(
        int(((cross_bits != item.ahash).sum(axis=1) <= config.near_dup_bits).any()) for item in main
    )
    settings = {key: str(value) for key, value in asdict(config).items()}
    summary = {
        "settings": settings,
        "main": {
            "source": asdict(main_source),
            "commit": commit,
            "skipped": dict(skipped),
            "near_duplicate_groups": {
                "groups_with_2_or_more": sum(1 for n in sizes.values() if n > 1),
                "images_in_such_groups": sum(n for n in sizes.values() if n > 1),
                "largest": max(sizes.values(), default=0),
            },
            "stats": {
                split: class_stats([i for i in main if i.split == split]) for split in SPLITS
            },
            "stats_all": class_stats(main),
        },
        "cross": {
            "source": asdict(cross_source),
            "commit": commit,
            "skipped": dict(cross_skipped),
            "main_images_near_duplicate_of_a_cross_image": cross_near_main,
            "stats_all": class_stats(cross),
        },
    }
    prepare_output(config.out, SPLITS, config.overwrite)
    prepare_output(config.cross_out, ("test",), config.overwrite)
    write_items(main, config.out)
    write_items(cross, config.cross_out)
    write_manifest(config.out, main, summary["main"] | {"settings": settings})
    write_manifest(config.cross_out, cross, summary["cross"] | {"settings": settings})
    summary["main"]["counts"] = counts(main)
    summary["cross"]["counts"] = counts(cross)
    return summary


def parse_args(argv: list[str] | None = None) -> tuple[BuildConfig, bool]:
    parser = argparse.ArgumentParser(
        description=(
            "Rebuild data/faces (train/val/test from the Yonsei 'Real and Fake Face Detection' "
            "set) and data/faces_cross (test only, LFW + FaceSwap) from a git snapshot or clone "
            "of github.com/Rees451/faces-fake-vs-real. Offline; copies original JPEG bytes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=DEFAULT_SNAPSHOT,
        help="bare git dir or clone of Rees451/faces-fake-vs-real",
    )
    parser.add_argument("--rev", default="HEAD", help="commit to read (DATA.md pins one)")
    parser.add_argument("--out", type=Path, default=Path("data/faces"), help="main dataset")
    parser.add_argument(
        "--cross-out", type=Path, default=Path("data/faces_cross"), help="cross-dataset test set"
    )
    parser.add_argument(
        "--ratios", type=float, nargs=3, default=(0.7, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST")
    )
    parser.add_argument("--seed", type=int, default=0, help="split and sampling seed")
    parser.add_argument(
        "--hash-size", type=int, default=16, help="average-hash thumbnail side (bits = side^2)"
    )
    parser.add_argument(
        "--near-dup-bits",
        type=int,
        default=12,
        help="hashes differing in at most this many bits are near-duplicates (same split)",
    )
    parser.add_argument(
        "--border-diff",
        type=float,
        default=13.0,
        help="images whose 32x32 border rings differ by at most this mean grey level are "
        "near-duplicates too (catches edited copies of one photo)",
    )
    parser.add_argument(
        "--cross-per-class", type=int, default=1000, help="seeded sample size per class"
    )
    parser.add_argument(
        "--combined",
        action="store_true",
        help="build only COMBINED_OUT instead: the Yonsei split plus a grouped 70/15/15 split "
        "of a seeded LFW/FaceSwap sample (see DATA.md)",
    )
    parser.add_argument(
        "--combined-out", type=Path, default=Path("data/combined"), help="combined dataset"
    )
    parser.add_argument(
        "--combined-per-class",
        type=int,
        default=2000,
        help="LFW/FaceSwap images per class in the combined dataset",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier build")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if args.hash_size < 2 or args.near_dup_bits < 0 or args.cross_per_class < 1:
        parser.error("--hash-size >= 2, --near-dup-bits >= 0 and --cross-per-class >= 1")
    if args.combined_per_class < 1:
        parser.error("--combined-per-class must be >= 1")
    config = BuildConfig(
        snapshot=args.snapshot, rev=args.rev, out=args.out, cross_out=args.cross_out,
        ratios=tuple(args.ratios), seed=args.seed, hash_size=args.hash_size,
        near_dup_bits=args.near_dup_bits, border_diff=args.border_diff,
        cross_per_class=args.cross_per_class, combined_out=args.combined_out,
        combined_per_class=args.combined_per_class, overwrite=args.overwrite,
    )  # fmt: skip
    return config, args.combined


def main(argv: list[str] | None = None) -> None:
    config, combined = parse_args(argv)
    if combined:
        summary = build_combined(config)
        print(f"combined: {config.combined_out} @ {summary['commit'][:12]}")
        print(f"  counts: {json.dumps(summary['counts'])}")
        print(f"  by source: {json.dumps(summary['counts_by_source'])}")
        print(f"  skipped: {json.dumps(summary['skipped'])}")
        print(f"  near-duplicate groups: {json.dumps(summary['near_duplicate_groups'])}")
        near = summary["lfw_images_hash_near_duplicate_of_a_yonsei_image"]
        print(f"  LFW images near a Yonsei hash: {near}")
        return
    summary = build(config)
    for part in ("main", "cross"):
        report = summary[part]
        print(f"{part}: {report['source']['name']} @ {report['commit'][:12]}")
        print(f"  counts: {json.dumps(report['counts'])}")
        print(f"  skipped: {json.dumps(report['skipped'])}")
        print(f"  stats: {json.dumps(report['stats_all'])}")
    print(f"  near-duplicate groups: {json.dumps(summary['main']['near_duplicate_groups'])}")


if __name__ == "__main__":
    main()
