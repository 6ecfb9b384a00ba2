// fer-serve page, video tab: POST a video to api/reactions, draw its emotion timeline (SVG) and summary.
// Plain browser JavaScript, no libraries, relative URLs only. The tabs (Photo | Video) are switched here too.
"use strict";

(() => {
  // Same colours as fer_keras.inference.predict.PALETTE and app.js.
  const PALETTE = {
    angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#2ca02c",
    neutral: "#7f7f7f", sad: "#1f77b4", surprise: "#ff7f0e",
  };
  const OTHER = "#e377c2";
  // The SVG namespace, from the HTML parser itself (no URL literal in the page's files).
  const SVG = Object.assign(document.createElement("div"), { innerHTML: "<svg></svg>" }).firstChild.namespaceURI;
  const W = 760, H = 220, LEFT = 40, RIGHT = 8, TOP = 8, BOTTOM = 24;
  const $ = (id) => document.getElementById(id);
  const vstate = { file: null, url: null, result: null, track: null, end: 1 };

  const colour = (name) => PALETTE[name] || OTHER;
  const pct = (p) => `${(100 * (p || 0)).toFixed(0)}%`;
  const when = (s) => (s < 60 ? `${(+s).toFixed(1)} s` : `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`);

  function el(tag, attrs = {}, ns = SVG) {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function setStatus(text, isError = false) {
    const s = $("vstatus");
    s.textContent = text;
    s.classList.toggle("error", isError);
  }

  function showTab(name) {
    for (const tab of ["photo", "video"]) {
      $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
      $(`${tab}-panel`).hidden = tab !== name;
    }
  }

  function chooseVideo(file) {
    if (!file) return;
    vstate.file = file;
    $("vfilename").textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)`;
    $("vresult").hidden = true;
    $("analyze").disabled = false;
    setStatus("");
    if (vstate.url) URL.revokeObjectURL(vstate.url);
    vstate.url = URL.createObjectURL(file);
    const video = $("vpreview");
    video.src = vstate.url;
    video.hidden = false;
  }

  async function analyze(event) {
    event.preventDefault();
    if (!vstate.file) return;
    const button = $("analyze");
    button.disabled = true;
    setStatus("Analysing the video… (about as long as the video itself)");
    try {
      vstate.result = await postFile("api/reactions", vstate.file);  // app.js
      setStatus("");
      render();
    } catch (err) {
      vstate.result = null;
      $("vresult").hidden = true;
      setStatus(err.message, true);
    } finally {
      button.disabled = false;
    }
  }

  function emotionsOf(result) {
    const seen = new Set();
    for (const point of result.timeline) Object.keys(point.probabilities).forEach((k) => seen.add(k));
    const share = (result.sources[0] && result.sources[0].overall && result.sources[0].overall.share) || {};
    Object.keys(share).forEach((k) => seen.add(k));
    const known = Object.keys(PALETTE).filter((k) => seen.has(k));
    return known.concat([...seen].filter((k) => !(k in PALETTE)).sort());
  }

  function render() {
    const result = vstate.result;
    const source = result.sources[0] || {};
    const overall = source.overall || {};
    const share = overall.share || {};
    const emotions = emotionsOf(result);
    const tracks = (source.tracks || []).slice().sort((a, b) => (b.samples || 0) - (a.samples || 0));
    $("vresult").hidden = false;

    const ranked = emotions.filter((e) => (share[e] || 0) > 0).sort((a, b) => share[b] - share[a]);
    $("vheadline").textContent = ranked.length
      ? `Mostly ${ranked[0]} (${pct(share[ranked[0]])} of the time)` +
        (ranked[1] ? `, then ${ranked[1]} (${pct(share[ranked[1]])})` : "")
      : "No face was found in this video.";
    const sampled = source.frames_sampled || 0;
    $("vfacts").textContent =
      `${when(source.duration_s || 0)} of video · ${tracks.length} face${tracks.length === 1 ? "" : "s"} followed · ` +
      `${sampled} frames analysed, ${source.frames_without_face || 0} without a face`;

    const pick = $("vtrack");
    pick.replaceChildren();
    for (const t of tracks) {
      const option = document.createElement("option");
      option.value = String(t.track_id);
      option.textContent = `${t.track_id} (${t.samples} moments)`;
      pick.append(option);
    }
    $("vtrackpick").hidden = tracks.length < 2;
    vstate.track = tracks.length ? String(tracks[0].track_id) : null;
    vstate.end = Math.max(source.duration_s || 0, ...result.timeline.map((p) => p.time_s), 0.1);
    drawTimeline(emotions);
    drawLegend(emotions);
    drawShare(share, emotions);
    drawPeaks(overall.peaks || {}, emotions);
    $("vtiming").textContent = `${(result.model && result.model.name) || "model"} · ${result.time_ms} ms on the server`;
  }

  function drawTimeline(emotions) {
    const points = vstate.result.timeline
      .filter((p) => vstate.track === null || String(p.track_id) === vstate.track)
      .sort((a, b) => a.time_s - b.time_s);
    const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    const x = (t) => LEFT + (plotW * Math.min(Math.max(t, 0), vstate.end)) / vstate.end;
    const y = (p) => TOP + plotH * (1 - Math.min(Math.max(p, 0), 1));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "vchart", "font-size": "11" });
    svg.append(el("rect", { x: LEFT, y: TOP, width: plotW, height: plotH, fill: "#fafafa", stroke: "#ccc" }));
    // Break the areas where no face was seen for more than 2.5 sampling steps.
    const gaps = points.slice(1).map((p, i) => p.time_s - points[i].time_s).filter((g) => g > 0).sort((a, b) => a - b);
    const step = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0.2;
    const runs = [];
    for (const p of points) {
      const last = runs.length && runs[runs.length - 1];
      if (last && p.time_s - last[last.length - 1].time_s <= 2.5 * step) last.push(p);
      else runs.push([p]);
    }
    for (let run of runs) {
      if (run.length === 1) run = [{ ...run[0], time_s: run[0].time_s - step / 2 }, { ...run[0], time_s: run[0].time_s + step / 2 }];
      let below = run.map(() => 0);
      for (const e of emotions) {
        const above = run.map((p, i) => below[i] + (p.probabilities[e] || 0));
        const upper = run.map((p, i) => `${x(p.time_s).toFixed(1)},${y(above[i]).toFixed(1)}`);
        const lower = run.map((p, i) => `${x(p.time_s).toFixed(1)},${y(below[i]).toFixed(1)}`).reverse();
        const area = el("polygon", { class: "area", "data-emotion": e, fill: colour(e), points: upper.concat(lower).join(" ") });
        const title = el("title");
        title.textContent = e;
        area.append(title);
        svg.append(area);
        below = above;
      }
    }
    for (const p of [0, 0.5, 1]) {
      const t = el("text", { x: LEFT - 4, y: y(p) + 4, "text-anchor": "end", fill: "#555" });
      t.textContent = `${p * 100}%`;
      svg.append(t);
    }
    const raw = vstate.end / 8, power = 10 ** Math.floor(Math.log10(raw));
    const tick = [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw);
    for (let t = 0; t <= vstate.end + 1e-9; t += tick) {
      const label = el("text", { x: x(t), y: H - 8, "text-anchor": "middle", fill: "#555" });
      label.textContent = when(t);
      svg.append(label);
    }
    if (!points.length) {
      const none = el("text", { x: LEFT + plotW / 2, y: TOP + plotH / 2, "text-anchor": "middle", fill: "#888" });
      none.textContent = "no face was found in this video";
      svg.append(none);
    }
    const cursor = el("line", { id: "vcursor", x1: LEFT, x2: LEFT, y1: TOP, y2: TOP + plotH, stroke: "#111", "stroke-width": 1.5 });
    svg.append(cursor);
    svg.addEventListener("click", (event) => {
      const box = svg.getBoundingClientRect();
      const t = (((event.clientX - box.left) * W) / box.width - LEFT) / plotW * vstate.end;
      seek(Math.min(Math.max(t, 0), vstate.end));
    });
    $("vtimeline").replaceChildren(svg);
  }

  function drawLegend(emotions) {
    $("vlegend").replaceChildren(...emotions.map((e) => {
      const item = document.createElement("span");
      item.style.setProperty("--c", colour(e));
      item.textContent = e;
      return item;
    }));
  }

  function drawShare(share, emotions) {
    const chart = $("vshare");
    chart.replaceChildren();
    for (const e of emotions) {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = e;
      const track = document.createElement("div");
      track.className = "track";
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.dataset.class = e;
      bar.style.width = `${(100 * (share[e] || 0)).toFixed(1)}%`;
      bar.style.background = colour(e);
      track.append(bar);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = `${(100 * (share[e] || 0)).toFixed(1)}%`;
      chart.append(name, track, value);
    }
  }

  function drawPeaks(peaks, emotions) {
    const list = $("vpeaks");
    list.replaceChildren();
    for (const e of emotions) {
      const best = (peaks[e] || [])[0];
      if (!best || e === "neutral") continue;
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.style.borderColor = colour(e);
      button.textContent = `${e} ${pct(best.probability)} at ${when(best.time_s)}`;
      button.addEventListener("click", () => seek(best.time_s));
      item.append(button);
      list.append(item);
    }
    if (!list.children.length) list.append(Object.assign(document.createElement("li"), { textContent: "none" }));
  }

  function seek(t) {
    const video = $("vpreview");
    if (video.src) video.currentTime = t;
    moveCursor(t);
  }

  function moveCursor(t) {
    const line = document.getElementById("vcursor");
    if (!line) return;
    const xPos = LEFT + ((W - LEFT - RIGHT) * Math.min(t, vstate.end)) / vstate.end;
    line.setAttribute("x1", xPos);
    line.setAttribute("x2", xPos);
  }

  $("tab-photo").addEventListener("click", () => showTab("photo"));
  $("tab-video").addEventListener("click", () => showTab("video"));
  $("vfile").addEventListener("change", (e) => chooseVideo(e.target.files[0]));
  $("vform").addEventListener("submit", analyze);
  $("vtrack").addEventListener("change", (e) => {
    vstate.track = e.target.value;
    drawTimeline(emotionsOf(vstate.result));
  });
  $("vpreview").addEventListener("timeupdate", (e) => moveCursor(e.target.currentTime));
})();
