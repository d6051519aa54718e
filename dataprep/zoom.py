"""How tight the alignment template should be: the share of the aligned square that would
fall outside the photo, per source, for a range of zooms (``core.facealign.AlignTemplate``).

A fill that only some sources need would name those sources, so the template is chosen as
the widest zoom at which every real source needs at most :data:`MAX_FILL` fill on average.
Measured from the manifest's landmarks and decoded sizes alone (no image is read): a grid
of the square's points is mapped back through each face's similarity transform and tested
against the photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.facealign import AlignTemplate, similarity

ZOOMS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0)
GRID = 24  # points per side of the square tested
MAX_FILL = 0.02  # mean share of the square outside the photo a real source may need


def outside_fraction(
    landmarks: np.ndarray, size: tuple[int, int], template: AlignTemplate
) -> float:
    """Share of the aligned square's points that lie outside a ``size`` = (width, height) photo."""
    back = np.linalg.inv(similarity(landmarks, template.points))
    axis = (np.arange(GRID) + 0.5) / GRID
    xs, ys = np.meshgrid(axis, axis)
    points = back @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    inside = (points[0] >= 0) & (points[0] < size[0]) & (points[1] >= 0) & (points[1] < size[1])
    return float(1.0 - inside.mean())


def zoom_sweep(dataset: Path, zooms: tuple[float, ...] = ZOOMS, per_source: int = 300) -> dict:
    """Mean outside fraction and share of faces needing over 1 % fill, per source and zoom
    (at most ``per_source`` faces each, the first in the manifest)."""
    rows = json.loads((dataset / "manifest.json").read_text())["files"]
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("face") and len(by_source.setdefault(row["source"], [])) < per_source:
            by_source[row["source"]].append(row)
    result: dict = {}
    for source, members in sorted(by_source.items()):
        result[source] = {"class": members[0]["class"], "faces": len(members)}
        for zoom in zooms:
            template = AlignTemplate(zoom)
            fractions = np.array(
                [
                    outside_fraction(
                        np.asarray(r["face"]["landmarks"]), (r["width"], r["height"]), template
                    )
                    for r in members
                ]
            )
            result[source][f"{zoom:.2f}"] = {
                "mean": round(float(fractions.mean()), 4),
                "over_1pct": round(float((fractions > 0.01).mean()), 3),
            }
    reals = [s for s, r in result.items() if r["class"] == "real"]
    fits = [z for z in zooms if all(result[s][f"{z:.2f}"]["mean"] <= MAX_FILL for s in reals)]
    return {
        "dataset": str(dataset),
        "rule": f"the widest zoom at which every real source needs at most {MAX_FILL:.0%} "
        "fill on average",
        "chosen_zoom": max(fits) if fits else None,
        "sources": result,
    }
