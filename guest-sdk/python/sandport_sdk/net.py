"""The host's name resolution, for connectors that speak TCP themselves.

The host resolves names and vets every address; a TCP connection (through
``wasi:sockets``) succeeds only to an address :func:`resolve` returned or an
IP literal the allowlist names.
"""

from componentize_py_types import Err
from wit_world.imports import network as _wit

from .error import Error


def resolve(host: str, port: int):
    """The addresses (as text, e.g. ``10.0.0.5``, ``::1``) of ``host`` this
    connector may connect to on ``port``; raises :class:`Error` saying why
    not (``"db.local:5432: denied: ..."``)."""
    try:
        return list(_wit.resolve(host, port))
    except Err as err:
        raise Error(f"{host}:{port}: {err.value}") from None
