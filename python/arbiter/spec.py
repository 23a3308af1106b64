"""Task options into a SUBMIT's task_spec, checked as ``arbiter submit``
checks its options (client/arb_cli_submit.c, client/arb_cli_args.c): the
same bounds, the same rules between options, so that a mistake is refused
here, naming the option, before anything is sent (``Invalid``, local).

Values are Python's: durations in seconds (int or float, rounded to the
ms), times as ``datetime`` (aware, or naive meaning UTC), Unix seconds or
an RFC 3339 string, a backoff as the CLI writes it (``"fixed:5"``,
``"exp:1,60"``, ``"none"``), payloads and args as ``bytes`` or ``str``
(UTF-8), or any other JSON value (a dict, a list, a number...), which goes
as its compact JSON text, as a flow file's and the HTTP API's do.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import codec
from .errors import Invalid, TooLarge

Seconds = Union[int, float]
When = Union[_dt.datetime, int, float, str]
Data = Union[bytes, bytearray, memoryview, str, Dict[str, Any], List[Any], int, float, bool]

BACKOFF_NONE, BACKOFF_FIXED, BACKOFF_EXP = 0, 1, 2
INPUT_PAYLOAD, INPUT_PARENT = 0, 1
WHENS = ('on_success', 'on_failure', 'always')


def refuse(what: str, reason: str) -> Invalid:
    return Invalid('%s: %s' % (what, reason) if what else reason, local=True)


def _limit_text(ms: int) -> str:
    if ms >= codec.DAY_MS and ms % codec.DAY_MS == 0:
        return '%d days' % (ms // codec.DAY_MS)
    return '%.3g s' % (ms / 1000.0)


def seconds_ms(what: str, value: Seconds, max_ms: int, positive: bool = False) -> int:
    """Seconds (int or float) into ms, rounded, in [0, max_ms] (above 0
    with positive)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(what, 'expected seconds (a number), not %r' % (value,))
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse(what, 'expected seconds, not %r' % value)
    if value < 0:
        raise refuse(what, 'must be 0 or more seconds, not %r' % value)
    ms = int(value * 1000 + 0.5) if isinstance(value, float) else value * 1000
    if ms > max_ms:
        raise refuse(what, '%s s is over the limit of %s' % (value, _limit_text(max_ms)))
    if positive and ms == 0:
        raise refuse(what, 'must be more than 0 s')
    return ms


_SECONDS = re.compile(r'^[0-9]+(\.[0-9]+)?$|^\.[0-9]+$|^[0-9]+\.$')


def parse_seconds(what: str, text: str, max_ms: int) -> int:
    """Seconds written as the CLI takes them ("30", "0.25") into ms."""
    if not _SECONDS.match(text):
        raise refuse(what, 'expected seconds, like 30 or 0.25, not %r' % text)
    whole, _, frac = text.partition('.')
    ms = int(whole or '0') * 1000 + (int((frac + '0000')[:4]) + 5) // 10
    if ms > max_ms:
        raise refuse(what, '%s s is over the limit of %s' % (text, _limit_text(max_ms)))
    return ms


def parse_backoff(what: str, text: str) -> Tuple[int, int, int]:
    """A backoff as ``arbiter submit --backoff`` takes it: "none",
    "fixed:SECONDS" or "exp:BASE,CAP". Returns (kind, ms, cap_ms)."""
    if not isinstance(text, str):
        raise refuse(what, 'expected "none", "fixed:SECONDS" or "exp:BASE,CAP", not %r' % (text,))
    if text == 'none':
        return BACKOFF_NONE, 0, 0
    if text.startswith('fixed:'):
        return BACKOFF_FIXED, parse_seconds(what + ': fixed', text[6:], codec.BACKOFF_MAX_MS), 0
    if not text.startswith('exp:') or ',' not in text:
        raise refuse(what, 'expected fixed:SECONDS or exp:BASE,CAP (or none), not %r' % text)
    base_text, _, cap_text = text[4:].partition(',')
    base = parse_seconds(what + ': exp: BASE', base_text, codec.BACKOFF_MAX_MS)
    cap = parse_seconds(what + ': exp: CAP', cap_text, codec.BACKOFF_MAX_MS)
    if base == 0:
        raise refuse(what, 'exp: BASE must be more than 0 s')
    if cap < base:
        raise refuse(what, 'exp: CAP (%s s) is below BASE (%s s)' % (cap_text, base_text))
    return BACKOFF_EXP, base, cap


_RFC3339 = re.compile(r'^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?'
                      r'([Zz]|[+-]\d{2}:\d{2})$')


