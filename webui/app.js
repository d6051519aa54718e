/*
 * Deepfake detector upload page: no build step, no dependencies.
 *
 * Talks to the HTTP API of docs/CONTRACTS.md: GET /v1/models, POST /v1/predict,
 * POST /v1/explain. Runs under a strict Content-Security-Policy: no inline code, no eval,
 * and user data (file names, server messages) only ever goes into textContent or DOM
 * properties, never into HTML.
 */
"use strict";

(() => {
  const ACCEPTED_TYPES = new Set([
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/x-ms-bmp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/avif",
  ]);
  // Extensions accepted when the browser gives no type (HEIC on most desktops).
  const ACCEPTED_EXTENSIONS = /\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;
  const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
  const PREDICT_TIMEOUT_MS = 30000;
  const EXPLAIN_TIMEOUT_MS = { cam: 30000, lime: 180000 };
  const MAX_PARALLEL_UPLOADS = 4;
  const MAX_SERVER_MESSAGE = 300;

  const el = {
    modelSelect: document.getElementById("model-select"),
    modelInfo: document.getElementById("model-info"),
    dropZone: document.getElementById("drop-zone"),
    fileInput: document.getElementById("file-input"),
    maxSize: document.getElementById("max-size"),
    pageMessage: document.getElementById("page-message"),
    results: document.getElementById("results"),
    resultsEmpty: document.getElementById("results-empty"),
    clearResults: document.getElementById("clear-results"),
    cardTemplate: document.getElementById("card-template"),
    verdictTemplate: document.getElementById("verdict-template"),
  };

  const maxBytes = readMaxBytes();
  let models = [];
  const cards = new Set();

  /** An HTTP or network failure, with what the user needs to know about it. */
  class ApiError extends Error {
    constructor(status, code, message, retryAfterSeconds = null) {
      super(message);
      this.status = status; // 0 = no answer (network failure or timeout)
      this.code = code;
      this.retryAfterSeconds = retryAfterSeconds;
    }
  }

  function readMaxBytes() {
    const meta = document.querySelector('meta[name="max-upload-bytes"]');
    const value = meta ? Number.parseInt(meta.content, 10) : Number.NaN;
    return Number.isFinite(value) && value > 0 ? value : DEFAULT_MAX_BYTES;
  }

  function formatBytes(bytes) {
    if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MB`;
    if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
    return `${bytes} bytes`;
  }

  /** Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or null. */
  function parseRetryAfter(value) {
    if (!value) return null;
    const text = value.trim();
    if (/^\d+$/.test(text)) return Number.parseInt(text, 10);
    const date = Date.parse(text);
    if (Number.isNaN(date)) return null;
    return Math.max(1, Math.ceil((date - Date.now()) / 1000));
  }

  function shorten(text) {
    const clean = String(text ?? "").trim();
    return clean.length > MAX_SERVER_MESSAGE ? `${clean.slice(0, MAX_SERVER_MESSAGE)}…` : clean;
  }

  /** fetch() that resolves to parsed JSON or rejects with an ApiError. */
  async function apiFetch(url, options = {}, timeoutMs = PREDICT_TIMEOUT_MS) {
    const controller = new AbortController();
    const timer = window.setTimeout(() => controller.abort(), timeoutMs);
    let response;
    try {
      response = await fetch(url, withApiKey({ ...options, signal: controller.signal }));
    } catch (error) {
      if (controller.signal.aborted) {
        throw new ApiError(0, "timeout", `No answer within ${Math.round(timeoutMs / 1000)} s.`);
      }
      throw new ApiError(0, "network", "Could not reach the server.");
    } finally {
      window.clearTimeout(timer);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body === "object" && body.error ? body.error : {};
      if (response.status === 401) askForKey(detail.code);
      throw new ApiError(
        response.status,
        typeof detail.code === "string" ? detail.code : "http_error",
        shorten(detail.message || response.statusText || "no details"),
        parseRetryAfter(response.headers.get("Retry-After")),
      );
    }
    if (body === null || typeof body !== "object") {
      throw new ApiError(response.status, "bad_response", "The server sent an unreadable answer.");
    }
    return body;
  }

  /** One clear sentence for the user about a failed request. */
  function describeError(error) {
    if (!(error instanceof ApiError)) return `Unexpected problem: ${shorten(error && error.message)}`;
    const { status, message } = error;
    if (status === 0 && error.code === "timeout") return `The server took too long. ${message} Please retry.`;
    if (status === 0) return "Could not reach the server. Check that it is running, then retry.";
    if (status === 401) return "This server needs a valid API key: enter it above.";
    if (status === 429) {
      return error.retryAfterSeconds === null
        ? "Too many requests, please retry in a few seconds."
        : `Too many requests, retry in ${error.retryAfterSeconds} s.`;
    }
    if (status === 503) {
      return error.retryAfterSeconds === null
        ? "Server busy, please retry in a few seconds."
        : `Server busy, retry in ${error.retryAfterSeconds} s.`;
    }
    if (status === 400) return `Not a readable image: ${message}`;
    if (status === 404) return `Model not found: ${message}`;
    if (status === 413) return `File too large for the server: ${message}`;
    if (status === 415) return `Unsupported file type: ${message}`;
    if (status === 422) return `Request rejected: ${message}`;
    if (status === 501) return `Not available on this server: ${message}`;
    if (status === 504) return "The server timed out while busy. Please retry.";
    if (status >= 500) return `Server error (HTTP ${status}): ${message}`;
    return `Request failed (HTTP ${status}): ${message}`;
  }

  function isRetryable(error) {
    if (!(error instanceof ApiError)) return true;
    const retryLater = error.status === 401 || error.status === 429;
    return error.status === 0 || retryLater || (error.status >= 500 && error.status !== 501);
  }

  // ---------------------------------------------------------------- API key
  // Only when the server requires one (its API answers 401). The key is kept in
  // sessionStorage: this tab only, gone when it is closed; never in localStorage or a cookie.

  const API_KEY_STORAGE = "dfd-api-key";
  const keyForm = {
    form: document.getElementById("key-form"),
    input: document.getElementById("key-input"),
    message: document.getElementById("key-message"),
  };

  function storedApiKey() {
    try {
      return window.sessionStorage.getItem(API_KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  function storeApiKey(key) {
    try {
      if (key) window.sessionStorage.setItem(API_KEY_STORAGE, key);
      else window.sessionStorage.removeItem(API_KEY_STORAGE);
    } catch {
      // storage disabled: the key is asked for again after a reload
    }
  }

  /** fetch() options with the Authorization header when a key was entered. */
  function withApiKey(options) {
    const key = storedApiKey();
    if (!key) return options;
    const headers = new Headers(options.headers || {});
    headers.set("Authorization", `Bearer ${key}`);
    return { ...options, headers };
  }

  function askForKey(code) {
    const rejected = code === "invalid_api_key" && storedApiKey() !== "";
    storeApiKey("");
    keyForm.message.textContent = rejected
      ? "That key was not accepted. Enter a valid API key."
      : "This server needs an API key.";
    const opening = keyForm.form.hidden;
    keyForm.form.hidden = false;
    if (opening) keyForm.input.focus();
  }

  function wireKeyForm() {
    keyForm.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = keyForm.input.value.trim();
      if (!key) return;
      storeApiKey(key);
      keyForm.input.value = "";
      keyForm.form.hidden = true;
      showPageMessage("");
      loadModels();
    });
  }

  // ---------------------------------------------------------------- page messages

  function showPageMessage(text) {
    el.pageMessage.textContent = text;
    el.pageMessage.hidden = !text;
  }

  // ---------------------------------------------------------------- models

  function selectedModel() {
    const entry = models[Number.parseInt(el.modelSelect.value, 10)];
    return entry ? { name: entry.name, version: entry.version } : null;
  }

  // Below this test ROC-AUC the model card warns that verdicts are unreliable.
  const WEAK_MODEL_AUC = 0.7;

  function describeModel(entry) {
    const parts = [`Threshold ${Number(entry.threshold).toFixed(2)}`];
    const test = entry.metrics && entry.metrics.test;
    if (test && typeof test.roc_auc === "number") parts.push(`test ROC AUC ${test.roc_auc.toFixed(3)}`);
    if (test && typeof test.accuracy === "number") {
      parts.push(`accuracy ${(test.accuracy * 100).toFixed(1)}%`);
    }
    const served = entry.precision_metrics;
    if (served && typeof served.roc_auc === "number") {
      // A reduced-precision file is served: its own numbers on the same test images.
      const label = String(entry.precision || "").toUpperCase();
      const accuracy = typeof served.accuracy === "number"
        ? `, accuracy ${(served.accuracy * 100).toFixed(1)}%` : "";
      parts.push(`served as ${label}: test ROC AUC ${served.roc_auc.toFixed(3)}${accuracy}`);
    }
    if (test && typeof test.roc_auc === "number" && test.roc_auc < WEAK_MODEL_AUC) {
      parts.push("weak on its own test set: do not rely on its verdicts");
    }
    const holdout = entry.metrics && entry.metrics.holdout;
    if (!holdout) parts.push("not measured on photo sources it never saw");
    const unseen = missedHoldout(holdout);
    if (unseen) parts.push(unseen);
    if (entry.ready === false) parts.push("still warming up");
    return parts.join(" · ");
  }

  // The source-holdout folds whose target the model missed (metrics.holdout, written by the
  // export from python -m train.holdout): photos like these it misjudges when it never saw them.
  function missedHoldout(holdout) {
    if (!holdout || typeof holdout !== "object") return "";
    const missed = Object.entries(holdout)
      .filter(([, fold]) => fold && fold.met === false)
      .map(([name, fold]) => (typeof fold.flagged_fake_rate === "number"
        ? `${name} real photos ${(fold.flagged_fake_rate * 100).toFixed(0)}% flagged FAKE`
        : `${name} fakes detected with AUC ${Number(fold.auc).toFixed(2)}`));
    return missed.length ? `Misjudged when unseen in training: ${missed.join("; ")}` : "";
  }

  async function loadModels() {
    el.modelSelect.replaceChildren();
    try {
      const body = await apiFetch("/v1/models");
      models = Array.isArray(body.models) ? body.models : [];
      if (models.length === 0) {
        showPageMessage("The server has no models loaded, so images cannot be analysed.");
        el.modelSelect.append(new Option("No models available", ""));
        return;
      }
      let defaultIndex = 0;
      models.forEach((entry, index) => {
        const label = `${entry.name} v${entry.version}${entry.ready === false ? " (warming up)" : ""}`;
        el.modelSelect.append(new Option(label, String(index)));
        const best = models[defaultIndex];
        if (entry.name === body.default && (best.name !== body.default || entry.version > best.version)) {
          defaultIndex = index;
        }
      });
      el.modelSelect.value = String(defaultIndex);
      el.modelSelect.disabled = false;
      updateModelInfo();
    } catch (error) {
      models = [];
      el.modelSelect.append(new Option("Server default", ""));
      showPageMessage(`Could not load the model list. ${describeError(error)}`);
    }
  }

  function updateModelInfo() {
    const entry = models[Number.parseInt(el.modelSelect.value, 10)];
    el.modelInfo.textContent = entry ? describeModel(entry) : "";
    el.modelInfo.title = entry && entry.training_data ? `Trained on: ${entry.training_data}` : "";
  }

  // ---------------------------------------------------------------- upload queue

  const queue = [];
  let activeUploads = 0;

  function schedule(task) {
    queue.push(task);
    pumpQueue();
  }

  function pumpQueue() {
    while (activeUploads < MAX_PARALLEL_UPLOADS && queue.length > 0) {
      const task = queue.shift();
      activeUploads += 1;
      task().finally(() => {
        activeUploads -= 1;
        pumpQueue();
      });
    }
  }

  /** Why a file cannot be sent, or "" when it looks fine. The server checks again. */
  function clientSideProblem(file) {
    if (file.type && !ACCEPTED_TYPES.has(file.type) && !ACCEPTED_EXTENSIONS.test(file.name || "")) {
      return `Not a supported image (${shorten(file.type)}). Use JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF.`;
    }
    if (!file.type && file.size === 0) return "The file is empty.";
    if (file.size > maxBytes) {
      const limit = formatBytes(maxBytes);
      let size = formatBytes(file.size);
      if (size === limit) size = `${file.size.toLocaleString("en-US")} bytes`;
      return `File too large: ${size}; the limit is ${limit}.`;
    }
    return "";
  }

  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (files.length === 0) return;
    showPageMessage("");
    const model = selectedModel();
    for (const file of files) {
      if (videos && videos.accepts(file)) {
        videos.add(file, model); // webui/video.js
        continue;
      }
      const card = createCard(file, model);
      const problem = clientSideProblem(file);
      if (problem) {
        showError(card, problem, false);
      } else {
        showPreview(card);
        schedule(() => predict(card));
      }
    }
    updateResultsChrome();
  }

  // ---------------------------------------------------------------- cards

  function part(card, selector) {
    return card.root.querySelector(selector);
  }

  // A new card from its template, with the verdict block (shared by image and video cards).
  function cardRoot(template) {
    const root = template.content.firstElementChild.cloneNode(true);
    root.querySelector(".verdict-slot").replaceWith(el.verdictTemplate.content.cloneNode(true));
    return root;
  }

  function createCard(file, model) {
    const root = cardRoot(el.cardTemplate);
    const card = { root, file, model, previewUrl: null, overlays: new Map(), explainToken: 0 };
    part(card, ".card-title").textContent = file.name || "(unnamed file)";
    root.classList.add("no-preview");
    part(card, ".retry").addEventListener("click", () => {
      hideError(card);
      schedule(() => predict(card));
    });
    part(card, ".explain-toggle").addEventListener("click", () => toggleExplain(card));
    part(card, ".explain-method").addEventListener("change", () => {
      if (part(card, ".explain-toggle").getAttribute("aria-pressed") === "true") showExplanation(card);
    });
    cards.add(card);
    el.results.append(root);
    return card;
  }

  function showPreview(card) {
    card.previewUrl = URL.createObjectURL(card.file);
    const preview = part(card, ".preview");
    preview.alt = `Preview of ${card.file.name}`;
    // A format the browser cannot draw (HEIC outside Safari): the server still judges it.
    preview.addEventListener("error", () => {
      card.root.classList.add("no-preview");
      part(card, ".preview-note").hidden = false;
    }, { once: true });
    preview.src = card.previewUrl;
    card.root.classList.remove("no-preview");
  }

  function setStatus(card, text) {
    const status = part(card, ".status");
    status.textContent = text;
    status.hidden = !text;
  }

  function showError(card, text, retryable) {
    card.root.dataset.state = "error";
    setStatus(card, "");
    const error = part(card, ".error");
    error.textContent = text;
    error.hidden = false;
    part(card, ".retry").hidden = !retryable;
  }

  function hideError(card) {
    part(card, ".error").hidden = true;
    part(card, ".retry").hidden = true;
  }

  function modelQuery(model) {
    const params = new URLSearchParams();
    if (model) {
      params.set("model", model.name);
      params.set("version", String(model.version));
    }
    return params;
  }

  function uploadBody(file) {
    const form = new FormData();
    form.append("file", file, file.name || "upload");
    return form;
  }

  async function predict(card) {
    card.root.dataset.state = "pending";
    setStatus(card, "Analysing…");
    const started = performance.now();
    try {
      const result = await apiFetch(`/v1/predict?${modelQuery(card.model)}`, {
        method: "POST",
        body: uploadBody(card.file),
      });
      renderPrediction(card, result, performance.now() - started);
    } catch (error) {
      showError(card, describeError(error), isRetryable(error));
    }
  }

  // The three verdicts, each with its own words: a label never contradicts its probability.
  const VERDICTS = ["REAL", "UNCERTAIN", "FAKE"];

  // Place a box over the preview at a face's box, given in the upload's pixels.
  function placeBox(box, face) {
    const size = face && Array.isArray(face.image_size) ? face.image_size.map(Number) : null;
    if (!size || !(size[0] > 0 && size[1] > 0) || !Array.isArray(face.box)) return false;
    const [x, y, width, height] = face.box.map(Number);
    box.style.left = `${(100 * x) / size[0]}%`;
    box.style.top = `${(100 * y) / size[1]}%`;
    box.style.width = `${(100 * width) / size[0]}%`;
    box.style.height = `${(100 * height) / size[1]}%`;
    return true;
  }

  // The face the verdict is about, drawn over the preview; with several faces judged, every
  // other face too, each tagged with its own verdict.
  function drawFace(card, face, faces = []) {
    const box = card.root.querySelector(".face-box");
    const caption = card.root.querySelector(".preview-caption");
    if (!box) return;
    card.root.querySelectorAll(".face-box.other").forEach((other) => other.remove());
    box.hidden = !placeBox(box, face);
    if (box.hidden) {
      if (caption) caption.textContent = "Uploaded image";
      return;
    }
    const judged = faces.filter((entry) => entry && entry.face);
    for (const entry of judged) {
      if (JSON.stringify(entry.face.box) === JSON.stringify(face.box)) continue;
      const other = document.createElement("div");
      other.className = "face-box other";
      other.dataset.verdict = String(entry.label || "").toLowerCase();
      const tag = document.createElement("span");
      tag.className = "face-tag";
      tag.textContent = VERDICTS.includes(entry.label) ? entry.label : "?";
      other.append(tag);
      if (placeBox(other, entry.face)) box.after(other);
    }
    if (caption) {
      caption.textContent = judged.length > 1
        ? `Uploaded image: ${judged.length} faces judged; the verdict is the most suspicious one's (thick box)`
        : `Uploaded image: the face judged (detector score ${Number(face.score).toFixed(2)})`;
    }
  }

  function showNoFace(card, result) {
    card.root.dataset.verdict = "no-face";
    part(card, ".verdict-label").textContent = "No face found";
    const message = String(result.message || "This image gets no verdict.");
    part(card, ".confidence-text").textContent = message.replace(/^No face found:\s*/, "");
    part(card, ".probability").textContent = "—";
    part(card, ".threshold").textContent = "—";
    drawFace(card, null);
  }

  function showVerdict(card, result) {
    if (result.label === "NO_FACE") {
      showNoFace(card, result);
      return;
    }
    drawFace(card, result.face, Array.isArray(result.faces) ? result.faces : []);
    const label = VERDICTS.includes(result.label) ? result.label : "UNCERTAIN";
    const confidence = Math.min(1, Math.max(0, Number(result.confidence)));
    const percent = (confidence * 100).toFixed(1);
    const likelier = Number(result.probability_fake) >= 0.5 ? "fake" : "real";
    const text =
      label === "UNCERTAIN"
        ? `${percent}% likely ${likelier}: too close to call`
        : `${percent}% confident`;
    card.root.dataset.verdict = label.toLowerCase();
    part(card, ".verdict-label").textContent = label;
    part(card, ".confidence-text").textContent = text;
    const meter = part(card, ".meter");
    meter.setAttribute("aria-valuenow", percent);
    meter.setAttribute("aria-valuetext", `${label}: ${text}`);
    meter.setAttribute("aria-label", "Confidence");
    part(card, ".meter-fill").style.width = `${percent}%`;
    part(card, ".probability").textContent = Number(result.probability_fake).toFixed(3);
    const rule = result.decision;
    part(card, ".threshold").textContent = rule
      ? `REAL below ${Number(rule.real_below).toFixed(3)}, FAKE from ${Number(rule.fake_from).toFixed(3)}`
      : Number(result.threshold).toFixed(3);
  }

  function renderPrediction(card, result, roundTripMs) {
    card.model = { name: result.model, version: result.version };
    card.root.dataset.state = "done";
    setStatus(card, "");
    showVerdict(card, result);
    part(card, ".model-used").textContent = `${result.model} v${result.version}`;
    part(card, ".latency").textContent =
      `${Number(result.latency_ms).toFixed(1)} ms server, ${Math.round(roundTripMs)} ms total`;
    const frames = result.frames && Number(result.frames.count) > 1 ? Number(result.frames.count) : 0;
    part(card, ".frames-note").hidden = !frames;
    part(card, ".frames-note").textContent = frames
      ? `Animated or multi-page file: only the first of its ${frames} frames was judged.` : "";
    renderEvidence(card, result.evidence);
    part(card, ".outcome").hidden = false;
  }

  // ---------------------------------------------------------------- provenance evidence
  // What the file itself claims (docs/CONTRACTS.md "evidence"), listed apart from the model's
  // verdict, strongest first as the server sends it; server text goes into textContent only.

  const EVIDENCE_STRENGTHS = {
    signed_trusted: "Signed, trusted signer",
    signed_untrusted: "Signed, unknown signer",
    signed_invalid: "Signature does not validate",
    unsigned_metadata: "Unsigned metadata",
    unverified: "Not verified here",
    unreadable: "Unreadable",
  };
  const MAX_EVIDENCE_ITEMS = 16;

  function evidenceItem(strength, text) {
    const item = document.createElement("li");
    item.className = "evidence-item";
    item.dataset.strength = strength;
    const badge = document.createElement("span");
    badge.className = "evidence-strength";
    badge.textContent = EVIDENCE_STRENGTHS[strength] || "None";
    const says = document.createElement("span");
    says.className = "evidence-says";
    says.textContent = shorten(text);
    item.append(badge, " ", says);
    return item;
  }

  function renderEvidence(card, findings) {
    const box = part(card, ".evidence");
    const list = part(card, ".evidence-list");
    list.replaceChildren();
    box.hidden = !Array.isArray(findings); // absent: the server does not read evidence
    if (box.hidden) return;
    if (findings.length === 0) {
      list.append(evidenceItem("none", "No C2PA manifest or generator metadata found."));
    }
    for (const finding of findings.slice(0, MAX_EVIDENCE_ITEMS)) {
      if (finding && typeof finding === "object") {
        list.append(evidenceItem(String(finding.strength || ""), finding.says));
      }
    }
  }

  // ---------------------------------------------------------------- explanations

  function toggleExplain(card) {
    const toggle = part(card, ".explain-toggle");
    const on = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(on));
    if (on) {
      showExplanation(card);
    } else {
      card.explainToken += 1; // a late answer must not reopen the overlay
      part(card, ".overlay-box").hidden = true;
      part(card, ".explain-status").hidden = true;
    }
  }

  async function showExplanation(card) {
    const method = part(card, ".explain-method").value === "lime" ? "lime" : "cam";
    const token = ++card.explainToken;
    const status = part(card, ".explain-status");
    if (!card.overlays.has(method)) {
      part(card, ".overlay-box").hidden = true; // never show one method's map under another's name
      status.textContent =
        method === "lime" ? "Computing LIME explanation (may take a while)…" : "Computing map…";
      status.hidden = false;
      status.classList.remove("error-text");
      try {
        const params = modelQuery(card.model);
        params.set("method", method);
        params.set("overlay", "jpeg"); // a tenth of the PNG's bytes, faster to encode
        const answer = await apiFetch(
          `/v1/explain?${params}`,
          { method: "POST", body: uploadBody(card.file) },
          EXPLAIN_TIMEOUT_MS[method],
        );
        const jpeg = String(answer.overlay_jpeg_base64 || "");
        if (!/^[A-Za-z0-9+/]+=*$/.test(jpeg)) {
          throw new ApiError(200, "bad_response", "The server sent no explanation image.");
        }
        card.overlays.set(method, { src: `data:image/jpeg;base64,${jpeg}`, latency: answer.latency_ms });
      } catch (error) {
        if (token !== card.explainToken) return;
        status.textContent = `Explanation failed. ${describeError(error)}`;
        status.classList.add("error-text");
        return;
      }
    }
    if (token !== card.explainToken) return;
    const overlay = card.overlays.get(method);
    const image = part(card, ".overlay");
    image.alt = `${method === "lime" ? "LIME" : "Class-activation"} explanation of ${card.file.name}`;
    image.src = overlay.src;
    const name = method === "lime" ? "LIME regions" : "Fast map (CAM)";
    part(card, ".overlay-caption").textContent =
      `${name}, ${Number(overlay.latency).toFixed(0)} ms: red pushes towards FAKE, blue towards REAL`;
    part(card, ".overlay-box").hidden = false;
    status.hidden = true;
  }

  // ---------------------------------------------------------------- video clips (webui/video.js)

  const videos = window.DeepfakeVideo
    ? window.DeepfakeVideo.create({
        apiFetch,
        describeError,
        showVerdict,
        isRetryable,
        modelQuery,
        formatBytes,
        schedule,
        cardRoot,
        adopt(card) {
          cards.add(card);
          el.results.append(card.root);
        },
      })
    : null;

  // ---------------------------------------------------------------- page chrome

  function updateResultsChrome() {
    const any = cards.size > 0;
    el.resultsEmpty.hidden = any;
    el.clearResults.hidden = !any;
  }

  function clearResults() {
    for (const card of cards) {
      card.explainToken += 1;
      if (card.previewUrl) URL.revokeObjectURL(card.previewUrl);
      card.root.remove();
    }
    cards.clear();
    queue.length = 0;
    updateResultsChrome();
    el.fileInput.focus();
  }

  function hasFiles(event) {
    return Boolean(event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files"));
  }

  function wireDragAndDrop() {
    let depth = 0;
    const setDragging = (on) => el.dropZone.classList.toggle("dragging", on);
    // The whole window accepts drops, so a near miss never navigates away from the page.
    window.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      setDragging(true);
    });
    window.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    window.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    });
    window.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      setDragging(false);
      if (event.dataTransfer) addFiles(event.dataTransfer.files);
    });
  }

  function init() {
    el.maxSize.textContent = formatBytes(maxBytes);
    el.fileInput.addEventListener("change", () => {
      addFiles(el.fileInput.files);
      el.fileInput.value = ""; // picking the same file again fires change again
    });
    el.modelSelect.addEventListener("change", updateModelInfo);
    el.clearResults.addEventListener("click", clearResults);
    wireKeyForm();
    wireDragAndDrop();
    updateResultsChrome();
    loadModels();
  }

  init();
})();
