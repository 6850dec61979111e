// The MLP playground: settings ⇄ URL, a lamina training session on the server, its live views.
"use strict";
const MLP = {
  meta: null, config: null, id: null, history: [], source: null, snap: null, points: null,
  view: "mlp", ticket: 0,
};
const LIST_KEYS = ["features", "hidden", "activations"];

function readHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  const c = {};
  for (const [k, v] of q) {
    if (k === "view") { MLP.view = v; continue; }
    if (!(k in MLP.meta.defaults)) continue;
    const d = MLP.meta.defaults[k];
    if (LIST_KEYS.includes(k)) c[k] = v === "" ? [] : v.split(",").map((s) => (k === "hidden" ? Number(s) : s));
    else if (typeof d === "boolean") c[k] = v === "1" || v === "true";
    else if (typeof d === "number") c[k] = Number(v);
    else c[k] = v === "" ? null : v;
  }
  return c;
}

function writeHash() {
  const q = new URLSearchParams();
  q.set("view", MLP.view);
  for (const [k, v] of Object.entries(MLP.config)) {
    if (v === null) continue;
    q.set(k, Array.isArray(v) ? v.join(",") : typeof v === "boolean" ? (v ? "1" : "0") : String(v));
  }
  history.replaceState(null, "", "#" + q.toString());
}

function fillSelect(sel, names) {
  sel.innerHTML = "";
  for (const n of names) sel.add(new Option(n, n));
}

function showError(msg) {
  $("error").hidden = !msg;
  $("error").textContent = msg || "";
}

function controlsFromConfig() {
  const c = MLP.config;
  for (const el of document.querySelectorAll("#view-mlp [data-key]")) {
    const v = c[el.dataset.key];
    if (el.type === "checkbox") el.checked = !!v; else el.value = v;
  }
  const box = $("features");
  box.innerHTML = "";
  for (const f of MLP.meta.features) {
    const l = document.createElement("label");
    l.innerHTML = `<input type="checkbox" data-feature="${f}" data-testid="feature-${f}"> ${f}`;
    l.firstChild.checked = c.features.includes(f);
    l.firstChild.addEventListener("change", () => {
      const chosen = [...box.querySelectorAll("input:checked")].map((e) => e.dataset.feature);
      changeConfig({ features: chosen });
    });
    box.appendChild(l);
  }
  const layers = $("layers");
  layers.innerHTML = "";
  c.hidden.forEach((h, i) => {
    const d = document.createElement("div");
    d.className = "layer";
    d.innerHTML = `layer ${i + 1}: <input type="number" min="1" value="${h}" data-testid="units-${i}"> neurons
      <select data-testid="activation-${i}"></select>`;
    const sel = d.querySelector("select");
    fillSelect(sel, MLP.meta.activations);
    sel.value = c.activations[i];
    d.querySelector("input").addEventListener("change", (e) => {
      const hidden = [...c.hidden]; hidden[i] = Math.max(1, Number(e.target.value) || 1);
      changeConfig({ hidden });
    });
    sel.addEventListener("change", () => {
      const acts = [...c.activations]; acts[i] = sel.value; changeConfig({ activations: acts });
    });
    layers.appendChild(d);
  });
}

async function startSession(config) {
  pause();
  // the latest settings win: a reply to an older request (the user changed more meanwhile) is dropped
  const ticket = ++MLP.ticket;
  MLP.config = config;
  try {
    const r = await api("/api/mlp/session", { config });
    if (ticket !== MLP.ticket) return;
    MLP.id = r.id; MLP.config = r.config; MLP.points = r.points; MLP.history = r.snapshot.history;
    showError("");
    render(r.snapshot);
  } catch (e) {
    if (ticket !== MLP.ticket) return;
    showError(e.message);
  }
  controlsFromConfig();
  writeHash();
  document.body.dataset.session = MLP.id;
  $("export-weights").href = "/api/mlp/export/weights?id=" + MLP.id;
}

function changeConfig(patch) {
  startSession({ ...MLP.config, ...patch });
}

function play() {
  if (MLP.source || !MLP.id) return;
  MLP.source = new EventSource("/api/mlp/stream?id=" + MLP.id);
  MLP.source.addEventListener("snapshot", (ev) => {
    const s = JSON.parse(ev.data);
    MLP.history.push(...s.history);
    render(s);
  });
  MLP.source.onerror = () => { if (MLP.source && MLP.source.readyState === EventSource.CLOSED) pause(); };
  $("play").disabled = true; $("pause").disabled = false;
}

