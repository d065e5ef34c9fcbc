// The DOM of the status page: rows, groups, the summary, incidents and the
// 90-day bar's tooltip, built once from the row <template> and then updated
// in place.
//
// Names, ids, tags and messages come from connectors, which are untrusted:
// they reach the DOM only through textContent and a few inert attributes
// (aria-label, title, datetime). Nothing here builds markup from strings.
import {
  DAYS,
  DAY_MS,
  FAILING,
  LABELS,
  SEVERITY,
  absolute,
  ago,
  dayName,
  millis,
  normalizeIncident,
  now,
  percent,
  span,
} from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_INCIDENTS = 50;

const $ = (id) => document.getElementById(id);
export const ui = {
  overall: $("overall"),
  overallIcon: document.querySelector("#overall use"),
  overallTitle: $("overall-title"),
  overallCounts: $("overall-counts"),
  updated: $("updated"),
  notice: $("notice"),
  historyNote: $("history-note"),
  groups: $("groups"),
  incidents: $("incidents"),
  noIncidents: $("no-incidents"),
  liveText: $("live-text"),
  byType: $("by-type"),
  byTag: $("by-tag"),
  tip: $("tip"),
  rowTemplate: $("row-template").content.firstElementChild,
};

export const state = {
  loaded: false,
  history: true,
  groupBy: "type",
  connectors: [],
  byId: new Map(),
  groups: [],
  layout: "",
  incidents: [],
  generatedAt: null,
};

// The connector a 90-day bar shows, for the one tooltip of all bars.
export const barRows = new WeakMap();
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// `title` is a function: formatting a date is the dear part of a row, so it
// runs only when the time changed.
export function setTime(node, t, text, title) {
  setText(node, text);
  const iso = t === null ? null : new Date(t).toISOString();
  if (node.getAttribute("datetime") === iso) return;
  if (iso === null) {
    node.removeAttribute("datetime");
    node.removeAttribute("title");
  } else {
    node.setAttribute("datetime", iso);
    node.setAttribute("title", title());
  }
}

// ---------------------------------------------------------------- SVG

function svg(tag, cls) {
  const node = document.createElementNS(SVG_NS, tag);
  if (cls) node.setAttribute("class", cls);
  return node;
}

function pill(status) {
  const node = document.createElement("span");
  node.className = "pill";
  node.dataset.status = status;
  const icon = svg("svg");
  icon.setAttribute("aria-hidden", "true");
  icon.setAttribute("focusable", "false");
  const use = svg("use");
  use.setAttribute("href", `#i-${status}`);
  icon.appendChild(use);
  const word = document.createElement("span");
  word.className = "word";
  word.textContent = LABELS[status];
  node.append(icon, word);
  return node;
}

const dayBucket = (v) => (v === null ? 0 : v >= 99.9 ? 1 : v >= 95 ? 2 : 3);

// One path per colour, one small rectangle per day: four DOM nodes for
// ninety days. What each day was goes into the label, runs of equal days
// merged ("Sep 8 – Dec 1: 100%").
function drawDays(row, c) {
  const d = ["", "", "", ""];
  for (let i = 0; i < DAYS; i += 1) {
    d[dayBucket(c.daily[i])] += `M${i + 0.14} 0h0.72v10h-0.72z`;
  }
  row.dayPaths.forEach((path, i) => path.setAttribute("d", d[i]));
  const today = Math.floor((state.generatedAt ?? now()) / DAY_MS) * DAY_MS;
  const runs = [];
  let start = 0;
  for (let i = 1; i <= DAYS; i += 1) {
    if (i < DAYS && c.daily[i] === c.daily[start]) continue;
    const first = dayName(today - (DAYS - 1 - start) * DAY_MS);
    const last = dayName(today - (DAYS - 1 - (i - 1)) * DAY_MS);
    const value = c.daily[start] === null ? "no data" : percent(c.daily[start]);
    runs.push(`${start === i - 1 ? first : `${first} – ${last}`}: ${value}`);
    start = i;
  }
  row.days.setAttribute("aria-label", `Daily uptime, last ${DAYS} days (UTC): ${runs.join("; ")}`);
}

// The 24 hourly medians as a line; an hour with no checks breaks it.
function drawLatency(row, c) {
  const values = c.latency24.filter((v) => v !== null);
  const lines = [];
  if (values.length > 0) {
    const top = Math.max(...values) * 1.15 || 1;
    let points = [];
    const flush = () => {
      // A lone point is drawn as a dot: a line from the point to itself.
      if (points.length === 1) points.push(points[0]);
      if (points.length > 0) lines.push(points.join(" "));
      points = [];
    };
    c.latency24.forEach((v, i) => {
      if (v === null) flush();
      else points.push(`${i * 10},${(38 - (v / top) * 34).toFixed(1)}`);
    });
    flush();
  }
  const nodes = lines.map((points) => {
    const line = svg("polyline");
    line.setAttribute("points", points);
    return line;
  });
  const base = svg("line", "base");
  base.setAttribute("x1", "0");
  base.setAttribute("x2", "230");
  base.setAttribute("y1", "39");
  base.setAttribute("y2", "39");
  row.line.replaceChildren(base, ...nodes);
  let label = "Latency over the last 24 hours: no checks";
  if (values.length > 0) {
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    label = `Hourly median latency over the last 24 hours: lowest ${millis(sorted[0])}, median ${millis(median)}, highest ${millis(sorted[sorted.length - 1])}`;
  }
  row.line.setAttribute("aria-label", label);
  setText(row.peak, values.length > 0 ? `max ${millis(Math.max(...values))}` : "no checks");
}

