"""The soak runner (``python -m drills soak``): a short real run, its checks, its CLI."""

from __future__ import annotations

import json

import pytest
from helpers import TinyModelSpec, write_model_entry

from core.decision import DecisionRule
from drills.__main__ import build_parser
from drills.soak.cli import cmd_soak
from drills.soak.config import SoakConfig
from drills.soak.mix import Kind, Reference, good_images, prediction_check
from drills.soak.report import soak_line
from drills.soak.run import resolve_model, run_soak
from drills.soak.standin import STANDIN_SIZE
from drills.soak.traffic import Tally, judge

SHORT = {"duration_s": 6.0, "warmup_s": 2.0, "concurrency": 4, "sample_every_s": 0.25}


def test_short_soak_loses_nothing_and_stays_within_the_memory_bound(tmp_path):
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=32), threshold=0.45, temperature=1.3)
    # the server would prefer lite0 as its default; the soak's answers are computed for cnn
    write_model_entry(root, "lite0", 1, TinyModelSpec(size=32), threshold=0.5, temperature=0.4)
    assert resolve_model(SoakConfig(models=root), tmp_path)[1].name == "lite0"  # by default
    config = SoakConfig(models=root, model="cnn", out_dir=tmp_path / "results", readme=None,
                        **SHORT)  # fmt: skip
    results, path = run_soak(config, progress=lambda _: None)

    assert json.loads(path.read_text()) == json.loads(json.dumps(results))
    assert path.name.startswith("soak-") and path.parent == tmp_path / "results"
    assert results["model"]["source"] == "repository"
    assert results["problems"] == []
    assert (results["lost"], results["mismatched"]) == (0, 0)
    assert results["unexpected_status"] == results["server_errors_5xx"] == 0
    memory = results["memory"]
    assert memory["within_bound"], memory
    assert memory["end_mb"] <= memory["after_warmup_mb"] + 50.0
    assert memory["start_mb"] > 0 and memory["max_mb"] >= memory["end_mb"]
    assert len(memory["samples"]) > 10
    requests = results["requests"]
    assert requests["good"] > 100 and requests["bad"] > 20
    hostile = {"garbage bytes", "pixel bomb header", "PPM (unsupported)", "NaN tensor",
               "deeply nested JSON", "GET on predict", "path traversal name"}  # fmt: skip
    assert hostile <= set(requests["by_kind"])
    assert {"predict raw", "predict multipart", "explain cam", "v2 infer, 2 rows",
            "batch of 4 with a broken file"} <= set(requests["by_kind"])  # fmt: skip
    assert {"400", "404", "405", "413", "415"} <= set(results["errors_by_status"])
    assert results["ready_after"] and results["server_exit_code"] == 0
    assert results["passed"]
    assert "0 lost, 0 mismatched" in soak_line(results)


def test_soak_falls_back_to_the_stand_in_model(tmp_path):
    config = SoakConfig(models=tmp_path / "none", out_dir=tmp_path)
    root, entry, source = resolve_model(config, tmp_path)
    assert source.startswith("synthetic stand-in") and entry.input_size == STANDIN_SIZE
    reference = Reference(entry)
    bright, dark = good_images(0)[12][0], good_images(0)[13][0]
    assert reference.probability(bright) != reference.probability(dark)


def test_wrong_answers_and_wrong_statuses_are_counted():
    """The judge can fail: a wrong probability is a mismatch, a non-200 a loss, a 500 a 5xx."""
    check = prediction_check(expected=0.8, rule=DecisionRule.from_threshold(0.5))
    good = Kind("predict raw #0", True, 1.0, "POST", "/v1/predict", check=check)
    bad = Kind("garbage bytes", False, 1.0, "POST", "/v1/predict", expected=400)
    tally = Tally()
    judge(good, 200, b'{"probability_fake": 0.8, "label": "FAKE"}', 0.01, tally)
    judge(good, 200, b'{"probability_fake": 0.7, "label": "FAKE"}', 0.01, tally)
    judge(good, 200, b'{"probability_fake": 0.8, "label": "REAL"}', 0.01, tally)
    judge(good, 503, b"{}", 0.01, tally)
    judge(good, None, b"", 30.0, tally)
    judge(bad, 400, b"{}", 0.01, tally)
    judge(bad, 500, b"{}", 0.01, tally)
    assert (tally.mismatched, tally.lost, tally.unexpected, tally.server_errors) == (2, 2, 1, 2)
    assert tally.sent == {"predict raw": 5, "garbage bytes": 2}
    assert tally.statuses == {"200": 3, "503": 1, "none": 1, "400": 1, "500": 1}


