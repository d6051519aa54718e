"""Where the paths come from: files, folders (recursive), globs and list files, streamed."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.video import VIDEO_SUFFIXES

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
LIST_SUFFIXES = frozenset({".txt", ".csv", ".parquet"})
GLOB_CHARS = frozenset("*?[")
SCORED_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES  # what a folder walk picks up


def paths_in_list(path: Path) -> Iterator[str]:
    """The paths named in a ``.txt`` (one per line), ``.csv`` (column ``path`` or the first)
    or ``.parquet`` (column ``path``) file, read lazily."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(columns=["path"]):
            yield from (str(value) for value in batch.column(0).to_pylist())
        return
    with path.open(newline="") as handle:
        if path.suffix == ".txt":
            yield from (line.strip() for line in handle if line.strip())
            return
        reader = csv.reader(handle)
        header = next(reader, [])
        column = header.index("path") if "path" in header else 0
        if "path" not in header and header:
            yield header[column]
        yield from (row[column] for row in reader if row)


def expand(sources: Iterable[str]) -> Iterator[str]:
    """Every input path, in order: folders walked (sorted, image and video suffixes only), globs
    matched, list files read; anything else is taken as one file (a missing one becomes an error
    row)."""
    for source in sources:
        path = Path(source)
        if path.is_dir():
            yield from (
                str(found)
                for found in sorted(path.rglob("*"))
                if found.is_file() and found.suffix.lower() in SCORED_SUFFIXES
            )
        elif GLOB_CHARS & set(source):
            yield from sorted(glob.glob(source, recursive=True))
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            yield from paths_in_list(path)
        else:
            yield source
