"""Read-only access to the objects of a git snapshot (a bare git dir or a clone's ``.git``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitSnapshot:
    """Lists and reads blobs at one commit without a work tree (``git cat-file --batch``)."""

    def __init__(self, path: Path, rev: str = "HEAD") -> None:
        path = Path(path)
        self.git_dir = path / ".git" if (path / ".git").exists() else path
        if not (self.git_dir / "objects").is_dir():
            raise SystemExit(f"error: {path} is not a git directory or a git clone")
        self.commit = self._git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
        self._batch: subprocess.Popen | None = None

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"error: git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def list_blobs(self, prefix: str) -> list[tuple[str, str]]:
        """``(object id, path)`` of every file under ``prefix`` at the commit, sorted by path."""
        listing = self._git("ls-tree", "-r", "-z", self.commit, "--", prefix)
        blobs = []
        for entry in filter(None, listing.split("\0")):
            meta, path = entry.split("\t", 1)
            _, kind, oid = meta.split()
            if kind == "blob":
                blobs.append((oid, path))
        return sorted(blobs, key=lambda blob: blob[1])

    def read(self, oid: str) -> bytes | None:
        """The blob's bytes, or None where the snapshot lacks the object."""
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "--git-dir", str(self.git_dir), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        assert self._batch.stdin and self._batch.stdout
        self._batch.stdin.write(f"{oid}\n".encode())
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            return None
        data = self._batch.stdout.read(int(header[2]))
        self._batch.stdout.read(1)  # trailing newline
        return data

    def close(self) -> None:
        if self._batch is not None:
            self._batch.communicate()
            self._batch = None
