"use strict";
// Sandport's status page: reads GET /api/v1/status, follows the server-sent
// events of GET /api/v1/status/events, and refetches every minute.
//
// Names, ids, tags and messages come from connectors, which are untrusted:
// they reach the DOM only through textContent and a few inert attributes
// (aria-label, title, datetime). Nothing here builds markup from strings.
(() => {
  const STATUS_URL = "/api/v1/status";
  const EVENTS_URL = "/api/v1/status/events";
  const REFRESH_MS = 60_000;
  const TICK_MS = 15_000;
  const MAX_INCIDENTS = 50;
  const DAYS = 90;
  const HOURS = 24;
  const DAY_MS = 86_400_000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const STATUSES = ["healthy", "degraded", "unhealthy", "unavailable", "unknown"];
  const LABELS = {
    healthy: "Healthy",
    degraded: "Degraded",
    unhealthy: "Unhealthy",
    unavailable: "Unavailable",
    unknown: "Unknown",
  };
  const FAILING = new Set(["unhealthy", "unavailable"]);
  // Worst first, for a group's summary.
  const SEVERITY = { unhealthy: 4, unavailable: 3, degraded: 2, unknown: 1, healthy: 0 };

  const $ = (id) => document.getElementById(id);
  const root = document.documentElement;
  const ui = {
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

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  const state = {
    loaded: false,
    history: true,
    groupBy: readGroupBy(),
    connectors: [],
    byId: new Map(),
    groups: [],
    layout: "",
    incidents: [],
    generatedAt: null,
    // Server clock minus ours, so "5 min ago" does not depend on this
    // machine's clock being right.
    skew: 0,
    fetching: false,
    fetchAgain: false,
  };
  // The row an element of a 90-day bar belongs to, for the one tooltip.
  const barRows = new WeakMap();

  // ---------------------------------------------------------------- values

  const str = (v) => (typeof v === "string" ? v : typeof v === "number" && Number.isFinite(v) ? String(v) : "");
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const statusOf = (v) => (STATUSES.includes(v) ? v : "unknown");
  const timeOf = (v) => {
    const t = typeof v === "string" ? Date.parse(v) : NaN;
    return Number.isFinite(t) ? t : null;
  };
  const series = (v, length) => {
    const values = Array.isArray(v) ? v.slice(-length).map(num) : [];
    // Right-aligned: the last value is always the current day or hour.
    return new Array(length - values.length).fill(null).concat(values);
  };
  const now = () => Date.now() + state.skew;

  function normalize(raw, index) {
    const r = raw !== null && typeof raw === "object" ? raw : {};
    const id = str(r.id) || `#${index + 1}`;
    const uptime = r.uptime !== null && typeof r.uptime === "object" ? r.uptime : {};
    return {
      id,
      name: str(r.name) || id,
      type: str(r.type),
      tags: Array.isArray(r.tags) ? r.tags.map(str).filter((t) => t !== "") : [],
      enabled: r.enabled !== false,
      status: statusOf(r.status),
      since: timeOf(r.since),
      message: str(r.message),
      latency: num(r.latency_ms),
      checkedAt: timeOf(r.checked_at),
      uptime: { day: num(uptime.day), week: num(uptime.week), month: num(uptime.month) },
      daily: series(r.daily, DAYS),
      latency24: series(r.latency_24h, HOURS),
      rows: [],
    };
  }

  function normalizeIncident(raw) {
    const r = raw !== null && typeof raw === "object" ? raw : {};
    const id = str(r.connector);
    return {
      id,
      name: str(r.name) || id,
      status: statusOf(r.status),
      previous: statusOf(r.previous_status),
      message: str(r.message),
      at: timeOf(r.at),
    };
  }

  // ---------------------------------------------------------------- text

  function percent(v) {
    if (v === null) return "—";
    // Rounded down, so 99.996 never reads 100%; the epsilon keeps 99.95
    // (9994.999… in binary) from reading 99.94.
    const hundredths = Math.floor(Math.min(Math.max(v, 0), 100) * 100 + 1e-6);
    return `${(hundredths / 100).toFixed(2).replace(/\.?0+$/, "")}%`;
  }

  function millis(v) {
    if (v === null) return "";
    if (v < 10) return `${v.toFixed(1)} ms`;
    if (v < 1000) return `${Math.round(v)} ms`;
    return `${(v / 1000).toFixed(2)} s`;
  }

  function span(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 6 && m % 60 !== 0) return `${h} h ${m % 60} min`;
    if (h < 48) return `${h} h`;
    return `${Math.floor(h / 24)} d`;
  }

  function ago(t) {
    if (t === null) return "";
    const ms = now() - t;
    return ms < 10_000 ? "just now" : `${span(ms)} ago`;
  }

  const absolute = (t) => (t === null ? "" : fullFormat.format(new Date(t)));
  const dayName = (t) => dayFormat.format(new Date(t));

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setTime(node, t, text, title) {
    setText(node, text);
    if (t === null) {
      node.removeAttribute("datetime");
      node.removeAttribute("title");
    } else {
      node.setAttribute("datetime", new Date(t).toISOString());
      node.setAttribute("title", title);
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
  }

  // ---------------------------------------------------------------- rows

  function buildRow(c) {
    const node = ui.rowTemplate.cloneNode(true);
    const q = (selector) => node.querySelector(selector);
    const row = {
      node,
      use: q(".pill use"),
      pill: q(".pill"),
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
  function fillLive(row, c) {
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

  function fillTimes(row, c) {
    setTime(row.since, c.since, c.since === null ? "" : `for ${span(now() - c.since)}`, `${LABELS[c.status]} since ${absolute(c.since)}`);
    setTime(row.checked, c.checkedAt, c.checkedAt === null ? "" : `checked ${ago(c.checkedAt)}`, `Last checked ${absolute(c.checkedAt)}`);
  }

  // What only a refetch changes.
  function fillHistory(row, c) {
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

  function layoutOf(connectors) {
    return JSON.stringify([state.groupBy, state.history, connectors.map((c) => [c.id, c.name, groupKeys(c)])]);
  }

  function render() {
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

  function fillGroup(group) {
    let failing = 0;
    let worst = "healthy";
    for (const c of group.members) {
      if (!c.enabled) continue;
      if (FAILING.has(c.status)) failing += 1;
      if (SEVERITY[c.status] > SEVERITY[worst]) worst = c.status;
    }
    const n = group.members.length;
    const parts = [`${n} connector${n === 1 ? "" : "s"}`];
    parts.push(failing > 0 ? `${failing} failing` : worst === "healthy" ? "all healthy" : worst === "degraded" ? "some degraded" : "not all checked");
    setText(group.count, parts.join(" · "));
    group.count.dataset.status = failing > 0 ? "unhealthy" : worst;
  }

  // ---------------------------------------------------------------- summary

  function fillSummary() {
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

  function fillUpdated() {
    const t = state.generatedAt;
    setTime(ui.updated, t, t === null ? "" : `Updated ${ago(t)}`, absolute(t));
  }

  // ---------------------------------------------------------------- incidents

  function renderIncidents() {
    const fragment = document.createDocumentFragment();
    for (const incident of state.incidents) {
      const item = document.createElement("li");
      item.className = "incident";
      item.dataset.status = incident.status;
      const when = document.createElement("time");
      when.className = "when";
      setTime(when, incident.at, incident.at === null ? "" : ago(incident.at), absolute(incident.at));
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

  function setIncidents(list) {
    state.incidents = list
      .map(normalizeIncident)
      .sort((a, b) => (b.at ?? 0) - (a.at ?? 0))
      .slice(0, MAX_INCIDENTS);
    renderIncidents();
  }

  // ---------------------------------------------------------------- loading

  function showNotice(text) {
    ui.notice.hidden = text === "";
    setText(ui.notice, text);
  }

  function apply(body) {
    const data = body !== null && typeof body === "object" ? body : {};
    const generatedAt = timeOf(data.generated_at);
    state.generatedAt = generatedAt ?? Date.now();
    state.skew = generatedAt === null ? 0 : generatedAt - Date.now();
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
    if (state.fetching) {
      state.fetchAgain = true;
      return;
    }
    state.fetching = true;
    try {
      const response = await fetch(STATUS_URL, {
        headers: { accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        showNotice(
          `This page needs a read token: the server answered ${response.status} to ${STATUS_URL}. ` +
            "Ask the operator of this Sandport server for read access to the status API.",
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
      state.fetching = false;
      if (state.fetchAgain) {
        state.fetchAgain = false;
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
      state.incidents.unshift({
        id: c.id,
        name: c.name,
        status: c.status,
        previous: "previous_status" in data ? statusOf(data.previous_status) : previous,
        message: c.message,
        at: c.checkedAt ?? now(),
      });
      state.incidents.length = Math.min(state.incidents.length, MAX_INCIDENTS);
      renderIncidents();
    }
  }

  function setLive(mode, text) {
    root.dataset.live = mode;
    setText(ui.liveText, text);
  }

  let retryMs = 1000;
  function follow() {
    const source = new EventSource(EVENTS_URL);
    let broken = false;
    source.addEventListener("open", () => {
      retryMs = 1000;
      setLive("open", "Live");
      // Events sent while we were away are lost: read the whole state.
      if (broken) load();
      broken = false;
    });
    source.addEventListener("health", onHealth);
    source.addEventListener("resync", () => load());
    source.addEventListener("error", () => {
      broken = true;
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

  // The one tooltip of every 90-day bar: which day is under the pointer.
  function onPointer(event) {
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
})();