function pause() {
  if (MLP.source) MLP.source.close();
  MLP.source = null;
  $("play").disabled = false; $("pause").disabled = true;
}

async function step() {
  pause();
  try {
    const s = await api("/api/mlp/step", { id: MLP.id, epochs: 1 });
    MLP.history = s.history;
    render(s);
  } catch (e) { showError(e.message); }
}

async function reset() {
  pause();
  try {
    const r = await api("/api/mlp/reset", { id: MLP.id });
    MLP.id = r.id; MLP.history = r.snapshot.history;
    render(r.snapshot);
  } catch (e) { showError(e.message); }
}

function render(s) {
  MLP.snap = s;
  $("epoch").textContent = s.epoch;
  $("train-loss").textContent = s.train_loss.toFixed(4);
  $("test-loss").textContent = s.test_loss.toFixed(4);
  $("train-acc").textContent = s.train_acc.toFixed(3);
  $("test-acc").textContent = s.test_acc.toFixed(3);
  drawBoundary(s);
  drawCurves();
  drawConfusion(s.confusion);
  drawNetwork(s);
}

function drawBoundary(s) {
  const cv = $("boundary"), ctx = cv.getContext("2d"), b = s.boundary, res = b.res;
  const img = ctx.createImageData(res, res);
  for (let i = 0; i < res * res; i++) {
    const [r, g, bl] = hexRgb(PALETTE[b.cls[i] % PALETTE.length]), t = 0.15 + 0.6 * b.conf[i];
    img.data.set([255 + (r - 255) * t, 255 + (g - 255) * t, 255 + (bl - 255) * t, 255], 4 * i);
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = res;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tmp, 0, 0, cv.width, cv.height);
  const [x0, x1, y0, y1] = b.extent;
  const px = (x) => ((x - x0) / (x1 - x0)) * cv.width, py = (y) => ((y1 - y) / (y1 - y0)) * cv.height;
  for (const [part, filled] of [["train", true], ["test", false]]) {
    const P = MLP.points[part];
    P.x.forEach(([x, y], i) => {
      ctx.beginPath();
      ctx.arc(px(x), py(y), 3, 0, 2 * Math.PI);
      ctx.fillStyle = PALETTE[P.y[i] % PALETTE.length];
      ctx.strokeStyle = filled ? "#fff" : "#000";
      if (filled) ctx.fill(); else { ctx.fillStyle = "#fff"; ctx.fill(); ctx.strokeStyle = PALETTE[P.y[i] % PALETTE.length]; }
      ctx.lineWidth = filled ? 1 : 2;
      ctx.stroke();
    });
  }
}

