// Shared helpers of the playground's page (no libraries: plain DOM, canvas and SVG).
"use strict";
const $ = (id) => document.getElementById(id);
const PALETTE = ["#f59322", "#0877bd", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", body: typeof body === "string" || body instanceof Blob ||
    body instanceof ArrayBuffer ? body : JSON.stringify(body), headers: typeof body === "object" &&
    !(body instanceof Blob) && !(body instanceof ArrayBuffer) ? { "Content-Type": "application/json" } : {} };
  const r = await fetch(path, opts);
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function hexRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

// Grey-level (or diverging, when signed) picture of a res×res list of numbers on a canvas.
function drawMap(canvas, values, res, signed) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(res, res);
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    let r, g, b;
    if (signed) {
      const t = Math.max(-1, Math.min(1, v / m));
      [r, g, b] = t >= 0 ? [255 - 247 * t, 255 - 136 * t, 255 - 66 * t] : [255 + 10 * t, 255 + 108 * t, 255 + 221 * t];
    } else {
      const t = hi > lo ? (v - lo) / (hi - lo) : 0;
      r = g = b = 255 * t;
    }
    img.data.set([r, g, b, 255], 4 * i);
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = res;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

function showView(name) {
  for (const v of ["mlp", "cnn", "conv"]) $("view-" + v).hidden = v !== name;
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.view === name);
  window.dispatchEvent(new CustomEvent("viewchange", { detail: name }));
}
