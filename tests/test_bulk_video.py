"""``python -m bulk`` on video files: one row per video with its verdict, a per-frame file,
the same numbers from the local engine, the http engine (a real server) and Ray's actor."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import decode_all, expected_probability, png_image, write_clip
from test_bulk import read_rows, score

from bulk.__main__ import main
from core.preprocessing import PreprocessConfig, preprocess_rgb
from core.video import TOP_FRACTION


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """Two clips, one image, a text file named .mp4 and a truncated WebM."""
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "a.mp4", count=10, seed=1)
    write_clip(folder / "b.avi", count=40, fourcc="MJPG", seed=2)
    (folder / "face.png").write_bytes(png_image(1, mean=150.0))
    (folder / "notes.mp4").write_text("not a video")
    whole = write_clip(tmp_path / "c.webm", count=10, fourcc="VP80").read_bytes()
    (folder / "cut.webm").write_bytes(whole[: len(whole) // 2])
    return folder


def expected_frames(path: Path, indices: list[int]) -> list[float]:
    frames = decode_all(path)
    config = PreprocessConfig(size=32)
    return [expected_probability(preprocess_rgb(frames[i], config)) for i in indices]


def top_mean(values: list[float]) -> float:
    k = max(1, math.ceil(TOP_FRACTION * len(values)))
    return float(np.mean(sorted(values)[-k:]))


def read_frames(path: str) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_videos_get_one_row_and_a_per_frame_file(tiny_repo, clips, tmp_path):
    out = tmp_path / "scores.csv"
    assert score(str(clips), "--models", str(tiny_repo), "--out", str(out),
                 "--video-frames", "8") == 0  # fmt: skip
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert set(rows) == {"a.mp4", "b.avi", "face.png", "notes.mp4", "cut.webm"}
    assert rows["notes.mp4"]["error_code"] == "bad_video"
    assert rows["cut.webm"]["error_code"] == "truncated_video"
    assert rows["face.png"]["label"] and not rows["face.png"]["frames_file"]
    for name, indices in (("a.mp4", [0, 1, 3, 4, 5, 6, 8, 9]), ("b.avi", list(range(2, 40, 5)))):
        row = rows[name]
        frames = read_frames(row["frames_file"])
        expected = expected_frames(clips / name, indices)
        assert [int(frame["index"]) for frame in frames] == indices
        assert [float(f["probability_fake"]) for f in frames] == pytest.approx(expected, abs=1e-6)
        assert float(row["probability_fake"]) == pytest.approx(top_mean(expected), abs=1e-6)
        assert int(row["frames"]) == 8 and len(row["sha256"]) == 64
        assert Path(row["frames_file"]).parent == out.with_name("scores.csv.frames")
        assert frames[0]["face_top"] == ""  # the tiny model scores whole frames


def test_video_sampling_flags_and_parquet(tiny_repo, clips, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    assert score(str(clips / "b.avi"), "--models", str(tiny_repo), "--out", str(out),
                 "--video-fps", "2.5") == 0  # fmt: skip
    (row,) = read_rows(out)
    assert row["frames"] == 10 and read_frames(row["frames_file"])[1]["index"] == "4"
    with pytest.raises(SystemExit, match="over --video-max-frames"):
        score(str(clips), "--models", str(tiny_repo), "--out", str(tmp_path / "x.csv"),
              "--video-frames", "300")  # fmt: skip
    with pytest.raises(SystemExit):
        main([str(clips), "--out", "x.csv", "--video-frames", "3", "--video-fps", "1"])
    assert "not allowed with" in capsys.readouterr().err


def test_http_engine_gives_the_same_video_rows(tiny_repo, clips, tmp_path):
    from benchmarks.servers import RunningServer, our_server_spec

    local, served = tmp_path / "local.jsonl", tmp_path / "http.jsonl"
    assert score(str(clips), "--models", str(tiny_repo), "--out", str(local)) == 0
    spec = our_server_spec("bulk", tiny_repo, ("--webui", "", "--log-level", "warning"))
    with RunningServer(spec) as server:
        assert main([str(clips), "--engine", "http", "--url", server.base_url,
                     "--out", str(served), "--no-progress"]) == 0  # fmt: skip
    mine, theirs = ({r["path"]: r for r in read_rows(path)} for path in (local, served))
    assert mine.keys() == theirs.keys()
    for path, row in mine.items():
        other = theirs[path]
        assert (other["error_code"], other["label"]) == (row["error_code"], row["label"])
        if row["frames"]:
            assert other["probability_fake"] == pytest.approx(row["probability_fake"], abs=1e-6)
            assert other["frames"] == row["frames"]
            ours, served_frames = read_frames(row["frames_file"]), read_frames(other["frames_file"])
            assert [f["index"] for f in ours] == [f["index"] for f in served_frames]


def test_ray_actor_carries_the_per_frame_results(tiny_repo, clips):
    from bulk.ray_engine import TRANSFERRED, ScoringActor, _row
    from bulk.scorer import ModelChoice

    actor = ScoringActor(ModelChoice(tiny_repo))
    columns = actor({"path": np.array([str(clips / "a.mp4"), str(clips / "face.png")])})
    rows = [_row(dict(zip(TRANSFERRED, values, strict=True))) for values in zip(
        *(columns[key].tolist() for key in TRANSFERRED), strict=True)]  # fmt: skip
    video, image = rows
    assert len(video["frame_results"]) == video["frames"] == 10
    assert video["frame_results"][0]["index"] == 0 and "frame_results" not in image
