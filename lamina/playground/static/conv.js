// The conv-arithmetic explorer: the server's lamina formula for the user's numbers, animated here.
"use strict";
const CONV = { timer: null, frame: 0, info: null, ticket: 0 };

function convParams() {
  const q = new URLSearchParams();
  for (const el of document.querySelectorAll("#view-conv [data-c]")) {
    q.set(el.dataset.c, el.type === "checkbox" ? (el.checked ? "1" : "0") : el.value);
  }
  return q;
}

async function updateConv() {
  const ticket = ++CONV.ticket;  // only the reply to the latest numbers is shown
  let info;
  try {
    info = await api("/api/conv?" + convParams().toString());
  } catch (e) {
    if (ticket !== CONV.ticket) return;
    CONV.info = null;
    $("cv-problems").textContent = e.message;
    return;
  }
  if (ticket !== CONV.ticket) return;
  CONV.info = info;
  const i = CONV.info;
  $("cv-formula").textContent = (i.transposed ? "transposed: " : "") + "output size = " + i.formula + " = " +
    (i.legal ? i.out : "illegal");
  $("cv-problems").textContent = [...i.problems, ...i.notes].join("\n");
  CONV.frame = 0;
}

// One dimension drawn as a row of cells (padding hatched), the window sliding along it.
function drawConv() {
  const cv = $("cv-canvas"), ctx = cv.getContext("2d"), i = CONV.info;
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!i || !i.legal) return;
  const p = convParams(), n = +p.get("size"), pad = +p.get("padding"), d = +p.get("dilation"), k = +p.get("kernel");
  const s = +p.get("stride"), total = i.transposed ? i.out : n + 2 * pad, cell = Math.min(28, (cv.width - 20) / total);
  const inCells = i.transposed ? n : n + 2 * pad, outCells = i.transposed ? i.out : i.out;
  const pos = i.positions, f = pos.length ? CONV.frame % pos.length : 0;
  ctx.font = "11px sans-serif"; ctx.fillStyle = "#333";
  ctx.fillText(i.transposed ? "input (each cell scatters a kernel-sized stamp)" : "padded input", 10, 20);
  for (let c = 0; c < inCells; c++) {
    const isPad = !i.transposed && (c < pad || c >= pad + n);
    ctx.fillStyle = isPad ? "#ddd" : "#cfe3f1";
    ctx.fillRect(10 + c * cell, 30, cell - 2, cell - 2);
  }
  ctx.fillStyle = "#333";
  ctx.fillText("output", 10, 130);
  for (let c = 0; c < outCells; c++) {
    ctx.fillStyle = c === f && !i.transposed ? "#f59322" : "#fde3c6";
    ctx.fillRect(10 + c * cell, 140, cell - 2, cell - 2);
  }
  if (!pos.length) return;
  ctx.strokeStyle = "#f59322"; ctx.lineWidth = 3;
  for (let t = 0; t < k; t++) {
    if (i.transposed) {
      const o = pos[f] + pad + t * d;  // where input cell f's stamp lands in the uncropped output
      const x = 10 + (o - pad) * cell;
      if (o - pad >= 0 && o - pad < outCells) ctx.strokeRect(x, 140, cell - 2, cell - 2);
    } else {
      const x = 10 + (pos[f] + pad + t * d) * cell;
      ctx.strokeRect(x, 30, cell - 2, cell - 2);
    }
  }
  if (i.transposed) { ctx.fillStyle = "#f59322"; ctx.fillRect(10 + f * cell, 30, cell - 2, cell - 2); }
  ctx.fillStyle = "#333";
  ctx.fillText(`window ${f + 1} of ${pos.length}: stride ${s}, dilation ${d}, kernel ${k}`, 10, 200);
}

function initConv() {
  for (const el of document.querySelectorAll("#view-conv [data-c]")) el.addEventListener("input", updateConv);
  window.addEventListener("viewchange", (e) => {
    clearInterval(CONV.timer);
    if (e.detail === "conv") {
      updateConv();
      CONV.timer = setInterval(() => { CONV.frame++; drawConv(); }, 600);
    }
  });
}

window.addEventListener("DOMContentLoaded", initConv);
