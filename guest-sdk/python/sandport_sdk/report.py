"""What a health check found."""

from ._wit import HealthStatus, WitHealthReport


class HealthReport:
    """A status, one line a human can act on, and extra details.

    Build one with :meth:`healthy`, :meth:`degraded` or :meth:`unhealthy`
    and chain :meth:`detail`::

        HealthReport.healthy("GET http://... returned 200").detail("version", "2.1")
    """

    __slots__ = ("status", "message", "details")

    def __init__(self, status: HealthStatus, message: str = "", details=None):
        self.status = status
        self.message = message
        self.details = list(details or [])

    @classmethod
    def healthy(cls, message: str = ""):
        """The target meets its success condition."""
        return cls(HealthStatus.HEALTHY, message)

    @classmethod
    def degraded(cls, message: str):
        """The target answers but reports a problem."""
        return cls(HealthStatus.DEGRADED, message)

    @classmethod
    def unhealthy(cls, message: str):
        """The target does not meet its success condition; say why."""
        return cls(HealthStatus.UNHEALTHY, message)

    @classmethod
    def from_response(cls, response):
        """A healthy report saying what answered ("GET URL returned 200")."""
        return cls.healthy(response.describe_status())

    def with_message(self, message: str):
        """Replaces the message; returns the report."""
        self.message = message
        return self

    def detail(self, key, value):
        """Adds a detail shown to operators; returns the report."""
        self.details.append((str(key), str(value)))
        return self

    def to_wit(self) -> WitHealthReport:
        return WitHealthReport(
            status=self.status,
            message=str(self.message),
            details=[(str(k), str(v)) for k, v in self.details],
        )

    def __repr__(self):
        return f"HealthReport({self.status.name.lower()}, {self.message!r}, {self.details!r})"
