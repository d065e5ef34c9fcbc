"""The base class of a connector, and the glue to the generated exports.

A component instance is single-threaded and the host calls it one export at
a time, so the state lives in module globals (componentize-py may create a
new instance of the export class for each call).
"""

import traceback

from componentize_py_types import Err
from wit_world import exports as _exports

from . import log
from ._wit import ConnectorType, WitHealthReport
from .config import Config, empty_config
from .error import Error, describe
from .report import HealthReport


class Connector:
    """Subclass this and export the subclass with :func:`export`.

    The host creates one instance per config entry: the SDK constructs the
    class without arguments, sets ``self.config`` (a :class:`Config`) and
    calls :meth:`initialize` once, then :meth:`health_check` on schedule and
    :meth:`close` before the instance is dropped.
    """

    #: Human-readable name used until the config names the connector.
    NAME = "Connector"
    #: The connector's type (a :class:`ConnectorType`, or its name, e.g. "database").
    TYPE = ConnectorType.CUSTOM
    #: One sentence about what the connector checks.
    DESCRIPTION = ""

    config: Config

    def initialize(self, config: Config) -> None:
        """Validates ``config`` and prepares the check. Raise an exception
        (e.g. ``ValueError("settings.x: ...")``) to refuse the config; its
        message is reported to the operator as it is, so say which setting
        is wrong and why."""

    def health_check(self) -> HealthReport:
        """Runs one check and returns a :class:`HealthReport`. An exception
        (for instance the :class:`HttpError` of a refused connection) is
        reported as ``unhealthy`` with its message."""
        raise NotImplementedError("health_check is not implemented")

    def endpoint(self) -> str:
        """The URL the connector talks to; by default the config's endpoint."""
        return self.config.endpoint()

    def close(self) -> None:
        """Releases whatever the connector holds; called once."""


def _kind(value):
    if isinstance(value, ConnectorType):
        return value
    return ConnectorType[str(value).strip().upper().replace("-", "_")]


def _to_wit_report(report):
    if isinstance(report, HealthReport):
        return report.to_wit()
    if isinstance(report, WitHealthReport):
        return report
    raise TypeError(f"health_check returned {type(report).__name__}, not a HealthReport")


class _State:
    connector = None
    config = None


def export(connector_class):
    """Returns the class componentize-py exports for ``connector-api``.

    Bind it to the name ``ConnectorApi`` in the app module::

        ConnectorApi = export(MyConnector)
    """
    if not (isinstance(connector_class, type) and issubclass(connector_class, Connector)):
        raise TypeError("export() takes a subclass of sandport_sdk.Connector")
    _kind(connector_class.TYPE)  # fail at build time on a bad TYPE
    state = _State()

    class ConnectorApi(_exports.ConnectorApi):
        def id(self) -> str:
            return state.config.id if state.config is not None else ""

        def name(self) -> str:
            if state.config is not None and state.config.name:
                return state.config.name
            return connector_class.NAME

        def connector_type(self):
            return _kind(connector_class.TYPE)

        def description(self) -> str:
            if state.config is not None and state.config.description:
                return state.config.description
            return connector_class.DESCRIPTION

        def initialize(self, config) -> None:
            wrapped = Config(config)
            try:
                connector = connector_class()
                connector.config = wrapped
                connector.initialize(wrapped)
            except Exception as exc:
                raise Err(describe(exc)) from None
            state.connector = connector
            state.config = config

        def health_check(self):
            connector = state.connector
            if connector is None:
                raise Err("health-check called before initialize")
            try:
                return _to_wit_report(connector.health_check())
            except Exception as exc:
                if not isinstance(exc, Error):
                    _log_traceback("health_check")
                return HealthReport.unhealthy(describe(exc)).to_wit()

        def get_endpoint(self) -> str:
            if state.connector is None:
                return ""
            try:
                return str(state.connector.endpoint())
            except Exception:
                _log_traceback("endpoint")
                return ""

        def get_config(self):
            return state.config if state.config is not None else empty_config()

        def close(self) -> None:
            connector = state.connector
            state.connector = None
            state.config = None
            if connector is not None:
                try:
                    connector.close()
                except Exception:
                    _log_traceback("close")

    ConnectorApi.__qualname__ = "ConnectorApi"
    ConnectorApi.connector_class = connector_class
    return ConnectorApi


def _log_traceback(where):
    try:
        log.debug("%s raised: %s", where, traceback.format_exc())
    except Exception:
        pass
