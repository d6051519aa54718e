"""``python -m bulk``: inputs, outputs, errors, resume and the engines (tiny model, tiny images)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import expected_probability, jpeg_image, png_image, truncated

from bulk.__main__ import main
from core.decision import calibrate
from core.preprocessing import PreprocessConfig, preprocess_bytes


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Five images in two folders, a truncated JPEG and a text file posing as one."""
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for index in range(3):
        (folder / f"p{index}.png").write_bytes(png_image(index, mean=90.0 + 40 * index))
    for index in range(2):
        (folder / "nested" / f"j{index}.jpg").write_bytes(jpeg_image(10 + index, mean=150.0))
    (folder / "nested" / "broken.jpg").write_bytes(truncated(jpeg_image(20)))
    (folder / "notes.jpg").write_text("not an image at all")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def expected(path: str) -> float:
    data = Path(path).read_bytes()
    return float(calibrate(np.float64(expected_probability(preprocess_bytes(
        data, PreprocessConfig(size=32))))))  # fmt: skip


def score(*args: str) -> int:
    return main([*args, "--no-progress", "--workers", "1"])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_folder_is_scored_into_each_format_with_error_rows(tiny_repo, photos, tmp_path, suffix):
    out = tmp_path / f"scores{suffix}"
    assert score(str(photos), "--models", str(tiny_repo), "--out", str(out)) == 0
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert set(rows) == {"p0.png", "p1.png", "p2.png", "j0.jpg", "j1.jpg", "broken.jpg",
                         "notes.jpg"}  # fmt: skip
    assert rows["broken.jpg"]["error_code"] == "bad_image"
    assert "truncated" in rows["broken.jpg"]["error_message"].lower()
    assert rows["notes.jpg"]["error_code"] == "bad_image"
    for name in ("p0.png", "p1.png", "p2.png", "j0.jpg", "j1.jpg"):
        row = rows[name]
        assert float(row["probability_fake"]) == pytest.approx(expected(row["path"]), abs=1e-6)
        assert row["label"] in ("FAKE", "REAL") and row["model"] == "cnn"
        assert int(row["version"]) == 1 and len(row["sha256"]) == 64
        assert not row["error_code"]


