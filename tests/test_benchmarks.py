"""The benchmark suite end to end (tiny model, tiny load) and its parts against real servers."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from benchmarks.__main__ import build_parser, main
from benchmarks.firstrequest import FirstRequestConfig
from benchmarks.hey import HeyConfig, parse_csv
from benchmarks.images import ImageSet, decoded_batch, load_images, synthetic_jpegs
from benchmarks.mixed import MixedConfig
from benchmarks.paired import PairedConfig
from benchmarks.pipeline import PipelineConfig
from benchmarks.promtext import diff_histograms, find_batch_histogram, parse_histograms
from benchmarks.raw import RawConfig
from benchmarks.rawhttp import RawHttpConnection
from benchmarks.runner import SuiteConfig, run_suite
from benchmarks.schema import validate_results
from core.preprocessing import encode_jpeg

TINY_SERVER_ARGS = (
    "--intra-op-threads",
    "1",
    "--decode-threads",
    "1",
    "--warmup-batch-sizes",
    "1",
)


def _image_folder(root: Path, count: int = 6) -> Path:
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(count):
        rgb = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
        (folder / f"img{index}.jpg").write_bytes(encode_jpeg(rgb))
    return folder


def test_suite_runs_end_to_end_and_writes_complete_results(tiny_repo: Path, tmp_path: Path):
    config = SuiteConfig(
        models=tiny_repo,
        images=_image_folder(tmp_path),
        concurrency=(1, 3),
        requests=15,
        duration_s=5.0,
        warmup_requests=2,
        systems=("limits", "ours-off", "ours-on"),
        raw=RawConfig(batch_sizes=(1, 4), seconds_per_batch_size=0.05, max_runs=5),
        pipeline=PipelineConfig(
            batch_sizes=(1, 4),
            decode_threads=(1, 2),
            intra_op_threads=(1,),
            seconds_per_setting=0.05,
            confirm_seconds=0.05,
            min_images=4,
            latency_runs=4,
            session_variants=(("basic", False, True),),
        ),
        limit_concurrency=(1, 3),
        paired=PairedConfig(
            rounds=2, seconds=0.05, concurrency=3, latency_requests=4, latency_runs=4
        ),
        hey=HeyConfig(concurrency=3, requests=12),
        first_request=FirstRequestConfig(idle_s=0.2, repeats=2),
        mixed=MixedConfig(
            concurrency=2, requests=10, duration_s=3.0, explanations=1, num_samples=64
        ),  # fmt: skip
        server_args=TINY_SERVER_ARGS,
        out_dir=tmp_path / "results",
        machine_name="testbox",
        startup_timeout_s=60.0,
    )
    results, path = run_suite(config)

    assert validate_results(results) == []
    assert json.loads(path.read_text()) == json.loads(json.dumps(results))
    assert path.name == f"testbox-{results['created'][:10]}.json"
    assert [item["name"] for item in results["systems"]] == [
        "ours-batching-off",
        "ours-batching-on",
    ]
    for item in results["systems"]:
        assert "error" not in item and item["exit_code"] == 0  # stopped gracefully
        for level in item["levels"]:
            assert level["ok"] == level["requests"] == 15 and level["errors"] == {}
            batches = level["batch_sizes"]
            assert batches["histogram"] == "dfd_batch_size"
            # the warm-up is excluded: the measured batches hold exactly the measured rows
            assert round(batches["mean"] * batches["batches"]) == 15
            assert sum(batches["distribution"].values()) == batches["batches"]
            assert level["server_cpu_s"] > 0
    (limits,) = results["limits"]  # the tiny repository ships one model
    settings = limits["pipeline"]["settings"]
    swept = [(s["batch_size"], s["decode_threads"]) for s in settings[:4]]
    assert swept == [(1, 1), (1, 2), (4, 1), (4, 2)]
    variant = settings[4]
    assert (variant["graph_optimization"], variant["memory_arena"], variant["spin_wait"]) == (
        "basic",
        False,
        True,
    )
    assert all(s["images_per_s"] > 0 and s["images"] >= 4 for s in settings)
    latency = limits["pipeline"]["batch1_latency"]  # the best of both sessions the server has
    assert latency["lone_session"] in (True, False) and latency["ms_p50"] > 0
    limit = limits["pipeline"]["limit"]  # the best setting, measured again
    assert limit["swept_images_per_s"] == max(s["images_per_s"] for s in settings)
    assert limit["images"] >= 4 and limit["images_per_s"] > 0
    assert [lv["concurrency"] for lv in limits["server"]["levels"]] == [1, 3]
    assert all(lv["ok"] == 15 for lv in limits["server"]["levels"])
    paired = limits["server"]["paired"]  # limit and server in turn, while the server ran
    assert paired["concurrency"] == 3 and len(paired["rounds"]) == 2
    for row in paired["rounds"]:
        assert row["limit_images_per_s"] > 0 and row["server_images_per_s"] > 0
        assert row["server_errors"] == row["c1_errors"] == {}
        assert row["server_over_limit"] == pytest.approx(
            row["server_images_per_s"] / row["limit_images_per_s"], abs=1e-3
        )
        assert row["c1_overhead_ms_p50"] == pytest.approx(
            row["server_c1_ms_p50"] - row["in_process_ms_p50"], abs=1e-3
        )
    ratios = limits["ratios"]  # the medians of the rounds; the levels against their limit
    assert ratios["paired_server_over_limit"] == paired["server_over_limit"]
    assert paired["server_over_limit"] == pytest.approx(
        statistics.median(row["server_over_limit"] for row in paired["rounds"]), abs=1e-3
    )
    assert ratios["c1_overhead_ms_p50"] == paired["c1_overhead_ms_p50"]
    level3 = limits["server"]["levels"][1]["images_per_s"]
    assert ratios["server_over_limit"]["3"] == pytest.approx(
        level3 / paired["limit_images_per_s"], abs=1e-3
    )
    first = limits["server"]["first_request"]
    assert first["statuses"] == [200] and first["first_ms"] > 0 and first["idle_s"] == 0.2
    assert 0 < first["first_server_ms"] < first["first_ms"]  # the server's part of it
    assert 0 < first["following_server_ms_p50"] < first["following_ms_p50"]
    mixed = limits["server"]["mixed"]
    assert mixed["alone"]["errors"] == mixed["beside_explanations"]["errors"] == {}
    assert set(mixed["explanation_statuses"]) == {"200"} and mixed["p99_ratio"] > 0
    if shutil.which("hey"):
        assert limits["server"]["hey"]["status_counts"] == {"200": 12}
    else:
        assert "not installed" in limits["server"]["hey"]["error"]
    off = results["systems"][0]["levels"]
    assert all(set(level["batch_sizes"]["distribution"]) == {"1"} for level in off)
    metadata = json.loads((tiny_repo / "cnn" / "1" / "metadata.json").read_text())
    assert results["model"]["test_metrics"] == metadata["metrics"]["test"]
    assert [run["variant"] for run in results["raw"]["runs"]] == ["fp32"]
    summary = (path.parent / "SUMMARY.md").read_text()
    assert path.name in summary and "accuracy 0.000" in summary
    for plot in ("throughput", "latency-cdf"):
        assert (path.parent / f"{path.stem}-{plot}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_server_that_cannot_start_is_reported_not_fatal(tiny_repo: Path, tmp_path: Path):
    config = SuiteConfig(
        models=tiny_repo,
        images=_image_folder(tmp_path, 2),
        concurrency=(1,),
        requests=2,
        systems=("ours-on",),
        raw=RawConfig(batch_sizes=(1,), seconds_per_batch_size=0.01, max_runs=2),
        server_args=("--max-batch-size", "0"),  # refused by the server's config check
        out_dir=tmp_path / "results",
        write_plots=False,
    )
    results, _ = run_suite(config)
    (system,) = results["systems"]
    assert "max_batch_size" in system["error"] and system["levels"] == []
    assert {t["status"] for t in results["targets"]} == {"not measured"}


def test_hey_csv_is_summarised_from_its_request_lines():
    text = (
        "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n"
        "0.0100,0.001,0,0,0.009,0,200,0.0000\n"
        "0.0200,0,0,0,0.02,0,200,0.0050\n"
        "0.0300,0,0,0,0.03,0,503,0.0100\n"
        "0.0400,0,0,0,0.04,0,200,0.0600\n"
    )
    summary = parse_csv(text)
    assert summary["requests"] == 4
    assert summary["status_counts"] == {"200": 3, "503": 1}
    assert summary["wall_s"] == 0.1  # last request: offset 0.06 + 0.04 s
    assert summary["images_per_s"] == 30.0  # 3 answered images in 0.1 s
    assert summary["latency_ms"]["p50"] == 25.0
    with pytest.raises(ValueError, match="no request lines"):
        parse_csv("response-time,status-code,offset\n")


def test_pipeline_settings_are_checked_where_built():
    with pytest.raises(ValueError, match="decode_threads"):
        PipelineConfig(decode_threads=(0,))
    with pytest.raises(ValueError, match="seconds_per_setting"):
        PipelineConfig(seconds_per_setting=0)
    with pytest.raises(ValueError, match="confirm_seconds"):
        PipelineConfig(confirm_seconds=-1)
    with pytest.raises(ValueError, match="concurrency"):
        HeyConfig(concurrency=8, requests=4)


def test_raw_client_handles_length_chunked_and_close_framing():
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n",
        b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nthird",
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfourth",
    ]
    seen: list[tuple[bytes, bytes]] = []
    connections = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            seen.append((head.split(b" ")[1], await reader.readexactly(length)))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break
        writer.close()

    async def scenario() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = RawHttpConnection(f"http://127.0.0.1:{port}")
        got = [await client.request("POST", f"/r{i}", b"x" * i) for i in range(1, 5)]
        await client.close()
        server.close()
        await server.wait_closed()
        return got

    got = asyncio.run(scenario())
    assert got == [(200, b"first"), (201, b"second"), (503, b"third"), (200, b"fourth")]
    assert seen == [(b"/r1", b"x"), (b"/r2", b"xx"), (b"/r3", b"xxx"), (b"/r4", b"xxxx")]
    assert len(connections) == 2  # kept alive, then reconnected after "Connection: close"


def test_raw_client_rejects_non_http_urls():
    with pytest.raises(ValueError, match="http://"):
        RawHttpConnection("https://example.org")


def test_batch_histogram_diff_counts_only_new_observations():
    registry = CollectorRegistry()
    batch = Histogram(
        "dfd_batch_size",
        "rows",
        ["model", "version"],
        buckets=(1, 2, 4, 8, 12, 16),
        registry=registry,
    )
    other = Histogram("dfd_queue_delay_seconds", "delay", registry=registry)
    for size in (1, 1, 8):
        batch.labels("cnn", "1").observe(size)
    before = parse_histograms(generate_latest(registry).decode())
    for size in (1, 3, 4, 12, 16, 40):
        batch.labels("cnn", "1").observe(size)
    batch.labels("xception", "1").observe(2)  # label sets are summed
    other.observe(0.01)
    after = parse_histograms(generate_latest(registry).decode())

    changes = diff_histograms(before, after)
    found = find_batch_histogram(changes)
    assert found is not None and found.name == "dfd_batch_size"
    assert found.count == 7 and found.total == 78
    assert found.distribution() == {"1": 1, "2": 1, "3-4": 2, "9-12": 1, "13-16": 1, ">16": 1}
    assert find_batch_histogram(changes, "dfd_queue_delay_seconds").count == 1
    assert find_batch_histogram(changes, "no_such_metric") is None
    with pytest.raises(ValueError):  # the load generator then records no batch histogram
        parse_histograms("<html><body>Not Found</body></html>")


def test_images_from_a_folder_or_synthetic(tmp_path: Path):
    folder = _image_folder(tmp_path, 4)
    images = load_images(folder, limit=3)
    assert len(images.payloads) == 3 and images.content_type == "image/jpeg"
    assert decoded_batch(images, 5, 32).shape == (5, 32, 32, 3)
    synthetic = synthetic_jpegs(count=3, size=64)
    assert len(set(synthetic)) == 3 and all(p[:2] == b"\xff\xd8" for p in synthetic)
    assert synthetic == synthetic_jpegs(count=3, size=64)  # seeded
    with pytest.raises(FileNotFoundError, match="no image files"):
        load_images(tmp_path / "empty-or-missing")


def test_bad_configuration_is_a_clear_error(capsys):
    from benchmarks.loadgen import LoadConfig

    with pytest.raises(ValueError, match="concurrency"):
        LoadConfig("http://127.0.0.1:1", concurrency=0)
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "--concurrency", "1,zero"])
    assert exit_info.value.code == 2
    assert "comma-separated integers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--skip", "nginx"])


def test_run_without_a_model_says_what_to_do(tmp_path: Path, capsys):
    assert main(["run", "--models", str(tmp_path), "--no-plots", "--out", str(tmp_path)]) == 2
    assert "make export" in capsys.readouterr().err


def test_raw_command_times_every_variant_file(tiny_repo: Path, capsys):
    argv = ["raw", "--models", str(tiny_repo), "--model", "cnn", "--batch-sizes", "1,2"]
    assert main([*argv, "--raw-seconds", "0.05", "--providers", "cpu"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["preprocessing"]["ms_p50"] > 0
    [run] = raw["runs"]  # the tiny entry has only its FP32 file
    assert run["variant"] == "fp32" and [b["batch_size"] for b in run["batches"]] == [1, 2]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("run", "load", "raw", "summary", "explain", "uploads"):
        assert command in text


def test_load_command_against_a_real_server(tiny_repo: Path, tmp_path: Path, capsys):
    from benchmarks.servers import RunningServer, our_server_spec

    spec = our_server_spec("ours", tiny_repo, TINY_SERVER_ARGS)
    spec = replace(spec, startup_timeout_s=60.0)
    folder = _image_folder(tmp_path, 3)
    with RunningServer(spec) as server:
        code = main(
            [
                "load",
                "--url",
                server.base_url,
                "--concurrency",
                "2",
                "--requests",
                "6",
                "--warmup",
                "1",
                "--images",
                str(folder),
            ]
        )
        assert server.cpu_seconds() > 0
    assert code == 0
    (level,) = json.loads(capsys.readouterr().out)["levels"]
    assert level["ok"] == 6 and level["errors"] == {}


def test_load_counts_errors_by_status(tiny_repo: Path):
    from benchmarks.loadgen import LoadConfig, run_level_sync
    from benchmarks.servers import RunningServer, our_server_spec

    spec = replace(our_server_spec("ours", tiny_repo, TINY_SERVER_ARGS), startup_timeout_s=60.0)
    garbage = ImageSet((b"not an image", encode_jpeg(np.zeros((8, 8, 3), np.uint8))), "mixed")
    with RunningServer(spec) as server:
        level = run_level_sync(
            LoadConfig(server.base_url, concurrency=2, requests=10, warmup_requests=0), garbage
        )
    assert level["ok"] == 5 and level["errors"] == {"400": 5}
    assert level["requests"] == 10


def test_a_timed_out_request_does_not_leak_its_answer_into_the_next():
    from benchmarks.rawhttp import RawHttpConnection

    delays = [0.5, 0.0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            delay = delays.pop(0)
            await asyncio.sleep(delay)
            body = b"slow" if delay else b"fast"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + body)
            try:
                await writer.drain()
            except ConnectionError:
                break
        writer.close()

    async def scenario():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = RawHttpConnection(f"http://127.0.0.1:{port}")
        with pytest.raises(TimeoutError):
            await connection.request("POST", "/", b"a", timeout_s=0.2)
        answer = await connection.request("POST", "/", b"b", timeout_s=0.2)
        await connection.close()
        server.close()
        return answer

    assert asyncio.run(scenario()) == (200, b"fast")


def test_slowloris_block_is_rendered_from_results(tmp_path):
    from drills import slowloris

    level = {"requests": 100, "ok": 100, "errors": {}, "images_per_s": 50.0,
             "latency_ms": {"p50": 20.0, "p99": 40.0}}  # fmt: skip
    results = {
        "started_at": "2026-12-01T00:00:00Z", "machine_name": "m", "machine": {"cpu": "cpu"},
        "model": {"name": "cnn", "source": "repository"},
        "settings": {"connections": 500, "concurrency": 16, "duration_s": 40.0, "nice": 10},
        "without_attack_before": level, "with_attack": {**level, "errors": {"timeout": 1}},
        "without_attack_after": level, "p99_ratio": 1.25, "good_requests_failed": 1,
        "slow_clients": {"open_sampled": {"max": 500}, "all_open_before_measuring": True,
                         "cut_off_by_server": 2000, "held_s": {"median": 10.0, "max": 10.1}},
        "passed": False,
    }  # fmt: skip
    (tmp_path / "slowloris-m-2026-12-01.json").write_text(json.dumps(results))
    page = tmp_path / "ACCESS.md"
    page.write_text(f"intro\n{slowloris.START}\nold\n{slowloris.END}\n")
    assert slowloris.update_page(page, tmp_path)
    text = page.read_text()
    assert "target NOT met" in text and "**1.25×**" in text
    assert "| with 500 slow-header connections | 100 | 1 | 50.0 | 20.0 | 40.0 | — |" in text
    assert slowloris.render(None).endswith("Not run yet.\n" + slowloris.END)


def test_committed_access_page_block_is_the_rendering_of_the_results():
    from drills import slowloris

    root = Path(__file__).resolve().parents[1]
    text = (root / slowloris.PAGE).read_text()
    expected = slowloris.render(slowloris.latest(root / "benchmarks" / "results"))
    assert expected in text, "stale: run `python -m drills slowloris --readme-only`"
