// Dashboard for the data API: pickers, a time-axis chart that pages and zooms through GET /data,
// and the participant overview from GET /participants. Plain browser JavaScript, no build step.
//
// Time: the API speaks UTC; the chart shows the participant's wall-clock time (their IANA zone,
// DST included), because "what happened at 3 am for this person" is the question researchers ask.
// Chart.js draws in the browser's zone, so each UTC instant is shifted to the Date whose local
// rendering equals the participant's wall clock, and shifted back when the user zooms.
"use strict";

const PAGE_SIZE = 5000;      // points per request
const MAX_POINTS = 20000;    // stop paging past this; the user zooms in or picks a coarser resolution
const DAY_MS = 86400000;

const $ = (id) => document.getElementById(id);
const state = { participants: [], metrics: [], tz: "UTC", startMs: null, endMs: null, chart: null, points: [],
                request: 0 };

// --- time zone helpers ------------------------------------------------------------------------
const formatters = new Map();
function wallParts(utcMs, tz) {
  if (!formatters.has(tz)) {
    formatters.set(tz, new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }));
  }
  const p = {};
  for (const { type, value } of formatters.get(tz).formatToParts(new Date(utcMs))) p[type] = Number(value);
  return p;
}
const offsetCache = new Map();
function offsetMs(utcMs, tz) {  // participant's UTC offset at utcMs (cached per quarter hour)
  const key = tz + Math.floor(utcMs / 900000);
  if (!offsetCache.has(key)) {
    const p = wallParts(utcMs, tz);
    offsetCache.set(key, Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(utcMs / 1000) * 1000);
  }
  return offsetCache.get(key);
}
const browserOffsetMs = (ms) => -new Date(ms).getTimezoneOffset() * 60000;
// UTC instant -> chart x value (renders as the participant's wall clock), and back.
const toChartX = (utcMs) => utcMs + offsetMs(utcMs, state.tz) - browserOffsetMs(utcMs);
function fromChartX(x) {
  let utc = x - offsetMs(x, state.tz) + browserOffsetMs(x);
  utc = x - offsetMs(utc, state.tz) + browserOffsetMs(utc);
  return utc;
}
// Participant-local midnight of an ISO date (yyyy-mm-dd) as a UTC instant.
function localMidnightUtc(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  return guess - offsetMs(guess - offsetMs(guess, state.tz), state.tz);
}
function localIsoDate(utcMs) {
  const p = wallParts(utcMs, state.tz);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}
const isoUtc = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : "–");

// --- API --------------------------------------------------------------------------------------
async function api(path, params) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const response = await fetch(url);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// --- participant overview ---------------------------------------------------------------------
function renderParticipants() {
  const body = $("participants").querySelector("tbody");
  body.replaceChildren();
  for (const p of state.participants) {
    const row = document.createElement("tr");
    row.dataset.participant = p.participant_id;
    const cells = [
      p.participant_id, p.study_id, p.time_zone, p.fitbit_provider || "–", p.auth_state || "–",
      fmtTime(p.last_device_sync), fmtTime(p.last_ingest_at),
      `${p.valid_days_last_7} / 7`, (p.sources || []).join(", ") || "–",
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 4 && p.auth_state) td.className = `auth-${p.auth_state}`;
      row.appendChild(td);
    });
    row.addEventListener("click", () => { $("participant").value = p.participant_id; selectParticipant(); });
    body.appendChild(row);
  }
}

// --- chart ------------------------------------------------------------------------------------
function makeChart() {
  return new Chart($("chart"), {
    type: "line",
    data: { datasets: [{ label: "", data: [], borderColor: "#2563eb", backgroundColor: "#2563eb",
                         borderWidth: 1.5, pointRadius: 0, spanGaps: false, tension: 0,
                         // days the summary marks as not valid are drawn red
                         pointBackgroundColor: (ctx) => (ctx.raw && ctx.raw.point.valid_day === false ? "#dc2626" : "#2563eb"),
                       },
                       // min-max band of hourly/daily buckets: the max line filled down to the min line
                       { label: "max", data: [], borderWidth: 0, pointRadius: 0, fill: "+1",
                         backgroundColor: "rgba(37, 99, 235, 0.15)" },
                       { label: "min", data: [], borderWidth: 0, pointRadius: 0, fill: false }] },
    options: {
      animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: {
        x: { type: "time", ticks: { maxTicksLimit: 12, maxRotation: 0 }, time: { tooltipFormat: "yyyy-MM-dd HH:mm:ss",
                                    displayFormats: { second: "HH:mm:ss", minute: "HH:mm", hour: "d MMM HH:mm",
                                                      day: "d MMM", week: "d MMM", month: "MMM yyyy" } }, title: { display: true, text: "" } },
        y: { title: { display: true, text: "" } },
      },
      plugins: {
        legend: { display: false },
        filler: { propagate: false },
        decimation: { enabled: true, algorithm: "min-max" },
        tooltip: { filter: (item) => item.datasetIndex === 0, callbacks: { afterLabel: (ctx) => {
          const p = ctx.raw.point;
          const extra = [];
          if (p.min !== null && p.min !== undefined) extra.push(`min ${p.min.toFixed(1)} · max ${p.max.toFixed(1)} · n ${p.count}`);
          if (p.valid_day === false) extra.push("not a valid day");
          return extra.join("\n");
        } } },
      },
    },
  });
}

