// Helpers on the config record the host passes to `initialize`.

import { AuthKind, ConnectionMode, ConnectorType } from './wit.js';

/**
 * One entry of the operator's config (secrets left out).
 *
 * Every field of the WIT record `connector-config` reads as a property, in
 * camelCase (`config.id`, `config.host`, `config.port`, `config.basePath`,
 * `config.settings`, `config.healthCheck.timeoutMs`, ...); the record itself
 * is `config.raw`.
 */
export class Config {
  constructor(raw) {
    Object.assign(this, raw);
    Object.defineProperty(this, 'raw', { value: raw, enumerable: false });
  }

  /** `scheme://host:port`, e.g. `http://127.0.0.1:9090`. */
  endpoint() {
    let host = this.raw.host;
    if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
    return `${this.raw.scheme}://${host}:${this.raw.port}`;
  }

  /** The endpoint joined with the base path and `path`. */
  url(path = '') {
    const base = this.raw.basePath.replace(/\/+$/, '');
    path = String(path);
    if (path && !path.startsWith('/')) path = `/${path}`;
    return `${this.endpoint()}${base}${path}`;
  }

  /** The configured health path, or `fallback` when none is configured. */
  healthPathOr(fallback) {
    return this.raw.healthCheck.path || fallback;
  }

  /** The deadline of one health check, in seconds. */
  timeout() {
    return this.raw.healthCheck.timeoutMs / 1000;
  }

  /**
   * A connector-specific setting from the entry's `settings` map, or
   * `fallback` (default `undefined`) when it is not set (an empty value is
   * `""`).
   */
  setting(key, fallback = undefined) {
    for (const [k, v] of this.raw.settings) {
      if (k === key) return v;
    }
    return fallback;
  }

  /**
   * All settings whose key starts with `prefix.`, with the prefix removed,
   * as `[key, value]` pairs in order (a nested map in YAML arrives
   * flattened, e.g. `headers.Accept`).
   */
  settingsUnder(prefix) {
    const start = `${prefix}.`;
    return this.raw.settings
      .filter(([k]) => k.startsWith(start))
      .map(([k, v]) => [k.slice(start.length), v]);
  }
}

/** The record `get-config` returns before `initialize`. */
export function emptyConfig() {
  return {
    id: '',
    name: '',
    connectorType: ConnectorType.CUSTOM,
    mode: ConnectionMode.REMOTE,
    enabled: false,
    description: '',
    host: '',
    port: 0,
    scheme: '',
    basePath: '',
    healthCheck: { enabled: false, intervalMs: 0, timeoutMs: 0, path: '' },
    authKind: AuthKind.NONE,
    authHeaders: [],
    metadata: [],
    tags: [],
    settings: [],
  };
}
