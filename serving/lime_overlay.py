"""The LIME overlay: chosen regions tinted over the uploaded image, their outlines marked.

Regions come from a segmentation of the square model input (``S x S``); the model input is
the whole image resized without keeping the aspect ratio, so image pixel ``(y, x)`` belongs
to the region at model pixel ``(floor((y + .5) S / H), floor((x + .5) S / W))``. The image is
processed in horizontal stripes so that a 40-megapixel upload stays within a few hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRIPE_ROWS = 512


@dataclass(frozen=True)
class LimeOverlayStyle:
    """Colours (RGB) and opacities of the LIME overlay."""

    towards_fake: tuple[int, int, int] = (230, 40, 40)  # positive weight: red, like the CAM
    towards_real: tuple[int, int, int] = (40, 110, 240)  # negative weight: blue
    boundary: tuple[int, int, int] = (255, 230, 0)  # outlines of the shown regions: yellow
    min_alpha: float = 0.25  # opacity of the weakest shown region
    max_alpha: float = 0.6  # opacity of the strongest one
    boundary_px_per_1000: float = 2.0  # outline thickness per 1000 pixels of the longer side


def source_index(size: int, grid: int) -> np.ndarray:
    """For each of ``size`` image pixels along one axis, its model-input pixel (``grid``)."""
    positions = (np.arange(size, dtype=np.float64) + 0.5) * grid / size
    return np.minimum(positions.astype(np.intp), grid - 1)


def region_tables(
    count: int, weights: dict[int, float], style: LimeOverlayStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-region lookup tables: colour (count x 3), alpha (count), shown (count, bool)."""
    colour = np.zeros((count, 3), np.float32)
    alpha = np.zeros(count, np.float32)
    shown = np.zeros(count, bool)
    strongest = max((abs(w) for w in weights.values()), default=0.0)
    for region, weight in weights.items():
        if not 0 <= region < count or not np.isfinite(weight):
            continue
        shown[region] = True
        colour[region] = style.towards_fake if weight >= 0 else style.towards_real
        share = abs(weight) / strongest if strongest > 0 else 0.0
        alpha[region] = style.min_alpha + (style.max_alpha - style.min_alpha) * share
    return colour, alpha, shown


def lime_overlay(
    rgb: np.ndarray,
    segments: np.ndarray,
    weights: dict[int, float],
    style: LimeOverlayStyle | None = None,
) -> np.ndarray:
    """``rgb`` (uint8 H x W x 3) with the regions in ``weights`` tinted and outlined.

    ``segments``: region id (0..n-1) per model-input pixel, ``S x S``. ``weights``: region id
    -> LIME weight (positive = towards FAKE). Regions not in ``weights`` stay untouched.
    """
    style = style or LimeOverlayStyle()
    height, width = rgb.shape[:2]
    grid_rows, grid_cols = segments.shape
    count = int(segments.max()) + 1
    colour, alpha, shown = region_tables(count, weights, style)
    rows, cols = source_index(height, grid_rows), source_index(width, grid_cols)
    thickness = max(1, round(max(height, width) / 1000 * style.boundary_px_per_1000))
    out = np.empty_like(rgb, dtype=np.uint8)
    for top in range(0, height, STRIPE_ROWS):
        bottom = min(height, top + STRIPE_ROWS)
        labels = segments[rows[top:bottom, None], cols[None, :]]
        a = alpha[labels][..., None]
        stripe = rgb[top:bottom].astype(np.float32)
        stripe += a * (colour[labels] - stripe)
        edges = _outline(segments, rows, cols, top, bottom, thickness) & shown[labels]
        stripe[edges] = style.boundary
        out[top:bottom] = np.clip(stripe + 0.5, 0, 255).astype(np.uint8)
    return out


def _outline(
    segments: np.ndarray, rows: np.ndarray, cols: np.ndarray, top: int, bottom: int, width: int
) -> np.ndarray:
    """Pixels of rows ``top:bottom`` within ``width`` pixels of a region change (right/down)."""
    margin_top, margin_bottom = max(0, top - width), min(len(rows), bottom + width)
    labels = segments[rows[margin_top:margin_bottom, None], cols[None, :]]
    edge = np.zeros(labels.shape, bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    if width > 1:
        import cv2

        kernel = np.ones((width, width), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), kernel).astype(bool)
    return edge[top - margin_top : top - margin_top + (bottom - top)]
