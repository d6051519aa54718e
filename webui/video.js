/*
 * Video clips on the upload page: POST /v1/predict/video (docs/CONTRACTS.md), then the
 * verdict, a chart of P(fake) per sampled frame over time and the highest-scoring frames.
 *
 * app.js owns the page; it calls window.DeepfakeVideo.create(page) with the helpers it
 * shares (fetch, error wording, upload queue, results list) and hands over every file that
 * accepts() claims. Same rules as app.js: no inline code, user data only as text.
 */
"use strict";

window.DeepfakeVideo = (() => {
  const VIDEO_TYPES = new Set([
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/x-msvideo",
    "video/avi",
    "video/msvideo",
  ]);
  const VIDEO_NAME = /\.(mp4|m4v|mov|webm|mkv|avi)$/i;
  const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;
  const TIMEOUT_MS = 300000;
  const SVG = "http://www.w3.org/2000/svg";
  const CHART = { width: 600, height: 180, left: 36, right: 8, top: 10, bottom: 26 };

  function readMaxBytes() {
    const meta = document.querySelector('meta[name="max-video-bytes"]');
    const value = meta ? Number.parseInt(meta.content, 10) : Number.NaN;
    return Number.isFinite(value) && value > 0 ? value : DEFAULT_MAX_BYTES;
  }

  /** Whether a chosen or dropped file is a video (by type, or by name when the type is empty). */
  function accepts(file) {
    const type = (file.type || "").toLowerCase();
    if (type) return VIDEO_TYPES.has(type) || type.startsWith("video/");
    return VIDEO_NAME.test(file.name || "");
  }

  function svg(name, attributes = {}) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
  }

  function seconds(value) {
    return `${Number(value).toFixed(Number(value) < 10 ? 2 : 1)} s`;
  }

  /** One <text> label of the chart. */
  function label(x, y, anchor, text) {
    const node = svg("text", { class: "chart-label", x, y, "text-anchor": anchor });
    node.textContent = text;
    return node;
  }

  /** The per-frame chart: P(fake) (0..1, up) against time (s, right), threshold dashed. */
  function drawChart(chart, result) {
    // Frames without a face (a face-crop model) carry no probability: not drawn.
    const frames = (Array.isArray(result.frames) ? result.frames : []).filter(
      (f) => f.probability_fake !== null && f.probability_fake !== undefined,
    );
    const duration = Math.max(Number(result.video && result.video.duration_s) || 0, 1e-6);
    const width = CHART.width - CHART.left - CHART.right;
    const height = CHART.height - CHART.top - CHART.bottom;
    const clamp = (value, high) => Math.min(Math.max(Number(value), 0), high);
    const x = (time) => CHART.left + (clamp(time, duration) / duration) * width;
    const y = (p) => CHART.top + (1 - clamp(p, 1)) * height;
    const threshold = Number(result.threshold);
    chart.replaceChildren();
    chart.setAttribute("viewBox", `0 0 ${CHART.width} ${CHART.height}`);
    chart.append(svg("rect", { class: "chart-area", x: CHART.left, y: CHART.top, width, height }));
    for (const tick of [0, 0.5, 1]) chart.append(label(CHART.left - 6, y(tick) + 4, "end", tick.toFixed(1)));
    chart.append(label(x(0), CHART.height - 8, "start", seconds(0)));
    chart.append(label(x(duration), CHART.height - 8, "end", seconds(duration)));
    const [left, right] = [CHART.left, CHART.left + width];
    const level = y(threshold);
    chart.append(svg("line", { class: "chart-threshold", x1: left, x2: right, y1: level, y2: level }));
    const points = frames.map((f) => `${x(f.time_s).toFixed(1)},${y(f.probability_fake).toFixed(1)}`);
    chart.append(svg("polyline", { class: "chart-line", points: points.join(" ") }));
    for (const frame of frames) {
      const kind = Number(frame.probability_fake) >= threshold ? "dot-fake" : "dot-real";
      const dot = svg("circle", {
        class: `chart-dot ${kind}`, cx: x(frame.time_s), cy: y(frame.probability_fake), r: 3.5,
      });
      const tip = svg("title");
      tip.textContent = `${seconds(frame.time_s)}: P(fake) ${Number(frame.probability_fake).toFixed(3)}`;
      dot.append(tip);
      chart.append(dot);
    }
    const top = frames.reduce(
      (best, f) => (!best || f.probability_fake > best.probability_fake ? f : best), null,
    );
    const summary = top
      ? `highest ${Number(top.probability_fake).toFixed(3)} at ${seconds(top.time_s)}`
      : "no frames";
    const over = `P(fake) of ${frames.length} frames over ${seconds(duration)}`;
    chart.setAttribute("aria-label", `${over}; ${summary}`);
  }

  function create(page) {
    const maxBytes = readMaxBytes();
    const template = document.getElementById("video-card-template");
    const limit = document.getElementById("max-video-size");
    if (limit) limit.textContent = page.formatBytes(maxBytes);

    function part(card, selector) {
      return card.root.querySelector(selector);
    }

    function showError(card, text, retryable) {
      card.root.dataset.state = "error";
      part(card, ".status").hidden = true;
      const error = part(card, ".error");
      error.textContent = text;
      error.hidden = false;
      part(card, ".retry").hidden = !retryable;
    }

    function problem(file) {
      if (file.size === 0) return "The file is empty.";
      if (file.size > maxBytes) {
        const [size, limit] = [page.formatBytes(file.size), page.formatBytes(maxBytes)];
        return `Video too large: ${size}; the limit is ${limit}.`;
      }
      return "";
    }

    function describe(error) {
      if (error && error.status === 400) return `Not a readable video: ${error.message}`;
      if (error && error.status === 415) return `Unsupported video: ${error.message}`;
      if (error && error.status === 413) return `Video over a server limit: ${error.message}`;
      return page.describeError(error);
    }

    function render(card, result, roundTripMs) {
      card.root.dataset.state = "done";
      part(card, ".status").hidden = true;
      page.showVerdict(card, result);
      const video = result.video || {};
      part(card, ".frames-scored").textContent =
        `${result.frames.length} of ${video.frame_count}, ${seconds(video.duration_s)} clip`;
      part(card, ".model-used").textContent = `${result.model} v${result.version}`;
      part(card, ".latency").textContent =
        `${Number(result.latency_ms).toFixed(0)} ms server, ${Math.round(roundTripMs)} ms total`;
      const aggregation = result.aggregation || {};
      part(card, ".rule").textContent =
        result.label === "NO_FACE"
          ? String(result.message || "No face found in the sampled frames: no verdict.")
          : `Verdict: ${aggregation.description}; ${aggregation.calibration}.`;
      drawChart(part(card, ".chart"), result);
      const list = part(card, ".top-frames");
      list.replaceChildren();
      for (const frame of result.top_frames || []) {
        const data = String(frame.thumbnail_jpeg_base64 || "");
        if (!/^[A-Za-z0-9+/]+=*$/.test(data)) continue;
        const item = document.createElement("li");
        const figure = document.createElement("figure");
        const image = document.createElement("img");
        const caption = document.createElement("figcaption");
        image.src = `data:image/jpeg;base64,${data}`;
        image.alt = `Frame at ${seconds(frame.time_s)}`;
        const probability = Number(frame.probability_fake).toFixed(3);
        caption.textContent = `${seconds(frame.time_s)} · P(fake) ${probability}`;
        figure.append(image, caption);
        item.append(figure);
        list.append(item);
      }
      part(card, ".outcome").hidden = false;
    }

    async function score(card) {
      card.root.dataset.state = "pending";
      part(card, ".error").hidden = true;
      part(card, ".retry").hidden = true;
      const status = part(card, ".status");
      status.textContent = "Uploading and analysing frames…";
      status.hidden = false;
      const started = performance.now();
      const form = new FormData();
      form.append("file", card.file, card.file.name || "video");
      try {
        const url = `/v1/predict/video?${page.modelQuery(card.model)}`;
        const result = await page.apiFetch(url, { method: "POST", body: form }, TIMEOUT_MS);
        if (!Array.isArray(result.frames)) throw new Error("the server sent no frames");
        render(card, result, performance.now() - started);
      } catch (error) {
        showError(card, describe(error), page.isRetryable(error));
      }
    }

    function add(file, model) {
      const root = page.cardRoot(template);
      const card = { root, file, model, previewUrl: null, explainToken: 0 };
      part(card, ".card-title").textContent = file.name || "(unnamed video)";
      part(card, ".retry").addEventListener("click", () => page.schedule(() => score(card)));
      page.adopt(card);
      const refused = problem(file);
      if (refused) showError(card, refused, false);
      else page.schedule(() => score(card));
    }

    return { accepts, add, maxBytes };
  }

  return { create, accepts };
})();
