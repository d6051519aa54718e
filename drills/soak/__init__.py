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
docs/RELIABILITY.md's generated section is then rewritten (:mod:`drills.soak.report`).

Modules: ``config`` (settings), ``mix`` (the traffic's kinds and reference answers),
``traffic`` (sending and judging), ``slowclients``, ``memory``, ``standin`` (a model when the
repository has none), ``run`` (one soak), ``report`` (its line and the docs section), ``cli``.
"""
