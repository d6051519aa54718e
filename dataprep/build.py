"""Combine every source into ``data/<name>/{train,val,test}/{real,fake}/`` with a manifest.

Steps, in order: read the real photos and the manipulated fakes; prepare them (face crop or
alignment; for a seeded share of them, both classes alike, a lower effective resolution drawn
log-uniformly; JPEG at a quality drawn from the real photos' qualities); drop greyscale
photos (no generated face is one); prepare each generated face matched to a seeded real
partner (its stored width and height, sharpness and JPEG quality); group near-duplicates
within each source family; split groups 70/15/15 per family, seeded; write files and
``manifest.json``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.facealign import AlignTemplate
from core.options import (
    option,
    parse_bool,
    parse_floats,
    parse_ints,
    parse_optional_path,
)
from dataprep.imaging import average_hash
from dataprep.prepare import Job, PartnerTarget, Prepared, header, try_prepare
from dataprep.sources import (
    GAN,
    GENERATED_KINDS,
    REES_REPO,
    SDFD_REPO,
    SHARP_REALS,
    UTKFACE_REPO,
    Candidate,
    gan_faces,
    rees_faces,
    sdfd,
    shared_reals,
    sharp_reals,
    utkface,
)
from dataprep.unionfind import UnionFind

CLASSES = ("real", "fake")
SPLITS = ("train", "val", "test")
DEFAULT_SNAPSHOTS = Path("/work/.mirror")
SNAPSHOT_REPOS = (REES_REPO, UTKFACE_REPO, SDFD_REPO) + tuple(
    dict.fromkeys(repo for _, repo, _, _ in SHARP_REALS)
)
FAMILIES = {"yonsei-real": "yonsei", "yonsei-photoshop": "yonsei", "lfw-faceswap": "lfw"}


def parse_template(text: str) -> str | None:
    """An alignment template's name, or None for ``none`` / an empty text."""
    return None if text.strip().lower() in ("", "none") else text.strip()


