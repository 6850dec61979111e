// The CNN explainer: a run's model on one image, every layer's maps, a unit's arithmetic,
// the gradients, Grad-CAM and saliency (all computed by lamina on the server).
"use strict";
const CNN = { runs: [], upload: null, forward: null, unitTicket: 0, showTicket: 0 };

function cnnRequest() {
  const body = { run: $("cnn-run").value };
  if (CNN.upload) body.upload = CNN.upload; else body.index = Number($("cnn-index").value) || 0;
  return body;
}

function cnnError(msg) {
  $("cnn-error").hidden = !msg;
  $("cnn-error").textContent = msg || "";
}

function mapCanvas(values, signed, scale, testid) {
  const h = values.length, w = values[0].length, c = document.createElement("canvas");
  c.width = w * scale; c.height = h * scale;
  if (testid) c.dataset.testid = testid;
  const flat = values.flat(), ctx = c.getContext("2d"), img = ctx.createImageData(w, h);
  let lo = Math.min(...flat), hi = Math.max(...flat);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  flat.forEach((v, i) => {
    let rgb;
    if (signed) {
      const t = Math.max(-1, Math.min(1, v / m));
      rgb = t >= 0 ? [255 - 247 * t, 255 - 136 * t, 255 - 66 * t] : [255 + 10 * t, 255 + 108 * t, 255 + 221 * t];
    } else {
      const g = hi > lo ? (255 * (v - lo)) / (hi - lo) : 0;
      rgb = [g, g, g];
    }
    img.data.set([...rgb, 255], 4 * i);
  });
  const tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, c.width, c.height);
  return c;
}

function layerBox(title) {
  const box = document.createElement("div");
  box.className = "cnn-layer";
  box.innerHTML = `<div class="name">${title}</div>`;
  return box;
}

function renderForward(f) {
  CNN.forward = f;
  const root = $("cnn-layers");
  root.innerHTML = "";
  const inBox = layerBox(`input ${f.input.length}×${f.input[0].length}×${f.input[0][0].length}` +
    (f.label === null ? " (upload)" : `, label ${f.classes[f.label]}`));
  f.input.forEach((ch) => inBox.appendChild(mapCanvas(ch, false, 64 / ch.length, "cnn-input")));
  root.appendChild(inBox);
  for (const layer of f.layers) {
    const box = layerBox(`${layer.name} · ${layer.type} · ${layer.shape.join("×")}`);
    box.dataset.testid = "cnn-layer";
    if (layer.maps) {
      const scale = Math.max(2, Math.floor(40 / layer.maps[0].length));
      layer.maps.forEach((m, ch) => {
        const c = mapCanvas(m, true, scale, "cnn-map");
        c.title = `channel ${ch}: click a unit`;
        c.onclick = (e) => {
          const r = c.getBoundingClientRect();
          const x = Math.floor(((e.clientX - r.left) / r.width) * m[0].length);
          const y = Math.floor(((e.clientY - r.top) / r.height) * m.length);
          showUnit(layer.name, ch, y, x);
        };
        box.appendChild(c);
      });
    } else {
      const c = mapCanvas([layer.values], true, Math.max(2, Math.floor(300 / layer.values.length)), "cnn-vector");
      c.style.height = "14px";
      c.onclick = (e) => {
        const r = c.getBoundingClientRect();
        showUnit(layer.name, Math.floor(((e.clientX - r.left) / r.width) * layer.values.length), 0, 0);
      };
      box.appendChild(c);
    }
    root.appendChild(box);
  }
  const probs = f.probs.map((p, i) => `${f.classes[i]}: ${(100 * p).toFixed(1)}%`).join("  ");
  $("cnn-pred").textContent = `prediction ${f.classes[f.pred]} · softmax ${probs}`;
}

function fmt(v) { return (Math.round(v * 1000) / 1000).toString(); }

function grid(a) {
  return "<table class='arith'>" + a.map((row) => "<tr>" + row.map((v) => `<td>${fmt(v)}</td>`).join("") +
    "</tr>").join("") + "</table>";
}

