"""core.sections: the generated sections every stage's renderer rewrites and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.sections import replace_section, update_section, with_section

START, END = "<!-- x:start -->", "<!-- x:end -->"
TEXT = f"intro\n{START}\nold\n{END}\nmiddle\n{START}\nsecond\n{END}\noutro\n"
NEW = f"{START}\nnew\n{END}"
UPDATED = TEXT.replace("\nold\n", "\nnew\n", 1)  # the first section only


def test_the_first_section_is_replaced_and_the_rest_kept():
    assert with_section(TEXT, START, END, NEW) == UPDATED


def test_check_compares_and_writes_nothing_then_update_writes(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text(TEXT)
    assert update_section(document, START, END, NEW, check=True) is False
    assert document.read_text() == TEXT
    assert update_section(document, START, END, NEW) is True
    assert document.read_text() == UPDATED
    assert update_section(document, START, END, NEW, check=True) is True


@pytest.mark.parametrize("text", ["no markers", f"{START} but no end", f"{END} before {START}"])
def test_missing_markers_change_nothing(tmp_path: Path, text: str):
    assert with_section(text, START, END, NEW) is None
    document = tmp_path / "doc.md"
    document.write_text(text)
    with pytest.raises(ValueError, match="doc.md has no"):
        update_section(document, START, END, NEW)
    assert replace_section(document, START, END, NEW) is False
    assert document.read_text() == text