// ---------------------------------------------------------------- rows

function buildRow(c) {
  const node = ui.rowTemplate.cloneNode(true);
  const q = (selector) => node.querySelector(selector);
  const row = {
    node,
    use: q(".pill use"),
    word: q(".word"),
    latency: q(".latency"),
    since: q(".since"),
    message: q(".message-text"),
    checked: q(".checked"),
    disabled: q(".disabled-chip"),
    days: q(".days-svg"),
    dayPaths: [q(".d-none"), q(".d-ok"), q(".d-warn"), q(".d-bad")],
    uptime: [q(".u-day"), q(".u-week"), q(".u-month")],
    line: q(".line-svg"),
    peak: q(".peak"),
    status: "",
  };
  q(".name").textContent = c.name;
  q(".cid").textContent = c.id;
  const tags = q(".tags");
  if (c.tags.length === 0) tags.remove();
  for (const tag of c.tags) {
    const item = document.createElement("li");
    item.textContent = tag;
    tags.appendChild(item);
  }
  barRows.set(row.days, c);
  fillLive(row, c);
  fillHistory(row, c);
  return row;
}

// What a health event changes.
export function fillLive(row, c) {
  if (row.status !== c.status) {
    row.status = c.status;
    row.node.dataset.status = c.status;
    row.use.setAttribute("href", `#i-${c.status}`);
    setText(row.word, LABELS[c.status]);
  }
  row.node.classList.toggle("is-disabled", !c.enabled);
  row.disabled.hidden = c.enabled;
  setText(row.message, c.message);
  setText(row.latency, millis(c.latency));
  fillTimes(row, c);
}

export function fillTimes(row, c) {
  const lasted = c.since === null ? null : now() - c.since;
  const since = lasted === null ? "" : lasted < 60_000 ? "since just now" : `for ${span(lasted)}`;
  setTime(row.since, c.since, since, () => `Since ${absolute(c.since)}`);
  setTime(row.checked, c.checkedAt, c.checkedAt === null ? "" : `checked ${ago(c.checkedAt)}`, () => `Last checked ${absolute(c.checkedAt)}`);
}

// What only a refetch changes.
export function fillHistory(row, c) {
  if (!state.history) return;
  setText(row.uptime[0], percent(c.uptime.day));
  setText(row.uptime[1], percent(c.uptime.week));
  setText(row.uptime[2], percent(c.uptime.month));
  drawDays(row, c);
  drawLatency(row, c);
}

// ---------------------------------------------------------------- groups

function groupKeys(c) {
  if (state.groupBy === "tag") return c.tags.length > 0 ? [...new Set(c.tags)] : [""];
  return [c.type];
}

function groupTitle(key) {
  if (key === "") return state.groupBy === "tag" ? "Untagged" : "Other";
  return state.groupBy === "tag" ? key : key.charAt(0).toUpperCase() + key.slice(1);
}

export function layoutOf(connectors) {
  return JSON.stringify([state.groupBy, state.history, connectors.map((c) => [c.id, c.name, groupKeys(c)])]);
}

export function render() {
  const buckets = new Map();
  for (const c of state.connectors) {
    c.rows = [];
    for (const key of groupKeys(c)) {
      if (!buckets.has(key)) buckets.set(key, []);
      buckets.get(key).push(c);
    }
  }
  const keys = [...buckets.keys()].sort((a, b) => (a === "") - (b === "") || collator.compare(a, b));
  const fragment = document.createDocumentFragment();
  state.groups = keys.map((key) => {
    const members = buckets.get(key).sort((a, b) => collator.compare(a.name, b.name) || collator.compare(a.id, b.id));
    const section = document.createElement("section");
    section.className = "group";
    const head = document.createElement("div");
    head.className = "group-head";
    const title = document.createElement("h3");
    title.textContent = groupTitle(key);
    const count = document.createElement("p");
    count.className = "group-count";
    head.append(title, count);
    const list = document.createElement("ul");
    list.className = "rows";
    const group = { count, members };
    for (const c of members) {
      const row = buildRow(c);
      row.group = group;
      c.rows.push(row);
      list.appendChild(row.node);
    }
    section.append(head, list);
    fragment.appendChild(section);
    fillGroup(group);
    return group;
  });
  if (keys.length === 0) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No connectors are registered yet.";
    fragment.appendChild(empty);
  }
  ui.groups.replaceChildren(fragment);
}