async function showUnit(layer, channel, y, x) {
  const ticket = ++CNN.unitTicket;  // the last unit clicked is the one shown
  let u;
  try { u = await api("/api/cnn/unit", { ...cnnRequest(), layer, channel, y, x }); } catch (e) { cnnError(e.message); return; }
  if (ticket !== CNN.unitTicket) return;
  const el = $("cnn-unit");
  let html = `<b>${u.layer}</b> (${u.type}) channel ${channel}` + (u.kind === "linear" || u.kind === "softmax" ? "" :
    `, row ${y}, column ${x}`) + "<br>";
  if (u.kind === "conv") {
    html += `input rows ${u.rows.join(",")} × columns ${u.cols.join(",")} (negative or past the edge: padding)`;
    u.patch.forEach((p, c) => { html += `<div>in-channel ${c}: patch ${grid(p)} × kernel ${grid(u.kernel[c])}</div>`; });
    html += `<div data-testid="unit-sum">Σ patch·kernel + bias ${fmt(u.bias)} = <b>${fmt(u.sum)}</b></div>`;
    for (const t of u.then) {
      html += t.type === "BatchNorm2d" ? `<div>→ ${t.layer} batch norm: (${fmt(t.input)} − ${fmt(t.mean)}) / √(${fmt(t.var)} + ${t.eps}) · ${fmt(t.gamma)} + ${fmt(t.beta)} = <b>${fmt(t.value)}</b></div>` :
        `<div>→ ${t.layer} ${t.type}(${fmt(t.input)}) = <b>${fmt(t.value)}</b></div>`;
    }
  } else if (u.kind === "maxpool" || u.kind === "avgpool") {
    html += `window rows ${u.rows[0]}–${u.rows[1] - 1}, columns ${u.cols[0]}–${u.cols[1] - 1} ${grid(u.window)}` +
      `<div data-testid="unit-sum">${u.kind === "maxpool" ? "max" : "mean"} = <b>${fmt(u.value)}</b></div>`;
  } else if (u.kind === "softmax") {
    const cls = CNN.forward.classes;
    html += "softmax p_i = exp(z_i − max z) / Σ_j exp(z_j − max z)<table class='arith'><tr><th>class</th><th>z</th>" +
      "<th>exp(z − max)</th><th>p</th></tr>" + u.logits.map((z, i) => `<tr><td>${cls[i]}</td><td>${fmt(z)}</td>` +
      `<td>${fmt(u.exp[i])}</td><td>${fmt(u.probs[i])}</td></tr>`).join("") + "</table>";
  } else if (u.kind === "linear") {
    html += "largest products w·x:" + "<table class='arith'>" + u.top.map((t) => `<tr><td>x[${t.input}] = ${fmt(t.x)}` +
      `</td><td>w = ${fmt(t.w)}</td><td>${fmt(t.product)}</td></tr>`).join("") + "</table>" +
      `<div data-testid="unit-sum">Σ w·x + bias ${fmt(u.bias)} = <b>${fmt(u.sum)}</b></div>`;
  } else {
    html += `value ${u.output === undefined ? "" : fmt(u.output)}`;
  }
  el.innerHTML = html;
}

async function explainCnn(ticket) {
  let r;
  try { r = await api("/api/cnn/explain", cnnRequest()); } catch (e) { cnnError(e.message); return; }
  if (ticket !== CNN.showTicket) return;
  const el = $("cnn-explain");
  el.innerHTML = `<div>for class ${CNN.forward.classes[r.target]}</div>`;
  const row = document.createElement("div");
  const cam = mapCanvas(r.grad_cam, false, 64 / r.grad_cam.length, "gradcam");
  const sal = mapCanvas(r.saliency, false, 64 / r.saliency.length, "saliency");
  row.append("Grad-CAM ", cam, " saliency ", sal);
  row.querySelectorAll("canvas").forEach((c) => { c.style.display = "inline-block"; });
  el.appendChild(row);
  for (const g of r.gradients) {
    const box = layerBox(`∂score/∂${g.name} ${g.shape.join("×")}`);
    box.dataset.testid = "cnn-grad";
    if (g.maps) g.maps.slice(0, 8).forEach((m) => box.appendChild(mapCanvas(m, true, Math.max(2, Math.floor(32 / m.length)))));
    else box.appendChild(mapCanvas([g.values], true, Math.max(1, Math.floor(200 / g.values.length))));
    el.appendChild(box);
  }
}

async function showCnn() {
  cnnError("");
  if (!$("cnn-run").value) { cnnError("no run folder with an image classifier in the runs folder (lamina train makes one)"); return; }
  const ticket = ++CNN.showTicket;  // the last image asked for is the one shown
  let f;
  try { f = await api("/api/cnn/forward", cnnRequest()); } catch (e) { cnnError(e.message); return; }
  if (ticket !== CNN.showTicket) return;
  renderForward(f);
  await explainCnn(ticket);
  if (ticket !== CNN.showTicket) return;
  document.body.dataset.cnnReady = "1";
}

async function loadRuns() {
  const r = await api("/api/cnn/runs");
  const sel = $("cnn-run"), keep = sel.value;
  sel.innerHTML = "";
  for (const run of r.runs) sel.add(new Option(`${run.name} (${run.model} on ${run.data})`, run.name));
  if (keep) sel.value = keep;
  document.body.dataset.runsLoaded = "1";
}

function initCnn() {
  $("cnn-go").onclick = showCnn;
  $("cnn-index").addEventListener("change", () => { CNN.upload = null; });
  $("cnn-upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const r = await fetch("/api/cnn/upload", { method: "POST", body: file });
      const data = await r.json();
      if (!r.ok) throw new Error(data.error);
      CNN.upload = data.image;
      showCnn();
    } catch (err) { cnnError(err.message); }
  });
  window.addEventListener("viewchange", (e) => { if (e.detail === "cnn") loadRuns().catch((err) => cnnError(err.message)); });
}

window.addEventListener("DOMContentLoaded", initCnn);
