// The run page: history over REST, then websocket deltas (DESIGN §6). The database is the
// truth: after any disconnect the page backfills with ?after_seq=<last seq drawn>.
import { makeChart, align, chartWidth, color } from "./charts.js";

const page = JSON.parse(document.getElementById("run-data").textContent);
const TERMINAL = new Set(["succeeded", "failed", "stopped", "budget_exceeded"]);
const STOPPABLE = new Set(["queued", "provisioning", "running"]);
const MAX_QUEUED = 5000; // a tab hidden for hours backfills instead of holding every message
const CHARTS = {
  loss: { series: ["loss", "eval_loss"], y: "loss" },
  lr: { series: ["learning_rate"], y: "lr" },
  gpu: { series: ["gpu_util"], y: "%" },
  mem: { series: ["gpu_mem_allocated_mb", "gpu_mem_reserved_mb", "gpu_mem_peak_mb"], y: "MB" },
  scores: { series: ["pred_bleu", "pred_rouge1", "pred_rougeL"], y: "score" },
};

const state = {
  seq: 0, // highest seq merged into the series
  drawnSeq: 0, // highest seq on screen
  status: page.status,
  step: page.step,
  totalSteps: page.total_steps,
  cost: page.cost_so_far,
  costHistory: [[0], [0]],
  series: {}, // name -> {steps: [], values: []}
  queue: [], // deltas waiting for the tab to be visible, or for history to load
  loaded: false,
  needsBackfill: false,
  socket: null,
  backoffMs: 1000,
  connects: 0,
};
const charts = {};
window.tuneboardRun = {
  state,
  steps: (name) => (state.series[name] ? [...state.series[name].steps] : []),
  values: (name) => (state.series[name] ? [...state.series[name].values] : []),
  drawnPoints: (name) => {
    const chart = Object.entries(CHARTS).find(([, c]) => c.series.includes(name));
    return chart && charts[chart[0]] ? charts[chart[0]].data[0].length : 0;
  },
  // The x values a chart has on screen (tests check that no step is missing after a reconnect).
  chartSteps: (key) => (charts[key] ? [...charts[key].data[0]] : []),
  closeSocket: () => state.socket && state.socket.close(),
};

// --- series ------------------------------------------------------------------------------------

function lowerBound(xs, x) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Keyed on step: a point seen twice (history and a late delta) is stored once.
function mergePoints(name, steps, values) {
  const s = (state.series[name] ||= { steps: [], values: [] });
  for (let i = 0; i < steps.length; i++) {
    const x = steps[i];
    const n = s.steps.length;
    if (n === 0 || x > s.steps[n - 1]) {
      s.steps.push(x);
      s.values.push(values[i]);
      continue;
    }
    const at = lowerBound(s.steps, x);
    if (s.steps[at] === x) s.values[at] = values[i];
    else {
      s.steps.splice(at, 0, x);
      s.values.splice(at, 0, values[i]);
    }
  }
}

function mergeSeries(series) {
  for (const [name, col] of Object.entries(series)) mergePoints(name, col.steps, col.values);
}

// --- drawing -------------------------------------------------------------------------------------

