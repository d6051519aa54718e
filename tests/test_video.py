"""Video: ``POST /v1/predict/video`` in process, on clips written by ``cv2.VideoWriter``
(several codecs and containers, odd sizes, one frame, truncated or fake files).

Per-frame answers are checked against ``/v1/predict`` on the same frames, decoded
independently here and uploaded as PNGs (lossless, so the pixels are the same).
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    CODECS,
    avi_with_frames_zeroed,
    decode_all,
    serving_client,
    slow_fields,
    status_when_client_leaves,
    test_config,
    write_clip,
)

from core.decision import decide
from core.preprocessing import encode_png
from core.video import TOP_FRACTION, Sampling, VideoInfo, VideoLimits, sample_indices
from core.videofile import inspect_file, sniff
from serving.config import ServerConfig

VIDEO = "/v1/predict/video"


def video_file(path: Path, kind: str = "video/mp4") -> dict:
    return {"file": (path.name, path.read_bytes(), kind)}


def assert_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error["message"]


def clip_or_skip(path: Path, **options) -> Path:
    try:
        return write_clip(path, **options)
    except RuntimeError as exc:  # e.g. a build without the VP9 encoder
        pytest.skip(reason=f"this OpenCV build cannot write the clip: {exc}")


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "video-tmp"
    folder.mkdir()
    return folder


def config(repo: Path, temp_dir: Path, **overrides) -> ServerConfig:
    return test_config(repo, video_temp_dir=temp_dir, **overrides)


async def predict_png(client, rgb: np.ndarray, query: str = "") -> float:
    response = await client.post(f"/v1/predict{query}", files={"file": ("f.png", encode_png(rgb))})
    assert response.status_code == 200, response.text
    return response.json()["probability_fake"]


# --- every codec / container the pip OpenCV writes --------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("fourcc", "suffix"), CODECS, ids=[f"{c}{s}" for c, s in CODECS])
async def test_each_codec_scores_like_predict_on_the_same_frames(
    tiny_repo, temp_dir, tmp_path, fourcc, suffix
):
    clip = clip_or_skip(tmp_path / f"clip{suffix}", count=9, width=67, height=45, fourcc=fourcc)
    frames = decode_all(clip)
    async with serving_client(config(tiny_repo, temp_dir)) as (client, _):
        response = await client.post(f"{VIDEO}?frames=4", files=video_file(clip))
        assert response.status_code == 200, response.text
        body = response.json()
        expected = [await predict_png(client, frames[f["index"]]) for f in body["frames"]]
    assert [f["index"] for f in body["frames"]] == [1, 3, 5, 7]  # middles of 4 stretches of 9
    assert [f["probability_fake"] for f in body["frames"]] == pytest.approx(expected, abs=1e-6)
    assert [f["time_s"] for f in body["frames"]] == pytest.approx([0.1, 0.3, 0.5, 0.7])
    assert body["video"]["frame_count"] == len(frames) == 9
    assert body["video"]["container"] == {".mov": "mp4"}.get(suffix, suffix[1:])
    assert (body["video"]["width"], body["video"]["height"]) == frames[0].shape[1::-1]
    assert body["sampling"] == {"frames": 4, "sampled": 4}
    assert list(temp_dir.iterdir()) == []


@pytest.mark.asyncio
async def test_verdict_is_the_stated_aggregate_of_calibrated_frames(model_entry_writer, temp_dir,
                                                                    tmp_path):  # fmt: skip
    repo = model_entry_writer("cnn", 1, threshold=0.3, temperature=2.0)
    clip = write_clip(tmp_path / "c.avi", count=10, fourcc="MJPG", seed=3)
    async with serving_client(config(repo, temp_dir)) as (client, _):
        body = (await client.post(VIDEO, files=video_file(clip, "video/x-msvideo"))).json()
        raw = [await predict_png(client, rgb) for rgb in decode_all(clip)]
    frames = [f["probability_fake"] for f in body["frames"]]
    assert frames == pytest.approx(raw, abs=1e-6)  # every frame (32 > 10), calibrated as images
    k = math.ceil(TOP_FRACTION * 10)
    probability = float(np.mean(sorted(frames)[-k:]))
    label, confidence = decide(probability, 0.3)
    assert body["probability_fake"] == pytest.approx(probability, abs=1e-9)
    assert (body["label"], body["threshold"]) == (label, 0.3)
    assert body["confidence"] == pytest.approx(confidence)
    aggregation = body["aggregation"]
    assert (aggregation["rule"], aggregation["k"], aggregation["frames"]) == ("mean_top_k", k, 10)
    assert "single images" in aggregation["calibration"]
    top = body["top_frames"]
    assert [t["probability_fake"] for t in top] == sorted(frames, reverse=True)[:k]
    assert all(len(t["thumbnail_jpeg_base64"]) > 100 for t in top)


@pytest.mark.asyncio
async def test_one_frame_clip_and_fps_sampling(tiny_repo, temp_dir, tmp_path):
    single = write_clip(tmp_path / "one.mp4", count=1)
    longer = write_clip(tmp_path / "long.webm", count=25, fps=10.0, fourcc="VP80")
    async with serving_client(config(tiny_repo, temp_dir)) as (client, _):
        one = (await client.post(f"{VIDEO}?frames=8", files=video_file(single))).json()
        by_rate = await client.post(
            f"{VIDEO}?fps=4", content=longer.read_bytes(), headers={"content-type": "video/webm"}
        )
        metrics = (await client.get("/metrics")).text
    counted = {one["label"]: 1.0}  # one verdict per clip, by label, beside the image counter
    counted[by_rate.json()["label"]] = counted.get(by_rate.json()["label"], 0.0) + 1.0
    for label, count in counted.items():
        assert (
            f'dfd_video_predictions_total{{label="{label}",model="cnn",version="1"}} {count}'
            in (metrics)
        )
    assert [f["index"] for f in one["frames"]] == [0]
    assert (
        one["aggregation"]["k"] == 1
        and one["probability_fake"] == one["frames"][0]["probability_fake"]
    )
    assert by_rate.status_code == 200, by_rate.text
    assert [f["index"] for f in by_rate.json()["frames"]] == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22]
    assert by_rate.json()["sampling"] == {"fps": 4.0, "sampled": 10}


def test_sampling_rules():
    info = VideoInfo("mp4", "FMP4", 64, 48, 30.0, 300)
    limits = VideoLimits(max_frames=64)
    assert sample_indices(info, Sampling(frames=3), limits) == [50, 150, 250]
    assert sample_indices(info, Sampling(frames=None, fps=1.0), limits) == list(range(0, 300, 30))
    assert sample_indices(info, Sampling(frames=None, fps=60.0), VideoLimits(max_frames=300)) == (
        list(range(300))
    )
    with pytest.raises(ValueError, match="at most 64|limit is 64"):
        sample_indices(info, Sampling(frames=None, fps=10.0), limits)
    with pytest.raises(ValueError, match="exactly one"):
        Sampling(frames=3, fps=1.0)


@pytest.mark.asyncio
async def test_face_crop_box_is_reported_and_matches_predict(tiny_repo, temp_dir, tmp_path,
                                                             monkeypatch):  # fmt: skip
    from helpers.faces import left_half_face

    import core.facecrop

    monkeypatch.setattr(core.facecrop, "detect_faces", left_half_face)  # left half: the face
    clip = write_clip(tmp_path / "c.mp4", count=6, width=64, height=48)
    frames = decode_all(clip)
    async with serving_client(config(tiny_repo, temp_dir)) as (client, _):
        body = (await client.post(f"{VIDEO}?face_crop=true", files=video_file(clip))).json()
        expected = [await predict_png(client, rgb, "?face_crop=true") for rgb in frames]
    assert body["face_crop"] is True
    assert [f["probability_fake"] for f in body["frames"]] == pytest.approx(expected, abs=1e-6)
    box = {"top": 0.0, "bottom": 1.0, "left": 0.0, "right": 0.5}
    assert all(f["face_box"] == box for f in body["frames"])


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bad_files_get_clear_errors_and_leave_no_temp_file(tiny_repo, temp_dir, tmp_path):
    mp4 = write_clip(tmp_path / "c.mp4", count=10).read_bytes()
    avi = write_clip(tmp_path / "c.avi", count=6, fourcc="MJPG").read_bytes()
    webm = write_clip(tmp_path / "c.webm", count=10, fourcc="VP80").read_bytes()
    cases = {
        "text.mp4": (b"this is not a video\n" * 50, 400, "bad_video"),
        "empty.mp4": (b"", 400, "bad_video"),
        "cut.mp4": (mp4[: len(mp4) * 2 // 3], 400, "truncated_video"),
        "cut.webm": (webm[: len(webm) // 2], 400, "truncated_video"),
        "cut.avi": (avi[: len(avi) - 200], 400, "truncated_video"),
        "blank.avi": (avi_with_frames_zeroed(avi), 400, "no_decodable_frames"),
        "broken.avi": (avi_with_frames_zeroed(avi, first=2), 400, "truncated_video"),
        "codec.avi": (avi.replace(b"MJPG", b"ZZZZ"), 415, "unsupported_video_codec"),
    }
    async with serving_client(config(tiny_repo, temp_dir)) as (client, _):
        for name, (data, status, code) in cases.items():
            response = await client.post(VIDEO, files={"file": (name, data, "video/mp4")})
            assert_error(response, status, code)
            assert list(temp_dir.iterdir()) == [], name
        assert (await client.post(VIDEO, files={"file": ("ok.mp4", mp4)})).status_code == 200
    assert list(temp_dir.iterdir()) == []


@pytest.mark.asyncio
async def test_wrong_requests(tiny_repo, temp_dir, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", count=4).read_bytes()
    async with serving_client(config(tiny_repo, temp_dir)) as (client, _):
        as_json = await client.post(VIDEO, content=b"{}", headers={"content-type": "text/plain"})
        assert "video/*" in assert_error(as_json, 415, "unsupported_media_type")
        no_field = await client.post(VIDEO, files={"other": ("c.mp4", clip)})
        assert "'file'" in assert_error(no_field, 400, "bad_parameter")
        two = [("file", ("a.mp4", clip)), ("file", ("b.mp4", clip))]
        assert "one video" in assert_error(
            await client.post(VIDEO, files=two), 400, "bad_parameter"
        )
        both = await client.post(f"{VIDEO}?frames=3&fps=2", files={"file": ("c.mp4", clip)})
        assert_error(both, 400, "bad_parameter")
        bad = await client.post(f"{VIDEO}?fps=abc", files={"file": ("c.mp4", clip)})
        assert_error(bad, 400, "bad_parameter")
        cut = await client.post(
            VIDEO, content=b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nab",
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )  # fmt: skip
        assert_error(cut, 400, "malformed_multipart")
    assert list(temp_dir.iterdir()) == []


@pytest.mark.asyncio
async def test_limits_state_their_bounds(tiny_repo, temp_dir, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", count=30, fps=10.0, width=64, height=48)
    data = clip.read_bytes()
    limits = {"video_max_bytes": len(data) - 1, "video_max_duration_s": 2.5,
              "video_max_frame_pixels": 64 * 48 - 1, "video_max_frames": 8}  # fmt: skip
    async with serving_client(config(tiny_repo, temp_dir, **limits)) as (client, _):
        streamed = await client.post(VIDEO, files={"file": ("c.mp4", data)})
        raw = await client.post(VIDEO, content=data, headers={"content-type": "video/mp4"})
        frames = await client.post(f"{VIDEO}?frames=9", files={"file": ("c.mp4", data[:10])})
    for response in (streamed, raw):
        assert f"{len(data) - 1} byte limit" in assert_error(response, 413, "payload_too_large")
    assert "between 1 and 8" in assert_error(frames, 422, "parameter_out_of_range")
    async with serving_client(config(tiny_repo, temp_dir, video_max_duration_s=2.5)) as (
        client, _,
    ):  # fmt: skip
        long = await client.post(VIDEO, files={"file": ("c.mp4", data)})
    assert "3.0 s long, over the limit of 2.5 s" in assert_error(long, 413, "video_too_long")
    async with serving_client(config(tiny_repo, temp_dir, video_max_frame_pixels=3000)) as (
        client, _,
    ):  # fmt: skip
        large = await client.post(VIDEO, files={"file": ("c.mp4", data)})
    assert "64x48 = 3072 pixels, over the limit of 3000" in assert_error(
        large, 413, "frame_too_large"
    )
    async with serving_client(config(tiny_repo, temp_dir, video_max_frames=8)) as (client, _):
        dense = await client.post(f"{VIDEO}?fps=5", files={"file": ("c.mp4", data)})
    assert "limit is 8 sampled frames" in assert_error(dense, 422, "parameter_out_of_range")
    assert list(temp_dir.iterdir()) == []


def test_video_settings_are_checked():
    with pytest.raises(ValueError, match="max_frames must be at least 1, got 0"):
        ServerConfig(video_max_frames=0)
    with pytest.raises(ValueError, match="video_concurrency"):
        ServerConfig(video_concurrency=0)
    with pytest.raises(ValueError, match="max_duration_s"):
        ServerConfig(video_max_duration_s=0)


def test_container_sniffing(tmp_path):
    assert sniff(b"\x00\x00\x00\x1cftypisom") == "mp4" and sniff(b"hello world!") is None
    clip = write_clip(tmp_path / "c.mp4", count=3)
    assert inspect_file(clip) == ("mp4", True)
    clip.write_bytes(clip.read_bytes()[:-10])
    assert inspect_file(clip) == ("mp4", False)


# --- resources: temp files, slots, the bulk lane ---------------------------------------------


@pytest.mark.asyncio
async def test_client_disconnect_mid_upload_deletes_the_temp_file(tiny_repo, temp_dir, tmp_path):
    from serving.app import create_app

    data = write_clip(tmp_path / "c.mp4", count=4).read_bytes()
    app = create_app(config(tiny_repo, temp_dir))
    seen_file: list[list[Path]] = []

    def upload_on_disk():  # the upload is on disk by now
        seen_file.append(list(temp_dir.iterdir()))

    status = await status_when_client_leaves(app, VIDEO, "video/mp4", data[:500], upload_on_disk)
    assert status == 400
    assert len(seen_file[0]) == 1 and list(temp_dir.iterdir()) == []


@pytest.mark.asyncio
async def test_a_busy_server_answers_503_video_busy(tiny_repo, temp_dir, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", count=2)
    async with serving_client(config(tiny_repo, temp_dir, video_concurrency=1)) as (client, app):
        async with app.state.serving.video_slots:
            busy = await client.post(VIDEO, files=video_file(clip))
        assert (await client.post(VIDEO, files=video_file(clip))).status_code == 200
    assert_error(busy, 503, "video_busy")
    assert busy.headers["retry-after"] == "1"


@pytest.mark.asyncio
async def test_a_video_never_holds_up_image_predictions(model_entry_writer, temp_dir, tmp_path):
    """The video's frames queue as bulk rows, a few chunks at a time: an image sent while they
    are being scored joins the next batch and is answered long before the video is done."""
    slow = slow_fields(0.02, size=32, slow_dim=256)  # 20 ms a run, timed: the video's rows pile up
    repo = model_entry_writer("cnn", 1, size=32, **slow)
    clip = write_clip(tmp_path / "c.mp4", count=128, width=32, height=32)
    image = encode_png(np.full((32, 32, 3), 90, np.uint8))
    settings = config(repo, temp_dir, max_batch_size=4, bulk_batch_size=4, max_queue_size=128)
    async with serving_client(settings) as (client, app):
        batcher = next(iter(app.state.serving.pool)).batcher
        video = asyncio.ensure_future(client.post(f"{VIDEO}?frames=128", files=video_file(clip)))
        async with asyncio.timeout(30):
            while batcher.depth < 40:  # more than a chunk of the video's rows are queued
                assert not video.done(), "the video was scored before 40 of its rows queued"
                await asyncio.sleep(0.002)
        rows_before = batcher.stats.rows
        answer = await client.post("/v1/predict", files={"file": ("a.png", image)})
        rows_when_answered = batcher.stats.rows
        assert answer.status_code == 200 and not video.done()
        deepest = 0
        while not video.done():
            deepest = max(deepest, batcher.depth)
            await asyncio.sleep(0.001)
    # while the image decoded, bulk batches took 4 rows each; then it went ahead of the
    # 40+ queued video rows (as an interactive row it would wait behind all of them)
    assert rows_when_answered - rows_before <= 16
    assert video.result().status_code == 200
    assert json.loads(video.result().content)["sampling"]["sampled"] == 128
    assert deepest <= 64  # two chunks of 32 rows: the video fills half the queue at most


def test_video_benchmark_writes_its_report(tiny_repo, tmp_path):
    from benchmarks.__main__ import main as bench

    out = tmp_path / "results"
    out.mkdir()
    args = ["video", "--models", str(tiny_repo), "--seconds", "1", "--width", "64",
            "--height", "48", "--fps", "10", "--frames", "4,10", "--repeats", "1",
            "--face-image", str(tmp_path / "none"), "--note", "test",
            "--out", str(out)]  # fmt: skip
    assert bench(args) == 0
    (path,) = out.glob("video-*.json")
    report = json.loads(path.read_text())
    assert report["clip"]["frames"] == 10 and report["clip"]["content"] == "pattern"
    assert [run["frames"] for run in report["server"]] == [4, 10]
    assert [run["frames"] for run in report["decode_only"]] == [4, 10]
    assert all(run["frames_per_s"] > 0 and run["latency_s"]["p50"] > 0 for run in report["server"])
    assert report["note"] == "test" and len(report["load_average"]["before"]) == 3
