"""Per-source test metrics of an evaluated run, at the run's own threshold and temperature.

Reads ``RUN/report.json`` and ``RUN/predictions.csv`` (``python -m train.evaluate``) and the
dataset's ``manifest.json`` (``python -m dataprep build``),
and scores test subsets with the threshold and temperature fitted on the whole validation
split (what the shipped model uses), with seeded bootstrap 95 % intervals
(:mod:`train.report`). Subsets: one per two-class source, plus ``yonsei_fakes_q94_only``
(all Yonsei reals vs only the fakes at the reals' JPEG quality 94), which removes the
re-compression shortcut documented in DATA.md; for one-class sources, every fake source
against every real source.

    python -m train.per_source --run runs/texture --data data/detector
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.decision import calibrate
from core.options import option, options_parser, parse_config, parse_optional_path
from train.report import bootstrap_ci, split_metrics

KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "eer", "ece")


@dataclass(frozen=True)
class PerSourceConfig:
    """Which evaluated run and dataset, where the tables go, and the bootstrap."""

    run: Path = option(help="run evaluated by train.evaluate", parse=Path, metavar="DIR")
    data: Path = option(help="dataset with manifest.json", parse=Path, metavar="DIR")
    out: Path | None = option(
        None, "output folder (default: RUN)", parse_optional_path, metavar="DIR"
    )
    bootstrap: int = option(1000, "bootstrap resamples", int)
    seed: int = option(0, "bootstrap seed", int)


def read_test_predictions(run: Path) -> list[dict]:
    with (run / "predictions.csv").open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == "test"]


def manifest_by_file(data: Path) -> dict[str, dict]:
    manifest = json.loads((data / "manifest.json").read_text())
    return {Path(entry["file"]).name: entry for entry in manifest["files"]}


def subsets(rows: list[dict], manifest: dict[str, dict]) -> dict[str, np.ndarray]:
    """Boolean masks over ``rows``. Sources holding both classes: one subset each (and Yonsei
    with only quality-94 fakes). Sources of one class (data/detector): each fake source vs
    all reals, all fakes vs each real source, and every fake source vs every real source."""
    entries = [manifest[Path(row["path"]).name] for row in rows]
    source = np.array([entry["source"] for entry in entries])
    fake = np.array([entry.get("class", entry.get("label")) == "fake" for entry in entries])
    masks = {}
    for name in sorted(set(source)):
        if len(set(fake[source == name])) == 2:
            masks[name] = source == name
    if "yonsei" in masks:
        quality = np.array([entry.get("jpeg_quality_est") or 0 for entry in entries])
        masks["yonsei_fakes_q94_only"] = masks["yonsei"] & (~fake | (quality == 94))
    single = [name for name in sorted(set(source)) if name not in masks]
    fakes = [name for name in single if fake[source == name].all()]
    reals = [name for name in single if not fake[source == name].any()]
    for name in fakes:
        masks[f"{name} vs all reals"] = (source == name) | ~fake
    for name in reals:
        masks[f"all fakes vs {name}"] = fake | (source == name)
    for fake_name in fakes:
        for real_name in reals:
            masks[f"{fake_name} vs {real_name}"] = (source == fake_name) | (source == real_name)
    return masks


def matched_subsets(rows: list[dict], data: Path) -> dict[str, np.ndarray]:
    """The shortcut-matched test images (``python -m dataprep match``), all and per fake source."""
    from dataprep.match import matched_files

    kept = matched_files(data)
    if kept is None:
        return {}
    relative = [str(Path(row["path"]).resolve().relative_to(data.resolve())) for row in rows]
    mask = np.array([path in kept for path in relative])
    sources = np.array([Path(path).name.split("__", 1)[0] for path in relative])
    fake = np.array([int(row["label"]) == 1 for row in rows])
    masks = {"matched": mask}
    for source in sorted(set(sources[mask & fake])):
        masks[f"matched: {source} vs matched reals"] = mask & ((sources == source) | ~fake)
    return masks


def score(y: np.ndarray, p: np.ndarray, report: dict, bootstrap: int, seed: int) -> dict:
    t, threshold = float(report["temperature"]), float(report["threshold"])
    result = split_metrics(y, p, t, threshold)
    result["counts"] = {"real": int((y == 0).sum()), "fake": int((y == 1).sum())}
    result["ci"] = bootstrap_ci(y, calibrate(p, t), threshold, bootstrap, seed)
    return result


def markdown(results: dict) -> str:
    lines = [
        "| test subset | n (real/fake) | accuracy | F1 | ROC-AUC | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cells = [f"{name}", f"{r['n']} ({r['counts']['real']}/{r['counts']['fake']})"]
        for key in ("accuracy", "f1", "roc_auc", "ece"):
            ci = r["ci"][key]
            cells.append(f"{r[key]:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = options_parser(
        "python -m train.per_source",
        "Per-source test metrics (95 % bootstrap CIs) of an evaluated run, at the run's\n"
        "validation threshold and temperature. Writes OUT/per_source.json and .md.",
        PerSourceConfig,
    )
    args = parse_config(parser, PerSourceConfig, argv)
    for needed in (
        args.run / "report.json",
        args.run / "predictions.csv",
        args.data / "manifest.json",
    ):
        if not needed.is_file():
            print(f"error: {needed} not found", file=sys.stderr)
            return 2
    report = json.loads((args.run / "report.json").read_text())
    rows = read_test_predictions(args.run)
    y = np.array([int(row["label"]) for row in rows])
    p = np.array([float(row["p_raw"]) for row in rows])
    results = {"all": score(y, p, report, args.bootstrap, args.seed)}
    masks = subsets(rows, manifest_by_file(args.data))
    masks |= matched_subsets(rows, args.data)
    for name, mask in masks.items():
        results[name] = score(y[mask], p[mask], report, args.bootstrap, args.seed)
    out = args.out or args.run
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "run": str(args.run),
        "threshold": report["threshold"],
        "temperature": report["temperature"],
        "note": "threshold and temperature fitted on the whole validation split (all sources)",
        "subsets": results,
    }
    (out / "per_source.json").write_text(json.dumps(payload, indent=2))
    (out / "per_source.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
