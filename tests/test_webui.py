"""The web UI in a real headless Chromium against a real ``python -m serving`` (uvicorn) on a
free loopback port, with a tiny ONNX model repository written by the test.

Needs a Chromium executable (Debian: ``apt-get install chromium``; ``make browser``). The
module skips, saying so, only when none is found. Screenshots go to ``test-artifacts/webui/``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from helpers import (
    ServerProcess,
    TinyModelSpec,
    add_int8_variant,
    expected_probability,
    pixel_bomb_png,
    png_image,
    slow_spec,
    write_model_entry,
)
from helpers.formats import heic
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.decision import DecisionRule, decide
from core.preprocessing import PreprocessConfig, encode_png, preprocess_bytes

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "webui"
WEBUI = REPO_ROOT / "webui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL_SIZE = 32
STRICT_THRESHOLD = 0.9
TIMEOUT_MS = 20_000
HOSTILE_NAME = "<img src=x onerror=alert(1)>.png"
SERVER_FLAGS = (
    "--intra-op-threads", "1", "--decode-threads", "2", "--warmup-batch-sizes", "1",
    "--lime-max-samples", "64", "--log-level", "warning",
)  # fmt: skip


def find_chromium() -> str | None:
    """A Chromium executable: $CHROMIUM_PATH, Debian's /usr/bin/chromium, or one on PATH."""
    candidates = [
        os.environ.get("CHROMIUM_PATH"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


expect.set_options(timeout=TIMEOUT_MS)
CHROMIUM = find_chromium()
NO_BROWSER = (
    "no Chromium executable found (install it with `apt-get install chromium` or "
    "`make browser`, or set CHROMIUM_PATH)"
)
if CHROMIUM is None:
    pytest.skip(reason=NO_BROWSER, allow_module_level=True)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server with five tiny models: ``cnn`` (threshold 0.5), ``strict`` (0.9),
    ``nocam`` (no ``cam`` output, so its fast explanation map is refused with 501),
    ``quant`` (served from its INT8 file, as the shipped detector is) and ``faces`` (trained
    on face crops: it finds the face, or answers NO_FACE)."""
    root = tmp_path_factory.mktemp("webui") / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=MODEL_SIZE))
    quant = write_model_entry(root, "quant", 1, TinyModelSpec(size=MODEL_SIZE))
    add_int8_variant(quant, {"images": 3000, "roc_auc": 0.9871, "roc_auc_fp32": 0.9876,
                             "accuracy": 0.938, "accuracy_fp32": 0.935})  # fmt: skip
    write_model_entry(root, "strict", 1, TinyModelSpec(size=MODEL_SIZE), STRICT_THRESHOLD)
    write_model_entry(root, "nocam", 1, TinyModelSpec(size=MODEL_SIZE, with_cam=False))
    # judges faces only: NO_FACE without one
    faces = write_model_entry(root, "faces", 1, TinyModelSpec(size=MODEL_SIZE), face_crop=True)
    metadata = json.loads((faces / "metadata.json").read_text())
    metadata["metrics"]["holdout"] = HOLDOUT  # what python -m export copies from holdout.json
    (faces / "metadata.json").write_text(json.dumps(metadata))
    with ServerProcess(root, *SERVER_FLAGS) as process:
        yield process


HOLDOUT = {
    "celeba": {"kind": "real source", "flagged_fake_rate": 0.038, "met": True},
    "yonsei": {"kind": "real source", "flagged_fake_rate": 0.449, "met": False},
    "sd21": {"kind": "fake family", "auc": 0.836, "met": False},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Session:
    """One browser tab on the UI, with what it reported along the way."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    api_requests: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations")

    def assert_clean(self) -> None:
        """No script error, no CSP violation, no alert()."""
        assert self.errors == []
        assert self.csp_violations() == []
        assert self.dialogs == []


def open_ui(
    browser: Browser, url: str, width: int = 1100, height: int = 900, *, models: bool = True
) -> Session:
    """A new tab on the page; with ``models``, once the model list has loaded."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    session = Session(page)
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.on("pageerror", lambda error: session.errors.append(str(error)))
    page.on("dialog", lambda dialog: (session.dialogs.append(dialog.message), dialog.dismiss()))
    page.on(
        "request",
        lambda request: (
            session.api_requests.append(request.url)
            if "/v1/predict" in request.url or "/v1/explain" in request.url
            else None
        ),
    )
    page.goto(url + "/")
    if models:
        expect(page.locator("#model-select")).to_be_enabled()
    return session


@pytest.fixture
def ui(browser: Browser, server: ServerProcess) -> Iterator[Session]:
    session = open_ui(browser, server.url)
    yield session
    session.page.context.close()


# --- helpers -------------------------------------------------------------------------------


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def upload(page: Page, *files: tuple[str, str, bytes]) -> None:
    """Choose ``(name, mime type, bytes)`` files with the real <input type=file>."""
    payload = [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files]
    page.set_input_files("#file-input", payload)


def card(page: Page, index: int):
    return page.locator("#results > li.card").nth(index)


def expected_for(data: bytes, threshold: float = 0.5) -> tuple[str, float, float]:
    """Label, probability and confidence computed without the server."""
    probability = expected_probability(preprocess_bytes(data, PreprocessConfig(size=MODEL_SIZE)))
    label, confidence = decide(probability, threshold)
    return label, probability, confidence


def assert_verdict(item, data: bytes, threshold: float = 0.5, model: str = "cnn v1") -> None:
    """The card shows the verdict, confidence bar and numbers that belong to ``data``."""
    expect(item).to_have_attribute("data-state", "done")
    label, probability, confidence = expected_for(data, threshold)
    percent = f"{confidence * 100:.1f}"
    text = f"{percent}% confident"
    if label == "UNCERTAIN":
        text = f"{percent}% likely {'fake' if probability >= 0.5 else 'real'}: too close to call"
    expect(item).to_have_attribute("data-verdict", label.lower())
    expect(item.locator(".verdict-label")).to_have_text(label)
    expect(item.locator(".confidence-text")).to_have_text(text)
    meter = item.locator(".meter")
    expect(meter).to_have_attribute("aria-valuenow", percent)
    expect(meter).to_have_attribute("aria-valuetext", f"{label}: {text}")
    expect(item.locator(".probability")).to_have_text(f"{probability:.3f}")
    rule = DecisionRule.from_threshold(threshold)
    expect(item.locator(".threshold")).to_have_text(
        f"REAL below {rule.real_below:.3f}, FAKE from {rule.fake_from:.3f}"
    )
    expect(item.locator(".model-used")).to_have_text(model)
    expect(item.locator(".latency")).to_have_text(re.compile(r"^\d+\.\d ms server, \d+ ms total$"))
    fill_width = item.locator(".meter-fill").evaluate("e => e.getBoundingClientRect().width")
    bar_width = meter.evaluate("e => e.clientWidth")
    assert fill_width == pytest.approx(bar_width * confidence, abs=2.0)


def image_bytes(seed: int, mean: float, width: int = 96, height: int = 96) -> bytes:
    return png_image(seed, height=height, width=width, mean=mean)


def ppm_image() -> bytes:
    """A real image in a format the server does not accept (PPM)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(buffer, format="PPM")
    return buffer.getvalue()


# --- tests ---------------------------------------------------------------------------------


def test_index_has_security_headers_and_page_runs_under_csp(ui: Session, server: ServerProcess):
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    html = (WEBUI / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script> block"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html, re.IGNORECASE)
    page = ui.page
    options = page.locator("#model-select option")
    expect(options).to_have_text(["cnn v1", "faces v1", "nocam v1", "quant v1", "strict v1"])
    expect(page.locator("#model-select option:checked")).to_have_text("cnn v1")
    expect(page.locator("#model-info")).to_contain_text("Threshold 0.50")
    # the tiny model's metadata states test ROC-AUC 0: the model card says not to rely on it
    expect(page.locator("#model-info")).to_contain_text("do not rely on its verdicts")
    expect(page.locator("#model-info")).to_have_attribute("title", re.compile("synthetic"))
    expect(page.locator("#results")).to_have_attribute("aria-live", "polite")
    expect(page.locator("label[for=file-input]")).to_be_visible()
    expect(page.locator("#file-input")).to_have_attribute("multiple", "")
    ui.assert_clean()


def test_file_input_upload_shows_verdicts_and_confidence(ui: Session):
    bright, dark = image_bytes(1, mean=175.0), image_bytes(2, mean=70.0)
    upload(ui.page, ("bright.png", "image/png", bright), ("dark.png", "image/png", dark))
    expect(ui.page.locator("#results > li.card")).to_have_count(2)
    assert_verdict(card(ui.page, 0), bright)
    assert_verdict(card(ui.page, 1), dark)
    expect(card(ui.page, 0).locator(".verdict-label")).to_have_text("FAKE")
    expect(card(ui.page, 1).locator(".verdict-label")).to_have_text("REAL")
    expect(card(ui.page, 0).locator(".card-title")).to_have_text("bright.png")
    assert card(ui.page, 0).locator(".preview").evaluate("img => img.naturalWidth") == 96
    screenshot(ui.page, "desktop-results.png")
    ui.assert_clean()


def test_heic_without_a_browser_preview_and_an_animation_are_judged_and_said(ui: Session):
    photo = heic(np.asarray(Image.open(io.BytesIO(image_bytes(5, mean=170.0)))))
    frames = [Image.open(io.BytesIO(image_bytes(seed, mean=m))) for seed, m in ((6, 175), (7, 60))]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    upload(ui.page, ("phone.heic", "", photo), ("moving.gif", "image/gif", gif.getvalue()))
    expect(card(ui.page, 0).locator(".verdict-label")).to_have_text(re.compile("REAL|FAKE"))
    expect(card(ui.page, 0).locator(".preview-note")).to_be_visible()  # Chromium has no HEIC
    expect(card(ui.page, 1).locator(".frames-note")).to_have_text(
        "Animated or multi-page file: only the first of its 2 frames was judged."
    )
    expect(card(ui.page, 1).locator(".preview-note")).to_be_hidden()
    ui.assert_clean()


def test_a_group_photo_gets_a_box_and_a_verdict_per_face(ui: Session):
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    ui.page.select_option("#model-select", label="faces v1")
    face = data.astronaut()[20:260, 120:360].astype(float)
    group = np.concatenate([np.clip(face * k, 0, 255) for k in (0.8, 1.0, 1.2)], axis=1)
    upload(ui.page, ("group.png", "image/png", encode_png(group.astype(np.uint8))))
    found = card(ui.page, 0)
    expect(found).to_have_attribute("data-state", "done")
    expect(found.locator(".face-box")).to_have_count(3)  # the verdict's face and two others
    expect(found.locator(".face-box.other .face-tag")).to_have_count(2)
    for tag in found.locator(".face-tag").all_inner_texts():
        assert tag in ("REAL", "UNCERTAIN", "FAKE")
    expect(found.locator(".preview-caption")).to_contain_text("3 faces judged")
    screenshot(ui.page, "group-photo.png")
    ui.assert_clean()


CONTRAST_FAILURES_JS = """() => {
    const rgba = (text) => {
        const parts = text.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean);
        return parts.map(Number).concat(parts.length > 3 ? [] : [1]);
    };
    const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    const luminance = ([r, g, b]) =>
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const background = (element) => {
        for (let e = element; e; e = e.parentElement) {
            const colour = rgba(getComputedStyle(e).backgroundColor);
            if (colour[3] > 0) return colour;
        }
        return [255, 255, 255, 1];
    };
    const failures = [];
    for (const element of document.querySelectorAll("body *")) {
        const ownText = [...element.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
        if (!ownText || !element.checkVisibility()) continue;
        const style = getComputedStyle(element);
        const [a, b] = [luminance(rgba(style.color)), luminance(background(element))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
        if (ratio < (large ? 3 : 4.5)) failures.push(`${element.className}: ${ratio.toFixed(2)}`);
    }
    return failures;
}"""


def test_provenance_evidence_is_listed_apart_from_the_verdict(ui: Session):
    from helpers import evidence_files as files

    signed, plain = files.c2pa_signed_jpeg(), image_bytes(3, mean=120.0)
    tampered = files.pixels_changed(signed)
    upload(ui.page, ("signed.jpg", "image/jpeg", signed), ("plain.png", "image/png", plain),
           ("tampered.jpg", "image/jpeg", tampered))  # fmt: skip
    assert_verdict(card(ui.page, 0), signed)
    items = card(ui.page, 0).locator(".evidence-item")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-strength", "signed_untrusted")
    expect(items.first.locator(".evidence-strength")).to_have_text("Signed, unknown signer")
    expect(items.first.locator(".evidence-says")).to_contain_text("made by a generative AI model")
    expect(card(ui.page, 0).locator(".evidence-note")).to_contain_text("outweighs the model")
    assert_verdict(card(ui.page, 1), plain)
    expect(card(ui.page, 1).locator(".evidence-item")).to_have_text(re.compile("No C2PA"))
    expect(card(ui.page, 2).locator(".evidence-item")).to_have_attribute(
        "data-strength", "signed_invalid")  # fmt: skip
    assert ui.page.evaluate(CONTRAST_FAILURES_JS) == []
    screenshot(ui.page, "evidence.png")
    ui.assert_clean()


def test_text_contrast_meets_wcag_aa(ui: Session):
    """Every visible text (verdicts, errors, hints, buttons) has WCAG AA contrast."""
    fake, real = image_bytes(11, mean=190.0), image_bytes(12, mean=50.0)
    upload(
        ui.page,
        ("fake.png", "image/png", fake),
        ("real.png", "image/png", real),
        ("notes.txt", "text/plain", b"text"),
    )
    assert_verdict(card(ui.page, 0), fake)
    assert_verdict(card(ui.page, 1), real)
    expect(card(ui.page, 2).locator(".error")).to_be_visible()
    assert ui.page.evaluate(CONTRAST_FAILURES_JS) == []
    ui.page.locator(".explain-toggle").first.focus()
    ui.page.keyboard.press("Enter")  # a toggle operated from the keyboard
    expect(card(ui.page, 0).locator(".overlay-box")).to_be_visible()
    assert ui.page.evaluate(CONTRAST_FAILURES_JS) == []  # pressed-toggle colours too
    ui.assert_clean()


def test_model_card_names_the_reduced_precision_file_it_serves(ui: Session):
    expect(ui.page.locator("#model-info")).not_to_contain_text("served as")
    ui.page.select_option("#model-select", label="quant v1")
    expect(ui.page.locator("#model-info")).to_contain_text(
        "served as INT8: test ROC AUC 0.987, accuracy 93.8%"
    )
    ui.assert_clean()


def test_model_card_names_the_unseen_sources_it_misjudges(ui: Session):
    expect(ui.page.locator("#model-info")).not_to_contain_text("Misjudged")
    expect(ui.page.locator("#model-info")).to_contain_text("not measured on photo sources")
    ui.page.select_option("#model-select", label="faces v1")
    expect(ui.page.locator("#model-info")).not_to_contain_text("not measured")
    expect(ui.page.locator("#model-info")).to_contain_text(
        "Misjudged when unseen in training: yonsei real photos 45% flagged FAKE; "
        "sd21 fakes detected with AUC 0.84"
    )
    expect(ui.page.locator("#model-info")).not_to_contain_text("celeba")  # met: not named
    ui.assert_clean()


def test_model_selector_choice_is_sent_and_shown(ui: Session):
    ui.page.select_option("#model-select", label="strict v1")
    expect(ui.page.locator("#model-info")).to_contain_text("Threshold 0.90")
    data = image_bytes(3, mean=170.0)  # p(fake) about 0.89: FAKE for cnn; under strict's 0.9
    assert expected_for(data)[0] == "FAKE"  # but over 0.5, so not REAL either: UNCERTAIN
    assert expected_for(data, STRICT_THRESHOLD)[0] == "UNCERTAIN"
    upload(ui.page, ("face.png", "image/png", data))
    assert_verdict(card(ui.page, 0), data, STRICT_THRESHOLD, model="strict v1")
    assert any("model=strict" in url for url in ui.api_requests)
    ui.assert_clean()


def test_drop_event_upload_shows_verdict(ui: Session):
    data = image_bytes(4, mean=60.0)
    outcome = ui.page.evaluate(
        """({b64, name}) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "image/png"}));
            const zone = document.getElementById("drop-zone");
            const fire = (kind) => zone.dispatchEvent(new DragEvent(kind,
                {bubbles: true, cancelable: true, dataTransfer: transfer}));
            const enterAccepted = !fire("dragenter");
            const highlighted = zone.classList.contains("dragging");
            const overAccepted = !fire("dragover");
            const dropHandled = !fire("drop");
            return {enterAccepted, highlighted, overAccepted, dropHandled,
                    stillHighlighted: zone.classList.contains("dragging")};
        }""",
        {"b64": base64.b64encode(data).decode(), "name": "dropped.png"},
    )
    assert outcome == {
        "enterAccepted": True,
        "highlighted": True,
        "overAccepted": True,
        "dropHandled": True,
        "stillHighlighted": False,
    }
    expect(card(ui.page, 0).locator(".card-title")).to_have_text("dropped.png")
    assert_verdict(card(ui.page, 0), data)
    ui.assert_clean()


def test_explain_toggle_shows_cam_overlay(ui: Session):
    data = image_bytes(5, mean=150.0, width=48, height=40)
    upload(ui.page, ("explain-me.png", "image/png", data))
    item = card(ui.page, 0)
    assert_verdict(item, data)
    overlay_box, overlay = item.locator(".overlay-box"), item.locator(".overlay")
    expect(overlay_box).to_be_hidden()
    toggle = item.locator(".explain-toggle")
    expect(item.locator(".explain-method")).to_have_value("cam")  # the fast map by default
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(overlay_box).to_be_visible()
    expect(item.locator(".overlay-caption")).to_contain_text("Fast map (CAM)")
    size = overlay.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert size == [48, 40]  # the overlay has the uploaded image's size
    cam_src = overlay.get_attribute("src")
    assert cam_src.startswith("data:image/jpeg;base64,")  # the page asks for overlay=jpeg
    screenshot(ui.page, "desktop-explain-cam.png")

    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(overlay_box).to_be_hidden()
    toggle.click()  # shown again from the cached answer, no second request
    expect(overlay_box).to_be_visible()
    explains = [url for url in ui.api_requests if "/v1/explain" in url]
    assert len(explains) == 1 and "overlay=jpeg" in explains[0]
    ui.assert_clean()


def test_explain_lime_option_replaces_the_map(ui: Session):
    data = image_bytes(13, mean=150.0, width=48, height=40)
    upload(ui.page, ("lime-me.png", "image/png", data))
    item = card(ui.page, 0)
    assert_verdict(item, data)
    item.locator(".explain-toggle").click()
    caption, overlay = item.locator(".overlay-caption"), item.locator(".overlay")
    expect(caption).to_contain_text("Fast map (CAM)")
    cam_src = overlay.get_attribute("src")
    item.locator(".explain-method").select_option("lime")
    expect(caption).to_contain_text("LIME regions")
    assert overlay.evaluate("img => img.decode().then(() => img.naturalWidth)") == 48
    assert overlay.get_attribute("src") not in (cam_src, None)
    screenshot(ui.page, "desktop-explain-lime.png")
    item.locator(".explain-method").select_option("cam")  # back to the cached map
    expect(caption).to_contain_text("Fast map (CAM)")
    assert overlay.get_attribute("src") == cam_src
    explains = [url for url in ui.api_requests if "/v1/explain" in url]
    methods = [parse_qs(urlsplit(url).query)["method"] for url in explains]
    assert methods == [["cam"], ["lime"]]
    ui.assert_clean()


def test_explain_failure_is_shown_not_swallowed(ui: Session):
    ui.page.select_option("#model-select", label="nocam v1")
    data = image_bytes(9, mean=100.0)
    upload(ui.page, ("no-map.png", "image/png", data))
    item = card(ui.page, 0)
    assert_verdict(item, data, model="nocam v1")
    item.locator(".explain-toggle").click()
    status = item.locator(".explain-status")
    expect(status).to_have_text(
        "Explanation failed. Not available on this server: "
        "model nocam has no 'cam' output; use lime"
    )
    expect(status).to_have_class(re.compile(r"\berror-text\b"))
    expect(item.locator(".overlay-box")).to_be_hidden()
    ui.assert_clean()


def test_text_file_is_refused_in_the_browser(ui: Session):
    upload(ui.page, ("notes.txt", "text/plain", b"just some text"))
    item = card(ui.page, 0)
    expect(item).to_have_attribute("data-state", "error")
    expect(item.locator(".error")).to_contain_text("Not a supported image (text/plain)")
    expect(item.locator(".outcome")).to_be_hidden()
    assert ui.api_requests == []  # refused before any upload
    ui.assert_clean()


def test_server_refusals_400_415_413_are_explained(ui: Session):
    upload(
        ui.page,
        ("text-in-disguise.png", "image/png", b"this is not a PNG at all"),
        ("old-format.png", "image/png", ppm_image()),
        ("bomb.png", "image/png", pixel_bomb_png()),
    )
    expected_messages = [
        "Not a readable image: ",
        "Unsupported file type: ",
        "File too large for the server: ",
    ]
    for index, message in enumerate(expected_messages):
        item = card(ui.page, index)
        expect(item).to_have_attribute("data-state", "error")
        expect(item.locator(".error")).to_contain_text(message)
        text = item.locator(".error").inner_text()
        assert len(text) > len(message) + 5, "the server's own explanation is shown too"
        expect(item.locator(".retry")).to_be_hidden()  # retrying the same bytes cannot help
    assert len(ui.api_requests) == 3
    ui.assert_clean()


def test_too_large_file_is_refused_before_upload(ui: Session):
    limit = int(ui.page.get_attribute('meta[name="max-upload-bytes"]', "content"))
    ui.page.evaluate(
        """(size) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(size)], "huge.png", {type: "image/png"}));
            const input = document.getElementById("file-input");
            input.files = transfer.files;
            input.dispatchEvent(new Event("change", {bubbles: true}));
        }""",
        limit + 1,
    )
    item = card(ui.page, 0)
    assert limit == 10 * 1024 * 1024  # the server's default --max-body-bytes
    expect(item.locator(".error")).to_have_text(
        f"File too large: {limit + 1:,} bytes; the limit is 10 MB."
    )
    assert ui.api_requests == []
    ui.assert_clean()


def test_hostile_file_name_is_shown_as_text(ui: Session):
    data = image_bytes(6, mean=120.0)
    upload(ui.page, (HOSTILE_NAME, "image/png", data))
    item = card(ui.page, 0)
    assert_verdict(item, data)
    expect(item.locator(".card-title")).to_have_text(HOSTILE_NAME)
    assert ui.page.locator('img[src="x"]').count() == 0
    assert item.locator(".card-title *").count() == 0  # no element was parsed from the name
    ui.assert_clean()  # in particular: no alert() dialog


def test_keyboard_reaches_file_picker_with_visible_focus(ui: Session):
    page = ui.page
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file-input":
            break
    assert page.evaluate("document.activeElement.id") == "file-input"
    outline = page.locator("label[for=file-input]").evaluate(
        "l => [getComputedStyle(l).outlineStyle, parseFloat(getComputedStyle(l).outlineWidth)]"
    )
    assert outline[0] != "none" and outline[1] >= 2
    data = image_bytes(7, mean=90.0)
    for _ in range(3):  # headless Chromium under load now and then drops the key's activation
        try:
            with page.expect_file_chooser(timeout=5000) as chooser:
                page.keyboard.press("Space")
            break
        except PlaywrightTimeout:
            continue
    chooser.value.set_files([{"name": "keyboard.png", "mimeType": "image/png", "buffer": data}])
    assert_verdict(card(page, 0), data)
    ui.assert_clean()


@pytest.mark.parametrize("width", [375, 360])
def test_phone_width_has_no_horizontal_overflow(browser: Browser, server: ServerProcess, width):
    session = open_ui(browser, server.url, width=width, height=800)
    page = session.page
    try:
        data = image_bytes(8, mean=180.0, width=400, height=300)
        long_name = "a_very_long_file_name_without_any_break_opportunity_" * 4 + ".png"
        upload(page, (long_name, "image/png", data), ("readme.txt", "text/plain", b"text"))
        item = card(page, 0)
        assert_verdict(item, data)
        item.locator(".explain-toggle").click()
        expect(item.locator(".overlay-box")).to_be_visible()
        expect(card(page, 1).locator(".error")).to_be_visible()
        overflow = page.evaluate(
            """() => {
                const root = document.documentElement;
                const wide = [...document.querySelectorAll("body *")]
                    .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 0.5)
                    .map((e) => e.tagName + "." + e.className);
                return {scroll: root.scrollWidth, client: root.clientWidth, wide};
            }"""
        )
        assert overflow == {"scroll": width, "client": width, "wide": []}
        screenshot(page, f"phone-{width}.png")
        session.assert_clean()
    finally:
        page.context.close()


def test_server_busy_503_says_when_to_retry(browser: Browser, tmp_path: Path):
    """A slow model, a one-row queue: concurrent uploads get a real 503 + Retry-After.

    Each model run takes about 0.25 s on this machine (timed, not a fixed step count), so the
    four uploads overlap on any CPU; a fixed 60 steps ran too fast on a quicker CI runner."""
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, slow_spec(0.25, MODEL_SIZE))
    flags = (
        "--max-batch-size", "1", "--max-queue-size", "1", "--lime-max-samples", "1",
        "--retry-after-s", "3", "--intra-op-threads", "1", "--warmup-batch-sizes", "1",
        "--log-level", "warning", "--bulk-quiet-s", "0",  # no start-up timing of bulk sizes
    )  # fmt: skip
    with ServerProcess(root, *flags) as slow_server:
        session = open_ui(browser, slow_server.url)
        page = session.page
        try:
            images = [image_bytes(10 + i, mean=60.0 + 30 * i) for i in range(4)]
            upload(page, *((f"face{i}.png", "image/png", data) for i, data in enumerate(images)))
            expect(page.locator("#results > li.card[data-state=pending]")).to_have_count(0)
            busy = page.locator("#results > li.card[data-state=error]")
            assert busy.count() >= 1, "four concurrent uploads into a one-row queue"
            expect(busy.first.locator(".error")).to_have_text("Server busy, retry in 3 s.")
            retry = busy.first.locator(".retry")
            expect(retry).to_be_visible()
            screenshot(page, "server-busy.png")
            index = int(busy.first.evaluate("e => [...e.parentNode.children].indexOf(e)"))
            retry.click()
            assert_verdict(card(page, index), images[index])
            session.assert_clean()
        finally:
            page.context.close()


def test_api_key_is_asked_for_sent_and_kept_for_the_tab_only(browser: Browser, tmp_path: Path):
    """A server with --api-keys: the page asks for the key, says when it is wrong, sends it
    as a Bearer header, and keeps it in sessionStorage (this tab) only."""
    from serving.auth import hash_line

    key = "dfd_browser-test-key-0123456789"
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=MODEL_SIZE))
    keys = tmp_path / "keys.txt"
    keys.write_text(hash_line(key, "browser") + "\n")
    with ServerProcess(root, *SERVER_FLAGS, "--api-keys", str(keys)) as keyed:
        session = open_ui(browser, keyed.url, models=False)
        page, form = session.page, session.page.locator("#key-form")
        sent: list[str | None] = []
        page.on("request", lambda r: sent.append(r.headers.get("authorization"))
                if "/v1/predict" in r.url else None)  # fmt: skip
        try:
            expect(form).to_be_visible()
            expect(page.locator("#key-message")).to_have_text("This server needs an API key.")
            expect(page.locator("#key-input")).to_be_focused()
            expect(page.locator("#key-input")).to_have_attribute("type", "password")
            page.fill("#key-input", "dfd_not-the-key")
            page.keyboard.press("Enter")
            expect(page.locator("#key-message")).to_have_text(
                "That key was not accepted. Enter a valid API key."
            )
            page.fill("#key-input", key)
            page.locator("#key-form button[type=submit]").click()
            expect(page.locator("#model-select")).to_be_enabled()
            expect(form).to_be_hidden()
            expect(page.locator("#page-message")).to_be_hidden()
            data = image_bytes(5, mean=170.0)
            upload(page, ("face.png", "image/png", data))
            assert_verdict(card(page, 0), data)
            assert sent == [f"Bearer {key}"]
            assert page.evaluate("sessionStorage.getItem('dfd-api-key')") == key
            assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
            page.reload()  # same tab: the key is still there
            expect(page.locator("#model-select")).to_be_enabled()
            expect(form).to_be_hidden()
            screenshot(page, "api-key-accepted.png")
            session.assert_clean()
        finally:
            page.context.close()
        fresh = open_ui(browser, keyed.url, models=False)  # another tab / browser session
        try:
            expect(fresh.page.locator("#key-form")).to_be_visible()
            screenshot(fresh.page, "api-key-asked.png")
        finally:
            fresh.page.context.close()


