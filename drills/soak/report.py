"""docs/RELIABILITY.md's generated section: hostile-case table plus the latest soak line."""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks.cli import newest_results
from core.sections import replace_section

CASES_FILE = "reliability-cases.json"
SECTION_START = "<!-- reliability-table:start (generated from benchmarks/results; do not edit) -->"
SECTION_END = "<!-- reliability-table:end -->"


def latest_soak(out_dir: Path) -> dict | None:
    """The newest soak results in ``out_dir`` (by start time), or None."""
    found = newest_results(out_dir, "soak-*.json", "started_at")
    return found[1] if found else None


def soak_line(soak: dict | None) -> str:
    if soak is None:
        return "Soak: not run yet (`python -m drills soak --duration 180`)."
    requests, memory = soak["requests"], soak["memory"]
    by_status = ", ".join(
        f"{status}: {count}" for status, count in soak["errors_by_status"].items()
    )
    verdict = "passed" if soak["passed"] else "FAILED"
    model = soak["model"]["source"].split(" (")[0]
    if soak["model"].get("name"):
        model += f" `{soak['model']['name']}`"
    return (
        f"Soak ({verdict}; `python -m drills soak{' --access' if soak.get('access') else ''} "
        f"--duration {soak['duration_s']:g}` on "
        f"{soak['machine_name']}, {soak['started_at'][:10]}, model {model}): "
        f"{requests['total']} requests in {soak['duration_s'] + soak['warmup_s']:g} s "
        f"({requests['good']} good, {requests['bad']} hostile; by status {by_status}); "
        f"**{soak['lost']} lost, {soak['mismatched']} mismatched, {soak['server_errors_5xx']} 5xx, "
        f"{soak['unexpected_status']} unexpected statuses**; server RSS start "
        f"{memory['start_mb']} MB, after warm-up {memory['after_warmup_mb']} MB, max "
        f"{memory['max_mb']} MB, end {memory['end_mb']} MB (bound: {memory['bound']} = "
        f"{memory['limit_mb']} MB, {'met' if memory['within_bound'] else 'NOT met'})."
        + _access_text(soak)
    )


def _access_text(soak: dict) -> str:
    """The ``--access`` part of the soak line: keys, rate limits, flooder, slow clients."""
    access = soak.get("access")
    if not access:
        return ""
    flood, slow = access["flood_by_status"], access["slow_clients"] or {}
    held = slow.get("held_s", {})
    return (
        f" With `--access`: {access['keys']} API keys (401s above: requests without or with a "
        f"wrong key), `--rate {access['rate']:g} --burst {access['burst']}`, "
        f"{soak['config']['concurrency']} good clients paced at {access['client_rate']:g} "
        f"requests/s each; a client flooding at "
        f"{access['flood_rate']:g}/s got {flood.get('200', 0)} × 200 (bound "
        f"{access['flood_ok_bound']:g}) and {flood.get('429', 0)} × 429; "
        f"{slow.get('connections', 0)} slow-header connections held open throughout, "
        f"{slow.get('cut_off_by_server', 0)} cut off by the server after {held.get('median')} s "
        f"(median; max {held.get('max')} s); server run under nice {soak.get('nice', 0)}; "
        f"checks {'passed' if access['passed'] else 'FAILED'}."
    )


def _group_rows(cases: list[dict]) -> list[dict]:
    """One row per case; a case tried on several routes ('x on GET /a') becomes one row."""
    rows: dict[tuple[str, str], dict] = {}
    for case in cases:
        label = case["case"].split(" on ")[0]
        row = rows.setdefault(
            (case["group"], label),
            {
                "group": case["group"],
                "case": label,
                "requests": [],
                "expected": set(),
                "observed": set(),
                "outcomes": [],
            },
        )
        row["requests"].append(case["request"])
        row["expected"].add(str(case["expected_status"]))
        row["observed"].add(str(case["observed_status"]))
        row["outcomes"].append(case)
    return list(rows.values())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _result(row: dict) -> str:
    failed = [case for case in row["outcomes"] if not case["passed"]]
    if not failed:
        measured = [re.search(r"\(answered after [^)]*\)", c["detail"]) for c in row["outcomes"]]
        found = [match.group(0) for match in measured if match]
        return "as documented" + (f" {found[0]}" if found else "")
    bugs = {case["known_bug"] for case in failed if case["known_bug"]}
    if len(bugs) == 1 and all(case["known_bug"] for case in failed):
        return f"**known bug**: {bugs.pop()}"
    return "**FAILED**: " + "; ".join(sorted({p for case in failed for p in case["problems"]}))


def render_reliability_section(cases: dict, soak: dict | None) -> str:
    """The generated part of docs/RELIABILITY.md (between its markers)."""
    rows = _group_rows(cases["cases"])
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    lines = [
        SECTION_START,
        "",
        f"Recorded {cases['recorded_at'][:10]} on {cases['machine_name']} against a real "
        f"`python -m serving` (`{cases['recorded_by']}`): {len(cases['cases'])} requests, "
        f"{sum(c['passed'] for c in cases['cases'])} answered as documented.",
        "",
        "| group | cases | requests | as documented | known bugs | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group, group_rows in groups.items():
        outcomes = [case for row in group_rows for case in row["outcomes"]]
        known = sum(1 for c in outcomes if not c["passed"] and c["known_bug"])
        failed = sum(1 for c in outcomes if not c["passed"] and not c["known_bug"])
        lines.append(
            f"| {group} | {len(group_rows)} | {len(outcomes)} | "
            f"{sum(c['passed'] for c in outcomes)} | {known} | {failed} |"
        )
    for group, group_rows in groups.items():
        lines += [
            "",
            f"<details><summary>{group}</summary>",
            "",
            "| case | request | expected | observed | result |",
            "|---|---|---|---|---|",
        ]
        for row in group_rows:
            requests = row["requests"]
            shown = (
                requests[0] if len(requests) == 1 else f"{len(requests)} routes, e.g. {requests[0]}"
            )
            lines.append(
                f"| {_cell(row['case'])} | `{_cell(shown)}` | {' / '.join(sorted(row['expected']))}"
                f" | {' / '.join(sorted(row['observed']))} | {_cell(_result(row))} |"
            )
        lines += ["", "</details>"]
    lines += ["", soak_line(soak), "", SECTION_END]
    return "\n".join(lines)


def update_readme(readme: Path, out_dir: Path) -> bool:
    """Replace the generated Reliability block in ``readme`` (docs/RELIABILITY.md, the soak's
    ``README`` setting); False if the markers are missing."""
    cases_path = out_dir / CASES_FILE
    if not readme.is_file() or not cases_path.is_file():
        return False
    section = render_reliability_section(json.loads(cases_path.read_text()), latest_soak(out_dir))
    return replace_section(readme, SECTION_START, SECTION_END, section)
