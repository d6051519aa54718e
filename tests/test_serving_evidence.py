"""The ``evidence`` section of /v1/predict and /v1/predict/batch (files made in the test)."""

from __future__ import annotations

import logging
import sys

import pytest
from helpers import evidence_files as files
from helpers import expected_probability, png_image, serving_client, test_config

from core.preprocessing import PreprocessConfig, preprocess_bytes
from serving.config import parse_args

pytestmark = pytest.mark.asyncio


def raw_probability(data: bytes) -> float:
    return expected_probability(preprocess_bytes(data, PreprocessConfig(size=32)))


async def test_predict_reports_a_signed_manifest_beside_an_unchanged_probability(tiny_repo):
    signed = files.c2pa_signed_jpeg()
    async with serving_client(test_config(tiny_repo)) as (client, _):
        answer = await client.post("/v1/predict", files={"file": ("gen.jpg", signed)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the model saw exactly what core.preprocessing makes of the bytes (temperature 1)
    assert body["probability_fake"] == pytest.approx(raw_probability(signed), abs=1e-6)
    [finding] = body["evidence"]
    assert finding["kind"] == "c2pa" and finding["strength"] == "signed_untrusted"
    assert finding["suggests"] == "ai_generated"


async def test_batch_gives_each_result_its_own_evidence(tiny_repo):
    uploads = [
        ("plain.png", png_image(1)),
        ("sd.png", files.png_with_parameters()),
        ("xmp.jpg", files.jpeg_with_xmp()),
        ("broken.jpg", files.jpeg_with_broken_exif()),
        ("tampered.jpg", files.pixels_changed(files.c2pa_signed_jpeg())),
        ("not-an-image.jpg", b"hello"),
    ]
    async with serving_client(test_config(tiny_repo)) as (client, _):
        answer = await client.post(
            "/v1/predict/batch", files=[("files", upload) for upload in uploads]
        )
    assert answer.status_code == 200, answer.text
    results = {result["filename"]: result for result in answer.json()["results"]}
    assert results["plain.png"]["evidence"] == []
    assert results["sd.png"]["evidence"][0]["kind"] == "png_text"
    assert results["xmp.jpg"]["evidence"][0]["details"] == {
        "digital_source_type": "trainedAlgorithmicMedia"
    }
    assert results["broken.jpg"]["evidence"][0]["strength"] == "unreadable"
    assert results["broken.jpg"]["label"] in ("FAKE", "REAL")  # the model still answers
    assert results["tampered.jpg"]["evidence"][0]["strength"] == "signed_invalid"
    assert "evidence" not in results["not-an-image.jpg"]
    assert results["not-an-image.jpg"]["error"]["code"] == "bad_image"


async def test_a_file_without_metadata_never_reaches_the_full_reader(tiny_repo, monkeypatch):
    async with serving_client(test_config(tiny_repo)) as (client, app):
        reader = app.state.serving.evidence
        monkeypatch.setattr(reader, "read", lambda data: pytest.fail("read() was called"))
        answer = await client.post(
            "/v1/predict", content=files.plain_jpeg(), headers={"Content-Type": "image/jpeg"}
        )
    assert answer.status_code == 200 and answer.json()["evidence"] == []


async def test_evidence_can_be_turned_off(tiny_repo):
    async with serving_client(test_config(tiny_repo, evidence=False)) as (client, _):
        answer = await client.post("/v1/predict", files={"file": ("a.png", png_image(2))})
    assert answer.status_code == 200 and "evidence" not in answer.json()


async def test_the_server_starts_without_c2pa_and_says_so(tiny_repo, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa raises ImportError
    caplog.set_level(logging.INFO, logger="serving")
    async with serving_client(test_config(tiny_repo)) as (client, _):
        answer = await client.post(
            "/v1/predict", content=files.c2pa_signed_jpeg(), headers={"Content-Type": "image/jpeg"}
        )
    assert "evidence: C2PA unavailable" in caplog.text
    assert answer.status_code == 200
    assert answer.json()["evidence"][0]["strength"] == "unverified"


async def test_trust_anchors_from_the_command_line_mark_the_signer_trusted(tiny_repo, tmp_path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(files.certificates().ca)
    config = parse_args(["--models", str(tiny_repo), "--c2pa-trust-anchors", str(anchors)], {})
    assert config.c2pa_trust_anchors == anchors and config.evidence
    settings = {"intra_op_threads": 1, "decode_threads": 2, "warmup_batch_sizes": (1,)}
    async with serving_client(config.replace(**settings)) as (client, _):
        answer = await client.post(
            "/v1/predict", files={"file": ("g.jpg", files.c2pa_signed_jpeg())}
        )
    assert answer.json()["evidence"][0]["strength"] == "signed_trusted"


async def test_an_unreadable_trust_anchor_file_stops_the_command_early(tiny_repo, tmp_path):
    from serving.__main__ import evidence_problem

    missing = parse_args(["--models", str(tiny_repo), "--c2pa-trust-anchors", "/nope.pem"], {})
    assert "--c2pa-trust-anchors" in evidence_problem(missing)
    assert evidence_problem(missing.replace(evidence=False)) is None
    assert evidence_problem(parse_args(["--models", str(tiny_repo)], {})) is None
