// Tandem edge status page: polls /status.json every second and draws it.
// No framework, no build step, no network beyond this agent (works offline).
"use strict";

const KEY_STORE = "tandem-api-key";  // sessionStorage: this tab only, gone when it closes
const POLL_MS = 1000;
const WINDOW_MS = 10 * 60 * 1000;    // the chart's longest time span
const MIN_WINDOW_MS = 20 * 1000;      // and its shortest (it widens as requests age)
const TABLE_ROWS = 50;
const COLOURS = { local: "#4cc38a", cloud: "#5aa9ff" };

let lastSeq = 0;
let recent = [];       // oldest first, at most the server's recent_limit
let limit = 200;
let timer = null;

const $ = (id) => document.getElementById(id);

function text(id, value, cls) {
  const el = $(id);
  el.textContent = value;
  if (cls !== undefined) el.className = el.className.replace(/\b(ok|warn|bad)\b/g, "").trim() + " " + cls;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
}

function fmtTime(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
}

function setConn(ok, label) {
  const el = $("conn");
  el.textContent = label;
  el.className = "pill " + (ok ? "ok" : "bad");
}

async function poll() {
  const key = sessionStorage.getItem(KEY_STORE);
  const headers = key ? { Authorization: "Bearer " + key } : {};
  let response;
  try {
    response = await fetch("/status.json?since=" + lastSeq, { headers, cache: "no-store" });
  } catch (err) {
    setConn(false, "agent unreachable");
    return schedule();
  }
  if (response.status === 401) {
    sessionStorage.removeItem(KEY_STORE);
    setConn(false, "API key needed");
    $("key-form").hidden = false;
    $("key-error").textContent = key ? "That key was refused." : "";
    return;  // resumes when the form is submitted
  }
  if (!response.ok) {
    setConn(false, "error " + response.status);
    return schedule();
  }
  const doc = await response.json();
  setConn(true, "live");
  render(doc);
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(poll, POLL_MS);
}

function render(doc) {
  limit = doc.recent_limit;
  if (doc.last_seq < lastSeq) {  // the agent restarted: start over
    recent = [];
  }
  for (const r of doc.recent) recent.push(r);
  if (recent.length > limit) recent = recent.slice(recent.length - limit);
  lastSeq = doc.last_seq;

  text("local-model", doc.local_model);
  text("local-state", doc.local_ready ? "loaded" : "loading…", doc.local_ready ? "ok" : "warn");
  const cloudCls = { ready: "ok", unavailable: "bad", disabled: "" }[doc.cloud];
  text("cloud-state", doc.cloud, cloudCls);
  text("cloud-detail", doc.cloud === "disabled" ? "no --signaling configured"
    : (doc.cloud_model || "") + (doc.cloud_path ? " via " + doc.cloud_path : " (no link)"));
  text("workers-count", String(doc.workers.length), doc.workers.length ? "ok" : (doc.cloud === "disabled" ? "" : "bad"));
  const list = $("workers");
  list.replaceChildren(...doc.workers.map((w) => {
    const li = document.createElement("li");
    li.textContent = `${w.worker_id} (${w.role}, ${w.path})`;
    return li;
  }));
  const b = doc.budget;
  if (b.limit === null) {
    text("budget-text", b.spent + " tokens");
    $("budget-bar").style.width = "0";
    text("budget-day", b.day + " UTC · no daily limit");
  } else {
    const share = Math.min(1, b.spent / b.limit);
    text("budget-text", `${b.spent} / ${b.limit}`, share >= 0.9 ? "bad" : share >= 0.75 ? "warn" : "ok");
    $("budget-bar").style.width = (share * 100).toFixed(1) + "%";
    text("budget-day", `${b.day} UTC · ${(share * 100).toFixed(0)}% spent`);
  }
  renderTable();
  drawChart(doc.now);
}

function renderTable() {
  const rows = recent.slice(-TABLE_ROWS).reverse().map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.requestId = r.request_id;
    tr.dataset.servedBy = r.served_by || "none";
    const cells = [
      fmtTime(r.at), r.endpoint, r.route || "–", r.reason || "–", r.served_by || "–",
      r.path || "–", String(r.status),
      r.prompt_tokens === null ? "–" : `${r.prompt_tokens} / ${r.completion_tokens}`,
      fmtMs(r.ttft_ms), fmtMs(r.total_ms),
    ];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (i === 4 && r.served_by) td.className = r.served_by;
      if (i === 6 && r.status >= 400) td.className = "bad";
      tr.appendChild(td);
    });
    return tr;
  });
  $("recent").replaceChildren(...rows);
  $("recent-count").textContent = `(${recent.length} kept, newest first)`;
}

function drawChart(nowUnix) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const pad = { left: 56, right: 12, top: 12, bottom: 26 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const end = nowUnix * 1000;
  const served = recent.filter((r) => r.served_by && r.at * 1000 >= end - WINDOW_MS);
  const oldest = served.length ? served[0].at * 1000 : end;
  const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, (end - oldest) * 1.15));
  const start = end - span;
  const points = served;
  const maxMs = Math.max(100, ...points.map((r) => r.total_ms)) * 1.1;
  const x = (t) => pad.left + ((t - start) / span) * plotW;
  const y = (ms) => pad.top + plotH - (ms / maxMs) * plotH;

  // Grid and axes.
  ctx.strokeStyle = "#2a3540";
  ctx.fillStyle = "#8a97a5";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const ms = (maxMs * i) / 4;
    const yy = Math.round(y(ms)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.left, yy); ctx.lineTo(width - pad.right, yy); ctx.stroke();
    ctx.fillText(fmtMs(ms), 4, yy + 4);
  }
  for (let i = 0; i <= 5; i++) {
    const ago = (span * (5 - i)) / 5 / 1000;  // seconds before now
    const label = i === 5 ? "now" : ago >= 120 ? `-${Math.round(ago / 60)}m` : `-${Math.round(ago)}s`;
    ctx.fillText(label, x(end - ago * 1000) - 10, height - 8);
  }

  // One series per engine that served the first token.
  let drawn = 0;
  for (const route of Object.keys(COLOURS)) {
    const series = points.filter((r) => r.served_by === route);
    if (!series.length) continue;
    ctx.strokeStyle = COLOURS[route];
    ctx.fillStyle = COLOURS[route];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    series.forEach((r, i) => {
      const px = x(r.at * 1000), py = y(r.total_ms);
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
    for (const r of series) {
      ctx.beginPath();
      ctx.arc(x(r.at * 1000), y(r.total_ms), r.status >= 400 ? 4.5 : 3, 0, 2 * Math.PI);
      ctx.fill();
      drawn++;
    }
  }
  // Legend.
  let lx = pad.left + 8;
  for (const [route, colour] of Object.entries(COLOURS)) {
    ctx.fillStyle = colour;
    ctx.fillRect(lx, pad.top + 4, 10, 10);
    ctx.fillStyle = "#dde3ea";
    ctx.fillText(route, lx + 14, pad.top + 13);
    lx += 70;
  }
  canvas.dataset.points = String(drawn);  // tests read what the last drawing held
}

function onKeySubmit(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  $("key-input").value = "";
  $("key-form").hidden = true;
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", onKeySubmit);
  poll();
});
