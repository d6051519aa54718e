"""Per class and per source: the distributions a shortcut could hide in, with plots.

Measured from the build's manifest (original size, face-crop side in the original's pixels,
stored crop side, sharpness of the model-size crop, JPEG quality, bytes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MEASURES = {  # manifest field -> label
    "crop_side_source": "face-crop side in the original's pixels",
    "effective_side": "effective face resolution (stored side x effective fraction, px)",
    "detail": "detail: mean |x - blur(x)| at 224 px",
    "outside_fraction": "aligned pixels outside the photo (filled)",
    "stored_width": "stored crop width (px)",
    "stored_height": "stored crop height (px)",
    "sharpness": "sharpness: Laplacian variance at 224 px",
    "quality": "stored JPEG quality",
    "bytes": "stored file size (bytes)",
    "width": "original width (px)",
    "quality_original": "original JPEG quality (estimated)",
}


def load_rows(dataset: Path) -> list[dict]:
    """Manifest rows, each with ``bytes`` (the stored file's size) added."""
    rows = json.loads((dataset / "manifest.json").read_text())["files"]
    for row in rows:
        row["bytes"] = (dataset / row["file"]).stat().st_size
        row.setdefault("outside_fraction", 0.0)
    return rows


def describe(values: list[float]) -> dict:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    if array.size == 0:
        return {"count": 0}
    q = np.percentile(array, [5, 25, 50, 75, 95])
    return {
        "count": int(array.size),
        "mean": round(float(array.mean()), 2),
        "p5": round(float(q[0]), 2),
        "p25": round(float(q[1]), 2),
        "median": round(float(q[2]), 2),
        "p75": round(float(q[3]), 2),
        "p95": round(float(q[4]), 2),
    }


def distributions(rows: list[dict]) -> dict:
    """``{measure: {"by_class": {...}, "by_source": {...}}}`` of :func:`describe` summaries."""
    out = {}
    for measure in MEASURES:
        by_class = {
            cls: describe([r[measure] for r in rows if r["class"] == cls])
            for cls in ("real", "fake")
        }
        sources = sorted({r["source"] for r in rows})
        by_source = {s: describe([r[measure] for r in rows if r["source"] == s]) for s in sources}
        out[measure] = {"by_class": by_class, "by_source": by_source}
    face_rate = {
        s: round(float(np.mean([r["face_found"] for r in rows if r["source"] == s])), 4)
        for s in sorted({r["source"] for r in rows})
    }
    return {"measures": out, "face_found_rate": face_rate}


def plot(rows: list[dict], folder: Path) -> list[str]:
    """One histogram figure per measure, real vs fake and per source; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    sources = sorted({r["source"] for r in rows})
    for measure, label in MEASURES.items():
        values = [r[measure] for r in rows if r[measure] is not None]
        if not values:
            continue
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
        bins = np.histogram_bin_edges(np.asarray(values, dtype=float), bins=40)
        for cls, colour in (("real", "tab:blue"), ("fake", "tab:red")):
            data = [r[measure] for r in rows if r["class"] == cls and r[measure] is not None]
            left.hist(data, bins=bins, alpha=0.5, density=True, label=cls, color=colour)
        left.set_title(f"{label}: by class")
        left.legend()
        for source in sources:
            data = [r[measure] for r in rows if r["source"] == source and r[measure] is not None]
            right.hist(data, bins=bins, density=True, histtype="step", label=source)
        right.set_title("by source")
        right.legend(fontsize=7)
        figure.tight_layout()
        name = f"{measure}.png"
        figure.savefig(folder / name, dpi=80)
        plt.close(figure)
        names.append(name)
    return names


def write_stats(dataset: Path, out: Path) -> dict:
    """``out/stats.json`` and ``out/plots/*.png`` for the dataset at ``dataset``."""
    rows = load_rows(dataset)
    stats = distributions(rows)
    stats["plots"] = [f"plots/{name}" for name in plot(rows, out / "plots")]
    stats["dataset"] = str(dataset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    return stats
