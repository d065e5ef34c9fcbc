"""The error a health check may raise."""


class Error(Exception):
    """Why a health check failed; reported as ``unhealthy`` with this message.

    Raised from ``initialize``, it refuses the config with this message.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)

    def __str__(self):
        return self.message


def describe(exc):
    """The message to report for an exception that reached the SDK.

    The SDK's own errors and ``ValueError`` carry a message meant for the
    operator and are reported as they are; anything else is prefixed with
    its type, so that e.g. a ``KeyError`` does not read as a bare ``'x'``.
    """
    text = str(exc)
    if isinstance(exc, (Error, ValueError)) and text:
        return text
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
