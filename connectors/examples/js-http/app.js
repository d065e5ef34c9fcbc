// A generic HTTP check in JavaScript: the same check as the Rust `http`
// connector (connectors/http/src/lib.rs) and the Python example
// (connectors/examples/python-http/app.py), configured through `settings`:
//
// | setting | default | meaning |
// |---|---|---|
// | `method` | `GET` | request method |
// | `path` | health path, else `/` | path below the base path |
// | `expected_status` | `200-299` | codes and ranges, e.g. `200-299,401` |
// | `body_contains` / `body_not_contains` | | substring the body must / must not hold |
// | `body_matches` / `body_not_matches` | | regex (JavaScript `RegExp`, `u` flag) the body must / must not match |
// | `body` | | request body |
// | `headers.NAME` | | request header (a `headers:` map in YAML) |

import { Connector, ConnectorError, ConnectorType, HealthReport, exportConnector, http } from 'sandport-sdk';

const CODE = /^\+?[0-9]+$/;

/** `"200-299,401"` -> `[[200, 299], [401, 401]]`; throws naming the bad part. */
export function parseStatusRanges(spec) {
  const ranges = [];
  for (let part of spec.split(',')) {
    part = part.trim();
    if (!part) continue;
    const dash = part.indexOf('-');
    let low = dash < 0 ? part : part.slice(0, dash);
    let high = dash < 0 ? part : part.slice(dash + 1);
    low = low.trim();
    high = high.trim();
    if (!(CODE.test(low) && CODE.test(high))) throw new Error(badStatus(part));
    const lo = Number(low);
    const hi = Number(high);
    if (!(lo >= 100 && lo <= 599 && hi >= lo && hi <= 599)) throw new Error(badStatus(part));
    ranges.push([lo, hi]);
  }
  return ranges;
}

function badStatus(part) {
  return `settings.expected_status: \`${part}\` is not a status code or range like 200-299`;
}

export function expectedText(ranges) {
  return ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
}

function regexSetting(config, key) {
  const pattern = config.setting(key);
  if (pattern === undefined) return undefined;
  try {
    return { pattern, re: new RegExp(pattern, 'u') };
  } catch (e) {
    throw new Error(`settings.${key}: invalid regex: ${e.message}`);
  }
}

// Characters Rust's `{:?}` shows escaped, as `\u{...}`: control and format
// characters, surrogates, private use, and separators other than the space
// (Unicode categories Cc, Cf, Cs, Co, Zl, Zp, Zs). The engine has no Unicode
// property tables (`\p{...}` is a syntax error in it), hence the ranges;
// unlike Rust and the Python example, combining marks and unassigned code
// points are shown as they are.
const ESCAPED = new RegExp(
  '^[\\u{0}-\\u{1f}\\u{7f}-\\u{a0}\\u{ad}\\u{600}-\\u{605}\\u{61c}\\u{6dd}\\u{70f}\\u{890}-\\u{891}' +
    '\\u{8e2}\\u{1680}\\u{180e}\\u{2000}-\\u{200f}\\u{2028}-\\u{202f}\\u{205f}-\\u{2064}' +
    '\\u{2066}-\\u{206f}\\u{3000}\\u{d800}-\\u{f8ff}\\u{feff}\\u{fff9}-\\u{fffb}\\u{110bd}\\u{110cd}' +
    '\\u{13430}-\\u{13438}\\u{1bca0}-\\u{1bca3}\\u{1d173}-\\u{1d17a}\\u{e0001}\\u{e0020}-\\u{e007f}' +
    '\\u{f0000}-\\u{ffffd}\\u{100000}-\\u{10fffd}]$',
  'u',
);

/**
 * `text` in double quotes, escaped the way Rust's `{:?}` does, so the
 * messages read as the Rust connector's.
 */
export function quoted(text) {
  let out = '"';
  for (const c of text) {
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '\0') out += '\\0';
    else if (c !== ' ' && ESCAPED.test(c)) out += `\\u{${c.codePointAt(0).toString(16)}}`;
    else out += c;
  }
  return `${out}"`;
}

class HttpCheck extends Connector {
  static NAME = 'HTTP';
  static TYPE = ConnectorType.CUSTOM;
  static DESCRIPTION = 'Generic HTTP endpoint check';

  initialize(config) {
    const path = config.setting('path') ?? config.healthPathOr('/');
    const method = config.setting('method', 'GET').toUpperCase();
    this.request = new http.Request(method, config.url(path));
    for (const [name, value] of config.settingsUnder('headers')) {
      this.request.header(name, value);
    }
    const body = config.setting('body');
    if (body !== undefined) this.request.body(body);
    this.expected = parseStatusRanges(config.setting('expected_status', '200-299'));
    if (this.expected.length === 0) {
      throw new Error('settings.expected_status: names no status code');
    }
    this.contains = config.setting('body_contains');
    this.notContains = config.setting('body_not_contains');
    this.matches = regexSetting(config, 'body_matches');
    this.notMatches = regexSetting(config, 'body_not_matches');
  }

  healthCheck() {
    const response = this.request.send(); // an HttpError becomes `unhealthy`
    const what = response.describeStatus();
    if (!this.expected.some(([lo, hi]) => lo <= response.status && response.status <= hi)) {
      throw new ConnectorError(`${what}, expected ${expectedText(this.expected)}`);
    }
    const body = response.text();
    const fail = (why) => HealthReport.unhealthy(`${what} but the body ${why}`);

    if (this.contains !== undefined && !body.includes(this.contains)) {
      return fail(`does not contain ${quoted(this.contains)}`);
    }
    if (this.notContains !== undefined && body.includes(this.notContains)) {
      return fail(`contains ${quoted(this.notContains)}`);
    }
    if (this.matches !== undefined && !this.matches.re.test(body)) {
      return fail(`does not match /${this.matches.pattern}/`);
    }
    if (this.notMatches !== undefined && this.notMatches.re.test(body)) {
      return fail(`matches /${this.notMatches.pattern}/`);
    }
    return HealthReport.healthy(what).detail('status', response.status);
  }
}

export const connectorApi = exportConnector(HttpCheck);
