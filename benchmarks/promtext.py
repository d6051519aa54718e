"""Read histograms out of Prometheus text exposition and diff two scrapes.

The server's batch-size histogram is cumulative since start-up; scraping ``/metrics``
before and after a load level and subtracting gives the batches of that level alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


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
    """Every histogram in ``text``, by family name, summed over label sets."""
    kinds: dict[str, str] = {}
    buckets: dict[str, dict[float, float]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            parts = line.split()
            if len(parts) >= 4:
                kinds[parts[2]] = parts[3]
            continue
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), match.group(3) or "", match.group(4)
        try:
            number = float(value)
        except ValueError:
            continue
        for suffix, store in (("_bucket", buckets), ("_sum", sums), ("_count", counts)):
            family = name[: -len(suffix)] if name.endswith(suffix) else None
            if family is None or kinds.get(family) != "histogram":
                continue
            if store is buckets:
                le = dict(_LABEL.findall(labels)).get("le")
                if le is not None:
                    bound = math.inf if le in ("+Inf", "Inf") else float(le)
                    family_buckets = buckets.setdefault(family, {})
                    family_buckets[bound] = family_buckets.get(bound, 0.0) + number
            else:
                store[family] = store.get(family, 0.0) + number
    return {
        family: Histogram(family, buckets[family], sums.get(family, 0.0), counts.get(family, 0.0))
        for family in buckets
    }


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