function plot(page, points) {
  const chart = state.chart;
  const ds = chart.data.datasets[0];
  ds.label = `${page.metric} (${page.unit})`;
  state.points = points;
  // (the decimation plugin swaps ds.data for a thinned copy when there are more points than pixels)
  ds.data = points.map((p) => ({ x: toChartX(Date.parse(p.ts)), y: p.value, point: p }));
  const band = points.filter((p) => p.min !== null && p.min !== undefined && p.max !== null && p.max !== undefined);
  const [high, low] = [chart.data.datasets[1], chart.data.datasets[2]];
  high.data = band.map((p) => ({ x: toChartX(Date.parse(p.ts)), y: p.max }));
  low.data = band.map((p) => ({ x: toChartX(Date.parse(p.ts)), y: p.min }));
  const marks = page.resolution !== "raw" || points.length < 300;
  ds.pointRadius = marks ? 2 : 0;
  chart.options.scales.x.min = toChartX(state.startMs);
  chart.options.scales.x.max = toChartX(state.endMs);
  chart.options.scales.x.title.text = `participant local time (${state.tz})`;
  chart.options.scales.y.title.text = page.unit;
  chart.update();
}

// Fetch every page of the current window (up to MAX_POINTS), newest request wins.
async function load() {
  const request = ++state.request;
  const participant = $("participant").value;
  const metric = $("metric").value;
  if (!participant || !metric) return;
  document.body.dataset.state = "loading";
  showError("");
  $("status").textContent = "Loading…";
  const params = { participant_id: participant, metric, start: isoUtc(state.startMs), end: isoUtc(state.endMs),
                   resolution: $("resolution").value, limit: PAGE_SIZE, offset: 0 };
  try {
    let page = await api("data", params);
    const points = page.points.slice();
    while (page.next_offset !== null && points.length < MAX_POINTS && request === state.request) {
      page = await api("data", { ...params, offset: page.next_offset });
      points.push(...page.points);
    }
    if (request !== state.request) return;
    plot(page, points);
    const more = page.total_count > points.length
      ? ` — showing the first ${points.length}: zoom in or choose a coarser resolution to see the rest` : "";
    $("status").textContent = `${points.length} of ${page.total_count} points · resolution ${page.resolution}` +
      `${page.resolution_requested === "auto" ? " (auto)" : ""} · from ${page.source_table}${more}`;
    $("status").dataset.points = String(points.length);
    $("status").dataset.resolution = page.resolution;
    explainEmpty(points.length);
    document.body.dataset.state = "ready";
  } catch (err) {
    if (request !== state.request) return;
    state.points = [];
    for (const ds of state.chart.data.datasets) ds.data = [];
    state.chart.update();
    $("empty").hidden = true;
    $("chart-box").hidden = false;
    $("status").textContent = "";
    $("status").dataset.points = "0";
    showError(err.message);
    document.body.dataset.state = "error";
  }
}

// An empty window says why instead of drawing a bare 0-1 axis: no device of that kind, a token
// that needs re-consent (since when), or where this participant's data is, with a link there.
function explainEmpty(count) {
  const box = $("empty");
  box.replaceChildren();
  $("chart-box").hidden = count === 0;
  box.hidden = count !== 0;
  if (count !== 0) return;
  const p = state.participants.find((x) => x.participant_id === $("participant").value);
  if (!p) return;
  const say = (text) => box.appendChild(document.createTextNode(text));
  let reason = "nothing in this window";
  if (!p.fitbit_provider) {
    reason = "no_device";
    say(`${p.participant_id} has no Fitbit in the roster, so there is no ${$("metric").value} to chart` +
        ((p.sources || []).includes("centrepoint") ? " (their ActiGraph days are on the compliance page)." : "."));
  } else if (p.auth_state === "needs_reconsent") {
    reason = "needs_reconsent";
    say(`${p.participant_id} needs to consent again (${p.reconsent_reason || "reason unknown"}) since ` +
        `${fmtTime(p.auth_state_since)}: no new Fitbit data can be fetched until they do. `);
  } else if (p.auth_state === "not_connected") {
    reason = "not_connected";
    say(`${p.participant_id} has not connected their Fitbit yet (no token): enrol them first. `);
  } else {
    say(`No ${$("metric").value} for ${p.participant_id} in this window. `);
  }
  if (p.first_data_date && p.last_data_date && reason !== "no_device") {
    say(`Data exists from ${p.first_data_date} to ${p.last_data_date}: `);
    const link = document.createElement("a");
    link.id = "jump";
    link.href = "#";
    link.textContent = "show its last 7 days";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const end = localMidnightUtc(localIsoDate(localMidnightUtc(p.last_data_date) + DAY_MS + 3 * 3600000));
      setWindow(localMidnightUtc(localIsoDate(end - 7 * DAY_MS + 3 * 3600000)), end);
    });
    box.appendChild(link);
  } else if (reason !== "no_device") {
    say("No data has been loaded for them yet.");
  }
  box.dataset.reason = reason;
}

