// fer-serve page: preview an image, POST it to api/predict, draw the faces and a bar chart.
// Plain browser JavaScript, no libraries, relative URLs only.
"use strict";

// Same colours as fer_keras.predict.PALETTE (annotated images).
const PALETTE = {
  angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#2ca02c",
  neutral: "#7f7f7f", sad: "#1f77b4", surprise: "#ff7f0e",
};
const OTHER = "#e377c2";
const MAX_CANVAS_SIDE = 1280; // large photos are previewed downscaled

const $ = (id) => document.getElementById(id);
const state = { file: null, url: null, image: null, result: null, selected: 0 };

function colour(label) {
  return PALETTE[label] || OTHER;
}

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function loadHealth() {
  try {
    const response = await fetch("health");
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    const m = data.model;
    $("model").textContent = `Model ${m.name} (version ${m.version}, ${m.runtime}) · classes: ${m.class_names.join(", ")}`;
  } catch (err) {
    $("model").textContent = `Model status unavailable: ${err.message}`;
  }
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  state.result = null;
  $("filename").textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)`;
  $("result").hidden = true;
  setStatus("");
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    state.image = img;
    $("predict").disabled = false;
    draw();
  };
  img.onerror = () => {
    // The browser cannot preview it (e.g. TIFF); the server may still read it.
    state.image = null;
    $("predict").disabled = false;
    draw();
    setStatus("No preview for this file type; press Predict to send it anyway.");
  };
  img.src = state.url;
}

function draw() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const img = state.image;
  $("hint").hidden = Boolean(img);
  canvas.classList.toggle("empty", !img);
  if (!img) return;
  const scale = Math.min(1, MAX_CANVAS_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
  canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const result = state.result;
  if (!result) return;
  // Boxes are in the server's pixels (EXIF-rotated, like the browser's preview).
  const sx = canvas.width / result.image.width;
  const sy = canvas.height / result.image.height;
  const line = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 150));
  const fontSize = Math.max(12, Math.round(Math.min(canvas.width, canvas.height) / 25));
  ctx.font = `600 ${fontSize}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  result.faces.forEach((face, i) => {
    const [x, y, w, h] = face.box;
    const c = colour(face.label);
    ctx.lineWidth = i === state.selected ? line * 2 : line;
    ctx.strokeStyle = c;
    ctx.strokeRect(x * sx, y * sy, w * sx, h * sy);
    const text = `${i + 1} ${face.label} ${Math.round(face.probabilities[face.label] * 100)}%`;
    const tw = ctx.measureText(text).width + 2 * line;
    const th = fontSize + 2 * line;
    const ty = y * sy - th >= 0 ? y * sy - th : y * sy;
    const tx = Math.min(x * sx, Math.max(0, canvas.width - tw));
    ctx.fillStyle = c;
    ctx.fillRect(tx, ty, tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, tx + line, ty + line);
  });
}

function renderResult() {
  const result = state.result;
  const faces = result.faces;
  const face = faces[state.selected];
  $("result").hidden = false;
  $("label").textContent = face.label;
  $("label").style.color = colour(face.label);
  $("facenote").textContent = face.detected
    ? `${faces.length} face${faces.length === 1 ? "" : "s"} found; showing face ${state.selected + 1} (largest first)`
    : "No face found: the whole image was classified.";

  const list = $("faces");
  list.replaceChildren();
  if (faces.length > 1) {
    faces.forEach((f, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `${i + 1}: ${f.label}`;
      b.style.borderColor = colour(f.label);
      b.setAttribute("aria-pressed", String(i === state.selected));
      b.addEventListener("click", () => select(i));
      list.append(b);
    });
  }

  const chart = $("chart");
  chart.replaceChildren();
  for (const [name, p] of Object.entries(face.probabilities)) {
    const top = name === face.label;
    const label = document.createElement("span");
    label.className = top ? "name top" : "name";
    label.textContent = name;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.class = name;
    bar.style.width = `${(p * 100).toFixed(1)}%`;
    bar.style.background = colour(name);
    track.append(bar);
    const value = document.createElement("span");
    value.className = top ? "value top" : "value";
    value.textContent = `${(p * 100).toFixed(1)}%`;
    chart.append(label, track, value);
  }
  $("timing").textContent = `${result.model.name} · ${result.time_ms} ms on the server`;
}

function select(i) {
  state.selected = i;
  renderResult();
  draw();
}

// POST one file to a route of this API; the JSON answer, or an Error carrying the API's one-line reason.
// Shared with video.js (loaded after this script).
async function postFile(url, file) {
  const body = new FormData();
  body.append("file", file, file.name);
  const response = await fetch(url, { method: "POST", body });
  let data;
  try {
    data = await response.json();
  } catch {
    data = { error: `HTTP ${response.status}` };
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function predict(event) {
  event.preventDefault();
  if (!state.file) return;
  const button = $("predict");
  button.disabled = true;
  setStatus("Predicting…");
  try {
    state.result = await postFile("api/predict", state.file);
    state.selected = 0;
    setStatus("");
    renderResult();
    draw();
  } catch (err) {
    state.result = null;
    $("result").hidden = true;
    draw();
    setStatus(err.message, true);
  } finally {
    button.disabled = false;
  }
}

function faceAt(event) {
  // Which face box (if any) was clicked on the canvas.
  const result = state.result;
  if (!result) return -1;
  const canvas = $("canvas");
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * result.image.width;
  const y = ((event.clientY - rect.top) / rect.height) * result.image.height;
  return result.faces.findIndex(({ box: [bx, by, bw, bh] }) => x >= bx && x <= bx + bw && y >= by && y <= by + bh);
}

function init() {
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("form").addEventListener("submit", predict);
  $("canvas").addEventListener("click", (e) => {
    const i = faceAt(e);
    if (i >= 0) select(i);
  });
  const stage = $("stage");
  stage.addEventListener("dragover", (e) => {
    e.preventDefault();
    stage.classList.add("dragging");
  });
  stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
  stage.addEventListener("drop", (e) => {
    e.preventDefault();
    stage.classList.remove("dragging");
    chooseFile(e.dataTransfer.files[0]);
  });
  draw();
  loadHealth();
}

init();