def parse_repos(text: str) -> tuple[str, ...]:
    """``"all"``, ``"none"`` or ``owner/name,owner/name``."""
    value = text.strip().lower()
    if value == "all":
        return SNAPSHOT_REPOS
    if value in ("", "none"):
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class BuildConfig:
    """Inputs, output and the knobs of matching and splitting."""

    out: Path = option(Path("data/detector"), "output folder data/<name>", Path, metavar="DIR")
    real_faces: Path = option(
        Path("../shared/data/real-faces"),
        "folder with the real-photo sources (scut-fbp5500/, all-age-faces/, celeba/)",
        Path,
        metavar="DIR",
    )
    gan: Path = option(
        Path("data/gan"), "generated faces folder (python -m dataprep.gan output)", Path,
        metavar="DIR",
    )  # fmt: skip
    snapshots: Path | None = option(
        DEFAULT_SNAPSHOTS,
        "folder of fetched repository snapshots, one per repo as <owner>+<name>/repo",
        parse_optional_path,
        metavar="DIR",
    )
    repos: tuple[str, ...] = option(
        SNAPSHOT_REPOS,
        "snapshot repositories to read: 'all', 'none' or owner/name,... (Yonsei and LFW, "
        "UTKFace, SDFD, the sharp portraits)",
        parse_repos,
        metavar="REPOS",
    )
    rees_per_source: int = option(1100, "files sampled per Yonsei/LFW source", int)
    utkface_count: int = option(
        8000, "UTKFace faces sampled (at most 40 percent of the real class)", int
    )
    limit: int | None = option(None, "cap per source (quick builds)", int)
    max_real_share: float = option(
        0.4, "largest share of the real class one source may have (larger ones sampled)", float
    )
    align: str | None = option(
        "arcface5/z0.70",
        "face alignment template (core.facealign), or 'none' for the plain face crop",
        parse_template,
        metavar="TEMPLATE",
    )
    degrade_share: float = option(
        0.5, "share of reals and manipulated fakes given a lower effective resolution", float
    )
    effective_range: tuple[float, float] = option(
        (64.0, 700.0),
        "effective face resolution drawn log-uniformly in this range (px)",
        parse_floats,
        metavar="LOW,HIGH",
    )
    ratios: tuple[float, float, float] = option(
        (0.7, 0.15, 0.15), "train/val/test shares", parse_floats, metavar="TRAIN,VAL,TEST"
    )
    seed: int = option(0, "seed of sampling, matching and splitting", int)
    quality_bounds: tuple[int, int] = option(
        (60, 98), "clip drawn JPEG qualities to this range", parse_ints, metavar="LOW,HIGH"
    )
    near_dup_bits: int = option(
        12, "average-hash bits within which two crops are near-duplicates", int
    )
    workers: int = option(os.cpu_count() or 1, "worker processes", int)
    overwrite: bool = option(False, "replace an existing output folder", parse_bool)

    def __post_init__(self) -> None:
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or sum(self.ratios) <= 0:
            raise ValueError(f"ratios must be three non-negative numbers, got {self.ratios}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if len(self.quality_bounds) != 2 or not min(self.quality_bounds) >= 1:
            raise ValueError(f"quality_bounds must be LOW,HIGH >= 1, got {self.quality_bounds}")
        low, high = (self.effective_range + (0.0, 0.0))[:2]
        if len(self.effective_range) != 2 or not 8 <= low <= high:
            raise ValueError(f"effective_range must be LOW,HIGH >= 8, got {self.effective_range}")
        if not 0.0 < self.max_real_share <= 1.0:
            raise ValueError(f"max_real_share must be in (0, 1], got {self.max_real_share}")
        if not 0.0 <= self.degrade_share <= 1.0:
            raise ValueError(f"degrade_share must be in [0, 1], got {self.degrade_share}")
        if self.align is not None:
            AlignTemplate.from_name(self.align)
        unknown = set(self.repos) - set(SNAPSHOT_REPOS)
        if unknown:
            raise ValueError(f"unknown snapshot repositories: {', '.join(sorted(unknown))}")


@dataclass
class Row:
    """One stored file in the manifest."""

    source: str
    kind: str
    label: int
    origin: str
    licence: str
    group: str
    prepared: Prepared
    partner: str = ""
    split: str = ""
    file: str = ""

    def record(self) -> dict:
        info = {k: v for k, v in asdict(self.prepared).items() if k != "jpeg"}
        info["sharpness"] = round(info["sharpness"], 2)
        meta = {k: v for k, v in asdict(self).items() if k != "prepared"}
        return meta | {"class": CLASSES[self.label]} | info


def file_rng(seed: int, origin: str) -> np.random.Generator:
    """A generator seeded by the build seed and the file's origin (order-independent)."""
    return np.random.default_rng([seed, zlib.crc32(origin.encode())])


def real_qualities(candidates: list[Candidate], bounds: tuple[int, int]) -> np.ndarray:
    """The real photos' own JPEG qualities (header estimates), clipped to ``bounds``."""
    found = [header(c.data)[0] for c in candidates if c.label == 0]
    qualities = np.array([q for q in found if q is not None], dtype=int)
    if qualities.size == 0:
        qualities = np.array([90])
    return np.clip(qualities, *bounds)


def run_jobs(jobs: list[Job], workers: int, desc: str) -> list[Prepared | str]:
    """Prepare in a process pool (in order), with a progress bar."""
    if workers == 1:
        return [try_prepare(job) for job in tqdm(jobs, desc=desc, unit="img")]
    with ProcessPoolExecutor(workers) as pool:
        return list(
            tqdm(pool.map(try_prepare, jobs, chunksize=16), total=len(jobs), desc=desc, unit="img")
        )


def prepare_all(
    candidates: list[Candidate], config: BuildConfig, skipped: Counter
) -> tuple[list[Row], list[Row]]:
    """Reals and manipulated fakes first, then generated faces matched to real partners."""
    qualities = real_qualities(candidates, config.quality_bounds)
    plain = [c for c in candidates if c.kind not in GENERATED_KINDS]
    generated = [c for c in candidates if c.kind in GENERATED_KINDS]
    jobs = [plain_job(c, qualities, config) for c in plain]
    rows = collect(plain, run_jobs(jobs, config.workers, "reals + manipulated"), skipped)
    reals = [row for row in rows if row.label == 0]
    if generated and not reals:
        raise SystemExit("error: generated faces need real photos to be matched to")
    weights = partner_weights(reals, [row for row in rows if row.label == 1], len(generated))
    partners, jobs = [], []
    for c in generated:
        rng = file_rng(config.seed, c.origin)
        partner = reals[int(rng.choice(len(reals), p=weights))]
        partners.append(partner.origin)
        target = partner_target(partner, rng)
        jobs.append(Job(c.data, partner.prepared.quality, target, align=config.align))
    gan_rows = collect(generated, run_jobs(jobs, config.workers, "generated (matched)"), skipped)
    for row, partner in zip(gan_rows, partners, strict=False):
        row.partner = partner
    return rows, gan_rows


def plain_job(candidate: Candidate, qualities: np.ndarray, config: BuildConfig) -> Job:
    """A real or manipulated face's job: a quality drawn from the real photos' qualities and,
    for ``degrade_share`` of them, an effective resolution drawn log-uniformly."""
    rng = file_rng(config.seed, candidate.origin)
    quality = int(rng.choice(qualities))
    effective = None
    if rng.random() < config.degrade_share:
        low, high = np.log(config.effective_range)
        effective = float(np.exp(rng.uniform(low, high)))
    return Job(candidate.data, quality, align=config.align, effective_side=effective)


def partner_target(partner: Row, rng: np.random.Generator) -> PartnerTarget:
    """Match a generated face to ``partner``'s stored file: width and height and sharpness
    (its JPEG quality goes into the job itself)."""
    stored = partner.prepared
    return PartnerTarget(
        size=(stored.stored_width, stored.stored_height),
        sharpness=stored.sharpness,
        trim_start=bool(rng.integers(2)),
    )


def partner_weights(reals: list[Row], manipulated: list[Row], n_generated: int) -> np.ndarray:
    """Probability of each real photo being a generated face's partner, chosen so that the
    fake class as a whole (manipulated fakes + matched generated faces) has the real class's
    mix of source families: families already over-represented by their own manipulated
    fakes (Yonsei, LFW) are drawn less often, or not at all."""
    real_count = Counter(family(row.source) for row in reals)
    fake_count = Counter(family(row.source) for row in manipulated)
    n_fake = len(manipulated) + n_generated
    wanted = {
        fam: max(0.0, count / len(reals) * n_fake - fake_count[fam])
        for fam, count in real_count.items()
    }
    if sum(wanted.values()) <= 0:
        wanted = dict.fromkeys(real_count, 1.0)
    weights = np.array(
        [wanted[family(row.source)] / real_count[family(row.source)] for row in reals]
    )
    return weights / weights.sum()


def collect(
    candidates: list[Candidate], results: list[Prepared | str], skipped: Counter
) -> list[Row]:
    """Rows for what was prepared; failures and exact duplicates counted in ``skipped``."""
    rows, seen = [], set()
    for candidate, result in zip(candidates, results, strict=True):
        if isinstance(result, str):
            skipped[f"{candidate.source}: {result.split(':')[0]}"] += 1
            continue
        if result.sha256_original in seen:
            skipped[f"{candidate.source}: exact duplicate"] += 1
            continue
        if result.greyscale:  # no generated face is black and white: it would name the class
            skipped[f"{candidate.source}: greyscale"] += 1
            continue
        seen.add(result.sha256_original)
        group = candidate.group_hint or candidate.origin
        rows.append(
            Row(
                candidate.source,
                candidate.kind,
                candidate.label,
                candidate.origin,
                candidate.licence,
                group,
                result,
            )
        )
    return rows


def family(source: str) -> str:
    return FAMILIES.get(source, source)


def group_near_duplicates(rows: list[Row], max_bits: int) -> None:
    """Merge groups of rows within one source family whose crops' hashes are close."""
    by_family: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_family.setdefault(family(row.source), []).append(index)
    sets = UnionFind(len(rows))
    for members in by_family.values():
        if rows[members[0]].kind == GAN:
            continue  # every generator seed is its own group
        hashes = np.stack([average_hash(crop_rgb(rows[i])) for i in members])
        for a in range(len(members) - 1):
            close = (hashes[a + 1 :] != hashes[a]).sum(axis=1) <= max_bits
            for b in np.nonzero(close)[0]:
                sets.union(members[a], members[a + 1 + int(b)])
    for index, row in enumerate(rows):
        root = sets.find(index)
        if root != index:
            row.group = rows[root].group


def crop_rgb(row: Row) -> np.ndarray:
    """The stored crop, decoded."""
    return np.asarray(Image.open(io.BytesIO(row.prepared.jpeg)).convert("RGB"))


def assign_splits(rows: list[Row], ratios: tuple[float, ...], seed: int) -> None:
    """Seeded grouped split, per source family and class: each group goes to the split
    furthest below its target share."""
    weights = np.asarray(ratios, dtype=float) / sum(ratios)
    cells: dict[tuple[str, int], dict[str, list[Row]]] = {}
    for row in rows:
        cells.setdefault((family(row.source), row.label), {}).setdefault(row.group, []).append(row)
    placed: dict[str, str] = {}
    for key in sorted(cells):
        groups = cells[key]
        names = sorted(groups)
        np.random.default_rng([seed, zlib.crc32(repr(key).encode())]).shuffle(names)
        filled = np.zeros(len(SPLITS))
        total = sum(len(members) for members in groups.values())
        for name in names:
            split = placed.get(name)
            if split is None:
                split = SPLITS[int(np.argmax(weights * total - filled))]
                placed[name] = split
            for row in groups[name]:
                row.split = split
            filled[SPLITS.index(split)] += len(groups[name])


def write(rows: list[Row], out: Path, overwrite: bool) -> None:
    """Files under ``out/<split>/<class>/<source>__<n>.jpg`` (source = name before ``__``)."""
    if out.exists():
        if not overwrite:
            raise SystemExit(f"error: {out} exists; pass --overwrite to rebuild it")
        shutil.rmtree(out)
    counters: Counter = Counter()
    for row in rows:
        folder = out / row.split / CLASSES[row.label]
        folder.mkdir(parents=True, exist_ok=True)
        counters[row.source] += 1
        name = f"{row.source}__{counters[row.source]:05d}.jpg"
        (folder / name).write_bytes(row.prepared.jpeg)
        row.file = f"{row.split}/{CLASSES[row.label]}/{name}"


def summarise(rows: list[Row], skipped: Counter) -> dict:
    """Counts per split, class, source and kind; real-source shares; skips."""
    counts: dict = {}
    for row in rows:
        split = counts.setdefault(row.split, {})
        cls = split.setdefault(CLASSES[row.label], {})
        cls[row.source] = cls.get(row.source, 0) + 1
    reals = Counter(row.source for row in rows if row.label == 0)
    n_real = sum(reals.values()) or 1
    groups = Counter((row.group, row.split) for row in rows)
    crossing = Counter(group for group, _ in groups)
    return {
        "counts": counts,
        "by_class": dict(Counter(CLASSES[row.label] for row in rows)),
        "by_kind": dict(Counter(row.kind for row in rows)),
        "real_source_share": {s: round(n / n_real, 4) for s, n in reals.items()},
        "groups": len(crossing),
        "groups_crossing_splits": sum(1 for n in crossing.values() if n > 1),
        "skipped": dict(skipped),
    }


def read_candidates(config: BuildConfig) -> list[Candidate]:
    """Every source's files, read into memory (about 1 GB for the full build)."""
    sources: list[Iterable[Candidate]] = [shared_reals(config.real_faces, config.limit)]
    repos = snapshot_paths(config)
    if REES_REPO in repos:
        per_source = min(config.rees_per_source, config.limit or config.rees_per_source)
        sources.append(rees_faces(repos[REES_REPO], per_source, config.seed))
    if UTKFACE_REPO in repos:
        count = min(config.utkface_count, config.limit or config.utkface_count)
        sources.append(utkface(repos[UTKFACE_REPO], count, config.seed))
    sources.append(sharp_reals(repos, config.limit))
    sources.append(gan_faces(config.gan, config.limit))
    if SDFD_REPO in repos:
        sources.append(sdfd(repos[SDFD_REPO], config.limit))
    candidates = []
    for source in sources:
        candidates.extend(tqdm(source, desc="reading", unit="file", leave=False))
    return cap_real_sources(candidates, config.max_real_share, config.seed)


def cap_real_sources(candidates: list[Candidate], share: float, seed: int) -> list[Candidate]:
    """Sample down (seeded) every real source above ``share`` of the real class."""
    counts = Counter(c.source for c in candidates if c.label == 0)
    total = sum(counts.values())
    caps = {}
    for source, n in counts.most_common():
        others = total - n
        cap = int(share * others / (1.0 - share)) if share < 1.0 else n
        if n > cap and others > 0:
            caps[source] = cap
            total = others + cap
    kept = []
    for source in sorted(caps):
        members = [c for c in candidates if c.source == source]
        order = np.random.default_rng([seed, zlib.crc32(source.encode())]).permutation(len(members))
        kept += [members[i] for i in sorted(order[: caps[source]])]
    return [c for c in candidates if c.source not in caps] + kept


def snapshot_paths(config: BuildConfig) -> dict[str, Path]:
    """``{owner/name: snapshot path}`` of the repositories the build reads; every one asked
    for must be there (``fetch`` brings it)."""
    if config.snapshots is None:
        return {}
    paths = {repo: config.snapshots / repo.replace("/", "+") / "repo" for repo in config.repos}
    missing = [repo for repo, path in paths.items() if not path.exists()]
    if missing:
        raise SystemExit(
            f"error: no snapshot of {', '.join(missing)} under {config.snapshots} "
            "(fetch it, or leave it out with --repos)"
        )
    return paths


def build(config: BuildConfig) -> dict:
    """Build the dataset; returns the manifest's summary."""
    skipped: Counter = Counter()
    candidates = read_candidates(config)
    plain, generated = prepare_all(candidates, config, skipped)
    rows = plain + generated
    group_near_duplicates(rows, config.near_dup_bits)
    assign_splits(rows, config.ratios, config.seed)
    write(rows, config.out, config.overwrite)
    summary = summarise(rows, skipped)
    manifest = {
        "settings": {k: str(v) for k, v in asdict(config).items()},
        "summary": summary,
        "files": [row.record() for row in rows],
    }
    (config.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return summary
