"""``python -m bulk`` (or ``dfd-score``): score every image and video in files, folders, globs
or path lists into one CSV / JSON Lines / Parquet file; re-running with the same output
resumes."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from bulk.engines import HttpSettings, http_engine, local_engine
from bulk.inputs import expand
from bulk.outputs import ResultWriter, check_resumable, done_paths
from bulk.scorer import ModelChoice
from core.options import (
    add_options,
    check_at_least,
    check_positive,
    option,
    options_from,
    parse_bool,
    parse_optional_path,
    parse_optional_str,
)
from core.provenance import EvidenceConfig
from core.provenance.reader import load_trust_anchors
from core.video import DEFAULT_FRAMES, Sampling, VideoLimits

ENGINES = ("local", "http", "ray")
EPILOG = """\
examples:
  python -m bulk photos/ --out scores.csv                  # every image under photos/
  python -m bulk 'shots/**/*.jpg' list.txt --out scores.parquet --model lite0
  python -m bulk photos/ --out scores.jsonl --engine http --url http://127.0.0.1:8000
  python -m bulk photos/ --out scores.csv --engine ray --ray-address auto
  python -m bulk clips/ --out videos.csv --video-fps 2    # every clip, two frames a second

Inputs: files, folders (recursive, image and video files only), globs, or .txt / .csv /
.parquet files listing paths. The output format follows its extension. Rows: path, sha256,
label, probability_fake, confidence, model, version, error_code, error_message, evidence,
frames, frames_file (a file that cannot be scored gets an error instead of a result; the job
goes on; evidence: the provenance findings of docs/CONTRACTS.md as a JSON list).
A video (.mp4 .m4v .mov .webm .mkv .avi) gets one row with its verdict (mean of the top
quarter of its frame probabilities, as POST /v1/predict/video) and the number of frames
scored; its per-frame results go to <out>.frames/<name>-<sha256 prefix>.csv (frames_file).
Re-running with the same --out skips the paths already in it.
"""


def batched(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(paths)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass(frozen=True)
class BulkConfig:
    """One scoring job: where rows go, which engine scores, and how (the model and how it
    reads files: :class:`ModelChoice`, built from its own flags)."""

    out: Path = option(help="results: .csv, .jsonl, .parquet", parse=Path)
    engine: str = option("local", "where the files are scored", choices=ENGINES)
    batch_size: int = option(32, "files per batch", int)
    workers: int = option(0, "local/ray: scoring processes (0: one per core)", int)
    url: str | None = option(None, "http: the server's base URL", parse_optional_str)
    concurrency: int = option(HttpSettings.concurrency, "http: requests at once", int)
    ray_address: str | None = option(
        None, "ray: join this cluster (default: start locally)", parse_optional_str
    )
    evidence: bool = option(True, "local/ray: the evidence column", parse_bool)
    c2pa_trust_anchors: Path | None = option(
        None, "local/ray: PEM file of C2PA signers to trust", parse_optional_path
    )
    video_max_frames: int = option(
        VideoLimits.max_frames, "most frames sampled from one video (more: an error row)", int
    )
    count: bool = option(True, "count the inputs first (for the ETA)", parse_bool)
    progress: bool = option(True, "progress bar", parse_bool)
    choice: ModelChoice = field(default_factory=ModelChoice)
    inputs: tuple[str, ...] = ()  # files, folders, globs or path lists

    def __post_init__(self) -> None:
        check_at_least(self, 1, "batch_size", "concurrency", "video_max_frames")
        check_at_least(self, 0, "workers")


@dataclass(frozen=True)
class VideoSampling:
    """How many frames of a video are scored: a count or a rate (one of them)."""

    video_frames: int | None = option(
        None, f"frames per video, evenly (default {DEFAULT_FRAMES})", int
    )
    video_fps: float | None = option(None, "or: frames sampled per second of video", float)

    def __post_init__(self) -> None:
        check_at_least(self, 1, "video_frames")
        check_positive(self, "video_fps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bulk",
        description="Score many images with a model of the repository (or a running server).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="files, folders, globs or path lists")
    add_options(parser, ModelChoice)
    add_options(parser, BulkConfig)
    add_options(parser.add_mutually_exclusive_group(), VideoSampling)
    return parser


def video_settings(flags: VideoSampling, max_frames: int) -> tuple[Sampling, VideoLimits]:
    """How videos are sampled, from the flags; SystemExit with the reason when out of range."""
    try:
        limits = VideoLimits(max_frames=max_frames)
        if flags.video_fps is not None:
            return Sampling(frames=None, fps=flags.video_fps), limits
        sampling = Sampling(flags.video_frames or DEFAULT_FRAMES)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if sampling.frames > limits.max_frames:
        raise SystemExit(f"error: --video-frames is over --video-max-frames ({limits.max_frames})")
    return sampling, limits


def job_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> BulkConfig:
    """The job from the command line; a value that does not parse exits with status 2."""
    args = parser.parse_args(argv)
    try:
        config = options_from(BulkConfig, args, inputs=tuple(args.inputs))
        sampling, limits = video_settings(
            options_from(VideoSampling, args), config.video_max_frames
        )
        evidence = EvidenceConfig(trust_anchors=config.c2pa_trust_anchors)
        choice = options_from(
            ModelChoice, args, evidence=evidence if config.evidence else None,
            video_sampling=sampling, video_limits=limits,
        )  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    return replace(config, choice=choice)


def engine_rows(config: BulkConfig, batches: Iterable[list[str]]) -> Iterator[list[dict]]:
    import os

    workers = config.workers or os.cpu_count() or 1
    choice = config.choice
    if config.engine == "local":
        return local_engine(batches, choice, workers)
    if config.engine == "http":
        if not config.url:
            raise SystemExit("error: --engine http needs --url")
        settings = HttpSettings(
            config.url, config.concurrency, model=choice.name, version=choice.version,
            video_sampling=choice.video_sampling,
        )  # fmt: skip
        return http_engine(batches, settings)
    from bulk.ray_engine import ray_engine

    return ray_engine(batches, choice, workers, config.ray_address, config.batch_size)


def summary_text(counts: Counter, elapsed: float) -> str:
    failed = {key[6:]: n for key, n in counts.items() if key.startswith("error:")}
    scored = counts["FAKE"] + counts["REAL"]
    lines = [
        f"scored {scored} ({counts['FAKE']} FAKE, {counts['REAL']} REAL), failed "
        f"{sum(failed.values())}, skipped (already in the output) {counts['skipped']}, "
        f"{elapsed:.1f} s ({scored / elapsed if elapsed else 0:.1f} files/s)",
    ]
    lines += [f"  failed: {code}: {n}" for code, n in sorted(failed.items())]
    return "\n".join(lines)


def check_job(config: BulkConfig) -> str | None:
    """Why the job cannot start (an unknown output format, a CSV of other columns to resume,
    unreadable trust anchors), or None."""
    try:
        check_resumable(config.out)
        if config.c2pa_trust_anchors:
            load_trust_anchors(config.c2pa_trust_anchors)
    except ValueError as exc:
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    config = job_config(build_parser(), argv)
    if problem := check_job(config):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    done = done_paths(config.out)
    counts: Counter = Counter()

    def todo() -> Iterator[str]:
        for path in expand(config.inputs):
            if path in done:
                counts["skipped"] += 1
            else:
                yield path

    total = sum(1 for path in expand(config.inputs) if path not in done) if config.count else None
    return score_all(config, batched(todo(), config.batch_size), total, counts)


def score_all(
    config: BulkConfig, batches: Iterable[list[str]], total: int | None, counts: Counter
) -> int:
    """Write every batch's rows as it comes; Ctrl-C keeps what was written (exit 130)."""
    writer = ResultWriter(config.out)
    started = time.perf_counter()
    bar = tqdm(total=total, unit="file", desc="scoring", disable=not config.progress)
    try:
        for rows in engine_rows(config, batches):
            writer.write(rows)
            for row in rows:
                counts[f"error:{row['error_code']}" if row.get("error_code") else row["label"]] += 1
            bar.update(len(rows))
    except KeyboardInterrupt:
        print("\ninterrupted: rows written so far are kept; run again to resume", file=sys.stderr)
        return 130
    finally:
        bar.close()
        writer.close()
        print(summary_text(counts, time.perf_counter() - started), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
