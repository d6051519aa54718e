"""Generated sections of documents: the text between a start and an end marker (both kept),
rewritten from results by a command and compared by its ``--check``, never typed by hand.
README.md, DATA.md and docs/*.md hold such sections; every stage's renderer uses these."""

from __future__ import annotations

from pathlib import Path


def with_section(text: str, start: str, end: str, block: str) -> str | None:
    """``text`` with its first section from marker ``start`` to the next ``end`` replaced by
    ``block`` (which carries the markers), or None when either marker is missing."""
    head = text.find(start)
    tail = text.find(end, head + len(start)) if head >= 0 else -1
    return text[:head] + block + text[tail + len(end) :] if tail >= 0 else None


def update_section(path: Path, start: str, end: str, block: str, check: bool = False) -> bool:
    """Write ``block`` over the file's ``start`` ... ``end`` section (True); with ``check``
    write nothing and say whether the file already holds it. ValueError naming the file when
    the markers are missing."""
    text = path.read_text()
    new = with_section(text, start, end, block)
    if new is None:
        raise ValueError(f"{path} has no {start!r} ... {end!r} section")
    if check:
        return new == text
    path.write_text(new)
    return True


def replace_section(path: Path, start: str, end: str, block: str) -> bool:
    """:func:`update_section` for a renderer that reports missing markers itself: False, and
    nothing written, when they are missing."""
    try:
        return update_section(path, start, end, block)
    except ValueError:
        return False
