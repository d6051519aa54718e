"""``python -m serving`` as a real process: uvicorn on a free port, CLI exit codes,
body limits over a real socket, graceful SIGTERM, several workers, no TensorFlow."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from helpers import (
    ServerProcess,
    TinyModelSpec,
    expected_probability,
    png_image,
    slow_spec,
    write_model_entry,
)
from helpers.server import REPO_ROOT

from core.preprocessing import PreprocessConfig, preprocess_bytes

QUIET = ("--intra-op-threads", "1", "--warmup-batch-sizes", "1", "--log-level", "warning")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_help_documents_flags_and_environment():
    result = run_cli("--help")
    assert result.returncode == 0
    for text in ("--models", "--workers", "--max-queue-delay-ms", "DFD_MAX_BATCH_SIZE"):
        assert text in result.stdout


def test_serving_never_imports_tensorflow():
    code = (
        "import sys, serving.app, serving.__main__, serving.explain\n"
        "banned = ('tensorflow', 'keras', 'tf2onnx')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_or_empty_repository_exits_2_with_a_clear_message(tmp_path):
    missing = run_cli("--models", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli("--models", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no servable model" in empty.stderr
    bad_flag = run_cli("--models", str(tmp_path), "--max-batch-size", "0")
    assert bad_flag.returncode == 2 and "max_batch_size" in bad_flag.stderr


def _read_response_head(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _stream_until_answered(port: int, chunk_size: int, chunks: int) -> tuple[bytes, int]:
    """POST a chunked body slowly; stop as soon as the server answers. (response, bytes sent)"""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"\x00" * chunk_size
        try:
            for _ in range(chunks):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if select.select([sock], [], [], 0.002)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _read_response_head(sock), sent


def test_real_server_predicts_limits_bodies_and_stops_gracefully(tmp_path):
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=32))
    write_model_entry(root, "slow", 1, slow_spec(1.0, size=32, slow_dim=768))  # 1 s a run, timed
    # --bulk-quiet-s 0: no timing of bulk sizes at start, which costs ~20 runs of the slow model
    with ServerProcess(root, *QUIET, "--max-body-bytes", "20000", "--bulk-quiet-s", "0") as server:
        image = png_image(5, mean=180.0)
        # the README's curl example: curl -F file=@face.png localhost:8000/v1/predict
        response = httpx.post(server.url + "/v1/predict", files={"file": ("face.png", image)})
        assert response.status_code == 200
        expected = expected_probability(preprocess_bytes(image, PreprocessConfig(size=32)))
        assert response.json()["probability_fake"] == pytest.approx(expected, abs=1e-6)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "dfd_batch_size_count" in httpx.get(server.url + "/metrics").text

        declared = httpx.post(
            server.url + "/v1/predict", content=b"\x00" * 50_000,
            headers={"content-type": "image/png"},
        )  # fmt: skip
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "payload_too_large"

        head, sent = _stream_until_answered(server.port, 4096, 500)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert sent < 500 * 4096  # answered long before the 2 MB body was sent
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200

        result = {}

        def slow_request() -> None:
            result["response"] = httpx.post(
                server.url + "/v1/predict?model=slow", files={"file": ("a.png", image)}, timeout=60
            )

        caller = threading.Thread(target=slow_request)
        caller.start()
        started = 'dfd_queue_delay_seconds_count{model="slow",version="1"} 1.0'
        deadline = time.monotonic() + 30
        while started not in httpx.get(server.url + "/metrics").text:  # its model run began
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert caller.is_alive()  # the slow model takes over a second: still in flight
        exit_code = server.terminate()
        caller.join(timeout=60)
        assert exit_code == 0, server.output()
        assert result["response"].status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/v2/health/live")


def test_two_workers_in_factory_mode(tiny_repo):
    with ServerProcess(tiny_repo, *QUIET, "--workers", "2") as server:
        answers = [
            httpx.post(server.url + "/v1/predict", files={"file": ("a.png", png_image(i))})
            for i in range(4)
        ]
        assert [a.status_code for a in answers] == [200] * 4
        assert server.terminate() == 0, server.output()
