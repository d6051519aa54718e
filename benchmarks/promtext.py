"""Histograms out of two ``/metrics`` scrapes, and what happened between them.

The server's batch-size histogram is cumulative since start-up; scraping ``/metrics``
before and after a load level and subtracting gives the batches of that level alone.
Parsing is ``prometheus_client.parser``'s; the difference and the per-bucket view are ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Histogram:
    """One histogram summed over its label sets: cumulative bucket counts, sum and count."""

    name: str
    buckets: dict[float, float]  # upper bound -> cumulative count
    total: float
    count: float

    def minus(self, earlier: Histogram | None) -> Histogram:
        """The observations made between ``earlier`` and this scrape."""
        if earlier is None:
            return self
        buckets = {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()}
        return Histogram(self.name, buckets, self.total - earlier.total, self.count - earlier.count)

    def distribution(self) -> dict[str, int]:
        """Per-bucket (not cumulative) counts, keyed by the integer range each bucket holds."""
        result: dict[str, int] = {}
        previous = 0.0
        below = 0.0
        for le in sorted(self.buckets):
            count = self.buckets[le] - below
            below = self.buckets[le]
            if math.isinf(le):
                label = f">{_fmt(previous)}"
            else:
                low, high = math.floor(previous) + 1, math.floor(le)
                label = str(high) if low >= high else f"{low}-{high}"
            previous = le
            if count:
                result[label] = int(round(count))
        return result

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_histograms(text: str) -> dict[str, Histogram]:
    """Every histogram in ``text`` (parsed by ``prometheus_client.parser``), by family name,
    summed over label sets."""
    histograms: dict[str, Histogram] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "histogram":
            continue
        buckets: dict[float, float] = {}
        total = count = 0.0
        for sample in family.samples:
            if sample.name == f"{family.name}_bucket":
                bound = float(sample.labels["le"])  # "+Inf" -> inf
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif sample.name == f"{family.name}_sum":
                total += sample.value
            elif sample.name == f"{family.name}_count":
                count += sample.value
        histograms[family.name] = Histogram(family.name, buckets, total, count)
    return histograms


def find_batch_histogram(
    histograms: dict[str, Histogram], name: str | None = None
) -> Histogram | None:
    """The batch-size histogram: ``name`` if given, else the one whose name says batch size."""
    if name:
        return histograms.get(name)
    candidates = sorted(family for family in histograms if "batch_size" in family)
    if not candidates:
        candidates = sorted(family for family in histograms if "batch" in family)
    return histograms[candidates[0]] if candidates else None


def diff_histograms(
    before: dict[str, Histogram] | None, after: dict[str, Histogram] | None
) -> dict[str, Histogram]:
    """Each histogram of ``after`` minus its value in ``before``."""
    if after is None:
        return {}
    before = before or {}
    return {name: histogram.minus(before.get(name)) for name, histogram in after.items()}