let frame = 0;
function requestDraw() {
  if (document.hidden || frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

function draw() {
  for (const [key, def] of Object.entries(CHARTS)) {
    const present = def.series.filter((n) => state.series[n]?.steps.length);
    const el = document.getElementById(`chart-${key}`);
    if (!present.length) continue;
    const data = align(present.map((n) => [state.series[n].steps, state.series[n].values]));
    const names = present.join(",");
    if (!charts[key] || charts[key].names !== names) {
      charts[key]?.destroy();
      el.replaceChildren();
      charts[key] = makeChart(el, present.map((n) => ({ label: n })), data, { yLabel: def.y });
      charts[key].names = names;
    } else charts[key].setData(data);
  }
  drawCost();
  drawSummary();
  state.drawnSeq = state.seq;
}

function projected() {
  if (!state.totalSteps || !state.step || !state.cost) return null;
  return (state.cost * state.totalSteps) / state.step;
}

function drawCost() {
  const el = document.getElementById("chart-cost");
  const [steps, costs] = state.costHistory;
  const total = Math.max(state.totalSteps || 0, steps[steps.length - 1] || 0, 1);
  const proj = projected();
  const xs = [...steps];
  const actual = [...costs];
  const ahead = xs.map((x, i) => (i === xs.length - 1 ? costs[i] : null));
  if (total > xs[xs.length - 1]) {
    xs.push(total);
    actual.push(null);
    ahead.push(proj);
  }
  const budget = xs.map(() => page.budget);
  const data = [xs, actual, ahead, budget];
  if (!charts.cost) {
    el.replaceChildren();
    charts.cost = makeChart(
      el,
      [{ label: "cost so far" }, { label: "projected", dash: [6, 4], color: color(1) }, { label: "budget", color: "#ef4444", dash: [2, 4] }],
      data,
      { yLabel: "$" },
    );
  } else charts.cost.setData(data);
}

function money(v) {
  if (v === null || v === undefined) return "—";
  return v > 0 && v < 0.01 ? `$${v.toFixed(4)}` : `$${v.toFixed(2)}`;
}

function eta() {
  if (!page.started_at || !state.step || !state.totalSteps || TERMINAL.has(state.status)) return "—";
  const elapsed = (Date.now() - Date.parse(page.started_at)) / 1000;
  const left = (elapsed / state.step) * (state.totalSteps - state.step);
  if (left < 60) return `${Math.round(left)} s`;
  if (left < 3600) return `${Math.round(left / 60)} min`;
  return `${(left / 3600).toFixed(1)} h`;
}

function drawSummary() {
  const pct = state.totalSteps ? Math.min(100, (100 * state.step) / state.totalSteps) : state.status === "succeeded" ? 100 : 0;
  document.getElementById("progress-bar").style.width = `${pct}%`;
  document.getElementById("progress-text").textContent = `${state.step} / ${state.totalSteps || "?"} steps (${pct.toFixed(1)}%)`;
  document.getElementById("eta").textContent = eta();
  document.getElementById("cost-so-far").textContent = money(state.cost);
  document.getElementById("cost-projected").textContent = money(projected());
  const badge = document.getElementById("run-status");
  badge.textContent = state.status.replace("_", " ");
  badge.className = `badge status-${state.status}`;
  document.getElementById("budget-banner").hidden = state.status !== "budget_exceeded";
  document.getElementById("stop-form").hidden = !STOPPABLE.has(state.status);
}

// --- live deltas ---------------------------------------------------------------------------------

// Final figures are written with the terminal transition: fetch them once it arrives.
async function showFinalFigures() {
  const job = await getJSON(page.api);
  document.getElementById("final-loss").textContent = job.final_loss === null ? "—" : Number(job.final_loss).toFixed(4);
  if (job.adapter_path) {
    const code = document.createElement("code");
    code.textContent = job.adapter_path;
    document.getElementById("adapter-path").replaceChildren(code);
  }
}

function applyUpdate(msg) {
  if (TERMINAL.has(msg.status) && !TERMINAL.has(state.status)) showFinalFigures().catch(() => {});
  for (const [name, [steps, values]] of Object.entries(msg.metrics || {})) mergePoints(name, steps, values);
  state.seq = Math.max(state.seq, msg.seq || 0);
  state.status = msg.status;
  state.totalSteps = msg.total_steps || state.totalSteps;
  if (msg.step > state.step || msg.cost_so_far !== state.cost) {
    state.step = Math.max(state.step, msg.step);
    state.cost = msg.cost_so_far;
    const [xs, ys] = state.costHistory;
    if (state.step > xs[xs.length - 1]) {
      xs.push(state.step);
      ys.push(state.cost);
    } else ys[ys.length - 1] = state.cost;
  }
  (msg.predictions || []).forEach(addPrediction);
  (msg.events || []).forEach((e) => addEvent(e.kind, e.message, e.at));
}

function onMessage(msg) {
  if (!state.loaded || document.hidden) {
    if (state.queue.length >= MAX_QUEUED) {
      state.queue = [];
      state.needsBackfill = true;
    }
    state.queue.push(msg);
    return;
  }
  if (msg.first_seq > state.seq + 1) {
    // A message was dropped while the socket stayed up (Channels delivers at most once): the
    // backfill from the last seq drawn brings this message's points along with the missed ones.
    backfill().then(requestDraw).catch(() => { state.needsBackfill = true; });
    return;
  }
  applyUpdate(msg);
  requestDraw();
}

function flushQueue() {
  const queued = state.queue;
  state.queue = [];
  queued.forEach(applyUpdate);
}

// --- REST ----------------------------------------------------------------------------------------

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function loadHistory() {
  const width = chartWidth(document.getElementById("chart-loss"));
  const history = await getJSON(`${page.api}/metrics?points=${width}`);
  mergeSeries(history.series);
  state.seq = Math.max(state.seq, history.last_seq);
  seedCostHistory();
}

function seedCostHistory() {
  if (state.step) state.costHistory = [[0, state.step], [0, state.cost]];
}

async function backfill() {
  const after = state.seq;
  const [delta, job] = await Promise.all([getJSON(`${page.api}/metrics?after_seq=${after}`), getJSON(page.api)]);
  mergeSeries(delta.series);
  applyUpdate({ seq: delta.last_seq, status: job.status, step: job.step, total_steps: job.total_steps, cost_so_far: Number(job.cost_so_far) });
  await Promise.all([backfillPredictions(after), reloadTimeline()]);
  state.needsBackfill = false;
}

async function backfillPredictions(afterSeq) {
  const rows = await getJSON(`${page.api}/predictions?after_seq=${afterSeq}&limit=1000&offset=0`);
  rows.results.filter((p) => p.seq > afterSeq).forEach(addPrediction);
}

async function reloadTimeline() {
  const events = await getJSON(`${page.api}/events?limit=1000`);
  timeline.replaceChildren();
  events.results.forEach((e) => addEvent(e.kind, e.message, e.created_at));
}

// --- socket with reconnect -----------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${page.ws}`);
  state.socket = socket;
  const opened = new Promise((resolve) => {
    socket.addEventListener("open", () => resolve(true));
    socket.addEventListener("close", () => resolve(false));
  });
  socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
  socket.addEventListener("open", () => {
    state.backoffMs = 1000;
    state.connects += 1;
    if (state.connects > 1) backfill().then(requestDraw).catch(() => (state.needsBackfill = true));
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    // 4404: not ours or gone; a finished run has nothing more to say.
    if (event.code === 4404 || (TERMINAL.has(state.status) && state.queue.length === 0)) return;
    const wait = state.backoffMs * (0.75 + Math.random() / 2);
    state.backoffMs = Math.min(state.backoffMs * 2, 30000);
    setTimeout(connect, wait);
  });
  return opened;
}

// --- timeline, predictions -----------------------------------------------------------------------

const timeline = document.getElementById("timeline");
const eventTemplate = document.getElementById("event-template");

function addEvent(kind, message, at) {
  timeline.querySelector(".empty-note")?.remove();
  const item = eventTemplate.content.firstElementChild.cloneNode(true);
  item.classList.add(`kind-${kind}`);
  const time = item.querySelector("time");
  time.dateTime = at || "";
  time.textContent = at ? new Date(at).toISOString().slice(11, 19) : "";
  item.querySelector(".event-kind").textContent = kind;
  item.querySelector(".event-message").textContent = message;
  timeline.prepend(item);
}

const predictionBody = document.getElementById("prediction-body");
const searchBox = document.getElementById("prediction-search");
const followSelect = document.getElementById("follow-sample");

function fmt(v) {
  return v === null || v === undefined ? "—" : Number(v).toFixed(3);
}

function cell(cls, col, text) {
  const td = document.createElement("td");
  td.className = cls;
  td.dataset.col = col;
  td.textContent = text;
  return td;
}

function addPrediction(p) {
  const key = `${p.step}|${p.sample_id}`;
  if ([...predictionBody.rows].some((r) => `${r.dataset.step}|${r.dataset.sample}` === key)) return;
  const row = document.createElement("tr");
  Object.assign(row.dataset, { step: p.step, sample: p.sample_id, bleu: p.bleu ?? "", rouge1: p.rouge1 ?? "", rouge2: p.rouge2 ?? "", rougel: p.rouge_l ?? "" });
  const sample = cell("", "sample", "");
  const button = document.createElement("button");
  Object.assign(button, { type: "button", className: "link follow", textContent: p.sample_id });
  button.dataset.sample = p.sample_id;
  sample.append(button);
  row.append(
    cell("num", "step", String(p.step)), sample,
    cell("text", "prompt", p.prompt), cell("text", "expected", p.expected), cell("text", "generated", p.generated),
    cell("num", "bleu", fmt(p.bleu)), cell("num", "rouge1", fmt(p.rouge1)), cell("num", "rouge2", fmt(p.rouge2)), cell("num", "rougel", fmt(p.rouge_l)),
  );
  predictionBody.prepend(row);
  document.getElementById("no-predictions").hidden = true;
  if (![...followSelect.options].some((o) => o.value === p.sample_id)) followSelect.add(new Option(p.sample_id, p.sample_id));
  filterPredictions();
  if (followSelect.value === p.sample_id) followSample(p.sample_id);
}

function filterPredictions() {
  const needle = searchBox.value.trim().toLowerCase();
  for (const row of predictionBody.rows) row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
}

let sortKey = "step";
let sortDesc = true;
function sortPredictions(key) {
  sortDesc = key === sortKey ? !sortDesc : key !== "sample";
  sortKey = key;
  const value = (row) => {
    const raw = row.dataset[key];
    if (key === "sample") return raw;
    return raw === "" ? -Infinity : Number(raw);
  };
  const rows = [...predictionBody.rows].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const order = x < y ? -1 : x > y ? 1 : 0;
    return sortDesc ? -order : order;
  });
  predictionBody.replaceChildren(...rows);
  document.querySelectorAll("th.sortable").forEach((th) => {
    th.dataset.dir = th.dataset.sort === key ? (sortDesc ? "desc" : "asc") : "";
  });
}

