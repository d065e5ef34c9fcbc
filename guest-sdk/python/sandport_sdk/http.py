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


# A request the host would not keep parsed (see `Request._prepared_for`).
_REFUSED = object()


class Request:
    """A request being built; send it with :meth:`send` (as often as you like).

    The builder methods change the request and return it, so they chain.
    A request sent again unchanged is kept parsed by the host from its
    second send on, and a send then hands over nothing but a handle.
    """

    def __init__(self, method: str, url: str):
        self.method = method
        self.url = url
        self.headers = []
        self._body = None
        self._timeout_ms = None
        # What the last send sent, and the host's copy of that request once
        # it was sent twice in a row (`_REFUSED` if the host would not keep it).
        self._last = None
        self._prepared = None

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
        # The attributes are public: compare what is sent now with what the
        # host keeps, rather than trusting the builder methods alone.
        key = (self.method, self.url, tuple(self.headers), self._body, self._timeout_ms)
        try:
            prepared = self._prepared_for(key)
            if prepared is not None:
                status, held = prepared.send()
            else:
                status, held = _wit.send(self._wire())
        except Err as err:
            raise HttpError.from_wit(self.method, self.url, err.value) from None
        return Response(self.method, self.url, status, held)

    def __del__(self):
        # The host's copy, if any, counts against the memory limit.
        self._let_go()

    def _let_go(self):
        prepared = getattr(self, "_prepared", None)
        self._prepared = None
        if prepared is not None and prepared is not _REFUSED:
            prepared.__exit__(None, None, None)

    def _wire(self):
        return _wit.Request(
            method=self.method,
            url=self.url,
            headers=list(self.headers),
            body=self._body,
            timeout_ms=self._timeout_ms,
        )

    def _prepared_for(self, key):
        """The host's copy of the request `key` describes, made at its second
        send in a row; None to send it as it is."""
        if self._last != key:
            # A changed request, or one sent once (`http.get`): not worth
            # the extra call.
            self._let_go()
            self._last = key
            return None
        if self._prepared is None:
            try:
                self._prepared = _wit.prepare(self._wire())
            except Err:
                # Sent as it is from now on; the send says what is wrong.
                self._prepared = _REFUSED
        return None if self._prepared is _REFUSED else self._prepared

    def __repr__(self):
        return f"Request({self.method!r}, {self.url!r})"


class Response:
    """A response. Its headers and body stay in the host until first read
    (most checks read only the status); they count against the connector's
    memory limit until the response is let go."""

    __slots__ = ("method", "url", "status", "_held", "_headers", "_body")

    def __init__(self, method, url, status, held):
        self.method = method
        self.url = url
        #: The status code.
        self.status = status
        self._held = held
        self._headers = None
        self._body = None

    def __del__(self):
        # Let the host's copy go now rather than whenever the handle is
        # collected: a check that keeps nothing holds nothing.
        held = getattr(self, "_held", None)
        self._held = None
        if held is not None:
            held.__exit__(None, None, None)

    @property
    def headers(self):
        """The headers as ``(name, value)`` pairs, in the order received,
        names in lower case (fetched from the host at the first read)."""
        if self._headers is None:
            self._headers = list(self._held.headers())
        return self._headers

    @property
    def body(self) -> bytes:
        """The body, as ``bytes`` (capped by the host; fetched from the host
        at the first read)."""
        if self._body is None:
            self._body = bytes(self._held.body())
        return self._body

    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str, default=None):
        """The first header with this name (case-insensitive)."""
        if self._headers is None:
            value = self._held.header(name)
            return default if value is None else value
        name = name.lower()
        for k, v in self._headers:
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
