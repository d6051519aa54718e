"""``python -m dataprep {build,stats,probes,match,folds,zoom,card}``: the dataset command line.

The GAN faces it combines are rendered first by ``python -m dataprep.gan`` (``make data``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from core.options import add_options, options_from
from dataprep.build import BuildConfig, build


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dataprep",
        description="Build the real/fake face dataset, measure it, and probe it for shortcuts.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    formatter = argparse.ArgumentDefaultsHelpFormatter
    add_options(commands.add_parser("build", help="combine all sources"), BuildConfig)
    for name, text in (
        ("stats", "per-class and per-source distributions with plots"),
        ("probes", "train and score the shortcut probes"),
        ("match", "the shortcut-matched subset (propensity bins) -> DATA/matched.json"),
        ("folds", "source-holdout folds -> DATA/folds.json and OUT/folds.json"),
        ("zoom", "fill outside the photo per source and template zoom -> OUT/zoom.json"),
    ):
        sub = commands.add_parser(name, help=text, formatter_class=formatter)
        sub.add_argument("--data", type=Path, default=Path("data/detector"), help="dataset")
        sub.add_argument("--out", type=Path, default=Path("reports/data"), help="report folder")
        if name == "probes":
            sub.add_argument(
                "--matched", action="store_true", help="only the matched subset (run match first)"
            )
    card = commands.add_parser(
        "card",
        help="rewrite DATA.md's generated section from reports/data",
        formatter_class=formatter,
    )
    card.add_argument("--reports", type=Path, default=Path("reports/data"), help="report folder")
    card.add_argument("--document", type=Path, default=Path("DATA.md"), help="file to update")
    card.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "card":
        from dataprep.card import update

        try:
            fresh = update(args.document, args.reports, check=args.check)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        if not fresh:
            raise SystemExit(f"{args.document} is out of date: run python -m dataprep card")
        return
    if args.command == "build":
        try:
            config = options_from(BuildConfig, args)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        summary = build(config)
    elif args.command == "stats":
        from dataprep.stats import write_stats

        summary = write_stats(args.data, args.out)["face_found_rate"]
        manifest = json.loads((args.data / "manifest.json").read_text())
        (args.out / "summary.json").write_text(json.dumps(manifest["summary"], indent=1))
    elif args.command == "folds":
        from dataprep.folds import make_folds

        report = make_folds(args.data)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "folds.json").write_text(json.dumps(report, indent=1))
        summary = {name: fold["counts"]["heldout"] for name, fold in report["folds"].items()}
    elif args.command == "zoom":
        from dataprep.zoom import zoom_sweep

        report = zoom_sweep(args.data)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "zoom.json").write_text(json.dumps(report, indent=1))
        summary = {"chosen_zoom": report["chosen_zoom"]}
    elif args.command == "match":
        from dataprep.match import match

        summary = match(args.data)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "matched.json").write_text(json.dumps(summary, indent=1))
    else:
        from dataprep.match import matched_files
        from dataprep.probes import run_probes

        subset = matched_files(args.data) if args.matched else None
        if args.matched and subset is None:
            raise SystemExit(
                f"error: no matched subset in {args.data}: run python -m dataprep match"
            )
        name = "probes_matched.json" if args.matched else "probes.json"
        report = run_probes(args.data, args.out / name, subset=subset)
        summary = {name: probe["auc"] for name, probe in report["probes"].items()}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
