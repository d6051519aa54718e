"""The web UI's video flow in a real headless Chromium against a real ``python -m serving``
(fixtures and helpers of ``test_webui.py``; skipped, saying why, without Chromium)."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import pytest
import test_webui
from helpers import decode_all, expected_probability, write_clip
from playwright.sync_api import expect
from test_webui import (
    CONTRAST_FAILURES_JS,
    MODEL_SIZE,
    Session,
    assert_verdict,
    card,
    image_bytes,
    screenshot,
    upload,
)

from core.decision import decide
from core.preprocessing import PreprocessConfig, preprocess_rgb
from core.video import TOP_FRACTION

pytestmark = pytest.mark.browser

browser = test_webui.browser  # the fixtures of test_webui.py: Chromium, a real server, a tab
server = test_webui.server
ui = test_webui.ui


def expected_video(path: Path) -> tuple[str, float, list[float]]:
    """Label, probability and per-frame probabilities, computed without the server (the clip
    has fewer frames than the default 32, so every frame is scored)."""
    frames = [
        expected_probability(preprocess_rgb(rgb, PreprocessConfig(size=MODEL_SIZE)))
        for rgb in decode_all(path)
    ]
    k = max(1, math.ceil(TOP_FRACTION * len(frames)))
    probability = float(np.mean(sorted(frames)[-k:]))
    return decide(probability, 0.5)[0], probability, frames


def test_dropped_video_shows_verdict_chart_and_top_frames(ui: Session, tmp_path: Path):
    clip = write_clip(tmp_path / "clip.mp4", count=12, width=96, height=64, seed=5)
    label, probability, frames = expected_video(clip)
    ui.page.evaluate(
        """({b64, name}) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "video/mp4"}));
            const zone = document.getElementById("drop-zone");
            for (const kind of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(kind,
                    {bubbles: true, cancelable: true, dataTransfer: transfer}));
            }
        }""",
        {"b64": base64.b64encode(clip.read_bytes()).decode(), "name": "clip.mp4"},
    )
    item = card(ui.page, 0)
    expect(item).to_have_attribute("data-state", "done")
    expect(item.locator(".card-title")).to_have_text("clip.mp4")
    expect(item.locator(".verdict-label")).to_have_text(label)
    expect(item.locator(".probability")).to_have_text(f"{probability:.3f}")
    expect(item.locator(".frames-scored")).to_have_text("12 of 12, 1.20 s clip")
    expect(item.locator(".rule")).to_contain_text("mean of the 3 highest of 12")
    expect(item.locator(".chart circle")).to_have_count(12)
    tips = item.locator(".chart circle title").all_text_contents()
    assert [float(tip.rsplit(" ", 1)[1]) for tip in tips] == pytest.approx(frames, abs=1e-3)
    assert "highest" in item.locator(".chart").get_attribute("aria-label")
    thumbs = item.locator(".top-frames img")
    expect(thumbs).to_have_count(3)
    expect(item.locator(".top-frames figcaption").first).to_contain_text(
        f"P(fake) {max(frames):.3f}"
    )
    assert all(w == 96 for w in thumbs.evaluate_all("(images) => images.map(i => i.naturalWidth)"))
    assert ui.api_requests[-1].split("?")[0].endswith("/v1/predict/video")
    assert ui.page.evaluate(CONTRAST_FAILURES_JS) == []
    screenshot(ui.page, "video-result.png")
    ui.assert_clean()


def test_images_and_videos_together_and_a_fake_video_is_explained(ui: Session, tmp_path: Path):
    clip = write_clip(tmp_path / "clip.webm", count=5, fourcc="VP80")
    image = image_bytes(3, mean=170.0)
    upload(
        ui.page,
        ("face.png", "image/png", image),
        ("clip.webm", "video/webm", clip.read_bytes()),
        ("notes.mp4", "video/mp4", b"this is a text file with a video name"),
    )
    assert_verdict(card(ui.page, 0), image)
    expect(card(ui.page, 1)).to_have_attribute("data-state", "done")
    expect(card(ui.page, 1).locator(".verdict-label")).to_have_text(expected_video(clip)[0])
    refused = card(ui.page, 2)
    expect(refused).to_have_attribute("data-state", "error")
    expect(refused.locator(".error")).to_contain_text("Not a readable video: not a video file")
    expect(refused.locator(".retry")).to_be_hidden()
    ui.page.locator("#clear-results").click()
    expect(ui.page.locator("#results > li")).to_have_count(0)
    ui.assert_clean()


def test_too_large_video_is_refused_before_upload(ui: Session):
    limit = int(ui.page.get_attribute('meta[name="max-video-bytes"]', "content"))
    assert limit == 100 * 1024 * 1024  # the server's default --video-max-bytes
    expect(ui.page.locator("#max-video-size")).to_have_text("100 MB")
    ui.page.evaluate(
        """(size) => {
            const transfer = new DataTransfer();
            const big = new File([new Uint8Array(size)], "big.mov", {type: "video/quicktime"});
            transfer.items.add(big);
            const input = document.getElementById("file-input");
            input.files = transfer.files;
            input.dispatchEvent(new Event("change", {bubbles: true}));
        }""",
        limit + 1,
    )
    expect(card(ui.page, 0).locator(".error")).to_contain_text("Video too large")
    assert ui.api_requests == []
    ui.assert_clean()
