"""Record the hostile-request catalogue's outcomes for docs/RELIABILITY.md.

Starts a fresh real server (the tiny test model), sends every case of
``reliability_cases.all_cases()`` exactly as the tests do, checks that a normal prediction
still works after each, and writes ``benchmarks/results/reliability-cases.json`` (case,
expected status, observed status, problems); then regenerates docs/RELIABILITY.md's
table from it (``drills.soak.update_readme``). About 10 s.

    .venv/bin/python tests/reliability/record_cases.py [--out benchmarks/results] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for folder in (HERE, HERE.parent, REPO_ROOT):  # this folder, tests/ (helpers), the repo
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from helpers import ServerProcess  # noqa: E402
from reliability_cases import (  # noqa: E402
    SERVER_ARGS,
    Outcome,
    Reference,
    all_cases,
    judge,
    send,
    still_serving,
    write_repository,
)

from benchmarks.sysinfo import describe_machine, machine_slug  # noqa: E402
from drills.soak.config import DEFAULT_OUT, README  # noqa: E402
from drills.soak.report import CASES_FILE, update_readme  # noqa: E402

RECORDED_BY = "python tests/reliability/record_cases.py"


def record(out_dir: Path) -> dict:
    """Run every case against a fresh server; write and return the results document."""
    from tqdm import tqdm

    cases = all_cases()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        root = write_repository(Path(scratch) / "models")
        reference = Reference(root)
        with ServerProcess(root, *SERVER_ARGS) as server:
            for case in tqdm(cases, desc="hostile requests", unit="case"):
                try:
                    outcome = judge(case, send(case, server.port), reference)
                except OSError as exc:  # no answer at all
                    outcome = Outcome(case, None, [f"no answer: {exc}"])
                outcome.problems += still_serving(server.port, reference)
                outcomes.append(outcome.record())
            exit_code = server.terminate()
    document = {
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recorded_by": RECORDED_BY,
        "machine_name": machine_slug(describe_machine()),
        "server": {
            "args": list(SERVER_ARGS),
            "model": "tests/helpers tiny 32x32 model",
            "exit_code_after_sigterm": exit_code,
        },  # fmt: skip
        "cases": outcomes,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CASES_FILE).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=RECORDED_BY, description=__doc__.split("\n\n")[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO_ROOT / DEFAULT_OUT, help="results folder")
    parser.add_argument("--no-readme", action="store_true", help="do not touch docs/RELIABILITY.md")
    args = parser.parse_args(argv)
    document = record(args.out)
    failed = [case for case in document["cases"] if not case["passed"]]
    print(f"{len(document['cases'])} cases, {len(failed)} not as documented "
          f"({sum(1 for case in failed if case['known_bug'])} known bugs)")  # fmt: skip
    for case in failed:
        print(f"  {case['group']}: {case['case']}: {'; '.join(case['problems'])}")
    if not args.no_readme and update_readme(REPO_ROOT / README, args.out):
        print(f"regenerated the Reliability table in {REPO_ROOT / README}")
    return 1 if any(not case["known_bug"] for case in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
