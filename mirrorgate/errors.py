"""Every exception mirrorgate raises on purpose, in one tree.

    MirrorgateError
     +-- ConfigError            a problem in user input (YAML, schema, admission); carries where
     +-- ProtocolError          malformed HTTP from a client (carries the status to reply with)
     +-- UpstreamError          a backend failed us (carries the status to reply with)

Configuration problems never cross the ``translate()`` boundary as exceptions: the loader
collects ``ConfigError`` values and the translator reports ``StatusError`` conditions.
"""

import msgspec


class MirrorgateError(Exception):
    """Base of every deliberate mirrorgate exception."""


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One apiserver-style field error: ``FIELD.PATH: MESSAGE``.

    ``message`` is the apiserver's rendering after the path, e.g.
    ``Invalid value: "object": Only one of percent or fraction may be specified in
    HTTPRequestMirrorFilter`` or ``Required value``.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(MirrorgateError):
    """A problem in a configuration file, rendered ``FILE: KIND NAMESPACE/NAME: FIELD.PATH: MESSAGE``."""

    def __init__(self, file: str, obj: str, error: FieldError) -> None:
        super().__init__(file, obj, error)
        self.file = file
        self.obj = obj
        self.error = error

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.obj, str(self.error)) if p]
        return ": ".join(parts)


class ProtocolError(MirrorgateError):
    """A client sent malformed HTTP; ``status`` is the reply (400, 413, 414, 431, ...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class UpstreamError(MirrorgateError):
    """An upstream exchange failed; ``status`` is the reply the client gets."""

    status = 502


class ConnectError(UpstreamError):
    status = 503


class ConnectTimeout(UpstreamError):
    status = 504


class PoolTimeout(UpstreamError):
    status = 503


class UpstreamProtocolError(UpstreamError):
    status = 502


class UpstreamClosed(UpstreamError):
    status = 502
