// Sandport's status page: reads GET /api/v1/status, follows the server-sent
// events of GET /api/v1/status/events, and refetches every minute. What it
// shows is drawn by view.js.
import { ago, clock, normalize, now, num, statusOf, str, timeOf } from "./format.js";
import {
  addIncident,
  barRows,
  fillGroup,
  fillHistory,
  fillLive,
  fillSummary,
  fillTimes,
  fillUpdated,
  layoutOf,
  onPointer,
  render,
  setIncidents,
  setText,
  state,
  ui,
} from "./view.js";

const STATUS_URL = "/api/v1/status";
const EVENTS_URL = "/api/v1/status/events";
const REFRESH_MS = 60_000;
const TICK_MS = 15_000;
const root = document.documentElement;
let fetching = false;
let fetchAgain = false;

function showNotice(text) {
  ui.notice.hidden = text === "";
  setText(ui.notice, text);
}

function apply(body) {
  const data = body !== null && typeof body === "object" ? body : {};
  const generatedAt = timeOf(data.generated_at);
  state.generatedAt = generatedAt ?? Date.now();
  clock.skew = generatedAt === null ? 0 : generatedAt - Date.now();
  state.history = data.history !== false;
  root.classList.toggle("no-history", !state.history);
  ui.historyNote.hidden = state.history;
  const list = Array.isArray(data.connectors) ? data.connectors : [];
  const connectors = list.map(normalize);
  const layout = layoutOf(connectors);
  if (layout === state.layout) {
    // Same rows: update them in place, keeping scroll, focus and hover.
    const fresher = new Map();
    connectors.forEach((fresh, i) => {
      const old = state.connectors[i];
      fresher.set(old, fresh);
      fresh.rows = old.rows;
      for (const row of fresh.rows) {
        barRows.set(row.days, fresh);
        fillLive(row, fresh);
        fillHistory(row, fresh);
      }
    });
    state.connectors = connectors;
    for (const group of state.groups) {
      group.members = group.members.map((c) => fresher.get(c));
      fillGroup(group);
    }
  } else {
    state.connectors = connectors;
    state.layout = layout;
    render();
  }
  state.byId = new Map(state.connectors.map((c) => [c.id, c]));
  fillSummary();
  setIncidents(Array.isArray(data.incidents) ? data.incidents : []);
}

async function load() {
  if (fetching) {
    fetchAgain = true;
    return;
  }
  fetching = true;
  try {
    const response = await fetch(STATUS_URL, {
      headers: { accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      showNotice(
        `This page needs a read token: the server answered ${response.status} to ${STATUS_URL}. ` +
          "A browser cannot send one: the operator can start the service with --public-status " +
          "to serve this page and its data without a token.",
      );
      ui.overall.dataset.state = "unknown";
      setText(ui.overallTitle, "This page needs a read token");
      setText(ui.overallCounts, "");
      return;
    }
    if (!response.ok) {
      showNotice(`The server answered ${response.status} to ${STATUS_URL}; retrying every minute.`);
      return;
    }
    const body = await response.json();
    if (!state.loaded) performance.mark("sandport-status-fetched");
    showNotice("");
    apply(body);
    if (!state.loaded) {
      state.loaded = true;
      root.dataset.ready = "true";
      performance.mark("sandport-status-rendered");
    }
  } catch (error) {
    showNotice(`Cannot reach the server (${error instanceof Error ? error.message : "network error"}); showing the last status and retrying.`);
  } finally {
    fetching = false;
    if (fetchAgain) {
      fetchAgain = false;
      load();
    }
  }
}

// ---------------------------------------------------------------- live

function onHealth(event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  if (data === null || typeof data !== "object") return;
  const c = state.byId.get(str(data.id));
  if (c === undefined) {
    // A connector this page has not seen: the list changed.
    load();
    return;
  }
  const previous = c.status;
  c.status = statusOf(data.status);
  if ("message" in data) c.message = str(data.message);
  if ("latency_ms" in data) c.latency = num(data.latency_ms);
  if ("checked_at" in data) c.checkedAt = timeOf(data.checked_at) ?? c.checkedAt;
  if (previous !== c.status) c.since = timeOf(data.since) ?? c.checkedAt ?? now();
  else if ("since" in data) c.since = timeOf(data.since) ?? c.since;
  for (const row of c.rows) {
    fillLive(row, c);
    fillGroup(row.group);
  }
  fillSummary();
  if (previous !== c.status) {
    addIncident({
      id: c.id,
      name: c.name,
      status: c.status,
      previous: "previous_status" in data ? statusOf(data.previous_status) : previous,
      message: c.message,
      at: c.checkedAt ?? now(),
    });
  }
}

function setLive(mode, text) {
  root.dataset.live = mode;
  setText(ui.liveText, text);
}

let retryMs = 1000;
// Set by any error, on this stream or one before it: events sent while we
// were away are lost, so the next open reads the whole state.
let missed = false;
function follow() {
  const source = new EventSource(EVENTS_URL);
  source.addEventListener("open", () => {
    retryMs = 1000;
    setLive("open", "Live");
    if (missed) load();
    missed = false;
  });
  source.addEventListener("health", onHealth);
  source.addEventListener("resync", () => load());
  source.addEventListener("error", () => {
    missed = true;
    if (source.readyState === EventSource.CLOSED) {
      // The browser gives up on an answer that is not an event stream
      // (a 401, a 404, a proxy's error page): try again, slower each time.
      setLive("down", "Live updates paused, retrying");
      setTimeout(follow, retryMs);
      retryMs = Math.min(retryMs * 2, 30_000);
    } else {
      setLive("reconnecting", "Reconnecting…");
    }
  });
}

// ---------------------------------------------------------------- wiring

function readGroupBy() {
  try {
    return localStorage.getItem("sandport.status.groupBy") === "tag" ? "tag" : "type";
  } catch {
    return "type";
  }
}

function setGroupBy(mode) {
  state.groupBy = mode;
  ui.byType.setAttribute("aria-pressed", String(mode === "type"));
  ui.byTag.setAttribute("aria-pressed", String(mode === "tag"));
  try {
    localStorage.setItem("sandport.status.groupBy", mode);
  } catch {
    // Storage off (private mode, a policy): the choice lasts this visit.
  }
  if (!state.loaded) return;
  state.layout = layoutOf(state.connectors);
  render();
}

function tick() {
  for (const c of state.connectors) for (const row of c.rows) fillTimes(row, c);
  fillUpdated();
  for (const node of ui.incidents.querySelectorAll("time.when")) {
    const t = Date.parse(node.getAttribute("datetime") ?? "");
    if (Number.isFinite(t)) setText(node, ago(t));
  }
}

state.groupBy = readGroupBy();
ui.byType.addEventListener("click", () => setGroupBy("type"));
ui.byTag.addEventListener("click", () => setGroupBy("tag"));
ui.byType.setAttribute("aria-pressed", String(state.groupBy === "type"));
ui.byTag.setAttribute("aria-pressed", String(state.groupBy === "tag"));
ui.groups.addEventListener("pointermove", onPointer);
ui.groups.addEventListener("pointerleave", () => {
  ui.tip.hidden = true;
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.loaded) load();
});

load();
follow();
setInterval(load, REFRESH_MS);
setInterval(tick, TICK_MS);
