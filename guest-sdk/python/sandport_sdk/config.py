"""Helpers on the config record the host passes to ``initialize``."""

from ._wit import ConnectorConfig


class Config:
    """One entry of the operator's config (secrets left out).

    Every field of the WIT record ``connector-config`` reads as an attribute
    (``config.id``, ``config.host``, ``config.port``, ``config.settings``,
    ``config.health_check.timeout_ms``, ...); the record itself is
    ``config.raw``.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: ConnectorConfig):
        self.raw = raw

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __repr__(self):
        return f"Config({self.raw!r})"

    def endpoint(self) -> str:
        """``scheme://host:port``, e.g. ``http://127.0.0.1:9090``."""
        host = self.raw.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.raw.scheme}://{host}:{self.raw.port}"

    def url(self, path: str = "") -> str:
        """The endpoint joined with the base path and ``path``."""
        base = self.raw.base_path.rstrip("/")
        if path and not path.startswith("/"):
            path = "/" + path
        return f"{self.endpoint()}{base}{path}"

    def health_path_or(self, default: str) -> str:
        """The configured health path, or ``default`` when none is configured."""
        return self.raw.health_check.path or default

    def timeout(self) -> float:
        """The deadline of one health check, in seconds."""
        return self.raw.health_check.timeout_ms / 1000.0

    def setting(self, key: str, default=None):
        """A connector-specific setting from the entry's ``settings`` map,
        or ``default`` when it is not set (an empty value is ``""``)."""
        for k, v in self.raw.settings:
            if k == key:
                return v
        return default

    def settings_under(self, prefix: str):
        """All settings whose key starts with ``prefix.``, with the prefix
        removed, as ``(key, value)`` pairs in order (a nested map in YAML
        arrives flattened, e.g. ``headers.Accept``)."""
        start = prefix + "."
        return [(k[len(start):], v) for k, v in self.raw.settings if k.startswith(start)]


def empty_config() -> ConnectorConfig:
    """The record ``get-config`` returns before ``initialize``."""
    from ._wit import AuthKind, ConnectionMode, ConnectorType, HealthCheckConfig

    return ConnectorConfig(
        id="",
        name="",
        connector_type=ConnectorType.CUSTOM,
        mode=ConnectionMode.REMOTE,
        enabled=False,
        description="",
        host="",
        port=0,
        scheme="",
        base_path="",
        health_check=HealthCheckConfig(enabled=False, interval_ms=0, timeout_ms=0, path=""),
        auth_kind=AuthKind.NONE,
        auth_headers=[],
        metadata=[],
        tags=[],
        settings=[],
    )
