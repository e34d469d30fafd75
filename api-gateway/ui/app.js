// The operations page: hosts, operations, one operation's detail, and the start forms.
// State comes from the gateway's API once, then from its SSE stream (/api/v1/events):
// nothing polls. Every DOM update builds nodes with textContent, never HTML from data.

import { api, apiKey, onUnauthorized, stream, ApiError } from "./api.js";
import { lineChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["pending", "running"]);
const LIST_LIMIT = 200;
// Details (timeframe, strategy, start time) are fetched for this many newest rows:
// the list answer carries only the symbol.
const DETAIL_ROWS = 60;

const state = {
  ops: new Map(),          // operation id → operation (list summary, enriched by details and events)
  epochs: new Map(),       // operation id → Map(epoch → figures)
  selected: null,
  streams: null,           // AbortController of the open streams
  smoothing: 0,
  streamOpened: false,     // whether the stream was open once (a later opening resyncs)
};

/** `h("td", {class: "num"}, "1", child)`: an element with attributes and children. */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}

// ---- formatting ----------------------------------------------------------------

const pad2 = (n) => String(n).padStart(2, "0");
function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return today ? time : `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
}
function span(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad2(Math.floor(s % 3600 / 60))}m`;
}
const num = (v, digits = 4) => (typeof v === "number" && Number.isFinite(v) ? Number(v.toFixed(digits)).toString() : "—");

function elapsed(op) {
  const start = op.started_at || op.created_at;
  if (!start) return NaN;
  const end = op.completed_at ? new Date(op.completed_at) : ACTIVE.has(op.status) ? new Date() : null;
  if (!end) return op.duration_seconds ?? NaN;
  return (end - new Date(start)) / 1000;
}
/** Remaining time from the rate so far; nothing until there is a rate. */
function eta(op) {
  const pct = op.percentage;
  if (op.status !== "running" || !(pct > 0) || pct >= 100) return "";
  const left = elapsed(op) * (100 - pct) / pct;
  return Number.isFinite(left) ? `ETA ${span(left)}` : "";
}
function subject(op) {
  const m = op.metadata || {};
  if (op.type === "training") {
    const what = [m.symbols && m.symbols.join(","), m.timeframes && m.timeframes.join(",")].filter(Boolean).join(" ");
    return [m.strategy, what].filter(Boolean).join(" · ") || op.symbol || op.id;
  }
  return [m.symbol || op.symbol, m.timeframe, m.mode && `(${m.mode})`].filter(Boolean).join(" ") || op.id;
}
const typeLabel = (t) => ({ data_load: "data load", training: "training" }[t] || t);

// ---- operations state ------------------------------------------------------------

/** Merges what the API said about an operation (summary, full info or event data). */
function upsert(raw) {
  const id = raw.operation_id;
  if (!id) return null;
  const op = state.ops.get(id) || { id };
  op.type = raw.operation_type ?? op.type;
  op.status = raw.status ?? op.status;
  op.created_at = raw.created_at ?? op.created_at;
  if ("started_at" in raw) op.started_at = raw.started_at;
  if ("completed_at" in raw) op.completed_at = raw.completed_at;
  if ("duration_seconds" in raw) op.duration_seconds = raw.duration_seconds;
  if ("symbol" in raw) op.symbol = raw.symbol;
  if (raw.metadata) op.metadata = raw.metadata;
  if ("error_message" in raw) op.error_message = raw.error_message;
  if ("result_summary" in raw) op.result_summary = raw.result_summary;
  if (raw.progress) {
    op.progress = raw.progress;
    op.percentage = raw.progress.percentage;
    op.current_step = raw.progress.current_step;
  } else if ("progress_percentage" in raw) {
    op.percentage = raw.progress_percentage;
    op.current_step = raw.current_step;
  }
  op.detailed = op.detailed || Boolean(raw.metadata);
  state.ops.set(id, op);
  noteEpochs(op);
  return op;
}

/** Epoch figures a training carries: the recent window while it runs, the history when done. */
function noteEpochs(op) {
  if (op.type !== "training") return;
  const metrics = op.progress && op.progress.context && op.progress.context.metrics;
  const history = op.result_summary && op.result_summary.training_metrics && op.result_summary.training_metrics.history;
  const all = [...((metrics && metrics.recent_epochs) || []), metrics && metrics.last_epoch, ...(history || [])];
  for (const e of all) addEpoch(op.id, e);
}
function addEpoch(id, e) {
  if (!e || !Number.isFinite(e.epoch)) return;
  if (!state.epochs.has(id)) state.epochs.set(id, new Map());
  state.epochs.get(id).set(e.epoch, e);
}

