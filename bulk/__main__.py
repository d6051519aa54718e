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
from pathlib import Path

from tqdm import tqdm

from bulk.engines import HttpSettings, http_engine, local_engine
from bulk.inputs import expand
from bulk.outputs import ResultWriter, check_resumable, done_paths
from bulk.scorer import ModelChoice
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bulk",
        description="Score many images with a model of the repository (or a running server).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="files, folders, globs or path lists")
    parser.add_argument("--out", type=Path, required=True, help="results: .csv, .jsonl, .parquet")
    parser.add_argument("--engine", choices=ENGINES, default="local", help="default: local")
    parser.add_argument("--models", type=Path, default=Path("models"), help="model repository")
    parser.add_argument("--model", help="model name (default: the server's default model)")
    parser.add_argument("--version", type=int, help="model version (default: latest)")
    parser.add_argument("--batch-size", type=int, default=32, help="files per batch (default 32)")
    parser.add_argument(
        "--workers", type=int, default=0, help="local/ray: scoring processes (0: one per core)"
    )
    parser.add_argument("--url", help="http: the server's base URL")
    parser.add_argument("--concurrency", type=int, default=8, help="http: requests at once")
    parser.add_argument("--ray-address", help="ray: join this cluster (default: start locally)")
    parser.add_argument("--no-evidence", action="store_true", help="local/ray: no evidence column")
    parser.add_argument(
        "--c2pa-trust-anchors", type=Path, help="local/ray: PEM file of C2PA signers to trust"
    )
    video = parser.add_mutually_exclusive_group()
    video.add_argument(
        "--video-frames", type=int, help=f"frames per video, evenly (default {DEFAULT_FRAMES})"
    )
    video.add_argument("--video-fps", type=float, help="or: frames sampled per second of video")
    parser.add_argument(
        "--video-max-frames", type=int, default=VideoLimits.max_frames,
        help="most frames sampled from one video (more: an error row)",
    )  # fmt: skip
    parser.add_argument("--no-count", action="store_true", help="skip counting inputs (no ETA)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def video_settings(args: argparse.Namespace) -> tuple[Sampling, VideoLimits]:
    """How videos are sampled, from the flags; SystemExit with the reason when out of range."""
    try:
        limits = VideoLimits(max_frames=args.video_max_frames)
        if args.video_fps is not None:
            return Sampling(frames=None, fps=args.video_fps), limits
        sampling = Sampling(args.video_frames or DEFAULT_FRAMES)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if sampling.frames > limits.max_frames:
        raise SystemExit(f"error: --video-frames is over --video-max-frames ({limits.max_frames})")
    return sampling, limits


def engine_rows(args: argparse.Namespace, batches: Iterable[list[str]]) -> Iterator[list[dict]]:
    import os

    workers = args.workers or os.cpu_count() or 1
    evidence = None if args.no_evidence else EvidenceConfig(trust_anchors=args.c2pa_trust_anchors)
    sampling, limits = video_settings(args)
    choice = ModelChoice(args.models, args.model, args.version, evidence=evidence,
                         video_sampling=sampling, video_limits=limits)  # fmt: skip
    if args.engine == "local":
        return local_engine(batches, choice, workers)
    if args.engine == "http":
        if not args.url:
            raise SystemExit("error: --engine http needs --url")
        settings = HttpSettings(args.url, args.concurrency, model=args.model,
                                version=args.version, video_sampling=sampling)  # fmt: skip
        return http_engine(batches, settings)
    from bulk.ray_engine import ray_engine

    return ray_engine(batches, choice, workers, args.ray_address, args.batch_size)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_resumable(args.out)
        if args.c2pa_trust_anchors:
            load_trust_anchors(args.c2pa_trust_anchors)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = done_paths(args.out)
    counts: Counter = Counter()

    def todo() -> Iterator[str]:
        for path in expand(args.inputs):
            if path in done:
                counts["skipped"] += 1
            else:
                yield path

    total = None if args.no_count else sum(1 for path in expand(args.inputs) if path not in done)
    writer = ResultWriter(args.out)
    started = time.perf_counter()
    bar = tqdm(total=total, unit="file", desc="scoring", disable=args.no_progress)
    try:
        for rows in engine_rows(args, batched(todo(), args.batch_size)):
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
