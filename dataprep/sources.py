"""Where the images come from: one :class:`Candidate` per file, with source, kind and licence.

Kinds: ``real``, ``generated-gan``, ``generated-diffusion``, ``photoshop``, ``faceswap``.
Files of one person (or one prompt, or one generator seed) share a ``group_hint``, so they
always share a split.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dataprep.gitsnapshot import GitSnapshot

REAL, FAKE = 0, 1  # label = index in core.decision.CLASS_NAMES order (REAL, FAKE)
GAN, DIFFUSION = "generated-gan", "generated-diffusion"
GENERATED_KINDS = (GAN, DIFFUSION)
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
    kind: str  # real | generated-gan | generated-diffusion | photoshop | faceswap
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
    """Generated faces listed in ``folder/manifest.jsonl`` (python -m dataprep.gan)."""
    manifest = folder / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(f"error: {manifest} not found; run python -m dataprep.gan")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda row: row["index"])
    for row in rows[:limit]:
        path = folder / row["file"]
        yield Candidate(
            "mobilestylegan",
            GAN,
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


UTKFACE_REPO = "mattans/AgeProgression"
UTKFACE_PREFIX = "data/UTKFace/unlabeled/"
UTKFACE_LICENCE = "UTKFace: non-commercial research; images remain their owners'"
UTKFACE_NAME = re.compile(r"(\d+)_(\d)_(\d)_(\d+)\.jpg\.chip\.jpg$")
SDFD_REPO = "gebaltso/SDFD"
SDFD_LICENCE = "SDFD (FG 2024): research; Stable Diffusion 2.1 outputs (CreativeML Open RAIL++-M)"
SHARP_REALS = (  # (source, repo, path prefix, licence)
    (
        "frl-london",
        "debruine/webmorphR.stim",
        ("inst/neutral_front/", "inst/smiling_front/"),
        "Face Research Lab London set: CC BY 4.0",
    ),
    ("frl-canada", "debruine/webmorphR.stim", ("inst/canada/",), "webmorphR.stim canada: CC BY"),
    (
        "cfd",
        "Isaac-Crane/opacity-cpt",
        ("images/female/", "images/male/"),
        "Chicago Face Database: research use, no redistribution",
    ),
    (
        "deepface-tests",
        "serengil/deepface",
        ("tests/unit/dataset/",),
        "deepface test photos (press and web images): research use, owners' copyright",
    ),
)
DEEPFACE_LEFT_OUT = ("couple.jpg", "selfie-many-people.jpg", "img11_reflection.jpg")


def snapshot_blobs(snapshot: GitSnapshot, prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Image blobs under ``prefixes`` (macOS ``._`` shadow files left out), sorted by path."""
    blobs = []
    for prefix in prefixes:
        found = snapshot.list_blobs(prefix)
        if not found:
            raise SystemExit(f"error: no files under {prefix} at {snapshot.commit}")
        blobs += [
            (oid, path)
            for oid, path in found
            if path.lower().endswith(IMAGE_SUFFIXES) and not Path(path).name.startswith("._")
        ]
    return sorted(blobs, key=lambda blob: blob[1])


def read_blobs(
    snapshot: GitSnapshot, repo: str, blobs: list[tuple[str, str]]
) -> Iterator[tuple[str, str, bytes]]:
    """``(path, origin, bytes)`` of each blob present in the snapshot (LFS pointers skipped)."""
    for oid, path in blobs:
        data = snapshot.read(oid)
        if data is None or data.startswith(b"version https://git-lfs"):
            continue
        yield path, f"{repo}@{snapshot.commit[:12]}:{path}", data


def utkface(snapshot_path: Path, count: int, seed: int) -> Iterator[Candidate]:
    """A seeded sample of ``count`` UTKFace faces (200x200 aligned web photos, all ages).

    Near-duplicates (one photo filed under two ages) are grouped by the build's perceptual
    hash like every source's; greyscale photos are dropped by the build for every source."""
    snapshot = GitSnapshot(snapshot_path)
    try:
        blobs = [
            b for b in snapshot_blobs(snapshot, (UTKFACE_PREFIX,)) if UTKFACE_NAME.search(b[1])
        ]
        random.Random(f"{seed}/utkface").shuffle(blobs)
        for _, origin, data in read_blobs(snapshot, UTKFACE_REPO, sorted(blobs[:count])):
            yield Candidate("utkface", "real", REAL, origin, UTKFACE_LICENCE, data=data)
    finally:
        snapshot.close()


def sdfd(snapshot_path: Path, limit: int | None = None) -> Iterator[Candidate]:
    """SDFD's Stable Diffusion 2.1 faces (``allImages/<prompt>,<n>.jpg``); images of one
    prompt share a group."""
    snapshot = GitSnapshot(snapshot_path)
    try:
        blobs = snapshot_blobs(snapshot, ("allImages/",))[:limit]
        for path, origin, data in read_blobs(snapshot, SDFD_REPO, blobs):
            prompt = Path(path).stem.split(",")[0]
            yield Candidate(
                "sd21-sdfd", DIFFUSION, FAKE, origin, SDFD_LICENCE, f"sdfd-{prompt}", data=data
            )
    finally:
        snapshot.close()


def person_of(source: str, path: str, same_person: dict[str, str]) -> str:
    """The person a sharp-real photo shows (its split group)."""
    name = Path(path).name
    if source == "frl-london":  # 001_03.jpg (neutral), 001_08.jpg (smiling): person 001
        return f"frl-{name.split('_')[0]}"
    if source == "cfd":  # CFD-AF-200-228-N.jpg: person AF-200
        return "cfd-" + "-".join(name.split("-")[1:3])
    if source == "deepface-tests":
        return f"deepface-{same_person.get(name, name)}"
    return f"{source}-{Path(name).stem}"


def deepface_people(snapshot: GitSnapshot) -> dict[str, str]:
    """File -> one representative file of the same person, from the repository's own
    ``master.csv`` pairs (``Decision == Yes``)."""
    from dataprep.unionfind import UnionFind

    blobs = dict((path, oid) for oid, path in snapshot.list_blobs("tests/unit/dataset/"))
    oid = blobs.get("tests/unit/dataset/master.csv")
    data = None if oid is None else snapshot.read(oid)
    pairs = [] if data is None else list(csv.DictReader(io.StringIO(data.decode())))
    names = sorted({p[k] for p in pairs for k in ("file_x", "file_y")})
    index = {name: i for i, name in enumerate(names)}
    sets = UnionFind(len(names))
    for pair in pairs:
        if pair["Decision"].strip() == "Yes":
            sets.union(index[pair["file_x"]], index[pair["file_y"]])
    return {name: names[sets.find(i)] for name, i in index.items()}


def sharp_reals(snapshots: dict[str, Path], limit: int | None = None) -> Iterator[Candidate]:
    """Sharp, high-resolution real portraits (faces of 500-900 px), grouped by person."""
    for source, repo, prefixes, licence in SHARP_REALS:
        if repo not in snapshots:
            continue
        snapshot = GitSnapshot(snapshots[repo])
        try:
            people = deepface_people(snapshot) if source == "deepface-tests" else {}
            blobs = [
                b
                for b in snapshot_blobs(snapshot, prefixes)
                if Path(b[1]).name not in DEEPFACE_LEFT_OUT
            ][:limit]
            for path, origin, data in read_blobs(snapshot, repo, blobs):
                group = person_of(source, path, people)
                yield Candidate(source, "real", REAL, origin, licence, group, data=data)
        finally:
            snapshot.close()
