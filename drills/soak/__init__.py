"""``python -m drills soak``: minutes of mixed good and bad traffic against a real server.

A real ``python -m serving`` (subprocess, free loopback port, default settings) gets a
seeded mix of requests from ``--concurrency`` keep-alive clients for ``--duration`` seconds:
predictions (raw and multipart), batches with a broken file inside, CAM explanations, KServe
v2 tensors, listings, and hostile requests (garbage, truncated, empty, pixel bomb,
unsupported format, wrong content type, unknown or invalid model, malformed / NaN / deeply
nested JSON, wrong method). Every good answer is checked against the probability computed
for that image without the server (onnxruntime on ``core.preprocessing`` output); every bad
one against its documented status. The server's resident memory (psutil, else
``/proc/<pid>/status`` VmRSS, summed over its process tree) is sampled throughout.

With ``--access`` the server has API keys (one per client, plus one for a flooder) and
per-key rate limits on; good clients are paced under the rate; hostile requests add a
missing and a wrong key (401); a flooding client over its rate must get only 200 or 429,
and no more 200s than the token bucket allows; ``--slow-clients`` slow-header connections
are held open from a separate process and must be cut off at the header deadline.

It passes when nothing was lost (a good request without a 200), nothing mismatched, no
5xx and no unexpected status, and the server's RSS at the end is at most its RSS after the
warm-up plus ``--memory-bound-mb``. Results: ``benchmarks/results/soak-<machine>-<date>.json``;
the README's "Reliability" section is then regenerated (:func:`render_reliability_section`).
"""

from __future__ import annotations

from drills.soak.cli import add_soak_parser, cmd_soak
from drills.soak.config import DEFAULT_OUT, README, SoakConfig
from drills.soak.memory import MemorySampler, rss_mb
from drills.soak.mix import (
    PROBABILITY_TOLERANCE,
    Kind,
    Reference,
    _good_images,
    _prediction_check,
    build_traffic,
)
from drills.soak.report import (
    CASES_FILE,
    SECTION_END,
    SECTION_START,
    latest_soak,
    render_reliability_section,
    soak_line,
    update_readme,
)
from drills.soak.run import _resolve_model, run_soak
from drills.soak.standin import STANDIN_CAM, STANDIN_SIZE, write_standin_model
from drills.soak.traffic import Tally, _judge

__all__ = [
    "CASES_FILE",
    "DEFAULT_OUT",
    "PROBABILITY_TOLERANCE",
    "README",
    "SECTION_END",
    "SECTION_START",
    "STANDIN_CAM",
    "STANDIN_SIZE",
    "Kind",
    "MemorySampler",
    "Reference",
    "SoakConfig",
    "Tally",
    "add_soak_parser",
    "build_traffic",
    "cmd_soak",
    "latest_soak",
    "render_reliability_section",
    "rss_mb",
    "run_soak",
    "soak_line",
    "update_readme",
    "write_standin_model",
    # internals the tests drive directly (tests/reliability/test_reliability_soak.py)
    "_good_images",
    "_judge",
    "_prediction_check",
    "_resolve_model",
]
