"""Outbound HTTP through the host.

The host decides what is allowed: a URL outside the connector's allowlist
fails with :attr:`ErrorKind.DENIED`. Credentials from the config are attached
by the host to requests bound for the connector's own endpoint.

::

    from sandport_sdk import http

    response = http.get(url)                      # raises HttpError
    response = (http.Request("POST", url)
                .header("Content-Type", "application/json")
                .body('{"ping": 1}')
                .timeout(2.0)
                .send())
"""

from enum import Enum

from componentize_py_types import Err
from wit_world.imports import http_client as _wit

from .error import Error

__all__ = ["ErrorKind", "HttpError", "Request", "Response", "get", "post"]


def get(url: str, headers=None, timeout=None):
    """Sends a ``GET`` to ``url``; returns a :class:`Response` or raises
    :class:`HttpError`. ``headers`` is a dict or a list of pairs, ``timeout``
    in seconds."""
    request = Request("GET", url)
    for name, value in _pairs(headers):
        request.header(name, value)
    if timeout is not None:
        request.timeout(timeout)
    return request.send()


def post(url: str, body, headers=None, timeout=None):
    """Sends a ``POST`` with ``body`` (``bytes`` or ``str``) to ``url``."""
    request = Request.post(url, body)
    for name, value in _pairs(headers):
        request.header(name, value)
    if timeout is not None:
        request.timeout(timeout)
    return request.send()


def _pairs(headers):
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


class Request:
    """A request being built; send it with :meth:`send` (as often as you like).

    The builder methods change the request and return it, so they chain.
    """

    def __init__(self, method: str, url: str):
        self.method = method
        self.url = url
        self.headers = []
        self._body = None
        self._timeout_ms = None

    @classmethod
    def get(cls, url: str):
        """A ``GET`` request."""
        return cls("GET", url)

    @classmethod
    def post(cls, url: str, body):
        """A ``POST`` request with a body."""
        return cls("POST", url).body(body)

    def header(self, name: str, value: str):
        """Adds a header (a name may repeat)."""
        self.headers.append((str(name), str(value)))
        return self

    def body(self, body):
        """Sets the body: ``bytes`` as they are, ``str`` as UTF-8, ``None`` for none."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        self._body = None if body is None else bytes(body)
        return self

    def timeout(self, seconds: float):
        """Sets a timeout in seconds; the host caps it at what is left of the
        check's deadline."""
        self._timeout_ms = max(0, min(int(seconds * 1000), 0xFFFFFFFF))
        return self

    def send(self):
        """Sends the request through the host; returns a :class:`Response`
        (any status, 4xx and 5xx included) or raises :class:`HttpError`."""
        request = _wit.Request(
            method=self.method,
            url=self.url,
            headers=list(self.headers),
            body=self._body,
            timeout_ms=self._timeout_ms,
        )
        try:
            response = _wit.send(request)
        except Err as err:
            raise HttpError.from_wit(self.method, self.url, err.value) from None
        return Response(self.method, self.url, response.status, response.headers, response.body)

    def __repr__(self):
        return f"Request({self.method!r}, {self.url!r})"


class Response:
    """A response, body included (capped by the host)."""

    __slots__ = ("method", "url", "status", "headers", "body")

    def __init__(self, method, url, status, headers, body):
        self.method = method
        self.url = url
        #: The status code.
        self.status = status
        #: The headers as ``(name, value)`` pairs, in the order received,
        #: names in lower case.
        self.headers = list(headers)
        #: The body, as ``bytes``.
        self.body = bytes(body)

    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str, default=None):
        """The first header with this name (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; raises :class:`Error` when it is not."""
        import json

        try:
            return json.loads(self.body)
        except ValueError as e:
            raise Error(f"{self.describe_status()} with a body that is not JSON: {e}") from None

    def describe_status(self) -> str:
        """``"GET http://host/path returned 503"``: the usual failure message."""
        return f"{self.method} {self.url} returned {self.status}"

    def expect_success(self):
        """The response if its status is 2xx, else raises :class:`Error`
        saying what came back."""
        if not self.is_success():
            raise Error(self.describe_status())
        return self

    def __repr__(self):
        return f"Response({self.describe_status()!r})"


class ErrorKind(Enum):
    """What went wrong with a request (the case of the WIT ``http-error``)."""

    DENIED = "denied"
    INVALID_URL = "invalid-url"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    TLS = "tls"
    TOO_LARGE = "too-large"
    OTHER = "other"


_KINDS = {
    _wit.HttpError_Denied: ErrorKind.DENIED,
    _wit.HttpError_InvalidUrl: ErrorKind.INVALID_URL,
    _wit.HttpError_Timeout: ErrorKind.TIMEOUT,
    _wit.HttpError_Connect: ErrorKind.CONNECT,
    _wit.HttpError_Tls: ErrorKind.TLS,
    _wit.HttpError_TooLarge: ErrorKind.TOO_LARGE,
    _wit.HttpError_Other: ErrorKind.OTHER,
}


class HttpError(Error):
    """A failed request: ``"GET http://127.0.0.1:9090/-/healthy: connection refused"``.

    ``kind`` says what went wrong, ``message`` is the host's message alone
    (``"connection refused"``); ``method`` and ``url`` are the request's.
    """

    def __init__(self, kind: ErrorKind, method: str, url: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.method = method
        self.url = url

    @classmethod
    def from_wit(cls, method, url, error):
        kind = _KINDS.get(type(error), ErrorKind.OTHER)
        message = getattr(error, "value", None)
        return cls(kind, method, url, str(error) if message is None else message)

    def __str__(self):
        return f"{self.method} {self.url}: {self.message}"

    def __repr__(self):
        return f"HttpError({self.kind.name}, {str(self)!r})"