export function fillGroup(group) {
  let failing = 0;
  let worst = "healthy";
  for (const c of group.members) {
    if (!c.enabled) continue;
    if (FAILING.has(c.status)) failing += 1;
    if (SEVERITY[c.status] > SEVERITY[worst]) worst = c.status;
  }
  const n = group.members.length;
  const enabled = group.members.filter((c) => c.enabled).length;
  const parts = [`${n} connector${n === 1 ? "" : "s"}`];
  if (enabled === 0) parts.push(n === 1 ? "disabled" : "all disabled");
  else if (failing > 0) parts.push(`${failing} failing`);
  else parts.push(worst === "healthy" ? "all healthy" : worst === "degraded" ? "some degraded" : "not all checked");
  setText(group.count, parts.join(" · "));
  group.count.dataset.status = failing > 0 ? "unhealthy" : worst;
}

// ---------------------------------------------------------------- summary

export function fillSummary() {
  const counts = { healthy: 0, degraded: 0, failing: 0, unknown: 0, disabled: 0 };
  for (const c of state.connectors) {
    if (!c.enabled) counts.disabled += 1;
    else if (FAILING.has(c.status)) counts.failing += 1;
    else counts[c.status] += 1;
  }
  const total = state.connectors.length;
  let title = "All systems operational";
  let look = "healthy";
  if (total === 0) {
    title = "No connectors yet";
    look = "unknown";
  } else if (counts.failing > 0) {
    title = counts.failing === 1 ? "1 connector is failing" : `${counts.failing} connectors are failing`;
    look = "unhealthy";
  } else if (counts.degraded > 0) {
    title = "Some connectors are degraded";
    look = "degraded";
  } else if (counts.healthy === 0) {
    title = "Waiting for the first checks";
    look = "unknown";
  }
  const parts = [`${counts.healthy} healthy`];
  if (counts.degraded > 0) parts.push(`${counts.degraded} degraded`);
  parts.push(`${counts.failing} failing`);
  if (counts.unknown > 0) parts.push(`${counts.unknown} not checked yet`);
  if (counts.disabled > 0) parts.push(`${counts.disabled} disabled`);
  ui.overall.dataset.state = look;
  ui.overall.dataset.status = look;
  ui.overallIcon.setAttribute("href", `#i-${look}`);
  setText(ui.overallTitle, title);
  setText(ui.overallCounts, parts.join(" · "));
  fillUpdated();
}

export function fillUpdated() {
  const t = state.generatedAt;
  setTime(ui.updated, t, t === null ? "" : `Updated ${ago(t)}`, () => absolute(t));
}

// ---------------------------------------------------------------- incidents

export function renderIncidents() {
  const fragment = document.createDocumentFragment();
  for (const incident of state.incidents) {
    const item = document.createElement("li");
    item.className = "incident";
    item.dataset.status = incident.status;
    const when = document.createElement("time");
    when.className = "when";
    setTime(when, incident.at, incident.at === null ? "" : ago(incident.at), () => absolute(incident.at));
    const who = document.createElement("p");
    who.className = "who";
    const name = document.createElement("strong");
    name.textContent = incident.name;
    const id = document.createElement("span");
    id.className = "cid";
    id.textContent = incident.id;
    who.append(name, " ", id);
    const change = document.createElement("p");
    change.className = "change";
    const arrow = document.createElement("span");
    arrow.className = "arrow";
    arrow.textContent = "→";
    arrow.setAttribute("aria-label", "became");
    change.append(pill(incident.previous), arrow, pill(incident.status));
    const message = document.createElement("p");
    message.className = "message";
    message.textContent = incident.message;
    item.append(who, change, when, message);
    fragment.appendChild(item);
  }
  ui.incidents.replaceChildren(fragment);
  ui.noIncidents.hidden = state.incidents.length > 0;
}

// One the event stream just told of, newest first.
export function addIncident(incident) {
  state.incidents.unshift(incident);
  state.incidents.length = Math.min(state.incidents.length, MAX_INCIDENTS);
  renderIncidents();
}

export function setIncidents(list) {
  state.incidents = list
    .map(normalizeIncident)
    .sort((a, b) => (b.at ?? 0) - (a.at ?? 0))
    .slice(0, MAX_INCIDENTS);
  renderIncidents();
}

// The one tooltip of every 90-day bar: which day is under the pointer.
export function onPointer(event) {
  const bar = event.target instanceof Element ? event.target.closest(".days-svg") : null;
  const c = bar === null ? undefined : barRows.get(bar);
  if (c === undefined) {
    ui.tip.hidden = true;
    return;
  }
  const box = bar.getBoundingClientRect();
  const i = Math.min(DAYS - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * DAYS)));
  const today = Math.floor((state.generatedAt ?? now()) / DAY_MS) * DAY_MS;
  const value = c.daily[i];
  setText(ui.tip, `${dayName(today - (DAYS - 1 - i) * DAY_MS)}: ${value === null ? "no data" : `${percent(value)} up`}`);
  ui.tip.hidden = false;
  const width = ui.tip.offsetWidth;
  const left = Math.min(Math.max(4, event.clientX - width / 2), window.innerWidth - width - 4);
  ui.tip.style.left = `${Math.round(left)}px`;
  ui.tip.style.top = `${Math.round(box.top - ui.tip.offsetHeight - 6)}px`;
}
