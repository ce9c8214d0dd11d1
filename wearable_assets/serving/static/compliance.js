// Compliance page for study coordinators: the participant x day grid (GET /compliance/grid), cohort
// adherence per ISO week (GET /compliance/cohort) and the re-consent ledger (GET /compliance/reconsent).
// Every cell's state and reason come from the API (one SQL derivation on the server); this file only
// draws them. Plain browser JavaScript, no build step.
"use strict";

const PAGE = 50;  // participants per page
const $ = (id) => document.getElementById(id);
const state = { offset: 0, page: null, cohort: [], ledger: [], chart: null, request: 0 };

const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?(Z|\+00:00)$/, "Z") : "–");

async function api(path, params) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
  const response = await fetch(url);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function params() {
  return { study_id: $("study").value, start: $("start").value, end: $("end").value };
}

// Valid days of the last 7/14/28 days are counted up to the window's last day (as_of is the day
// after it); with the default window (ending yesterday) that is "up to today".
function dayAfter(isoDate) {
  if (!isoDate) return "";
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

function cellOf(cell, device) {
  if (device === "fitbit") return [cell.fitbit_state, cell.fitbit_reason];
  if (device === "actigraph") return [cell.actigraph_state, cell.actigraph_reason];
  return [cell.state, cell.reason];
}

function td(text, className) {
  const el = document.createElement("td");
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

function renderLegend(states) {
  $("legend").replaceChildren(...Object.entries(states).map(([name, meaning]) => {
    const item = document.createElement("span");
    item.className = `legend-item state-${name}`;
    item.textContent = name.replaceAll("_", " ");
    item.title = meaning;
    return item;
  }));
}

function renderGrid() {
  const page = state.page;
  const device = $("device").value;
  const head = document.createElement("tr");
  for (const text of ["Participant", "Study", "Token", "Last sync", "Valid 7 d", "Valid 14 d", "Valid 28 d"]) {
    const th = document.createElement("th");
    th.textContent = text;
    head.appendChild(th);
  }
  for (const day of page.days) {
    const th = document.createElement("th");
    th.className = "day";
    th.textContent = day.slice(5);
    th.title = day;
    head.appendChild(th);
  }
  $("grid").querySelector("thead").replaceChildren(head);
  const rows = page.participants.map((p) => {
    const row = document.createElement("tr");
    row.dataset.participant = p.participant_id;
    row.appendChild(td(p.participant_id));
    row.appendChild(td(p.study_id));
    const token = p.auth_state === null ? "no Fitbit"
      : p.auth_state === "needs_reconsent" ? `needs re-consent (${p.reconsent_reason || "?"}) since ${fmtTime(p.auth_state_since)}`
        : p.auth_state === "active" ? `active since ${fmtTime(p.auth_state_since)}` : p.auth_state.replaceAll("_", " ");
    row.appendChild(td(token, p.auth_state ? `auth-${p.auth_state}` : ""));
    row.appendChild(td(fmtTime(p.last_sync)));
    for (const n of [7, 14, 28]) row.appendChild(td(`${p[`valid_days_last_${n}`]} / ${n}`, "count"));
    for (const cell of p.cells) {
      const [s, reason] = cellOf(cell, device);
      const el = td("", `cell state-${s}`);
      el.dataset.state = s;
      el.dataset.date = cell.local_date;
      el.title = `${p.participant_id} ${cell.local_date}: ${s.replaceAll("_", " ")}\n${reason}`;
      row.appendChild(el);
    }
    return row;
  });
  $("grid").querySelector("tbody").replaceChildren(...rows);
  const last = page.offset + page.participants.length;
  $("grid-status").textContent = page.total_participants
    ? `participants ${page.offset + 1}-${last} of ${page.total_participants} · ${page.start} to ${page.end} · ` +
      `valid days counted before ${page.as_of}`
    : "no participants in the roster for this filter";
  $("previous").disabled = page.offset === 0;
  $("next").disabled = page.next_offset === null;
}

function renderCohort() {
  const body = $("cohort").querySelector("tbody");
  body.replaceChildren(...state.cohort.map((w) => {
    const row = document.createElement("tr");
    row.dataset.study = w.study_id;
    row.dataset.week = w.week_start;
    for (const text of [w.study_id, `${w.iso_year}-W${String(w.iso_week).padStart(2, "0")}`, w.week_start,
                        `${w.days_in_window} / 7`, w.enrolled_participants, `${w.valid_days} / ${w.participant_days}`,
                        w.adherence_pct === null ? "–" : `${w.adherence_pct} %`]) row.appendChild(td(String(text)));
    return row;
  }));
  const studies = [...new Set(state.cohort.map((w) => w.study_id))];
  const weeks = [...new Set(state.cohort.map((w) => `${w.iso_year}-W${String(w.iso_week).padStart(2, "0")}`))].sort();
  const palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];
  const datasets = studies.map((study, i) => ({
    label: study, backgroundColor: palette[i % palette.length],
    data: weeks.map((week) => {
      const w = state.cohort.find((x) => x.study_id === study && `${x.iso_year}-W${String(x.iso_week).padStart(2, "0")}` === week);
      return w ? w.adherence_pct : null;
    }),
  }));
  if (!state.chart) {
    state.chart = new Chart($("cohort-chart"), {
      type: "bar", data: { labels: [], datasets: [] },
      options: { animation: false, maintainAspectRatio: false,
                 scales: { y: { min: 0, max: 100, title: { display: true, text: "adherence (%)" } } } },
    });
  }
  state.chart.data.labels = weeks;
  state.chart.data.datasets = datasets;
  state.chart.update();
}

function renderLedger() {
  const body = $("ledger").querySelector("tbody");
  body.replaceChildren(...state.ledger.map((e) => {
    const row = document.createElement("tr");
    row.dataset.participant = e.participant_id;
    row.dataset.provider = e.provider;
    row.dataset.ledgerState = e.state;
    for (const text of [e.participant_id, e.study_id, e.provider]) row.appendChild(td(text));
    row.appendChild(td(e.state.replaceAll("_", " "), `ledger-${e.state}`));
    row.appendChild(td(fmtTime(e.since)));
    row.appendChild(td(e.reason));
    const steps = document.createElement("td");
    const list = document.createElement("ol");
    list.className = "steps";
    for (const t of e.transitions) {
      const li = document.createElement("li");
      li.textContent = `${fmtTime(t.at)} → ${t.to_state.replaceAll("_", " ")} (${t.reason})`;
      list.appendChild(li);
    }
    steps.appendChild(list);
    row.appendChild(steps);
    return row;
  }));
  if (!state.ledger.length) {
    const row = document.createElement("tr");
    const cell = td("nobody needs to consent again", "muted");
    cell.colSpan = 7;
    row.appendChild(cell);
    body.appendChild(row);
  }
}

function csvHref() {
  const url = new URL("compliance/grid", document.baseURI);
  const p = params();
  for (const [k, v] of Object.entries({ ...p, as_of: dayAfter(p.end), limit: PAGE, offset: state.offset, format: "csv" })) {
    if (v !== "") url.searchParams.set(k, v);
  }
  return url.toString();
}

async function load() {
  const request = ++state.request;
  document.body.dataset.state = "loading";
  showError("");
  try {
    const p = params();
    const [page, cohort, ledger] = await Promise.all([
      api("compliance/grid", { ...p, as_of: dayAfter(p.end), limit: PAGE, offset: state.offset }),
      api("compliance/cohort", p),
      api("compliance/reconsent", { study_id: p.study_id }),
    ]);
    if (request !== state.request) return;
    Object.assign(state, { page, cohort, ledger });
    if (!$("start").value) $("start").value = page.start;
    if (!$("end").value) $("end").value = page.end;
    renderLegend(page.states);
    renderGrid();
    renderCohort();
    renderLedger();
    $("csv").href = csvHref();
    document.body.dataset.state = "ready";
  } catch (err) {
    if (request !== state.request) return;
    showError(err.message);
    document.body.dataset.state = "error";
  }
}

async function init() {
  $("show").addEventListener("click", () => { state.offset = 0; load(); });
  $("study").addEventListener("change", () => { state.offset = 0; load(); });
  $("device").addEventListener("change", () => { if (state.page) renderGrid(); });
  $("previous").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  $("next").addEventListener("click", () => { if (state.page && state.page.next_offset !== null) { state.offset = state.page.next_offset; load(); } });
  const query = new URLSearchParams(location.search);
  try {
    const studies = await api("compliance/studies");
    $("study").append(...studies.map((s) => new Option(`${s.study_id} (${s.participants})`, s.study_id)));
  } catch (err) {
    showError(`cannot load the studies: ${err.message}`);
    document.body.dataset.state = "error";
    return;
  }
  for (const key of ["study", "start", "end"]) if (query.get(key)) $(key).value = query.get(key);
  await load();
}

window.compliance = { state, load };
init();
