"""Logging into the host's log, tagged with the connector's id.

::

    from sandport_sdk import log
    log.info("checking %s", url)

With arguments, the message is formatted with ``%`` like the ``logging``
module does. The host replaces line breaks with spaces and rate-limits all
of a guest's output.
"""

from wit_world.imports import logging as _wit
from wit_world.imports.logging import Level

__all__ = ["Level", "log", "trace", "debug", "info", "warn", "warning", "error"]


def log(level: Level, message, *args):
    """Sends one message to the host's log."""
    text = str(message)
    if args:
        try:
            text = text % args
        except (TypeError, ValueError):
            text = " ".join([text, *map(str, args)])
    _wit.log(level, text)


def trace(message, *args):
    """Logs at trace level."""
    log(Level.TRACE, message, *args)


def debug(message, *args):
    """Logs at debug level."""
    log(Level.DEBUG, message, *args)


def info(message, *args):
    """Logs at info level."""
    log(Level.INFO, message, *args)


def warn(message, *args):
    """Logs at warn level."""
    log(Level.WARN, message, *args)


warning = warn


def error(message, *args):
    """Logs at error level."""
    log(Level.ERROR, message, *args)
