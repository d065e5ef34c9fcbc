"""A generic HTTP check in Python: the same check as the Rust `http`
connector (connectors/http/src/lib.rs), configured through `settings`:

| setting | default | meaning |
|---|---|---|
| `method` | `GET` | request method |
| `path` | health path, else `/` | path below the base path |
| `expected_status` | `200-299` | codes and ranges, e.g. `200-299,401` |
| `body_contains` / `body_not_contains` | | substring the body must / must not hold |
| `body_matches` / `body_not_matches` | | regex (Python `re`) the body must / must not match |
| `body` | | request body |
| `headers.NAME` | | request header (a `headers:` map in YAML) |
"""

import re
import unicodedata

from sandport_sdk import Connector, ConnectorType, Error, HealthReport, export, http

_CODE = re.compile(r"\+?[0-9]+")


def parse_status_ranges(spec):
    """`"200-299,401"` -> `[(200, 299), (401, 401)]`; ValueError naming the bad part."""
    ranges = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        if not sep:
            high = low
        low, high = low.strip(), high.strip()
        if not (_CODE.fullmatch(low) and _CODE.fullmatch(high)):
            raise ValueError(_bad_status(part))
        low, high = int(low), int(high)
        if not (100 <= low <= 599 and low <= high <= 599):
            raise ValueError(_bad_status(part))
        ranges.append((low, high))
    return ranges


def _bad_status(part):
    return f"settings.expected_status: `{part}` is not a status code or range like 200-299"


def expected_text(ranges):
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def regex_setting(config, key):
    pattern = config.setting(key)
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"settings.{key}: invalid regex: {e}") from None


def quoted(text):
    """`text` in double quotes, escaped the way Rust's `{:?}` does, so the
    messages read as the Rust connector's."""
    out = ['"']
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\0":
            out.append("\\0")
        elif c != " " and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs", "Mn", "Me"):
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


class HttpCheck(Connector):
    NAME = "HTTP"
    TYPE = ConnectorType.CUSTOM
    DESCRIPTION = "Generic HTTP endpoint check"

    def initialize(self, config):
        path = config.setting("path")
        if path is None:
            path = config.health_path_or("/")
        method = config.setting("method", "GET").upper()
        self.request = http.Request(method, config.url(path))
        for name, value in config.settings_under("headers"):
            self.request.header(name, value)
        body = config.setting("body")
        if body is not None:
            self.request.body(body)
        self.expected = parse_status_ranges(config.setting("expected_status", "200-299"))
        if not self.expected:
            raise ValueError("settings.expected_status: names no status code")
        self.contains = config.setting("body_contains")
        self.not_contains = config.setting("body_not_contains")
        self.matches = regex_setting(config, "body_matches")
        self.not_matches = regex_setting(config, "body_not_matches")

    def health_check(self):
        response = self.request.send()  # an HttpError becomes `unhealthy`
        what = response.describe_status()
        if not any(lo <= response.status <= hi for lo, hi in self.expected):
            raise Error(f"{what}, expected {expected_text(self.expected)}")
        body = response.text()

        def fail(why):
            return HealthReport.unhealthy(f"{what} but the body {why}")

        if self.contains is not None and self.contains not in body:
            return fail(f"does not contain {quoted(self.contains)}")
        if self.not_contains is not None and self.not_contains in body:
            return fail(f"contains {quoted(self.not_contains)}")
        if self.matches is not None and not self.matches.search(body):
            return fail(f"does not match /{self.matches.pattern}/")
        if self.not_matches is not None and self.not_matches.search(body):
            return fail(f"matches /{self.not_matches.pattern}/")
        return HealthReport.healthy(what).detail("status", response.status)


ConnectorApi = export(HttpCheck)