async function loadOperations() {
  const params = new URLSearchParams({ limit: String(LIST_LIMIT) });
  if ($("filter-status").value) params.set("status", $("filter-status").value);
  if ($("filter-type").value) params.set("operation_type", $("filter-type").value);
  const body = await api(`/api/v1/operations?${params}`);
  for (const summary of body.data || []) upsert(summary);
  renderOperations();
  const missing = visibleOps().slice(0, DETAIL_ROWS).filter((op) => !op.detailed);
  await runLimited(missing, 4, (op) => fetchOperation(op.id));
}

async function fetchOperation(id) {
  try {
    const body = await api(`/api/v1/operations/${encodeURIComponent(id)}`);
    upsert(body.data);
    renderRow(id);
    if (state.selected === id) renderDetail();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) console.warn("operation", id, e.message);
  }
}

async function runLimited(items, limit, work) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await work(queue.shift());
  });
  await Promise.all(workers);
}

// ---- operations table --------------------------------------------------------------

function visibleOps() {
  const status = $("filter-status").value, type = $("filter-type").value;
  return [...state.ops.values()]
    .filter((op) => (!status || op.status === status) && (!type || op.type === type))
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
}

function progressCell(op) {
  const pct = Math.max(0, Math.min(100, Number(op.percentage) || 0));
  const bar = h("span");
  bar.style.width = `${pct}%`; // CSSOM, which the CSP allows (style attributes it would not)
  const cls = op.status === "completed" ? "bar done" : op.status === "failed" ? "bar failed" : "bar";
  return h("div", { class: "progress" },
    h("div", { class: cls, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct.toFixed(0), "aria-label": `progress of ${subject(op)}` }, bar),
    h("span", { class: "pct" }, `${pct.toFixed(pct < 10 && pct > 0 ? 1 : 0)}%`),
    h("span", { class: "eta", "data-eta": op.id }, eta(op)));
}

function row(op) {
  const open = h("button", { type: "button", class: "link", onclick: () => select(op.id), "aria-label": `show ${typeLabel(op.type)} ${subject(op)}` }, subject(op));
  const cancel = ACTIVE.has(op.status)
    ? h("button", { type: "button", class: "small danger", onclick: () => confirmCancel(op.id) }, "Cancel")
    : "";
  return h("tr", { "data-id": op.id, class: state.selected === op.id ? "selected" : null },
    h("td", {}, typeLabel(op.type)),
    h("td", {}, open),
    h("td", {}, h("span", { class: `badge ${op.status}` }, op.status)),
    h("td", {}, progressCell(op)),
    h("td", { class: "step" }, op.current_step || ""),
    h("td", {}, when(op.started_at || op.created_at)),
    h("td", { class: "num", "data-duration": op.id }, span(elapsed(op))),
    h("td", {}, cancel));
}

function renderOperations() {
  const ops = visibleOps();
  renderCount(ops);
  const rows = ops.map(row);
  const body = $("ops-body");
  body.replaceChildren(...rows);
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: "8", class: "muted" }, "no operations")));
}

function renderCount(ops) {
  const active = ops.filter((op) => ACTIVE.has(op.status)).length;
  $("ops-count").textContent = `${ops.length} shown, ${active} active`;
}

/** Replaces one row in place (an event for it), or re-renders when it is new. */
function renderRow(id) {
  const op = state.ops.get(id);
  const current = $("ops-body").querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  const ops = visibleOps();
  const shown = op && ops.includes(op);
  if (current && shown) {
    renderCount(ops);
    // Keep focus on the row's button across the replacement (keyboard users).
    const focused = current.contains(document.activeElement) ? [...current.querySelectorAll("button")].indexOf(document.activeElement) : -1;
    const next = row(op);
    current.replaceWith(next);
    if (focused >= 0) { const b = next.querySelectorAll("button")[focused] || next.querySelector("button"); if (b) b.focus(); }
  } else if (current || shown) {
    renderOperations();
  }
}

// The clock runs the ETA and duration of running rows; it reads no data.
setInterval(() => {
  for (const op of state.ops.values()) {
    if (!ACTIVE.has(op.status)) continue;
    const d = document.querySelector(`[data-duration="${CSS.escape(op.id)}"]`);
    if (d) d.textContent = span(elapsed(op));
    const e = document.querySelector(`[data-eta="${CSS.escape(op.id)}"]`);
    if (e) e.textContent = eta(op);
  }
}, 1000);

