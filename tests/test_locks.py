"""The committed locks (``locks/*.txt``, ``make lock``) agree with ``pyproject.toml``, and the
environment under test is the locked one: a fresh machine next month tests these versions."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
ALL_EXTRAS = ("train", "serve", "provenance", "data", "bench", "bulk", "ray", "dev")
LOCKS = {"serve.txt": ("serve", "provenance"), "all.txt": ALL_EXTRAS}
PIN = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;#]+)")


def pins(lock: str) -> dict[str, str]:
    """``{canonical name: version}`` of a lock file."""
    found = {}
    for line in (ROOT / "locks" / lock).read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonicalize_name(match.group(1))] = match.group(3)
    return found


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_of_pyproject_is_pinned_within_its_bounds(lock):
    pinned = pins(lock)
    for requirement in wanted(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in locks/{lock}: run make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"locks/{lock} pins {name}=={pinned[name]}, outside {requirement}: run make lock"
        )


def test_the_server_lock_has_no_training_stack():
    pinned = pins("serve.txt")
    assert not {"tensorflow", "keras", "tf2onnx"} & set(pinned)
    assert set(pinned) <= set(pins("all.txt")) | {"setuptools"}


def test_the_environment_under_test_is_the_locked_one():
    """``make test`` installs locks/all.txt: every pin is the installed version."""
    differ = {}
    for name, version in pins("all.txt").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            differ[name] = (version, installed)
    assert not differ, f"installed versions differ from locks/all.txt (locked, installed): {differ}"