def test_a_prediction_check_follows_the_model_s_verdicts():
    """Labels by the model's own three-way rule, and NO_FACE where no face is expected."""
    rule = DecisionRule(real_below=0.1, fake_from=0.9)
    uncertain = prediction_check(expected=0.6, rule=rule)
    assert uncertain({"probability_fake": 0.6, "label": "UNCERTAIN"}) is None
    assert "expected UNCERTAIN" in uncertain({"probability_fake": 0.6, "label": "FAKE"})
    no_face = prediction_check(expected=None, rule=rule)
    assert no_face({"probability_fake": None, "label": "NO_FACE"}) is None
    assert "expected NO_FACE" in no_face({"probability_fake": 0.6, "label": "UNCERTAIN"})


def test_short_soak_of_a_face_crop_model_judges_faces_and_no_faces(tmp_path):
    """A model trained on face crops answers NO_FACE for the faceless images of the mix and
    judges the real faces (YuNet finds them): both are expected, nothing is a mismatch."""
    root = tmp_path / "models"
    write_model_entry(root, "faces", 1, TinyModelSpec(size=32), face_crop=True)
    config = SoakConfig(models=root, out_dir=tmp_path / "results", readme=None, **SHORT)
    reference = Reference(resolve_model(config, tmp_path)[1])
    expected = [reference.probability(data) for data, _ in good_images(config.seed)]
    assert expected[0] is None and all(p is not None for p in expected[-6:])  # faces found
    results, _ = run_soak(config, progress=lambda _: None)
    assert results["problems"] == [] and (results["lost"], results["mismatched"]) == (0, 0)


def test_soak_command_line(capsys):
    parser = build_parser()
    args = parser.parse_args(["soak", "--duration", "180"])
    assert args.command == "soak" and args.duration_s == 180.0 and args.memory_bound_mb == 50.0
    with pytest.raises(SystemExit):
        parser.parse_args(["soak", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--duration", "--memory-bound-mb", "--bad-fraction", "--readme-only"):
        assert flag in help_text
    assert cmd_soak(parser.parse_args(["soak", "--duration", "0"])) == 2


def test_short_access_soak_keys_rate_limits_flood_and_slow_clients(tmp_path):
    """``--access``: keys and rate limits on, paced good clients never limited, a flooder
    refused with 429 within the token-bucket bound, slow-header clients cut off."""
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=32))
    config = SoakConfig(
        models=root, out_dir=tmp_path, readme=None, duration_s=5.0, warmup_s=1.0,
        concurrency=2, sample_every_s=0.5, access=True, rate=20.0, burst=10,
        client_rate=8.0, flood_rate=60.0, slow_clients=8, header_timeout_s=1.0,
    )  # fmt: skip
    results, _ = run_soak(config, progress=lambda _: None)
    assert results["problems"] == [] and results["lost"] == 0, results["problems"]
    assert {"no API key", "wrong API key"} <= set(results["requests"]["by_kind"])
    assert results["errors_by_status"]["401"] >= 2
    access = results["access"]
    assert access["checks"] == dict.fromkeys(access["checks"], True), access
    flood = access["flood_by_status"]
    assert flood["429"] > 0 and flood["200"] <= access["flood_ok_bound"]
    slow = access["slow_clients"]
    assert slow["cut_off_by_server"] >= 8 and slow["held_s"]["max"] <= 1.0 + 2.0
    assert results["passed"]
    line = soak_line(results)
    assert "With `--access`: 3 API keys" in line and "429" in line
    with pytest.raises(ValueError, match="client_rate"):
        SoakConfig(access=True, rate=10.0, client_rate=6.0)