function drawCurves() {
  const cv = $("curves"), ctx = cv.getContext("2d"), H = MLP.history;
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!H.length) return;
  const maxLoss = Math.max(...H.map((h) => Math.max(h.train_loss, h.test_loss)), 1e-9);
  const n = Math.max(H.length - 1, 1);
  const series = [["train_loss", "#333", maxLoss], ["test_loss", "#aaa", maxLoss], ["train_acc", "#0877bd", 1],
    ["test_acc", "#8cc4e8", 1]];
  for (const [key, color, top] of series) {
    ctx.beginPath();
    H.forEach((h, i) => {
      const x = (i / n) * (cv.width - 4) + 2, y = cv.height - 2 - (h[key] / top) * (cv.height - 14);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.stroke();
  }
  ctx.fillStyle = "#333"; ctx.font = "10px sans-serif";
  ctx.fillText("loss (train dark, test light) · accuracy (blue)", 4, 10);
}

function drawConfusion(m) {
  const t = $("confusion");
  let html = "<tr><th>true \\ pred</th>" + m.map((_, j) => `<th>${j}</th>`).join("") + "</tr>";
  m.forEach((row, i) => { html += `<tr><th>${i}</th>` + row.map((v) => `<td>${v}</td>`).join("") + "</tr>"; });
  t.innerHTML = html;
}

function mapImage(values, res) {
  const c = document.createElement("canvas");
  c.width = c.height = res;
  drawMap(c, values, res, true);
  return c.toDataURL();
}

function drawNetwork(s) {
  const svg = $("network"), maps = s.neurons.maps, res = s.neurons.res;
  const layers = maps.map((m) => m.length);
  const outUnits = s.weights[s.weights.length - 1].shape[0];
  const cols = [...layers, outUnits], box = 36, gapX = 130, gapY = 46;
  const height = Math.max(...cols.map((n) => n * gapY)) + 20, width = cols.length * gapX;
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  const pos = (l, i) => [20 + l * gapX, 10 + i * gapY];
  const NS = "http://www.w3.org/2000/svg";
  svg.innerHTML = "";
  s.weights.forEach((W, l) => {
    const maxW = Math.max(...W.weight.flat().map(Math.abs), 1e-9);
    W.weight.forEach((row, j) => row.forEach((w, i) => {
      const [xa, ya] = pos(l, i), [xb, yb] = pos(l + 1, j);
      const line = document.createElementNS(NS, "line");
      line.setAttribute("x1", xa + box); line.setAttribute("y1", ya + box / 2);
      line.setAttribute("x2", xb); line.setAttribute("y2", yb + box / 2);
      line.setAttribute("stroke", w >= 0 ? "#0877bd" : "#f59322");
      line.setAttribute("stroke-width", (0.3 + 5 * Math.abs(w) / maxW).toFixed(2));
      line.setAttribute("data-testid", "link");
      const title = document.createElementNS(NS, "title");
      title.textContent = `weight ${l === 0 ? MLP.config.features[i] : "h" + l + "." + i} → ` +
        `${l + 1 < cols.length - 1 ? "h" + (l + 1) + "." + j : "out " + j}: ${w.toFixed(4)}`;
      line.appendChild(title);
      svg.appendChild(line);
    }));
  });
  maps.forEach((m, l) => m.forEach((values, i) => {
    const [x, y] = pos(l, i);
    const im = document.createElementNS(NS, "image");
    im.setAttribute("x", x); im.setAttribute("y", y); im.setAttribute("width", box); im.setAttribute("height", box);
    im.setAttribute("href", mapImage(values, res));
    im.setAttribute("data-testid", "neuron");
    const title = document.createElementNS(NS, "title");
    title.textContent = l === 0 ? MLP.config.features[i] : `layer ${l}, neuron ${i}` +
      (s.weights[l - 1] ? `, bias ${s.weights[l - 1].bias[i].toFixed(4)}` : "");
    im.appendChild(title);
    svg.appendChild(im);
  }));
  for (let j = 0; j < outUnits; j++) {
    const [x, y] = pos(cols.length - 1, j);
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", box); r.setAttribute("height", box);
    r.setAttribute("fill", PALETTE[j % PALETTE.length]);
    svg.appendChild(r);
  }
}

async function uploadCsv(file) {
  try {
    const r = await fetch("/api/mlp/upload?name=" + encodeURIComponent(file.name), { method: "POST", body: file });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error);
    changeConfig({ dataset: "csv", csv: data.csv });
  } catch (e) { showError(e.message); }
}

async function exportCode() {
  const r = await fetch("/api/mlp/export/code?id=" + MLP.id);
  const text = await r.text();
  $("code").hidden = false;
  $("code").textContent = text;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type: "text/x-python" }));
  a.download = "playground.py";
  a.click();
}

async function initMlp() {
  MLP.meta = await api("/api/meta");
  fillSelect($("dataset"), MLP.meta.datasets);
  fillSelect($("optimizer"), MLP.meta.optimizers);
  fillSelect($("loss"), MLP.meta.losses);
  const fromUrl = readHash();
  for (const el of document.querySelectorAll("#view-mlp [data-key]")) {
    el.addEventListener("change", () => {
      const d = MLP.meta.defaults[el.dataset.key];
      const v = el.type === "checkbox" ? el.checked : typeof d === "number" ? Number(el.value) : el.value;
      changeConfig({ [el.dataset.key]: v });
    });
  }
  $("play").onclick = play; $("pause").onclick = pause; $("step").onclick = step; $("reset").onclick = reset;
  $("add-layer").onclick = () => changeConfig({ hidden: [...MLP.config.hidden, 4],
    activations: [...MLP.config.activations, MLP.config.activations.at(-1) || "tanh"] });
  $("remove-layer").onclick = () => changeConfig({ hidden: MLP.config.hidden.slice(0, -1),
    activations: MLP.config.activations.slice(0, -1) });
  $("csv").addEventListener("change", (e) => { if (e.target.files[0]) uploadCsv(e.target.files[0]); });
  $("export-code").onclick = exportCode;
  for (const t of document.querySelectorAll(".tab")) t.onclick = () => { MLP.view = t.dataset.view; showView(MLP.view); if (MLP.config) writeHash(); };
  MLP.config = { ...MLP.meta.defaults, ...fromUrl };
  showView(MLP.view);
  await startSession(MLP.config);
  document.body.dataset.ready = "1";
}

window.addEventListener("DOMContentLoaded", initMlp);
