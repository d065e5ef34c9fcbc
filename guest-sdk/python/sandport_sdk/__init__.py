"""Write Sandport connectors in Python.

A connector is a subclass of :class:`Connector`, exported once per app
module with :func:`export`; ``guest-sdk/python/build.sh`` turns the module
into a WebAssembly component with componentize-py::

    from sandport_sdk import Connector, ConnectorType, HealthReport, export, http

    class Ping(Connector):
        NAME = "Ping"
        TYPE = ConnectorType.CUSTOM

        def initialize(self, config):
            self.url = config.url(config.health_path_or("/"))

        def health_check(self):
            response = http.get(self.url).expect_success()
            return HealthReport.from_response(response)

    ConnectorApi = export(Ping)

Layout:

- :class:`Connector`: the base class an author subclasses.
- :mod:`sandport_sdk.http`: outbound HTTP through the host (the only way out
  of the sandbox).
- :mod:`sandport_sdk.log`: logging into the host's log.
- :mod:`sandport_sdk.net`: the host's vetted name resolution.
- :class:`Config`, :class:`HealthReport`: the records of the WIT contract,
  with helpers.
"""

from ._wit import AuthKind, ConnectionMode, ConnectorType, HealthStatus
from .error import Error
from .config import Config
from .report import HealthReport
from .http import HttpError
from . import http, log, net
from .connector import Connector, export

__all__ = [
    "AuthKind",
    "Config",
    "ConnectionMode",
    "Connector",
    "ConnectorType",
    "Error",
    "HealthReport",
    "HealthStatus",
    "HttpError",
    "export",
    "http",
    "log",
    "net",
]
