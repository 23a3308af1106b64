"""The exceptions of the arbiter client and worker.

Every exception the package raises on purpose is an ``ArbiterError``:

- ``BrokerError`` and its subclasses, one per code of the wire protocol,
  when the broker refused a request (``ERROR {code, reason}``), or when the
  client refused it before sending for the reason the broker would give
  (a name over 200 bytes, a payload over the limit, a bad option value):
  then ``local`` is true. The reason names the field, as the broker does:
  ``tasks[0].queue: control character 0x0a at byte 4 (names are printable
  UTF-8)``.
- ``Unreachable``: the broker did not answer in time. Nothing the caller
  asked may have happened, or it may have: for a request that changes
  something the subclass ``Timeout`` says so. The subclass ``Refused``:
  the broker refused this peer's handshake (no certificate where it wants
  one, one it does not allow, a wrong broker key, a certificate where it
  runs without --curve), said at once, not at the timeout; nothing
  reached it. When no connection was ever made (``cannot reach the broker
  at E``), nothing reached a broker either, and what was asked is dropped:
  a broker started there later gets none of it.
- ``Timeout``: a request that changes something (a submit, a cancel, ...)
  was not acknowledged in time; its outcome is unknown. A submit is safe to
  send again with the same client keys: a known key returns the first task.
- ``WaitTimeout``: ``Client.wait`` and friends gave up at the caller's own
  deadline; the tasks go on.
- ``TaskFailed``: ``Done.check()`` of a task that did not succeed.
- ``ProtocolError``: a message from the broker that breaks the wire format.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class ArbiterError(Exception):
    """The base of every arbiter exception.

    ``code`` is the broker's error code (400, 404, ...) or 0 for a failure
    of the client's own (unreachable broker, timeout); ``reason`` the
    sentence that says why.
    """

    code: int = 0

    def __init__(self, reason: str, code: Optional[int] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.reason


class BrokerError(ArbiterError):
    """The broker refused a request, and changed nothing.

    ``local`` is true when the client refused it before sending, for the
    reason the broker would have given.
    """

    def __init__(self, reason: str, code: Optional[int] = None, local: bool = False) -> None:
        super().__init__(reason, code)
        self.local = local


class BadRequest(BrokerError):
    """400: malformed: a wrong type, a missing or unknown key, a name that
    is not printable UTF-8."""

    code = 400


class Forbidden(BrokerError):
    """403: the certificate this peer connected with (a broker that runs
    with --curve) has no role that may do this: a client's cannot purge,
    a worker's cannot submit."""

    code = 403


class NotFound(BrokerError):
    """404: an unknown task, queue, flow, group, schedule or key."""

    code = 404


class Conflict(BrokerError):
    """409: the task's (or schedule's) state does not allow the operation."""

    code = 409


class UnknownWorker(BrokerError):
    """410: a worker verb from a session the broker does not know (the
    worker registers again by itself)."""

    code = 410


class TooLarge(BrokerError):
    """413: over a limit (a payload, a name, a list)."""

    code = 413


class Invalid(BrokerError):
    """422: well-formed but refused: a bad option value, a dependency
    cycle, a dependency on nothing, an endpoint that is not connected."""

    code = 422


class JournalFailed(BrokerError):
    """500: the broker's journal failed; nothing was changed."""

    code = 500


class Unavailable(BrokerError):
    """503: the broker is shutting down."""

    code = 503


class VersionNotSpoken(BrokerError):
    """505: the broker does not speak this protocol version."""

    code = 505


class JournalFull(BrokerError):
    """507: the broker's journal cannot be written (its disk is full, or
    fails writes): it changed nothing, takes no request that writes (a
    submit, a cancel, a retry, ...) and serves reads until space returns,
    which it finds by itself. Send the request again later; a submit with
    the same client keys is safe to repeat."""

    code = 507


_BY_CODE: Dict[int, Type[BrokerError]] = {
    cls.code: cls
    for cls in (BadRequest, Forbidden, NotFound, Conflict, UnknownWorker, TooLarge, Invalid,
                JournalFailed, Unavailable, VersionNotSpoken, JournalFull)
}


def broker_error(code: int, reason: str, local: bool = False) -> BrokerError:
    """The exception for a broker's error code (``BrokerError`` itself for
    a code this client does not know)."""
    return _BY_CODE.get(code, BrokerError)(reason, code, local)


class Unreachable(ArbiterError):
    """The broker did not answer within the client's timeout."""


class Refused(Unreachable):
    """The broker refused this peer's handshake: nothing reached it. The
    reason says why (``broker E refused the connection: ...``)."""


class Timeout(Unreachable):
    """A request that changes something was not acknowledged in time: its
    outcome is unknown. Submit again with the same client keys to be safe
    (a known key returns the first task and submits nothing)."""


class WaitTimeout(ArbiterError):
    """The caller's deadline passed before the tasks finished; they go on,
    and stay watched: a later wait picks up their reports."""


class ProtocolError(ArbiterError):
    """A message that breaks the wire format (``code``: what the broker
    would answer such a message with: 400, 413 or 505)."""


class TaskFailed(ArbiterError):
    """A task ended without success (dead, cancelled, or unknown to the
    broker); ``done`` is its report."""

    def __init__(self, reason: str, done: object) -> None:
        super().__init__(reason)
        self.done = done