def test_no_face_is_said_plainly_and_a_found_face_is_boxed(ui: Session):
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    ui.page.select_option("#model-select", label="faces v1")
    plain = png_image(0, height=480, width=640, mean=200.0)  # noise: no face in it
    face = encode_png(data.astronaut()[20:260, 120:360])
    upload(ui.page, ("plain.png", "image/png", plain), ("face.png", "image/png", face))
    none, found = card(ui.page, 0), card(ui.page, 1)
    expect(none).to_have_attribute("data-verdict", "no-face")
    expect(none.locator(".verdict-label")).to_have_text("No face found")
    expect(none.locator(".confidence-text")).to_contain_text("no verdict")
    expect(none.locator(".meter")).to_be_hidden()
    expect(none.locator(".explain-toggle")).to_be_hidden()
    expect(none.locator(".face-box")).to_be_hidden()
    expect(found).to_have_attribute("data-state", "done")
    expect(found.locator(".verdict-label")).to_have_text(re.compile("^(REAL|UNCERTAIN|FAKE)$"))
    box = found.locator(".face-box")
    expect(box).to_be_visible()
    image = found.locator(".preview").bounding_box()
    drawn = box.bounding_box()
    assert (
        image["x"] <= drawn["x"] and drawn["x"] + drawn["width"] <= image["x"] + image["width"] + 1
    )
    assert 0.3 * image["width"] < drawn["width"] < 0.9 * image["width"]  # the face, not the image
    expect(found.locator(".preview-caption")).to_contain_text("the face judged")
    screenshot(ui.page, "no-face-and-face.png")
    ui.assert_clean()
