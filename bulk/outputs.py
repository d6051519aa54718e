"""Result files by extension (.csv, .jsonl, .parquet), appended batch by batch so a stopped
job keeps what it wrote, and read back to resume. A video's per-frame results go to their own
CSV file under ``<out>.frames/`` (named in the row's ``frames_file``)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

COLUMNS = ("path", "sha256", "label", "probability_fake", "confidence", "model", "version",
           "error_code", "error_message", "evidence", "frames", "frames_file", "face",
           "faces")  # fmt: skip
FRAME_COLUMNS = ("index", "time_s", "probability_fake", "face_top", "face_bottom", "face_left",
                 "face_right")  # fmt: skip
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def flat(row: dict) -> dict:
    """``row`` with every column, its evidence list, face and faces as JSON text (CSV and
    Parquet cells)."""
    flat_row = {key: row.get(key) for key in COLUMNS}
    for key in ("evidence", "face", "faces"):
        flat_row[key] = None if row.get(key) is None else json.dumps(row[key])
    return flat_row


def output_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"output {path} must end in one of {', '.join(FORMATS)} (the format follows it)"
        ) from None


def done_paths(path: Path) -> set[str]:
    """Paths already in the output (empty if there is none yet)."""
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    kind = output_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return {str(v) for v in pq.read_table(path, columns=["path"]).column(0).to_pylist()}
    with path.open(newline="") as handle:
        if kind == "csv":
            return {row["path"] for row in csv.DictReader(handle)}
        done = set()
        for line in handle:
            try:
                done.add(json.loads(line)["path"])
            except (ValueError, KeyError):  # a line cut by a crash: scored again
                continue
        return done


def check_resumable(path: Path) -> None:
    """A CSV being resumed must have today's columns: appending rows of another layout would
    put values under the wrong heading (Parquet files are carried over column by column)."""
    if output_format(path) != "csv" or not path.is_file() or path.stat().st_size == 0:
        return
    with path.open(newline="") as handle:
        header = tuple(next(csv.reader(handle), ()))
    if header != COLUMNS:
        raise ValueError(
            f"{path} has the columns {', '.join(header)}; this version writes "
            f"{', '.join(COLUMNS)}: write to a new --out (or convert the old file)"
        )


class ResultWriter:
    """Appends rows to CSV / JSON Lines directly, to Parquet as one row group per batch (an
    existing Parquet file is carried over into the new one first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = output_format(path)
        self._parquet = None
        if self.kind == "parquet":
            self._open_parquet()

    def _open_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._schema = pa.schema(
            [(name, pa.string()) for name in ("path", "sha256", "label")]
            + [("probability_fake", pa.float64()), ("confidence", pa.float64())]
            + [("model", pa.string()), ("version", pa.int64())]
            + [("error_code", pa.string()), ("error_message", pa.string())]
            + [("evidence", pa.string())]  # JSON list of findings
            + [("frames", pa.int64()), ("frames_file", pa.string())]
            + [("face", pa.string())]  # JSON: box, landmarks, score, image size
            + [("faces", pa.string())]  # JSON: every face judged, each with its verdict
        )
        previous = pq.read_table(self.path) if self.path.is_file() else None
        partial = self.path.with_name(self.path.name + ".partial")
        self._parquet = pq.ParquetWriter(partial, self._schema)
        self._partial = partial
        if previous is not None:
            for name in set(self._schema.names) - set(previous.column_names):  # an older file
                column = pa.nulls(len(previous), self._schema.field(name).type)
                previous = previous.append_column(name, column)
            self._parquet.write_table(previous.select(self._schema.names).cast(self._schema))

    def frames_folder(self) -> Path:
        return self.path.with_name(self.path.name + ".frames")

    def _write_frames(self, row: dict) -> None:
        """A video's per-frame results into ``<out>.frames/<stem>-<sha256 prefix>.csv``."""
        frames = row.pop("frame_results")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(row["path"]).stem)[:80]
        target = self.frames_folder() / f"{stem}-{row['sha256'][:12]}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(FRAME_COLUMNS)
            for frame in frames:
                box = frame.get("face_box") or {}
                edges = [box.get(edge) for edge in ("top", "bottom", "left", "right")]
                scores = [frame["index"], frame["time_s"], frame["probability_fake"]]
                writer.writerow([*scores, *edges])
        row["frames_file"] = str(target)

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        for row in rows:
            if row.get("frame_results") is not None:
                self._write_frames(row)
        if self.kind == "parquet":
            import pyarrow as pa

            table = pa.Table.from_pylist([flat(row) for row in rows], schema=self._schema)
            self._parquet.write_table(table)
            return
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as handle:
            if self.kind == "csv":
                writer = csv.DictWriter(handle, COLUMNS, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerows(flat(row) for row in rows)
            else:
                handle.writelines(json.dumps({k: r.get(k) for k in COLUMNS}) + "\n" for r in rows)

    def close(self) -> None:
        """Parquet: finish the file and move it into place (CSV / JSONL need nothing)."""
        if self._parquet is not None:
            self._parquet.close()
            self._partial.replace(self.path)
            self._parquet = None
