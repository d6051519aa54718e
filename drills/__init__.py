"""Reliability drills, apart from the speed benchmarks: ``python -m drills soak`` (minutes of
mixed good and hostile traffic against a real server, memory and answers checked) and
``python -m drills slowloris`` (slow-header clients beside normal load). They share the
benchmarks' server launcher and HTTP client (:mod:`benchmarks.servers`,
:mod:`benchmarks.rawhttp`) and write under ``benchmarks/results/``; docs/RELIABILITY.md holds
their generated tables."""
