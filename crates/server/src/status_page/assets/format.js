// Values and words of the status page: the JSON of GET /api/v1/status made
// safe to use (every field checked for its type, unknown statuses read as
// "unknown"), and how numbers and times read.

export const DAYS = 90;
export const HOURS = 24;
export const DAY_MS = 86_400_000;

export const STATUSES = ["healthy", "degraded", "unhealthy", "unavailable", "unknown"];
export const LABELS = {
  healthy: "Healthy",
  degraded: "Degraded",
  unhealthy: "Unhealthy",
  unavailable: "Unavailable",
  unknown: "Unknown",
};
export const FAILING = new Set(["unhealthy", "unavailable"]);
// Worst first, for a group's summary.
export const SEVERITY = { unhealthy: 4, unavailable: 3, degraded: 2, unknown: 1, healthy: 0 };

// The server's clock minus ours, so "5 min ago" does not depend on this
// machine's clock being right.
export const clock = { skew: 0 };
export const now = () => Date.now() + clock.skew;

const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export const str = (v) => (typeof v === "string" ? v : typeof v === "number" && Number.isFinite(v) ? String(v) : "");
export const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
export const statusOf = (v) => (STATUSES.includes(v) ? v : "unknown");
export const timeOf = (v) => {
  const t = typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isFinite(t) ? t : null;
};
const series = (v, length) => {
  const values = Array.isArray(v) ? v.slice(-length).map(num) : [];
  // Right-aligned: the last value is always the current day or hour.
  return new Array(length - values.length).fill(null).concat(values);
};
export function normalize(raw, index) {
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

export function normalizeIncident(raw) {
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

export function percent(v) {
  if (v === null) return "—";
  // Rounded down, so 99.996 never reads 100%; the epsilon keeps 99.95
  // (9994.999… in binary) from reading 99.94.
  const hundredths = Math.floor(Math.min(Math.max(v, 0), 100) * 100 + 1e-6);
  return `${(hundredths / 100).toFixed(2).replace(/\.?0+$/, "")}%`;
}

export function millis(v) {
  if (v === null) return "";
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

export function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 6 && m % 60 !== 0) return `${h} h ${m % 60} min`;
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

export function ago(t) {
  if (t === null) return "";
  const ms = now() - t;
  return ms < 10_000 ? "just now" : `${span(ms)} ago`;
}

export const absolute = (t) => (t === null ? "" : fullFormat.format(new Date(t)));
// Every row names the same ninety days.
const dayNames = new Map();
export function dayName(t) {
  let name = dayNames.get(t);
  if (name === undefined) {
    name = dayFormat.format(new Date(t));
    if (dayNames.size > 1000) dayNames.clear();
    dayNames.set(t, name);
  }
  return name;
}
