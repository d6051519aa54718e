"""Access control in process: API keys, per-client rate limits, CORS (serving/auth.py,
serving/ratelimit.py, serving/access.py). Slow clients need real sockets:
tests/reliability/test_reliability_slow_clients.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import png_image, serving_client, test_config

from serving import auth
from serving.__main__ import main as serve_main
from serving.ratelimit import RateLimit, RateLimiter

KEY = "dfd_test-key-alice"
OTHER_KEY = "dfd_test-key-bob"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(
        f"# API keys of this server\n\n{auth.hash_line(KEY, 'alice')}\n"
        f"{auth.hash_line(OTHER_KEY)}\n"
    )
    return path


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


# --- API keys ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_key_accepted_rejected_missing(tiny_repo, key_file):
    image = png_image(1, mean=90.0)
    async with serving_client(test_config(tiny_repo, api_keys=key_file)) as (client, _):
        accepted = await client.post("/v1/predict", content=image, headers={
            **bearer(KEY), "Content-Type": "image/png"})  # fmt: skip
        assert accepted.status_code == 200 and accepted.json()["label"] in ("REAL", "FAKE")
        assert (await client.get("/v1/models", headers=bearer(OTHER_KEY))).status_code == 200

        missing = await client.post("/v1/predict", content=image)
        assert_error(missing, 401, "missing_api_key")
        assert missing.headers["www-authenticate"] == 'Bearer realm="dfd"'
        wrong = await client.get("/v1/models", headers=bearer(KEY + "x"))
        assert_error(wrong, 401, "invalid_api_key")
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        basic = await client.get("/v1/models", headers={"Authorization": "Basic YTpi"})
        assert_error(basic, 401, "missing_api_key")
        for path in ("/v2/models/cnn", "/metrics", "/v2"):
            assert (await client.get(path)).status_code == 401, path
        # health checks and the page's own files stay open (the page asks for the key)
        for path in ("/v2/health/live", "/v2/health/ready", "/", "/static/app.js", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path
        metrics = (await client.get("/metrics", headers=bearer(KEY))).text
    assert 'dfd_auth_failures_total{reason="missing_api_key"} 5.0' in metrics
    assert 'dfd_auth_failures_total{reason="invalid_api_key"} 1.0' in metrics


@pytest.mark.asyncio
async def test_keys_off_by_default(tiny_repo):
    async with serving_client(test_config(tiny_repo)) as (client, _):
        assert (await client.get("/v1/models")).status_code == 200


def test_key_store_matches_by_hash_only():
    store = auth.KeyStore(auth.parse_key_lines([auth.hash_line(KEY, "alice")], "test"))
    assert store.match(KEY) == "alice"
    assert store.match(KEY.upper()) is None and store.match("") is None
    assert store.match(auth.hash_key(KEY)) is None  # the stored hash is not a key
    unnamed = auth.parse_key_lines([auth.hash_line(OTHER_KEY)], "test")[0]
    assert unnamed.name == f"key-{auth.hash_key(OTHER_KEY)[:8]}"


@pytest.mark.parametrize(
    "line",
    ["dfd_plain-text-key", "sha256:abc", "sha1:" + "0" * 64, "sha256:" + "G" * 64,
     "sha256:" + "A" * 64],
)  # fmt: skip
def test_key_file_with_a_bad_line_names_the_line(tmp_path, line):
    path = tmp_path / "keys.txt"
    path.write_text(f"# ok\n{auth.hash_line(KEY)}\n{line}\n")
    with pytest.raises(auth.KeyFileError, match=r"keys\.txt, line 3: expected 'sha256:"):
        auth.KeyStore.from_file(path)


def test_server_refuses_to_start_with_a_bad_key_file(tiny_repo, tmp_path, capsys):
    path = tmp_path / "keys.txt"
    path.write_text(f"{auth.hash_line(KEY)}\n{KEY}\n")
    assert serve_main(["--models", str(tiny_repo), "--api-keys", str(path)]) == 2
    error = capsys.readouterr().err
    assert "keys.txt, line 2" in error and KEY not in error  # never echo a whole secret
    path.write_text("# nothing but comments\n")
    assert serve_main(["--models", str(tiny_repo), "--api-keys", str(path)]) == 2
    assert "no key hash" in capsys.readouterr().err
    missing = tmp_path / "absent.txt"
    assert serve_main(["--models", str(tiny_repo), "--api-keys", str(missing)]) == 2


def test_new_key_command_prints_the_key_and_its_hash_line(capsys):
    assert auth.main(["new", "--name", "ci"]) == 0
    captured = capsys.readouterr()
    key = captured.err.rsplit(" ", 1)[-1].strip()
    assert key.startswith("dfd_") and len(key) > 40
    line = captured.out.strip()
    assert line == f"sha256:{auth.hash_key(key)} ci" and key not in captured.out
    assert auth.KeyStore(auth.parse_key_lines([line], "stdout")).match(key) == "ci"


# --- rate limits -------------------------------------------------------------------------


def test_token_bucket_waits_and_lime_cost():
    now = [100.0]
    limit = RateLimit(rate=2.0, burst=4, lime_cost=10)
    limiter = RateLimiter(limit, clock=lambda: now[0])
    assert [limiter.take("a", 1) for _ in range(4)] == [0.0] * 4
    assert limiter.take("a", 1) == pytest.approx(0.5)  # 1 token at 2/s
    assert limiter.take("b", 1) == 0.0  # buckets are per client
    now[0] += 0.5
    assert limiter.take("a", 1) == 0.0
    assert limit.price("/v1/explain", b"method=lime&num_samples=50") == ("lime", 4)  # capped
    assert limit.price("/v1/explain", b"method=cam") == ("request", 1)
    assert limit.price("/v1/predict", b"method=lime") == ("request", 1)
    assert RateLimit(2.0, 20, 10).price("/v1/explain", b"method=LIME") == ("lime", 10)
    now[0] += 100.0  # idle long enough: refilled buckets are forgotten
    limiter.take("c", 1)
    assert list(limiter.buckets) == ["c"]
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimit(rate=0.0, burst=1)


@pytest.mark.asyncio
async def test_rate_limit_429_retry_after_and_recovery(tiny_repo, key_file):
    config = test_config(tiny_repo, api_keys=key_file, rate_limit=4.0, rate_burst=3)
    async with serving_client(config) as (client, _):
        answers = [await client.get("/v1/models", headers=bearer(KEY)) for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        error = assert_error(answers[3], 429, "rate_limited")
        assert "retry after 1 s" in error["message"]
        assert answers[3].headers["retry-after"] == "1"  # 1 token at 4/s: 0.25 s, rounded up
        # another key has its own bucket; health checks are never limited
        assert (await client.get("/v1/models", headers=bearer(OTHER_KEY))).status_code == 200
        assert (await client.get("/v2/health/ready")).status_code == 200
        lime = await client.post("/v1/explain?method=lime", headers=bearer(OTHER_KEY))
        assert_error(lime, 429, "rate_limited")  # costs min(10, burst 3) > 2 tokens left
        assert "costs 3" in lime.json()["error"]["message"]
        await asyncio.sleep(0.3)  # recovery: a token is back after 1/4 s
        assert (await client.get("/v1/models", headers=bearer(KEY))).status_code == 200
        metrics = (await client.get("/metrics", headers=bearer(OTHER_KEY))).text
    assert 'dfd_rate_limited_total{kind="request"} 1.0' in metrics
    assert 'dfd_rate_limited_total{kind="lime"} 1.0' in metrics


@pytest.mark.asyncio
async def test_rate_limit_per_address_without_keys(tiny_repo):
    config = test_config(tiny_repo, rate_limit=0.5, rate_burst=2)
    async with serving_client(config) as (client, _):
        statuses = [(await client.get("/v1/models")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        started = time.monotonic()
        refused = await client.get("/v1/models")
    assert int(refused.headers["retry-after"]) == 2  # 1 token at 0.5/s, spent just now
    assert time.monotonic() - started < 1.0


# --- CORS --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cors_allowed_and_blocked_origins(tiny_repo, key_file):
    allowed = "https://app.example"
    config = test_config(tiny_repo, cors_origins=(allowed,), api_keys=key_file)
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    async with serving_client(config) as (client, _):
        ok = await client.options("/v1/predict", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        blocked = await client.options("/v1/predict", headers={"Origin": "https://evil.example",
                                                               **preflight})  # fmt: skip
        assert blocked.status_code == 400
        assert "access-control-allow-origin" not in blocked.headers
        simple = await client.get("/v1/models", headers={"Origin": allowed, **bearer(KEY)})
        assert simple.headers["access-control-allow-origin"] == allowed
        refused = await client.get("/v1/models", headers={"Origin": allowed})
        assert refused.status_code == 401  # the browser may read why (and the header)
        assert refused.headers["access-control-allow-origin"] == allowed
        assert "WWW-Authenticate" in refused.headers["access-control-expose-headers"]
        other = await client.get("/v1/models", headers={"Origin": "https://evil.example",
                                                        **bearer(KEY)})  # fmt: skip
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.asyncio
async def test_cors_off_by_default(tiny_repo):
    async with serving_client(test_config(tiny_repo)) as (client, _):
        answer = await client.get("/v1/models", headers={"Origin": "https://app.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_cors_origin_option_is_checked():
    from serving.config import parse_args

    config = parse_args(["--cors-origins", "https://a.example/, http://b.example:8080"])
    assert config.cors_origins == ("https://a.example", "http://b.example:8080")
    assert config.to_env()["DFD_CORS_ORIGINS"] == "https://a.example,http://b.example:8080"
    with pytest.raises(SystemExit):
        parse_args(["--cors-origins", "a.example"])