def test_globs_and_list_files_name_the_inputs(tiny_repo, photos, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text(f"{photos / 'p0.png'}\n{photos / 'missing.png'}\n")
    table = tmp_path / "list.csv"
    table.write_text(f"id,path\n1,{photos / 'p1.png'}\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = tmp_path / "list.parquet"
    pq.write_table(pa.table({"path": [str(photos / "p2.png")], "n": [1]}), frame)
    out = tmp_path / "scores.jsonl"
    pattern = str(photos / "nested" / "j*.jpg")
    assert score(pattern, str(listed), str(table), str(frame), "--models", str(tiny_repo),
                 "--out", str(out)) == 0  # fmt: skip
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert set(rows) == {"j0.jpg", "j1.jpg", "p0.png", "missing.png", "p1.png", "p2.png"}
    assert rows["missing.png"]["error_code"] == "unreadable"


def test_rerunning_resumes_without_duplicates_or_losses(tiny_repo, photos, tmp_path, monkeypatch):
    import bulk.__main__ as cli

    out = tmp_path / "scores.csv"
    real = cli.engine_rows

    def stops_after_one_batch(args, batches):
        for index, rows in enumerate(real(args, batches)):
            if index == 1:
                raise KeyboardInterrupt  # Ctrl-C while the second batch is in flight
            yield rows

    monkeypatch.setattr(cli, "engine_rows", stops_after_one_batch)
    args = (str(photos), "--models", str(tiny_repo), "--out", str(out), "--batch-size", "2")
    assert score(*args) == 130
    assert len(read_rows(out)) == 2  # the first batch is kept
    monkeypatch.setattr(cli, "engine_rows", real)
    assert score(*args) == 0
    paths = [row["path"] for row in read_rows(out)]
    assert len(paths) == len(set(paths)) == 7
    assert score(*args) == 0  # nothing left to do
    assert len(read_rows(out)) == 7


def test_engines_give_the_same_probabilities(tiny_repo, photos, tmp_path):
    from benchmarks.servers import RunningServer, our_server_spec

    local = tmp_path / "local.csv"
    two = tmp_path / "two.csv"
    served = tmp_path / "http.csv"
    assert score(str(photos), "--models", str(tiny_repo), "--out", str(local)) == 0
    assert main([str(photos), "--models", str(tiny_repo), "--out", str(two), "--workers", "2",
                 "--no-progress"]) == 0  # fmt: skip
    spec = our_server_spec("bulk", tiny_repo, ("--webui", "", "--log-level", "warning"))
    with RunningServer(spec) as server:
        assert main([str(photos), "--engine", "http", "--url", server.base_url,
                     "--out", str(served), "--no-progress"]) == 0  # fmt: skip
    results = [{row["path"]: row for row in read_rows(path)} for path in (local, two, served)]
    assert results[0].keys() == results[1].keys() == results[2].keys()
    for path, row in results[0].items():
        for other in results[1:]:
            assert other[path]["error_code"] == row["error_code"]
            if not row["error_code"]:
                assert float(other[path]["probability_fake"]) == pytest.approx(
                    float(row["probability_fake"]), abs=1e-6
                )
                assert other[path]["label"] == row["label"]
                assert other[path]["evidence"] == row["evidence"] == "[]"


def test_ray_engine_matches_the_local_engine(tiny_repo, photos, tmp_path):
    pytest.importorskip("ray", reason="ray is in the bulk-ray group (make install has it)")
    local, ray_out = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert score(str(photos), "--models", str(tiny_repo), "--out", str(local)) == 0
    assert score(str(photos), "--models", str(tiny_repo), "--out", str(ray_out),
                 "--engine", "ray") == 0  # fmt: skip
    expected_rows = {row["path"]: row for row in read_rows(local)}
    got = {row["path"]: row for row in read_rows(ray_out)}
    assert got.keys() == expected_rows.keys()
    for path, row in expected_rows.items():
        assert got[path]["error_code"] == row["error_code"]
        if not row["error_code"]:
            assert float(got[path]["probability_fake"]) == pytest.approx(
                float(row["probability_fake"]), abs=1e-6
            )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_row_carries_the_files_provenance_evidence(tiny_repo, tmp_path, suffix):
    from helpers import evidence_files as files

    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "signed.jpg").write_bytes(files.c2pa_signed_jpeg())
    (folder / "sd.png").write_bytes(files.png_with_parameters())
    (folder / "plain.jpg").write_bytes(files.plain_jpeg())
    (folder / "broken.jpg").write_bytes(files.jpeg_with_broken_exif())
    out = tmp_path / f"scores{suffix}"
    assert score(str(folder), "--models", str(tiny_repo), "--out", str(out)) == 0
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    found = {name: row["evidence"] for name, row in rows.items()}
    if suffix != ".jsonl":  # CSV and Parquet cells hold the JSON text
        found = {name: json.loads(text) for name, text in found.items()}
    assert found["plain.jpg"] == []
    assert [f["strength"] for f in found["signed.jpg"]] == ["signed_untrusted"]
    assert [f["kind"] for f in found["sd.png"]] == ["png_text"]
    assert [f["strength"] for f in found["broken.jpg"]] == ["unreadable"]
    assert rows["broken.jpg"]["label"] in ("FAKE", "REAL")


def test_no_evidence_and_a_parquet_file_from_before_the_column(tiny_repo, photos, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "scores.parquet"
    old = {"path": [str(tmp_path / "old.png")], "label": ["REAL"], "version": [1]}
    pq.write_table(pa.table(old), out)  # written by a version without the evidence column
    assert score(str(photos), "--models", str(tiny_repo), "--out", str(out),
                 "--no-evidence") == 0  # fmt: skip
    rows = read_rows(out)
    assert len(rows) == 8 and all(row["evidence"] is None for row in rows)


def test_a_bad_trust_anchor_file_is_a_clear_error(tmp_path, capsys):
    anchors = tmp_path / "anchors.pem"
    anchors.write_text("no certificate")
    out = str(tmp_path / "scores.csv")
    assert main([str(tmp_path), "--out", out, "--c2pa-trust-anchors", str(anchors)]) == 2
    assert "no PEM certificate" in capsys.readouterr().err


def test_a_csv_of_another_layout_is_not_appended_to(tiny_repo, photos, tmp_path, capsys):
    out = tmp_path / "old.csv"
    old = "path,sha256,label,probability_fake,confidence,model,version,error_code,error_message\n"
    out.write_text(old + "a.jpg,00,REAL,0.1,0.9,cnn,1,,\n")
    assert main([str(photos), "--out", str(out), "--models", str(tiny_repo)]) == 2
    assert "write to a new --out" in capsys.readouterr().err
    assert out.read_text() == old + "a.jpg,00,REAL,0.1,0.9,cnn,1,,\n", "left as it was"


def test_a_bad_output_name_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "scores.xlsx")]) == 2
    assert ".csv, .jsonl, .parquet" in capsys.readouterr().err


def test_bulk_benchmark_writes_its_report(tiny_repo, tmp_path):
    from benchmarks.__main__ import main as bench

    photos = tmp_path / "good"
    photos.mkdir()
    for index in range(8):
        (photos / f"img{index}.jpg").write_bytes(jpeg_image(30 + index))
    out = tmp_path / "results"
    out.mkdir()
    args = ["bulk", "--models", str(tiny_repo), "--engines", "local", "--paths", "300",
            "--folders", str(photos), "--out", str(out), "--pipeline-seconds", "0.1"]  # fmt: skip
    assert bench(args) == 0
    (path,) = out.glob("bulk-*.json")
    report = json.loads(path.read_text())
    assert report["local"]["exit_code"] == 0 and report["local"]["rows"] == report["images"]
    assert report["memory"]["rows"] == 300 and report["memory"]["peak_rss_mib"] > 0
    assert report["local"]["over_limit"] > 0
