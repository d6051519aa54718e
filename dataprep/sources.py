"""Where the images come from: one :class:`Candidate` per file, with source, kind and licence."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dataprep.gitsnapshot import GitSnapshot

REAL, FAKE = 0, 1  # label = index in core.decision.CLASS_NAMES order (REAL, FAKE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

SHARED_REALS = {
    "scut-fbp5500": "SCUT-FBP5500 (South China University of Technology): non-commercial research",
    "all-age-faces": "All-Age-Faces (AAF) dataset: non-commercial research",
    "celeba": "CelebA (CUHK MMLab): non-commercial research only",
}
REES_REPO = "Rees451/faces-fake-vs-real"
REES_SOURCES = (  # (source name, kind, label, repo path, licence)
    ("yonsei-real", "real", REAL, "data/raw/real_and_fake_face/real/", "Yonsei CIPLab: unstated"),
    (
        "yonsei-photoshop",
        "photoshop",
        FAKE,
        "data/raw/real_and_fake_face/fake/",
        "Yonsei CIPLab: unstated",
    ),
    ("lfw", "real", REAL, "data/raw/LFW_faceswap/real/", "LFW (UMass Amherst): research"),
    ("lfw-faceswap", "faceswap", FAKE, "data/raw/LFW_faceswap/fake/", "LFW-derived: research"),
)


@dataclass
class Candidate:
    """One input file before preparation. ``data`` is filled when it is read."""

    source: str
    kind: str  # real | gan | photoshop | faceswap
    label: int
    origin: str  # file path, or repo@commit:path
    licence: str
    group_hint: str = ""  # files sharing a hint always share a split (e.g. one GAN seed)
    data: bytes = b""


def shared_reals(root: Path, limit: int | None = None) -> Iterator[Candidate]:
    """The real photos of ``shared/data/real-faces/<source>/`` (sorted, optionally capped)."""
    for source, licence in SHARED_REALS.items():
        files = sorted(p for p in (root / source).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SystemExit(f"error: no images under {root / source}")
        for path in files[:limit]:
            yield Candidate(source, "real", REAL, str(path), licence, data=path.read_bytes())


def gan_faces(folder: Path, limit: int | None = None) -> Iterator[Candidate]:
    """Generated faces listed in ``folder/manifest.jsonl`` (scripts/generate_gan_faces.py)."""
    manifest = folder / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(f"error: {manifest} not found; run scripts/generate_gan_faces.py")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda row: row["index"])
    for row in rows[:limit]:
        path = folder / row["file"]
        yield Candidate(
            "mobilestylegan",
            "gan",
            FAKE,
            str(path),
            row["licence"],
            group_hint=f"gan-seed-{row['seed'][0]}-{row['seed'][1]}",
            data=path.read_bytes(),
        )


def rees_faces(snapshot_path: Path, per_source: int, seed: int) -> Iterator[Candidate]:
    """Yonsei reals and photoshopped fakes, LFW reals and FaceSwap fakes from the git snapshot
    (a seeded sample of at most ``per_source`` per source)."""
    snapshot = GitSnapshot(snapshot_path)
    try:
        for source, kind, label, prefix, licence in REES_SOURCES:
            blobs = snapshot.list_blobs(prefix)
            if not blobs:
                raise SystemExit(f"error: no files under {prefix} at {snapshot.commit}")
            random.Random(f"{seed}/{source}").shuffle(blobs)
            for oid, path in blobs[:per_source]:
                data = snapshot.read(oid)
                if data is None or data.startswith(b"version https://git-lfs"):
                    continue
                origin = f"{REES_REPO}@{snapshot.commit[:12]}:{path}"
                yield Candidate(source, kind, label, origin, licence, data=data)
    finally:
        snapshot.close()