// ---- one operation -----------------------------------------------------------------

function select(id) {
  state.selected = id;
  // The open operation is in the fragment: a link or a reload shows it again (the
  // fragment never leaves the browser).
  history.replaceState(null, "", `#op=${encodeURIComponent(id)}`);
  for (const tr of $("ops-body").querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  $("detail").hidden = false;
  renderDetail();
  fetchOperation(id);
  $("detail").scrollIntoView({ block: "nearest" });
}

function dl(pairs) {
  return h("dl", {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/**
 * Replaces a container's children, keeping keyboard focus on the same control: events
 * re-render rows and the detail several times a second.
 */
function replaceKeepingFocus(container, children) {
  const controls = () => [...container.querySelectorAll("button, input, select, a[href]")];
  const focused = controls().indexOf(document.activeElement);
  container.replaceChildren(...children);
  if (focused >= 0) { const next = controls()[focused] || controls()[0]; if (next) next.focus(); }
}

function renderDetail() {
  const op = state.ops.get(state.selected);
  const body = $("detail-body");
  if (!op) { body.replaceChildren(h("p", { class: "muted" }, "unknown operation")); $("detail-training").hidden = true; return; }
  $("detail-title").textContent = `${typeLabel(op.type)}: ${subject(op)}`;
  const p = op.progress || {};
  const ctx = p.context || {};
  const parts = [
    h("p", {}, h("span", { class: `badge ${op.status}` }, op.status), " ",
      ACTIVE.has(op.status) ? h("button", { type: "button", class: "small danger", onclick: () => confirmCancel(op.id) }, "Cancel") : ""),
    progressCell(op),
    dl([
      ["Id", h("code", {}, op.id)],
      ["Current step", op.current_step],
      ["Message", p.message !== op.current_step ? p.message : undefined],
      ["Created", when(op.created_at)],
      ["Started", op.started_at && when(op.started_at)],
      ["Finished", op.completed_at && when(op.completed_at)],
      ["Duration", span(elapsed(op))],
      ...(op.type === "training" ? trainingFacts(op, ctx) : loadFacts(op, p, ctx)),
    ]),
  ];
  if (op.status === "failed" || op.error_message) {
    parts.push(h("h3", {}, "Error"), h("pre", { class: "error" }, op.error_message || "no reason given"));
  }
  replaceKeepingFocus(body, parts);
  // The curves live in a block of the page that stays put, so the smoothing slider is
  // not replaced under the pointer while events arrive.
  const training = op.type === "training";
  $("detail-training").hidden = !training;
  if (training) {
    renderCurves(op);
    $("training-result").replaceChildren(op.status === "completed" ? trainingResult(op.result_summary || {}) : "");
  }
}

function loadFacts(op, p, ctx) {
  const r = op.result_summary || {};
  const done = r.segments_fetched ?? p.steps_completed;
  const total = r.segments_total ?? ctx.segments ?? p.steps_total;
  // Pacing waits are shown when the provider reports them in the progress context.
  const pacing = ctx.pacing_waits ?? ctx.pacing_wait ?? ctx.pacing;
  return [
    ["Segments", total ? `${done ?? 0} / ${total}` : undefined],
    ["Segments failed", r.segments_failed || undefined],
    ["Bars fetched", r.bars_fetched ?? p.items_processed],
    ["Bars added", r.bars_added ?? ctx.bars_added],
    ["Bars in store", r.bars_after],
    ["Pacing waits", pacing === undefined ? undefined : typeof pacing === "object" ? JSON.stringify(pacing) : pacing],
    ["Source", (op.metadata || {}).source],
  ];
}

function trainingFacts(op, ctx) {
  const m = op.metadata || {};
  return [
    ["Epoch", ctx.total_epochs ? `${ctx.epoch ?? 0} / ${ctx.total_epochs}` : undefined],
    ["Batch", ctx.total_batches ? `${ctx.batch ?? 0} / ${ctx.total_batches}` : undefined],
    ["Mode", m.mode && (m.mode === "host" ? `host (${m.instance || "?"})` : "in-process")],
  ];
}

function renderCurves(op) {
  const epochs = [...(state.epochs.get(op.id) || new Map()).values()].sort((a, b) => a.epoch - b.epoch);
  const series = (key) => epochs.map((e) => [e.epoch, e[key]]).filter(([, v]) => typeof v === "number");
  const chart = (title, train, val) => h("div", { class: "chart" }, h("figure", {},
    lineChart({ series: [{ label: "train", cls: "train", points: series(train) }, { label: "validation", cls: "val", points: series(val) }], xLabel: "epoch", yLabel: title, weight: state.smoothing }),
    h("figcaption", {}, h("strong", {}, title), h("span", { class: "legend-train" }, "train"), h("span", { class: "legend-val" }, "validation"))));
  $("curves-title").textContent = `Curves (${epochs.length} epoch${epochs.length === 1 ? "" : "s"})`;
  $("charts").replaceChildren(chart("loss", "train_loss", "val_loss"), chart("accuracy", "train_accuracy", "val_accuracy"));
}

function trainingResult(r) {
  const t = r.test_metrics || {};
  const figures = ["test_accuracy", "test_loss", "precision", "recall", "f1_score"];
  const known = figures.some((k) => typeof t[k] === "number");
  return h("div", {},
    h("h3", {}, "Result"),
    dl([["Model", r.model_path ? h("code", {}, r.model_path) : "—"], ["Epochs trained", (r.training_metrics || {}).epochs_trained]]),
    known
      ? h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, figures.map((k) => h("th", { scope: "col", class: "num" }, k.replace("_", " "))))),
        h("tbody", {}, h("tr", {}, figures.map((k) => h("td", { class: "num" }, num(t[k])))))))
      : h("p", { class: "muted" }, t.message || "no test metrics (the test split was empty)"));
}