// Word diff (LCS over words and spaces): what changed in a sample's output between checkpoints.
function wordDiff(before, after) {
  const a = before.split(/(\s+)/).filter(Boolean).slice(0, 1500);
  const b = after.split(/(\s+)/).filter(Boolean).slice(0, 1500);
  const dp = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  }
  const parts = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) parts.push(["same", a[i++], j++]);
    else if (j < b.length && (i >= a.length || dp[i][j + 1] >= dp[i + 1][j])) parts.push(["ins", b[j++]]);
    else parts.push(["del", a[i++]]);
  }
  return parts;
}

function diffNode(before, after) {
  const block = document.createElement("div");
  block.className = "diff";
  for (const [kind, text] of wordDiff(before, after)) {
    const node = document.createElement(kind === "same" ? "span" : kind);
    node.textContent = text;
    block.append(node);
  }
  return block;
}

async function followSample(sampleId) {
  const list = document.getElementById("follow-list");
  if (!sampleId) return list.replaceChildren();
  const rows = (await getJSON(`${page.api}/predictions?sample_id=${encodeURIComponent(sampleId)}&limit=1000`)).results;
  rows.sort((x, y) => x.step - y.step);
  const items = rows.map((p, i) => {
    const item = document.createElement("li");
    const head = document.createElement("div");
    head.className = "follow-head";
    head.textContent = `step ${p.step} · BLEU ${fmt(p.bleu)} · ROUGE-L ${fmt(p.rouge_l)}`;
    item.append(head, diffNode(i ? rows[i - 1].generated : "", p.generated));
    return item;
  });
  if (rows.length) {
    const prompt = document.createElement("li");
    prompt.className = "follow-prompt";
    prompt.textContent = `Prompt: ${rows[0].prompt} — expected: ${rows[0].expected}`;
    items.unshift(prompt);
  }
  list.replaceChildren(...items);
}