function setWindow(startMs, endMs) {
  state.startMs = Math.round(startMs);
  state.endMs = Math.round(endMs);
  $("start").value = localIsoDate(state.startMs);
  $("end").value = localIsoDate(state.endMs - 1);
  return load();
}

function windowFromInputs() {
  const start = $("start").value;
  const end = $("end").value;
  if (!start || !end) { showError("choose both dates"); return; }
  if (end < start) { showError("'To' must not be before 'From'"); return; }
  const endExclusive = localMidnightUtc(end) + DAY_MS + 3 * 3600000;  // a day later, robust to DST
  setWindow(localMidnightUtc(start), localMidnightUtc(localIsoDate(endExclusive)));
}

function selectParticipant() {
  const p = state.participants.find((x) => x.participant_id === $("participant").value);
  if (!p) return;
  state.tz = p.time_zone;
  for (const row of $("participants").querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", row.dataset.participant === p.participant_id);
  }
  // Default window: the last 7 local days with data (or up to today when nothing is loaded yet).
  const lastDay = p.last_data_date || localIsoDate(Date.now());
  const end = localMidnightUtc(localIsoDate(localMidnightUtc(lastDay) + DAY_MS + 3 * 3600000));
  return setWindow(localMidnightUtc(localIsoDate(end - 7 * DAY_MS + 3 * 3600000)), end);
}

function zoom(factor) {
  const centre = (state.startMs + state.endMs) / 2;
  const half = Math.max((state.endMs - state.startMs) * factor / 2, 60000);
  return setWindow(centre - half, centre + half);
}

function shift(direction) {
  const span = state.endMs - state.startMs;
  return setWindow(state.startMs + direction * span, state.endMs + direction * span);
}

// Drag across the chart to zoom into the selected range.
function enableDragZoom() {
  const canvas = $("chart");
  const box = $("selection");
  let from = null;
  const xOf = (event) => event.clientX - canvas.getBoundingClientRect().left;
  canvas.addEventListener("mousedown", (event) => { from = xOf(event); });
  canvas.addEventListener("mousemove", (event) => {
    if (from === null) return;
    const to = xOf(event);
    box.hidden = false;
    box.style.left = `${Math.min(from, to)}px`;
    box.style.width = `${Math.abs(to - from)}px`;
  });
  window.addEventListener("mouseup", (event) => {
    if (from === null) return;
    const to = xOf(event);
    box.hidden = true;
    const [a, b] = [Math.min(from, to), Math.max(from, to)];
    from = null;
    if (b - a < 5) return;
    const scale = state.chart.scales.x;
    setWindow(fromChartX(scale.getValueForPixel(a)), fromChartX(scale.getValueForPixel(b)));
  });
}

async function init() {
  state.chart = makeChart();
  enableDragZoom();
  $("show").addEventListener("click", windowFromInputs);
  $("participant").addEventListener("change", selectParticipant);
  $("metric").addEventListener("change", load);
  $("resolution").addEventListener("change", load);
  $("earlier").addEventListener("click", () => shift(-1));
  $("later").addEventListener("click", () => shift(1));
  $("zoom-in").addEventListener("click", () => zoom(0.5));
  $("zoom-out").addEventListener("click", () => zoom(2));
  try {
    [state.participants, state.metrics] = await Promise.all([api("participants"), api("metrics")]);
  } catch (err) {
    showError(`cannot load participants/metrics: ${err.message}`);
    $("status").textContent = "";
    document.body.dataset.state = "error";
    return;
  }
  $("participant").replaceChildren(...state.participants.map((p) => new Option(p.participant_id, p.participant_id)));
  $("metric").replaceChildren(...state.metrics.map((m) => new Option(`${m.name} (${m.unit})`, m.name)));
  renderParticipants();
  if (state.participants.length) {
    await selectParticipant();
  } else {
    $("status").textContent = "No participants yet: sync the roster (wearable-assets roster sync).";
    document.body.dataset.state = "ready";
  }
}

window.dashboard = { state, load, setWindow, selectParticipant };
init();