// ---- cancel ------------------------------------------------------------------------

function confirmCancel(id) {
  const op = state.ops.get(id);
  const dialog = $("confirm");
  $("confirm-text").textContent = `${typeLabel(op && op.type)} ${op ? subject(op) : id} will be stopped.`;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "yes") return;
    try {
      const body = await api(`/api/v1/operations/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (body.data && body.data.status) upsert({ operation_id: id, status: body.data.status });
      renderRow(id);
      if (state.selected === id) renderDetail();
    } catch (e) {
      alertBox(e.message);
    }
  };
  dialog.showModal();
}

function alertBox(message) { $("stream-state").textContent = message; }

// ---- hosts ---------------------------------------------------------------------------

async function loadHealth() {
  const body = await api("/api/v1/health");
  $("health-status").textContent = body.status;
  $("health-status").className = `badge ${body.status}`;
  const rows = Object.entries(body.services || {}).map(([name, s]) => {
    const instances = s.instances
      ? h("ul", { class: "plain" }, s.instances.map((i) => h("li", {}, `${i.url} — ${i.healthy === null ? "not probed" : i.healthy ? "up" : "down"}${i.latency_ms != null ? ` ${num(i.latency_ms, 1)} ms` : ""}${i.error ? ` (${i.error})` : ""}`)))
      : "—";
    return h("tr", {},
      h("th", { scope: "row" }, name),
      h("td", {}, s.mode === "host" ? "host" : "in-process"),
      h("td", {}, h("span", { class: `badge ${s.healthy ? "healthy" : "unhealthy"}` }, s.healthy ? "healthy" : "down"), s.error ? h("div", { class: "small muted" }, s.error) : ""),
      h("td", { class: "num" }, s.latency_ms == null ? "—" : `${num(s.latency_ms, 1)} ms`),
      h("td", {}, instances));
  });
  $("hosts-body").replaceChildren(...rows);
  const ev = body.events || {};
  $("events-health").textContent = ev.mode ? `events: ${ev.mode}, ${ev.published ?? 0} published, ${ev.dropped ?? 0} dropped` : "";
}

// ---- the stream ----------------------------------------------------------------------

function onEvent({ event, data }) {
  if (!data || typeof data !== "object") return;
  const d = data.data || {};
  if (event.startsWith("operation.")) {
    const op = upsert(d);
    if (!op) return;
    if (!op.detailed) fetchOperation(op.id);
    renderRow(op.id);
    if (state.selected === op.id) renderDetail();
  } else if (event === "training.epoch") {
    addEpoch(d.operation_id, d);
    if (state.selected === d.operation_id) renderDetail();
  } else if (event === "host.health_changed") {
    // The event names one instance; the health answer has the whole (cached) view.
    loadHealth().catch((e) => console.warn("health", e.message));
  }
}

function openStreams() {
  if (state.streams) state.streams.abort();
  state.streams = new AbortController();
  state.streamOpened = false;
  stream("/api/v1/events", {
    signal: state.streams.signal,
    onEvent,
    onState: (s) => {
      $("stream-state").textContent = s === "open" ? "live" : s === "retrying" ? "reconnecting…" : "disconnected";
      // What changed while the stream was down is read once on reconnection (the
      // first opening follows the initial read, so it needs none).
      if (s === "open" && state.streamOpened) Promise.all([loadHealth(), loadOperations()]).catch((e) => console.warn(e.message));
      if (s === "open") state.streamOpened = true;
    },
  });
}

// ---- forms ---------------------------------------------------------------------------

const list = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);

function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) p.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) { i.removeAttribute("aria-invalid"); i.removeAttribute("aria-describedby"); }
}

/** Puts the API's error next to the field it names (`error.details.field`), else under the form. */
function showError(prefix, e) {
  const field = e.field ? String(e.field).split(/[.[]/)[0] : null;
  const input = field && $(`${prefix}-${field}`);
  if (input) {
    const p = $(`${prefix}-${field}-error`);
    p.textContent = e.message;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", p.id);
    input.focus();
  } else {
    $(`${prefix}-error`).textContent = e.message;
  }
}

function wireForm(form, prefix, build, path, idOf) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = await api(path, { method: "POST", body: build() });
      const id = idOf(body);
      if (id) { await fetchOperation(id); renderOperations(); select(id); }
    } catch (e) {
      showError(prefix, e);
    } finally {
      button.disabled = false;
    }
  });
}

function dates(prefix, body) {
  for (const k of ["start_date", "end_date"]) { const v = $(`${prefix}-${k}`).value; if (v) body[k] = v; }
  return body;
}

function wireForms() {
  wireForm($("load-form"), "load", () => dates("load", {
    symbol: $("load-symbol").value.trim(),
    timeframe: $("load-timeframe").value.trim(),
    mode: $("load-mode").value,
  }), "/api/v1/data/load", (b) => b.data && b.data.operation_id);
  wireForm($("train-form"), "train", () => {
    const body = { strategy_name: $("train-strategy_name").value };
    const symbols = list($("train-symbols").value), timeframes = list($("train-timeframes").value);
    if (symbols.length) body.symbols = symbols;
    if (timeframes.length) body.timeframes = timeframes;
    return dates("train", body);
  }, "/api/v1/trainings/start", (b) => b.task_id);
}

async function loadStrategies() {
  const body = await api("/api/v1/strategies");
  const names = (body.data && body.data.strategies) || [];
  $("train-strategy_name").replaceChildren(...names.map((n) => h("option", {}, n)));
}

// ---- sign-in -------------------------------------------------------------------------

function showLogin(message) {
  if (state.streams) state.streams.abort();
  state.streams = null;
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("stream-state").textContent = "";
  $("login-key").focus();
}

async function start() {
  try {
    // Any keyed route tells whether the key (or no key) is accepted.
    await loadOperations();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return; // onUnauthorized showed the prompt
    $("stream-state").textContent = `gateway unreachable: ${e.message}`;
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = !apiKey.get();
  loadStrategies().catch((e) => { $("train-error").textContent = `strategies: ${e.message}`; });
  loadHealth().catch((e) => console.warn("health", e.message));
  openStreams();
  const linked = /^#op=(.+)$/.exec(location.hash);
  if (linked) select(decodeURIComponent(linked[1]));
}

onUnauthorized(() => {
  const had = Boolean(apiKey.get());
  apiKey.clear();
  showLogin(had ? "The gateway did not accept that key." : "");
});

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  apiKey.set($("login-key").value.trim());
  $("login-key").value = "";
  start();
});
$("smoothing").addEventListener("input", (ev) => {
  state.smoothing = Number(ev.target.value);
  $("smoothing-value").textContent = state.smoothing.toFixed(2);
  const op = state.ops.get(state.selected);
  if (op) renderCurves(op);
});
$("sign-out").addEventListener("click", () => { apiKey.clear(); showLogin(""); });
$("filter-status").addEventListener("change", () => { renderOperations(); loadOperations().catch((e) => alertBox(e.message)); });
$("filter-type").addEventListener("change", () => { renderOperations(); loadOperations().catch((e) => alertBox(e.message)); });
wireForms();
start();