def time_ms(what: str, value: When, limit: bool = True) -> int:
    """An absolute time into Unix ms: a datetime (naive: UTC), Unix seconds
    (number, or digits in a string) or an RFC 3339 string. With limit, at
    most 366 days ahead (the broker's bound on a start time)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        ms = round(value.timestamp() * 1000)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise refuse(what, 'expected a time, not %r' % value)
        ms = round(value * 1000)
    elif isinstance(value, str):
        m = _RFC3339.match(value)
        if _SECONDS.match(value):
            ms = parse_seconds(what, value, codec.U64_MAX // 2)
        elif m:
            try:
                stamp = _dt.datetime.fromisoformat(value.replace('z', 'Z').replace('Z', '+00:00')
                                                   .replace('t', 'T'))
            except ValueError:
                raise refuse(what, 'not a valid RFC 3339 time: %r' % value) from None
            ms = round(stamp.timestamp() * 1000)
        else:
            raise refuse(what, 'expected an RFC 3339 time like 2026-11-23T10:00:00Z (or +01:00)'
                               ' or Unix seconds, not %r' % value)
    else:
        raise refuse(what, 'expected a datetime, Unix seconds or an RFC 3339 string, not %r'
                     % (value,))
    if ms < 0:
        raise refuse(what, '%r is before 1970' % (value,))
    if limit and ms > time.time() * 1000 + codec.DELAY_MAX_MS:
        raise refuse(what, '%r is more than %d days ahead' % (value, codec.DELAY_MAX_MS
                                                              // codec.DAY_MS))
    return ms


def data_bytes(what: str, value: Optional[Data], limit: int) -> bytes:
    """Bytes from bytes-like, str (UTF-8) or another JSON value (its
    compact JSON text), at most limit bytes."""
    if value is None:
        return b''
    if isinstance(value, str):
        data = value.encode('utf-8')
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        try:
            data = json.dumps(value, separators=(',', ':'), ensure_ascii=False,
                              allow_nan=False).encode('utf-8')
        except (TypeError, ValueError) as e:
            raise refuse(what, 'expected bytes, str or a JSON value, not %s (%s)'
                         % (type(value).__name__, e)) from None
    if len(data) > limit:
        raise TooLarge('%s: %d bytes, over the %d-byte limit' % (what, len(data), limit),
                       local=True)
    return data


def check_name(what: str, value: object) -> str:
    """A name: 1 to 200 bytes of printable UTF-8."""
    if not isinstance(value, str):
        raise refuse(what, 'expected a name (str), not %r' % (value,))
    if not value:
        raise refuse(what, 'must not be empty')
    size = len(value.encode('utf-8', 'surrogatepass'))
    if size > codec.NAME_MAX:
        raise TooLarge('%s: %d bytes, over the %d-byte limit' % (what, size, codec.NAME_MAX),
                       local=True)
    why = codec.check_name(value)
    if why:
        raise refuse(what, '%s (names are printable UTF-8)' % why)
    return value


def task_spec(name: str,
              payload: Optional[Data] = None,
              *,
              queue: Optional[str] = None,
              key: Optional[str] = None,
              priority: int = 0,
              retries: int = 0,
              backoff: Optional[str] = None,
              no_jitter: bool = False,
              delay: Optional[Seconds] = None,
              at: Optional[When] = None,
              timeout: Optional[Seconds] = None,
              soft_timeout: Optional[Seconds] = None,
              retention: Optional[Seconds] = None,
              expires: Optional[When] = None,
              headers: Optional[bytes] = None,
              endpoints: Optional[Sequence[str]] = None,
              broadcast: bool = False,
              allow_unknown_endpoints: bool = False,
              endpoint_timeout: Optional[Seconds] = None,
              args: Optional[Data] = None,
              ref: Optional[str] = None,
              after: Optional[Iterable[Dict[str, Any]]] = None,
              input: int = INPUT_PAYLOAD,
              max_payload: int = codec.PAYLOAD_DEFAULT_MAX,
              what: str = '') -> Dict[str, Any]:
    """One task_spec of a SUBMIT, from the options of ``arbiter submit``
    (see ``Client.submit``), checked as the CLI checks them. ``what``
    prefixes every reason ("tasks[3]")."""
    def w(option: str) -> str:
        return '%s.%s' % (what, option) if what else option

    spec: Dict[str, Any] = {'name': check_name(w('name'), name)}
    spec['payload'] = data_bytes(w('payload'), payload, max_payload)
    if queue is not None:
        spec['queue'] = check_name(w('queue'), queue)
        if '@' in queue:
            raise refuse(w('queue'), "'@' is reserved for endpoint queues")
    if key is not None:
        spec['key'] = check_name(w('key'), key)
    if isinstance(priority, bool) or not isinstance(priority, int) \
            or not codec.I32_MIN <= priority <= codec.I32_MAX:
        raise refuse(w('priority'), 'expected a whole number from %d to %d, not %r'
                     % (codec.I32_MIN, codec.I32_MAX, priority))
    spec['priority'] = priority
    if isinstance(retries, bool) or not isinstance(retries, int) \
            or not 0 <= retries <= codec.RETRIES_MAX:
        raise refuse(w('retries'), 'expected a whole number from 0 to %d, not %r'
                     % (codec.RETRIES_MAX, retries))
    spec['retries'] = retries
    kind = BACKOFF_NONE
    if backoff is not None:
        kind, spec['backoff_ms'], spec['backoff_cap_ms'] = parse_backoff(w('backoff'), backoff)
        spec['backoff'] = kind
    if no_jitter and kind != BACKOFF_EXP:
        raise refuse(w('no_jitter'), 'only an exp: backoff is jittered')
    spec['no_jitter'] = bool(no_jitter)
    if kind != BACKOFF_NONE and retries == 0:
        raise refuse(w('backoff'), 'it delays retries, and there are none: give retries')
    if delay is not None and at is not None:
        raise refuse(what, 'delay and at both say when; give one')
    if delay is not None:
        spec['delay_ms'] = seconds_ms(w('delay'), delay, codec.DELAY_MAX_MS)
    if at is not None:
        spec['at_ms'] = time_ms(w('at'), at)
    if timeout is not None:
        spec['timeout_ms'] = seconds_ms(w('timeout'), timeout, codec.TIMEOUT_MAX_MS)
    if soft_timeout is not None:
        spec['soft_timeout_ms'] = seconds_ms(w('soft_timeout'), soft_timeout,
                                             codec.TIMEOUT_MAX_MS, positive=True)
        if spec.get('timeout_ms') and spec['soft_timeout_ms'] >= spec['timeout_ms']:
            raise refuse(w('soft_timeout'), 'must be below timeout')
    if retention is not None:
        spec['retention_ms'] = seconds_ms(w('retention'), retention, codec.RETENTION_MAX_MS)
    if expires is not None:
        spec['expires_ms'] = time_ms(w('expires'), expires, limit=False)
    if headers is not None:
        spec['headers'] = data_bytes(w('headers'), headers, codec.HEADERS_MAX)
    fan_out_options = allow_unknown_endpoints or endpoint_timeout is not None
    if endpoints is not None:
        if isinstance(endpoints, str):
            raise refuse(w('endpoints'), 'expected a list of worker names, not a str')
        names = [check_name('%s[%d]' % (w('endpoints'), i), e) for i, e in enumerate(endpoints)]
        for i, e in enumerate(names):
            if '@' in e:
                raise refuse('%s[%d]' % (w('endpoints'), i),
                             "%r is not a worker name ('@' is reserved)" % e)
            if e in names[:i]:
                raise refuse('%s[%d]' % (w('endpoints'), i), '%r is given twice' % e)
        if len(names) > codec.ENDPOINTS_MAX:
            raise TooLarge('%s: %d names, over the limit of %d' % (
                w('endpoints'), len(names), codec.ENDPOINTS_MAX), local=True)
        spec['endpoints'] = names
    if names_given(endpoints) and broadcast:
        raise refuse(what, 'endpoints and broadcast both say where; give one')
    spec['broadcast'] = bool(broadcast)
    if fan_out_options and not names_given(endpoints) and not broadcast:
        raise refuse(what, 'allow_unknown_endpoints and endpoint_timeout go with endpoints '
                           'or broadcast')
    spec['allow_unknown'] = bool(allow_unknown_endpoints)
    if endpoint_timeout is not None:
        spec['endpoint_timeout_ms'] = seconds_ms(w('endpoint_timeout'), endpoint_timeout,
                                                 codec.TIMEOUT_MAX_MS, positive=True)
    if args is not None:
        spec['args'] = data_bytes(w('args'), args, codec.ARGS_MAX)
    if ref is not None:
        spec['ref'] = check_name(w('ref'), ref)
    if after:
        spec['after'] = list(after)
    if input:
        spec['input'] = input
    return spec


def names_given(endpoints: Optional[Sequence[str]]) -> bool:
    return bool(endpoints)
