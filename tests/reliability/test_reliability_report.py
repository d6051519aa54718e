"""docs/RELIABILITY.md's table is generated from the recorded results, never typed."""

from __future__ import annotations

import json
import re

from helpers.server import REPO_ROOT
from reliability_cases import all_cases

from drills.soak import report as soak
from drills.soak.config import DEFAULT_OUT

RESULTS = REPO_ROOT / DEFAULT_OUT
RECORD = "run `.venv/bin/python tests/reliability/record_cases.py`"


def _recorded() -> dict:
    return json.loads((RESULTS / soak.CASES_FILE).read_text())


def test_recorded_cases_are_the_current_catalogue():
    recorded = {(case["group"], case["case"]): case for case in _recorded()["cases"]}
    catalogue = {(case.group, case.name): case for case in all_cases()}
    assert set(recorded) == set(catalogue), f"the catalogue changed: {RECORD}"
    for key, case in catalogue.items():
        outcome = recorded[key]
        assert outcome["expected_status"] == case.expected, f"{key}: {RECORD}"
        assert outcome["passed"] or outcome["known_bug"] == case.known_bug, outcome


def test_reliability_page_section_is_the_rendering_of_the_results():
    page = (REPO_ROOT / "docs" / "RELIABILITY.md").read_text()
    pattern = re.escape(soak.SECTION_START) + r".*?" + re.escape(soak.SECTION_END)
    found = re.search(pattern, page, re.S)
    assert found, "docs/RELIABILITY.md lacks the generated Reliability block markers"
    expected = soak.render_reliability_section(_recorded(), soak.latest_soak(RESULTS))
    assert found.group(0) == expected, "stale: run `python -m drills soak --readme-only`"


def test_rendering_groups_routes_and_shows_failures(tmp_path):
    def case(name, group="g", passed=True, observed=400, known=None, problems=()):
        return {"group": group, "case": name, "request": f"POST /{name}", "expected_status": 400,
                "expected_code": None, "observed_status": observed, "passed": passed,
                "problems": list(problems), "detail": "", "known_bug": known}  # fmt: skip

    cases = {
        "recorded_at": "2026-01-02T00:00:00Z", "machine_name": "m", "recorded_by": "me",
        "cases": [case("a on GET /x"), case("a on GET /y", observed=404, passed=False,
                                              problems=["status 404, expected 400"]),
                  case("b|c"), case("k", passed=False, observed=500, known="core bug")],
    }  # fmt: skip
    text = soak.render_reliability_section(cases, None)
    assert "| g | 3 | 4 | 2 | 1 | 1 |" in text
    assert (
        "| a | `2 routes, e.g. POST /a on GET /x` | 400 | 400 / 404 | **FAILED**: status 404"
        in text
    )
    assert "| b\\|c |" in text and "**known bug**: core bug" in text
    assert "Soak: not run yet" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{soak.SECTION_START}\nold\n{soak.SECTION_END}\noutro\n")
    (tmp_path / soak.CASES_FILE).write_text(json.dumps(cases))
    assert soak.update_readme(readme, tmp_path)
    assert readme.read_text() == f"intro\n{text}\noutro\n"
