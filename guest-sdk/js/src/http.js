// Outbound HTTP through the host.
//
// The host decides what is allowed: a URL outside the connector's allowlist
// fails with `ErrorKind.DENIED`. Credentials from the config are attached by
// the host to requests bound for the connector's own endpoint.
//
//     import { http } from 'sandport-sdk';
//
//     const response = http.get(url);                 // throws HttpError
//     const other = new http.Request('POST', url)
//       .header('Content-Type', 'application/json')
//       .body('{"ping": 1}')
//       .timeout(2.0)                                 // seconds
//       .send();

import { send as witSend } from 'sandport:connector/http-client@0.2.1';
import { ConnectorError } from './error.js';
import { decode, encode } from './utf8.js';

/**
 * Sends a `GET` to `url`; returns a `Response` or throws `HttpError`.
 * `headers` is an object, a `Map` or a list of `[name, value]` pairs;
 * `timeout` is in seconds.
 */
export function get(url, { headers, timeout } = {}) {
  return withOptions(Request.get(url), headers, timeout).send();
}

/** Sends a `POST` with `body` (a string, sent as UTF-8, or bytes) to `url`. */
export function post(url, body, { headers, timeout } = {}) {
  return withOptions(Request.post(url, body), headers, timeout).send();
}

function withOptions(request, headers, timeout) {
  for (const [name, value] of pairs(headers)) request.header(name, value);
  if (timeout !== undefined && timeout !== null) request.timeout(timeout);
  return request;
}

function pairs(headers) {
  if (headers === undefined || headers === null) return [];
  if (Array.isArray(headers) || headers instanceof Map) return Array.from(headers);
  return Object.entries(headers);
}

function bytes(body) {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return encode(body);
  if (body instanceof Uint8Array) return new Uint8Array(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) {
    return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  }
  if (Array.isArray(body)) return Uint8Array.from(body);
  throw new TypeError(`a request body is a string or bytes, not ${typeof body}`);
}

/**
 * A request being built; send it with `send()` (as often as you like).
 * The builder methods change the request and return it, so they chain.
 */
export class Request {
  constructor(method, url) {
    this.method = String(method);
    this.url = String(url);
    this.headers = [];
    this._body = undefined;
    this._timeoutMs = undefined;
  }

  /** A `GET` request. */
  static get(url) {
    return new Request('GET', url);
  }

  /** A `POST` request with a body. */
  static post(url, body) {
    return new Request('POST', url).body(body);
  }

  /** Adds a header (a name may repeat). */
  header(name, value) {
    this.headers.push([String(name), String(value)]);
    return this;
  }

  /** Sets the body: a string as UTF-8, bytes as they are, `null` for none. */
  body(body) {
    this._body = bytes(body);
    return this;
  }

  /**
   * Sets a timeout in seconds; the host caps it at what is left of the
   * check's deadline.
   */
  timeout(seconds) {
    return this.timeoutMs(Number(seconds) * 1000);
  }

  /** Sets a timeout in milliseconds (see `timeout`). */
  timeoutMs(ms) {
    this._timeoutMs = Math.max(0, Math.min(Math.floor(Number(ms)) || 0, 0xffffffff));
    return this;
  }

  /**
   * Sends the request through the host; returns a `Response` (any status,
   * 4xx and 5xx included) or throws `HttpError`.
   */
  send() {
    let status;
    let held;
    try {
      [status, held] = witSend({
        method: this.method,
        url: this.url,
        headers: this.headers.map(([n, v]) => [n, v]),
        body: this._body,
        timeoutMs: this._timeoutMs,
      });
    } catch (e) {
      // The bindings throw a ComponentError whose `payload` is the WIT
      // http-error, `{ tag: 'connect', val: 'connection refused' }`.
      if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) {
        throw HttpError.fromWit(this.method, this.url, e.payload);
      }
      throw e;
    }
    // The host keeps the response (the WIT resource `response`), and what
    // it keeps counts against the connector's memory limit until the
    // handle is dropped. The engine would drop it only when it collects
    // the handle, so the headers and body are copied now and the handle
    // let go at once.
    try {
      return new Response(this.method, this.url, status, held.headers(), held.body());
    } finally {
      release(held);
    }
  }

  toString() {
    return `Request(${this.method} ${this.url})`;
  }
}

/** Drops a handle to something the host keeps for the connector. */
const dispose = Symbol.dispose ?? Symbol.for('dispose');
function release(handle) {
  if (typeof handle?.[dispose] === 'function') handle[dispose]();
}

/** A response, body included (capped by the host). */
export class Response {
  constructor(method, url, status, headers, body) {
    this.method = method;
    this.url = url;
    /** The status code. */
    this.status = status;
    /** The headers as `[name, value]` pairs, in the order received, names in lower case. */
    this.headers = Array.from(headers, ([n, v]) => [n, v]);
    /** The body, as a `Uint8Array`. */
    this.body = body instanceof Uint8Array ? body : Uint8Array.from(body);
  }

  /** Whether the status is 2xx. */
  isSuccess() {
    return this.status >= 200 && this.status < 300;
  }

  /** The first header with this name (case-insensitive), else `fallback`. */
  header(name, fallback = undefined) {
    const wanted = String(name).toLowerCase();
    for (const [k, v] of this.headers) {
      if (k.toLowerCase() === wanted) return v;
    }
    return fallback;
  }

  /** The body as text (invalid UTF-8 replaced). */
  text() {
    return decode(this.body);
  }

  /** The body parsed as JSON; throws `ConnectorError` when it is not. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw new ConnectorError(`${this.describeStatus()} with a body that is not JSON: ${e.message}`);
    }
  }

  /** `"GET http://host/path returned 503"`: the usual failure message. */
  describeStatus() {
    return `${this.method} ${this.url} returned ${this.status}`;
  }

  /** The response if its status is 2xx, else throws `ConnectorError` saying what came back. */
  expectSuccess() {
    if (!this.isSuccess()) throw new ConnectorError(this.describeStatus());
    return this;
  }

  toString() {
    return `Response(${this.describeStatus()})`;
  }
}

/** What went wrong with a request (the case of the WIT `http-error`). */
export const ErrorKind = Object.freeze({
  DENIED: 'denied',
  INVALID_URL: 'invalid-url',
  TIMEOUT: 'timeout',
  CONNECT: 'connect',
  TLS: 'tls',
  TOO_LARGE: 'too-large',
  OTHER: 'other',
});

/**
 * A failed request: `"GET http://127.0.0.1:9090/-/healthy: connection refused"`.
 *
 * `kind` says what went wrong (an `ErrorKind`), `reason` is the host's
 * message alone (`"connection refused"`); `method` and `url` are the
 * request's; `message` is all of it.
 */
export class HttpError extends ConnectorError {
  constructor(kind, method, url, reason) {
    super(`${method} ${url}: ${reason}`);
    this.name = 'HttpError';
    this.kind = kind;
    this.method = method;
    this.url = url;
    this.reason = reason;
  }

  static fromWit(method, url, error) {
    const known = Object.values(ErrorKind).includes(error?.tag);
    const kind = known ? error.tag : ErrorKind.OTHER;
    const reason = error?.val !== undefined ? String(error.val) : String(error);
    return new HttpError(kind, method, url, reason);
  }
}