// --- stop ----------------------------------------------------------------------------------------

function csrfToken() {
  return document.querySelector("#stop-form input[name=csrfmiddlewaretoken]").value;
}

function setUpStop() {
  const form = document.getElementById("stop-form");
  const dialog = document.getElementById("stop-dialog");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "stop") return;
    const response = await fetch(`${page.api}/stop`, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } });
    if (response.ok) {
      const job = await response.json();
      applyUpdate({ seq: state.seq, status: job.status, step: job.step, total_steps: job.total_steps, cost_so_far: Number(job.cost_so_far) });
      requestDraw();
    }
  });
}

// --- start ---------------------------------------------------------------------------------------

document.addEventListener("visibilitychange", async () => {
  if (document.hidden) return;
  flushQueue();
  if (state.needsBackfill) await backfill().catch(() => {});
  requestDraw();
});
searchBox.addEventListener("input", filterPredictions);
document.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => sortPredictions(th.dataset.sort)));
predictionBody.addEventListener("click", (event) => {
  const button = event.target.closest("button.follow");
  if (!button) return;
  followSelect.value = button.dataset.sample;
  followSample(button.dataset.sample);
  document.querySelector(".follow-panel").scrollIntoView({ behavior: "smooth" });
});
followSelect.addEventListener("change", () => followSample(followSelect.value));
setUpStop();

async function start() {
  state.step = page.step;
  state.cost = page.cost_so_far;
  // Join the live group first, so nothing committed after the history read can be missed.
  if (!page.terminal) await Promise.race([connect(), new Promise((r) => setTimeout(r, 3000))]);
  try {
    await loadHistory();
  } catch (error) {
    state.needsBackfill = true;
  }
  state.loaded = true;
  if (!document.hidden) flushQueue();
  requestDraw();
  if (!page.terminal) setInterval(() => !document.hidden && drawSummary(), 1000);
}
start();
