"""Finding and checking the image files of a dataset folder (no TensorFlow here).

Layout: ``DATA/{train,val,test}/{real,fake}/**/*.<image extension>``; labels
``real`` -> 0, ``fake`` -> 1 (``core.decision.CLASS_NAMES``). Sub-folders inside a class
folder are allowed. Every image is decoded once up front by ``core.preprocessing``: the
corrupt ones are skipped with a logged warning and counted, so training never crashes on
them halfway through an epoch.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from core.preprocessing import DEFAULT_MAX_PIXELS, ImageError, decode_rgb

log = logging.getLogger(__name__)

CLASS_FOLDERS = ("real", "fake")  # index = label
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif"}
)
LAYOUT_HINT = "expected DATA/{train,val,test}/{real,fake}/<images>"


class DatasetError(ValueError):
    """A dataset folder that cannot be trained or evaluated on; the message says why."""


@dataclass
class SplitFiles:
    """The usable images of one split, plus what was left out and why."""

    name: str
    folder: str
    paths: list[str]
    labels: list[int]
    skipped: list[dict] = field(default_factory=list)  # corrupt: {"path", "reason"}
    ignored: list[str] = field(default_factory=list)  # not an image extension

    def counts(self) -> dict:
        """Image counts per class, total, and how many files were skipped / ignored."""
        real = sum(1 for label in self.labels if label == 0)
        return {
            "real": real,
            "fake": len(self.labels) - real,
            "total": len(self.labels),
            "skipped_corrupt": len(self.skipped),
            "ignored_non_image": len(self.ignored),
        }


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (recursive, sorted) and the other, ignored files."""
    images, others = [], []
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if hidden or not path.is_file():
            continue
        (images if path.suffix.lower() in IMAGE_EXTENSIONS else others).append(path)
    return images, others


def find_split(data_dir: str | Path, split: str) -> Path:
    """The folder of ``split``, or a :class:`DatasetError` explaining what is missing."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist ({LAYOUT_HINT})")
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        hint = ""
        if set(CLASS_FOLDERS) <= set(found):
            hint = "; this looks like a flat real/fake folder: see python -m train.split --help"
        raise DatasetError(
            f"dataset {root} has no '{split}' split folder (found {found}; {LAYOUT_HINT}){hint}"
        )
    return folder


def list_split(data_dir: str | Path, split: str) -> SplitFiles:
    """All image files of one split with their labels (not yet checked for corruption)."""
    folder = find_split(data_dir, split)
    paths: list[str] = []
    labels: list[int] = []
    ignored: list[str] = []
    for label, name in enumerate(CLASS_FOLDERS):
        images, others = list_images(folder / name) if (folder / name).is_dir() else ([], [])
        paths += [str(p) for p in images]
        labels += [label] * len(images)
        ignored += [str(p) for p in others]
    if ignored:
        log.warning("%s: ignoring %d non-image files, e.g. %s", split, len(ignored), ignored[0])
    files = SplitFiles(split, str(folder), paths, labels, ignored=ignored)
    check_split(files)
    return files


def check_split(files: SplitFiles) -> None:
    """Raise :class:`DatasetError` for an empty split or one with a single class."""
    counts = files.counts()
    folder = Path(files.folder)
    if counts["total"] == 0:
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        corrupt = f" ({counts['skipped_corrupt']} corrupt files skipped)" if files.skipped else ""
        raise DatasetError(
            f"split '{files.name}' at {folder} has no usable images{corrupt}; "
            f"found entries {found[:10]}; {LAYOUT_HINT}"
        )
    for label, name in enumerate(CLASS_FOLDERS):
        if counts[name] == 0:
            other = CLASS_FOLDERS[1 - label]
            raise DatasetError(
                f"split '{files.name}' at {folder} has only one class: {counts[other]} '{other}' "
                f"images and no usable '{name}' images in {folder / name}; "
                "a binary detector needs both"
            )


def check_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """``None`` when ``path`` decodes with ``core.preprocessing``, else the reason it does not."""
    try:
        with open(path, "rb") as handle:
            decode_rgb(handle.read(), max_pixels)
    except ImageError as exc:
        return str(exc)
    except OSError as exc:
        return f"unreadable file: {exc}"
    return None


def drop_corrupt(
    files: SplitFiles, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = 4
) -> SplitFiles:
    """Decode every image once; return the split without the corrupt ones (counted, logged)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            tqdm(
                pool.map(lambda p: check_image(p, max_pixels), files.paths),
                total=len(files.paths),
                desc=f"checking {files.name}",
                unit="img",
                leave=False,
            )
        )
    paths, labels, skipped = [], [], list(files.skipped)
    for path, label, reason in zip(files.paths, files.labels, results, strict=True):
        if reason is None:
            paths.append(path)
            labels.append(label)
        else:
            log.warning("skipping corrupt image %s: %s", path, reason)
            skipped.append({"path": path, "reason": reason})
    checked = SplitFiles(files.name, files.folder, paths, labels, skipped, files.ignored)
    check_split(checked)
    return checked


def load_split(
    data_dir: str | Path, split: str, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = 4
) -> SplitFiles:
    """List one split and drop its corrupt images: the files a pipeline can safely read."""
    return drop_corrupt(list_split(data_dir, split), max_pixels, workers)


def dataset_alignment(data_dir: str | Path) -> str | None:
    """The face alignment template the dataset's crops were cut with (``dataprep build
    --align``, recorded in ``manifest.json``); None for plain face crops or no manifest."""
    import json

    manifest = Path(data_dir) / "manifest.json"
    if not manifest.exists():
        return None
    align = json.loads(manifest.read_text()).get("settings", {}).get("align")
    return None if align in (None, "", "None") else str(align)
