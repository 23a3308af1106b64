"""The arbiter wire protocol, version 1 (proto/PROTOCOL.md): the only
module of this package that knows the bytes.

A message is one ZeroMQ multipart message: an 8-byte header (``'A' 'R'
version type reqid``, reqid a big-endian u32), a msgpack map (the body),
then one raw frame per record that owns one (task payloads, results), in
record order, depth first, a record's own frame after those of the records
inside it.

Here a body is a plain ``dict`` keyed by the protocol's field names, and a
frame travels inside it, as ``bytes`` under the field that owns it
(``body['tasks'][0]['payload']``): ``encode`` takes the frames out, in
order, and ``decode`` puts them back. The schema table below is the one of
proto/arb_schema.c, field for field, and both directions walk it:

- ``encode`` refuses what the broker would refuse (a wrong type, a value
  out of range, a name that is not printable UTF-8, a string or list over
  its limit, an unknown key) with the exception and reason the broker
  would answer with (``BadRequest``, ``TooLarge``; ``local`` true), so a
  mistake never costs a round trip. ``None`` and zero values are left out,
  as the protocol asks of senders.
- ``decode`` is as strict as the C decoder: exact types (no float for an
  integer, no nil, bin for bin and str for str), integer ranges, length
  limits, no unknown or repeated key, every required key, nothing after
  the map, exactly as many frames as the records own. It raises
  ``ProtocolError`` naming the field (``tasks[3].state: expected integer,
  got string``). Absent fields come back as their zero value (``None`` for
  a string, so that "no error" and an empty error differ).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import msgpack

from .errors import ProtocolError, broker_error

PROTO_VERSION = 1
HEADER_SIZE = 8

# Limits (proto/arb_proto.h): beyond them a message is refused.
NAME_MAX = 200  # names: queue, task, worker, key, ref, endpoint
TEXT_MAX = 4096  # error texts, reasons
HEADERS_MAX = 65536  # opaque per-task headers
LIST_MAX = 100000  # records in one list
IDS_MAX = 100000  # ids in one request
PAYLOAD_DEFAULT_MAX = 16 << 20  # per payload frame (the broker's --max-payload)
META_VALUE_MAX = 1 << 20
ARGS_MAX = 1 << 20  # a task's persistent arguments
ENDPOINTS_MAX = 1000
HANDLES_MAX = 1000
CREDIT_QUEUES_MAX = 64
SCHEDULE_NAME_MAX = 160
DELETE_MAX = 1000
STATE_MAX = 9
COMMIT_BUCKETS = 13
DONE_SECONDS = 60

# Bounds of task options, in ms (the broker refuses beyond them with 422).
DAY_MS = 24 * 3600 * 1000
RETRIES_MAX = 1000
DELAY_MAX_MS = 366 * DAY_MS
TIMEOUT_MAX_MS = 30 * DAY_MS
BACKOFF_MAX_MS = 30 * DAY_MS
RETENTION_MAX_MS = 3660 * DAY_MS

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
I32_MIN = -(1 << 31)
I32_MAX = (1 << 31) - 1


class MsgType(enum.IntEnum):
    """Message types: the header's type byte."""

    ERROR = 1
    PING = 2
    PONG = 3
    SUBMIT = 4
    SUBMITTED = 5
    STATUS = 6
    STATUS_REPLY = 7
    LIST = 8
    LIST_REPLY = 9
    WATCH = 10
    WATCHING = 11
    DONE = 12
    CANCEL = 13
    CANCEL_REPLY = 14
    RETRY = 15
    RETRY_REPLY = 16
    STATS = 17
    STATS_REPLY = 18
    QUEUE = 19
    OK = 20
    EVENTS = 21
    EVENT = 22
    PEEK = 23
    PEEK_REPLY = 24
    META = 25
    META_REPLY = 26
    LIMIT = 27
    SCHEDULE = 28
    SCHEDULE_REPLY = 29
    DELETE = 30
    DELETE_REPLY = 31
    LIMITS = 32
    LIMITS_REPLY = 33
    REGISTER = 40
    WELCOME = 41
    CREDIT = 42
    TAKE = 43
    DISPATCH = 44
    RESULT = 45
    EMIT = 46
    HEARTBEAT = 47
    STOP = 48
    BYE = 49
    RESULT_OK = 50


# The reply type of each request the broker answers (besides ERROR).
REPLY_TYPE: Dict[MsgType, MsgType] = {
    MsgType.PING: MsgType.PONG,
    MsgType.SUBMIT: MsgType.SUBMITTED,
    MsgType.STATUS: MsgType.STATUS_REPLY,
    MsgType.LIST: MsgType.LIST_REPLY,
    MsgType.WATCH: MsgType.WATCHING,
    MsgType.CANCEL: MsgType.CANCEL_REPLY,
    MsgType.RETRY: MsgType.RETRY_REPLY,
    MsgType.STATS: MsgType.STATS_REPLY,
    MsgType.QUEUE: MsgType.OK,
    MsgType.LIMIT: MsgType.OK,
    MsgType.LIMITS: MsgType.LIMITS_REPLY,
    MsgType.EVENTS: MsgType.OK,
    MsgType.PEEK: MsgType.PEEK_REPLY,
    MsgType.META: MsgType.META_REPLY,
    MsgType.SCHEDULE: MsgType.SCHEDULE_REPLY,
    MsgType.DELETE: MsgType.DELETE_REPLY,
    MsgType.REGISTER: MsgType.WELCOME,
    MsgType.TAKE: MsgType.DISPATCH,
}


# ---------------------------------------------------------------------
# Schemas: proto/arb_schema.c's table, field for field.

class Kind(enum.Enum):
    U64 = 'u64'
    U32 = 'u32'
    I32 = 'i32'
    BOOL = 'bool'
    STR = 'str'  # at most max bytes of UTF-8, no NUL
    NAME = 'name'  # a STR that is a name: printable UTF-8 (check_name)
    BIN = 'bin'  # at most max bytes; max 0: the frame limit
    STRS = 'strs'  # at most max names
    IDS = 'ids'  # at most max u64
    LIST = 'list'  # at most max records of sub
    FRAME = 'frame'  # the record's own frame, not in the map


@dataclass(frozen=True)
class Field:
    key: str
    kind: Kind
    required: bool = False
    max: int = 0
    sub: Optional['Schema'] = None


@dataclass(frozen=True)
class Schema:
    name: str
    fields: Tuple[Field, ...]
    by_key: Dict[str, Field] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        self.by_key.update({f.key: f for f in self.fields if f.kind is not Kind.FRAME})


def _schema(name: str, *fields: Field) -> Schema:
    return Schema(name, tuple(fields))


def _f(key: str, kind: Kind, required: bool = False, max: int = 0) -> Field:
    return Field(key, kind, required, max)


def _lst(key: str, sub: Schema, required: bool = False, max: int = LIST_MAX) -> Field:
    return Field(key, Kind.LIST, required, max, sub)


K = Kind
DEP = _schema('dep', _f('ref', K.NAME, max=NAME_MAX), _f('id', K.U64), _f('when', K.U32))

TASK_SPEC = _schema(
    'task_spec',
    _f('queue', K.NAME, max=NAME_MAX), _f('name', K.NAME, True, NAME_MAX),
    _f('key', K.NAME, max=NAME_MAX), _f('priority', K.I32), _f('retries', K.U32),
    _f('backoff', K.U32), _f('backoff_ms', K.U64), _f('backoff_cap_ms', K.U64),
    _f('no_jitter', K.BOOL), _f('delay_ms', K.U64), _f('at_ms', K.U64), _f('timeout_ms', K.U64),
    _f('soft_timeout_ms', K.U64), _f('retention_ms', K.U64), _f('expires_ms', K.U64),
    _f('headers', K.BIN, max=HEADERS_MAX), _f('ref', K.NAME, max=NAME_MAX), _lst('after', DEP),
    _f('endpoints', K.STRS, max=ENDPOINTS_MAX), _f('broadcast', K.BOOL),
    _f('allow_unknown', K.BOOL), _f('endpoint_timeout_ms', K.U64), _f('input', K.U32),
    _f('args', K.BIN, max=ARGS_MAX), _f('unwatched', K.BOOL), _f('payload', K.FRAME, True))

ATTEMPT_INFO = _schema(
    'attempt_info', _f('attempt', K.U32), _f('started_ms', K.U64), _f('ended_ms', K.U64),
    _f('worker', K.STR, max=NAME_MAX), _f('outcome', K.U32), _f('error', K.STR, max=TEXT_MAX))

RESPONSE_INFO = _schema(
    'response_info', _f('endpoint', K.STR, max=NAME_MAX), _f('id', K.U64), _f('state', K.U32),
    _f('error', K.STR, max=TEXT_MAX), _f('finished_ms', K.U64), _f('result', K.BIN))

TASK_INFO = _schema(
    'task_info',
    _f('id', K.U64, True), _f('found', K.BOOL), _f('queue', K.STR, max=NAME_MAX),
    _f('name', K.STR, max=NAME_MAX), _f('key', K.STR, max=NAME_MAX), _f('state', K.U32),
    _f('priority', K.I32), _f('attempts', K.U32), _f('max_attempts', K.U32), _f('lost', K.U32),
    _f('created_ms', K.U64), _f('not_before_ms', K.U64), _f('started_ms', K.U64),
    _f('finished_ms', K.U64), _f('timeout_ms', K.U64), _f('soft_timeout_ms', K.U64),
    _f('worker', K.STR, max=NAME_MAX), _f('error', K.STR, max=TEXT_MAX), _f('result', K.BIN),
    _lst('history', ATTEMPT_INFO), _f('history_dropped', K.U32), _f('flow', K.U64),
    _f('ref', K.STR, max=NAME_MAX), _f('origin', K.U64), _f('endpoint', K.STR, max=NAME_MAX),
    _lst('responses', RESPONSE_INFO, max=ENDPOINTS_MAX), _f('args', K.BIN, max=ARGS_MAX),
    _f('flow_kind', K.U32), _f('flow_name', K.STR, max=NAME_MAX), _f('no_handler', K.BOOL),
    _lst('parents', DEP), _f('payload', K.BIN))

OUTCOME_INFO = _schema('outcome_info', _f('id', K.U64, True), _f('code', K.U32),
                       _f('state', K.U32))

QUEUE_INFO = _schema(
    'queue_info', _f('name', K.STR, True, NAME_MAX), _f('counts', K.IDS, max=STATE_MAX + 1),
    _f('paused', K.BOOL), _f('done_last_minute', K.U64), _f('oldest_ready_ms', K.U64),
    _f('max_running', K.U32), _f('rate_per_sec', K.U32), _f('retention_ms', K.U64),
    _f('on_failure', K.STR, max=NAME_MAX), _f('done_seconds', K.IDS, max=DONE_SECONDS),
    _f('consumers', K.U32), _f('declared', K.BOOL), _f('ready_bytes', K.U64),
    _f('max_ready', K.U64), _f('max_ready_bytes', K.U64), _f('overflow', K.STR, max=NAME_MAX),
    _f('dropped', K.U64))

WORKER_STATS = _schema(
    'worker_stats', _f('name', K.STR, max=NAME_MAX), _f('identity', K.STR, max=NAME_MAX),
    _f('slots', K.U32), _f('credit', K.U32), _f('busy', K.U32), _f('last_seen_ms', K.U64),
    _f('queues', K.STRS, max=1000))

EVENT_INFO = _schema(
    'event_info', _f('id', K.U64, True), _f('at_ms', K.U64), _f('queue', K.STR, max=NAME_MAX),
    _f('name', K.STR, max=NAME_MAX), _f('state', K.U32, True), _f('attempt', K.U32),
    _f('worker', K.STR, max=NAME_MAX), _f('error', K.STR, max=TEXT_MAX))

PARENT_INFO = _schema(
    'parent_info', _f('name', K.STR, max=NAME_MAX), _f('id', K.U64, True), _f('state', K.U32),
    _f('result', K.BIN), _f('error', K.STR, max=TEXT_MAX))

DISPATCH_TASK = _schema(
    'dispatch_task', _f('id', K.U64, True), _f('lease', K.U64), _f('attempt', K.U32),
    _f('delivered', K.U32), _f('sub', K.U32), _f('queue', K.STR, max=NAME_MAX), _f('name', K.STR, max=NAME_MAX),
    _f('timeout_ms', K.U64), _f('soft_timeout_ms', K.U64), _f('created_ms', K.U64),
    _f('headers', K.BIN, max=HEADERS_MAX), _lst('parents', PARENT_INFO), _f('args', K.BIN),
    _f('payload', K.FRAME, True))

META_ITEM = _schema('meta_item', _f('key', K.STR, True, TEXT_MAX),
                    _f('value', K.BIN, max=META_VALUE_MAX))

_SCHEDULE_FIELDS = (
    _f('name', K.NAME, max=SCHEDULE_NAME_MAX), _f('cron', K.STR, max=NAME_MAX),
    _f('zone', K.STR, max=NAME_MAX), _f('catch_up', K.STR, max=NAME_MAX),
    _f('queue', K.NAME, max=NAME_MAX), _f('task', K.NAME, max=NAME_MAX), _f('priority', K.I32),
    _f('retries', K.U32), _f('backoff', K.U32), _f('backoff_ms', K.U64),
    _f('backoff_cap_ms', K.U64), _f('no_jitter', K.BOOL), _f('timeout_ms', K.U64),
    _f('soft_timeout_ms', K.U64), _f('retention_ms', K.U64), _f('payload', K.FRAME, True))

LIMIT_INFO = _schema('limit_info', _f('name', K.STR, True, NAME_MAX), _f('max_running', K.U32),
                     _f('rate_per_sec', K.U32), _f('running', K.U32))

SCHEDULE_INFO = _schema(
    'schedule_info', *_SCHEDULE_FIELDS, _f('paused', K.BOOL), _f('created_ms', K.U64),
    _f('next_ms', K.U64), _f('next_offset_s', K.I32), _f('last_slot_ms', K.U64),
    _f('last_id', K.U64))

HELD = _schema('held', _f('id', K.U64, True), _f('lease', K.U64, True), _f('ran_ms', K.U64))

RESULT_ITEM = _schema(
    'result_item', _f('id', K.U64, True), _f('lease', K.U64, True), _f('outcome', K.U32),
    _f('error', K.STR, max=TEXT_MAX), _f('routed', K.BOOL), _f('result', K.FRAME, True))

EMIT_ITEM = _schema(
    'emit_item', _f('id', K.U64, True), _f('lease', K.U64, True),
    _f('queue', K.NAME, True, NAME_MAX), _f('name', K.NAME, max=NAME_MAX),
    _f('payload', K.FRAME, True))

STOP_ITEM = _schema('stop_item', _f('id', K.U64, True), _f('lease', K.U64, True),
                    _f('reason', K.U32))

_CANCEL_REPLY = (_lst('tasks', OUTCOME_INFO), _f('count', K.U32))
_DISPATCH = (_lst('tasks', DISPATCH_TASK),)

BODIES: Dict[MsgType, Schema] = {
    MsgType.ERROR: _schema('error', _f('code', K.U32, True), _f('reason', K.STR, True, TEXT_MAX)),
    MsgType.PING: _schema('ping'),
    MsgType.PONG: _schema('pong', _f('version', K.STR, max=NAME_MAX), _f('epoch', K.U64),
                          _f('now_ms', K.U64)),
    MsgType.SUBMIT: _schema('submit', _f('watch', K.BOOL), _f('flow_kind', K.U32),
                            _f('flow_name', K.NAME, max=NAME_MAX),
                            _lst('tasks', TASK_SPEC, required=True)),
    MsgType.SUBMITTED: _schema(
        'submitted',
        _lst('tasks', _schema('submitted_task', _f('id', K.U64, True), _f('existing', K.BOOL),
                              _f('state', K.U32), _f('refused', K.BOOL))),
        _f('flow', K.U64)),
    MsgType.STATUS: _schema('status', _f('ids', K.IDS, True, IDS_MAX),
                            _f('with_payload', K.BOOL)),
    MsgType.STATUS_REPLY: _schema('status_reply', _lst('tasks', TASK_INFO), _f('more', K.BOOL)),
    MsgType.LIST: _schema('list', _f('state', K.U32), _f('queue', K.NAME, max=NAME_MAX),
                          _f('after_id', K.U64), _f('limit', K.U32), _f('flow', K.U64),
                          _f('before_id', K.U64), _f('newest', K.BOOL)),
    MsgType.LIST_REPLY: _schema('list_reply', _lst('tasks', TASK_INFO), _f('more', K.BOOL)),
    MsgType.WATCH: _schema('watch', _f('ids', K.IDS, True, IDS_MAX)),
    MsgType.WATCHING: _schema('watching', _f('watching', K.U32),
                              _f('unknown', K.IDS, max=IDS_MAX)),
    MsgType.DONE: _schema(
        'done',
        _lst('tasks', _schema('done_task', _f('id', K.U64, True), _f('state', K.U32, True),
                              _f('attempts', K.U32), _f('error', K.STR, max=TEXT_MAX),
                              _f('result', K.FRAME, True)), required=True)),
    MsgType.CANCEL: _schema('cancel', _f('ids', K.IDS, max=IDS_MAX),
                            _f('queue', K.NAME, max=NAME_MAX), _f('group', K.NAME, max=NAME_MAX),
                            _f('flow', K.U64)),
    MsgType.CANCEL_REPLY: _schema('cancel_reply', *_CANCEL_REPLY),
    MsgType.RETRY: _schema('retry', _f('ids', K.IDS, max=IDS_MAX),
                           _f('queue', K.NAME, max=NAME_MAX), _f('all', K.BOOL),
                           _f('flow', K.U64), _f('group', K.STR, max=NAME_MAX)),
    MsgType.RETRY_REPLY: _schema('retry_reply', *_CANCEL_REPLY),
    MsgType.STATS: _schema('stats', _f('queue', K.NAME, max=NAME_MAX),
                           _f('after', K.STR, max=NAME_MAX), _f('after_worker', K.STR, max=NAME_MAX),
                           _f('limit', K.U32)),
    MsgType.STATS_REPLY: _schema(
        'stats_reply', _f('now_ms', K.U64), _f('uptime_ms', K.U64), _lst('queues', QUEUE_INFO),
        _lst('workers', WORKER_STATS), _f('submitted', K.U64), _f('dispatched', K.U64),
        _f('finished', K.IDS, max=STATE_MAX + 1), _f('commits', K.U64), _f('commit_us', K.U64),
        _f('commit_buckets', K.IDS, max=COMMIT_BUCKETS), _f('tasks_in_memory', K.U64),
        _f('tasks_cold', K.U64), _f('watches', K.U64), _f('more', K.BOOL),
        _f('more_workers', K.BOOL)),
    MsgType.QUEUE: _schema('queue', _f('queue', K.NAME, True, NAME_MAX),
                           _f('op', K.STR, True, NAME_MAX), _f('max_running', K.U32),
                           _f('rate_per_sec', K.U32), _f('retention_ms', K.U64),
                           _f('on_failure', K.STR, max=NAME_MAX), _f('max_ready', K.U64),
                           _f('max_ready_bytes', K.U64), _f('overflow', K.STR, max=NAME_MAX),
                           _f('clear', K.STRS, max=8)),
    MsgType.OK: _schema('ok', _f('count', K.U64)),
    MsgType.EVENTS: _schema('events', _f('queue', K.NAME, max=NAME_MAX), _f('off', K.BOOL)),
    MsgType.EVENT: _schema('event', _lst('events', EVENT_INFO), _f('dropped', K.U64)),
    MsgType.PEEK: _schema('peek', _f('queue', K.NAME, True, NAME_MAX), _f('max', K.U32)),
    MsgType.PEEK_REPLY: _schema('peek_reply', *_DISPATCH),
    MsgType.META: _schema('meta', _f('op', K.STR, True, NAME_MAX),
                          _f('key', K.STR, max=TEXT_MAX), _f('value', K.BIN, max=META_VALUE_MAX),
                          _f('expect', K.BIN, max=META_VALUE_MAX), _f('absent', K.BOOL),
                          _f('remove', K.BOOL), _f('after', K.STR, max=TEXT_MAX),
                          _f('limit', K.U32)),
    MsgType.META_REPLY: _schema('meta_reply', _lst('items', META_ITEM), _f('matched', K.BOOL),
                                _f('more', K.BOOL)),
    MsgType.LIMIT: _schema('limit', _f('name', K.NAME, True, NAME_MAX), _f('max_running', K.U32),
                           _f('rate_per_sec', K.U32), _f('clear', K.STRS, max=8)),
    MsgType.LIMITS: _schema('limits', _f('name', K.NAME, max=NAME_MAX),
                            _f('after', K.STR, max=NAME_MAX), _f('limit', K.U32)),
    MsgType.LIMITS_REPLY: _schema('limits_reply', _lst('limits', LIMIT_INFO), _f('more', K.BOOL)),
    MsgType.SCHEDULE: _schema('schedule', _f('op', K.STR, True, NAME_MAX), *_SCHEDULE_FIELDS),
    MsgType.SCHEDULE_REPLY: _schema('schedule_reply', _lst('schedules', SCHEDULE_INFO)),
    MsgType.DELETE: _schema('delete', _f('ids', K.IDS, max=DELETE_MAX), _f('state', K.U32),
                            _f('queue', K.STR, max=NAME_MAX), _f('older_than_ms', K.U64),
                            _f('after_id', K.U64)),
    MsgType.DELETE_REPLY: _schema('delete_reply', _lst('tasks', OUTCOME_INFO, max=DELETE_MAX),
                                  _f('count', K.U32), _f('more', K.BOOL), _f('last_id', K.U64)),
    MsgType.REGISTER: _schema(
        'register', _f('name', K.NAME, max=NAME_MAX), _f('mode', K.STR, max=NAME_MAX),
        _f('slots', K.U32), _f('pid', K.U32), _f('host', K.NAME, max=NAME_MAX),
        _lst('held', HELD), _f('handles', K.STRS, max=HANDLES_MAX), _f('acks', K.BOOL),
        _f('marks', K.BOOL)),
    MsgType.WELCOME: _schema('welcome', _f('heartbeat_ms', K.U32, True),
                             _f('liveness_ms', K.U32, True), _f('epoch', K.U64),
                             _lst('adopted', HELD), _f('max_payload', K.U64)),
    MsgType.CREDIT: _schema('credit', _f('sub', K.U32),
                            _f('queues', K.STRS, max=CREDIT_QUEUES_MAX), _f('credit', K.I32),
                            _f('cancel', K.BOOL)),
    MsgType.TAKE: _schema('take', _f('queue', K.NAME, True, NAME_MAX), _f('max', K.U32)),
    MsgType.DISPATCH: _schema('dispatch', *_DISPATCH),
    MsgType.RESULT: _schema('result', _lst('results', RESULT_ITEM, required=True)),
    MsgType.EMIT: _schema('emit', _lst('items', EMIT_ITEM, required=True)),
    MsgType.HEARTBEAT: _schema('heartbeat', _f('busy', K.U32), _f('mark', K.U64)),
    MsgType.STOP: _schema('stop', _lst('tasks', STOP_ITEM, required=True)),
    MsgType.BYE: _schema('bye'),
    MsgType.RESULT_OK: _schema('result_ok', _f('stored', K.IDS, max=LIST_MAX),
                               _f('refused', K.IDS, max=LIST_MAX)),
}


# ---------------------------------------------------------------------
# Names.

def check_name(text: str) -> Optional[str]:
    """Why text is not a name (printable UTF-8: valid UTF-8 without control
    characters C0, DEL or C1), in the broker's words, or None if it is.
    Positions are 1-based bytes of the UTF-8 encoding, as the broker counts."""
    at = 1
    for ch in text:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            return 'invalid UTF-8 at byte %d' % at
        if cp < 0x20 or cp == 0x7F:
            return 'control character 0x%02x at byte %d' % (cp, at)
        if 0x80 <= cp <= 0x9F:
            return 'control character U+%04X at byte %d' % (cp, at)
        at += 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return None


def clean_text(text: str, limit: int = TEXT_MAX) -> str:
    """An error text as the wire carries it: at most limit bytes of valid
    UTF-8 (a character cut short is dropped, a stray surrogate becomes
    '?'), and no NUL (it becomes '.'), as arb_text_copy makes it."""
    data = text.replace('\0', '.').encode('utf-8', 'replace')
    if len(data) > limit:
        data = data[:limit]
    return data.decode('utf-8', 'ignore')


# ---------------------------------------------------------------------
# Messages.

@dataclass
class Message:
    """One message: its type, request id (0 for what the broker streams:
    DONE, EVENT, DISPATCH for credit, STOP, HEARTBEAT) and body."""

    type: MsgType
    reqid: int = 0
    body: Dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return 'Message(%s, reqid=%d)' % (self.type.name, self.reqid)


def header(type_: int, reqid: int, version: int = PROTO_VERSION) -> bytes:
    return b'AR' + bytes((version, type_)) + reqid.to_bytes(4, 'big')


# ---------------------------------------------------------------------
# Encoding.

def _path(path: str, key: str, index: Optional[int] = None) -> str:
    name = '%s.%s' % (path, key) if path else key
    return name if index is None else '%s[%d]' % (name, index)


def _refuse(where: str, code: int, reason: str) -> Exception:
    return broker_error(code, '%s: %s' % (where, reason) if where else reason, local=True)


_BYTES = (bytes, bytearray, memoryview)


def _type_word(value: object) -> str:
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, _BYTES):
        return 'binary'
    if isinstance(value, _Map) or isinstance(value, dict):
        return 'map'
    if isinstance(value, (list, tuple)):
        return 'array'
    if value is None:
        return 'nil'
    return 'unsupported type'


def _enc_int(where: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _refuse(where, 400, 'expected integer, got %s' % _type_word(value))
    if not low <= value <= high:
        raise _refuse(where, 400, 'number out of range')
    return value


def _enc_str(where: str, value: object, limit: int, name: bool) -> str:
    if not isinstance(value, str):
        raise _refuse(where, 400, 'expected string, got %s' % _type_word(value))
    try:
        size = len(value.encode('utf-8'))
    except UnicodeEncodeError:
        size = -1
    if size > limit:
        raise _refuse(where, 413, 'string of %d bytes, over the %d-byte limit' % (size, limit))
    if '\0' in value:
        raise _refuse(where, 400, 'string holds a NUL byte')
    if name or size < 0:
        why = check_name(value)
        if why:
            raise _refuse(where, 400, '%s (names are printable UTF-8)' % why)
    return value


def _enc_bin(where: str, value: object, limit: int) -> bytes:
    if not isinstance(value, _BYTES):
        raise _refuse(where, 400, 'expected binary, got %s' % _type_word(value))
    data = bytes(value)
    if len(data) > limit:
        raise _refuse(where, 413, '%d bytes, over the %d-byte limit' % (len(data), limit))
    return data


def _enc_list(where: str, value: object, limit: int) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise _refuse(where, 400, 'expected array, got %s' % _type_word(value))
    if len(value) > limit:
        raise _refuse(where, 413, '%d elements, over the limit of %d' % (len(value), limit))
    return value


def _is_zero(f: Field, value: Any) -> bool:
    if value is None:
        return True
    if f.required:
        return False
    if f.kind in (Kind.STR, Kind.NAME):
        return False  # an empty string is present; None is absent
    if isinstance(value, bool):
        return value is False
    if isinstance(value, (int, float)):
        return value == 0
    if isinstance(value, (list, tuple, bytes, bytearray, memoryview)):
        return len(value) == 0
    return False


def _enc_record(schema: Schema, rec: object, path: str, frames: List[bytes],
                max_frame: int) -> Dict[str, Any]:
    if not isinstance(rec, dict):
        raise _refuse(path, 400, 'expected map, got %s' % _type_word(rec))
    for key in rec:
        if key not in schema.by_key and not any(f.key == key for f in schema.fields):
            raise _refuse(path, 400, "unknown key '%s'" % key)
    out: Dict[str, Any] = {}
    frame: Optional[bytes] = None
    has_frame = False
    for f in schema.fields:
        value = rec.get(f.key)
        where = _path(path, f.key)
        if f.kind is Kind.FRAME:
            has_frame = True
            frame = b'' if value is None else _enc_bin(where, value, max_frame)
            continue
        if _is_zero(f, value):
            if f.required and value is None:
                if f.kind in (Kind.LIST, Kind.IDS, Kind.STRS):
                    value = []
                else:
                    raise _refuse(path, 400, "missing required key '%s'" % f.key)
            else:
                continue
        kind = f.kind
        if kind is Kind.U64:
            out[f.key] = _enc_int(where, value, 0, U64_MAX)
        elif kind is Kind.U32:
            out[f.key] = _enc_int(where, value, 0, U32_MAX)
        elif kind is Kind.I32:
            out[f.key] = _enc_int(where, value, I32_MIN, I32_MAX)
        elif kind is Kind.BOOL:
            if not isinstance(value, bool):
                raise _refuse(where, 400, 'expected boolean, got %s' % _type_word(value))
            out[f.key] = value
        elif kind in (Kind.STR, Kind.NAME):
            out[f.key] = _enc_str(where, value, f.max, kind is Kind.NAME)
        elif kind is Kind.BIN:
            out[f.key] = _enc_bin(where, value, f.max or max_frame)
        elif kind is Kind.STRS:
            items = _enc_list(where, value, f.max)
            out[f.key] = [_enc_str(_path(path, f.key, i), s, NAME_MAX, True)
                          for i, s in enumerate(items)]
        elif kind is Kind.IDS:
            items = _enc_list(where, value, f.max)
            out[f.key] = [_enc_int(_path(path, f.key, i), v, 0, U64_MAX)
                          for i, v in enumerate(items)]
        elif kind is Kind.LIST:
            assert f.sub is not None
            items = _enc_list(where, value, f.max)
            out[f.key] = [_enc_record(f.sub, r, _path(path, f.key, i), frames, max_frame)
                          for i, r in enumerate(items)]
    # a record's own frame follows those of the records inside it
    if has_frame:
        frames.append(frame if frame is not None else b'')
    return out


def encode(msg: Message, max_frame: int = PAYLOAD_DEFAULT_MAX) -> List[bytes]:
    """The ZeroMQ frames of a message (header, body, payload frames).

    Raises the ``BrokerError`` the broker would answer (``local`` true) for
    a body it would refuse; frames (payloads, results) are limited to
    max_frame bytes (TooLarge)."""
    schema = BODIES[MsgType(msg.type)]
    frames: List[bytes] = []
    body = _enc_record(schema, msg.body, '', frames, max_frame)
    packed = msgpack.packb(body, use_bin_type=True)
    return [header(int(msg.type), msg.reqid), packed] + frames


# ---------------------------------------------------------------------
# Decoding.

class _Map(list):  # type: ignore[type-arg]
    """A msgpack map as its (key, value) pairs, in order, so that a
    repeated key is seen rather than silently merged."""


def _fail(where: str, reason: str, code: int = 400) -> ProtocolError:
    return ProtocolError('%s: %s' % (where, reason) if where else reason, code)


def _zero(f: Field) -> Any:
    if f.kind in (Kind.U64, Kind.U32, Kind.I32):
        return 0
    if f.kind is Kind.BOOL:
        return False
    if f.kind in (Kind.STR, Kind.NAME):
        return None
    if f.kind in (Kind.BIN, Kind.FRAME):
        return b''
    return []


class _Decoder:
    def __init__(self, frames: Sequence[bytes], max_frame: Optional[int]) -> None:
        self.frames = frames
        self.next_frame = 0
        self.max_frame = max_frame

    def uint(self, where: str, value: object, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(where, 'expected integer, got %s' % _type_word(value))
        if not 0 <= value <= high:
            raise _fail(where, 'number out of range')
        return value

    def string(self, where: str, value: object, limit: int, name: bool) -> str:
        if not isinstance(value, str):
            raise _fail(where, 'expected string, got %s' % _type_word(value))
        if len(value) * 4 > limit:  # a character is at most 4 bytes
            size = len(value.encode('utf-8'))
            if size > limit:
                raise _fail(where, 'string of %d bytes, over the %d-byte limit' % (size, limit),
                            413)
        if '\0' in value:
            raise _fail(where, 'string holds a NUL byte')
        if name:
            why = check_name(value)
            if why:
                raise _fail(where, '%s (names are printable UTF-8)' % why)
        return value

    def binary(self, where: str, value: object, limit: Optional[int]) -> bytes:
        if not isinstance(value, bytes):
            raise _fail(where, 'expected binary, got %s' % _type_word(value))
        if limit is not None and len(value) > limit:
            raise _fail(where, '%d bytes, over the %d-byte limit' % (len(value), limit), 413)
        return value

    def array(self, where: str, value: object, limit: int) -> List[Any]:
        if not isinstance(value, list) or isinstance(value, _Map):
            raise _fail(where, 'expected array, got %s' % _type_word(value))
        if len(value) > limit:
            raise _fail(where, '%d elements, over the limit of %d' % (len(value), limit), 413)
        return value

    def value(self, f: Field, where: str, value: object) -> Any:
        kind = f.kind
        if kind is Kind.U64:
            return self.uint(where, value, U64_MAX)
        if kind is Kind.U32:
            return self.uint(where, value, U32_MAX)
        if kind is Kind.I32:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _fail(where, 'expected integer, got %s' % _type_word(value))
            if not I32_MIN <= value <= I32_MAX:
                raise _fail(where, 'number out of range')
            return value
        if kind is Kind.BOOL:
            if not isinstance(value, bool):
                raise _fail(where, 'expected boolean, got %s' % _type_word(value))
            return value
        if kind in (Kind.STR, Kind.NAME):
            return self.string(where, value, f.max, kind is Kind.NAME)
        if kind is Kind.BIN:
            return self.binary(where, value, f.max or self.max_frame)
        if kind is Kind.STRS:
            items = self.array(where, value, f.max)
            return [self.string('%s[%d]' % (where, i), s, NAME_MAX, True)
                    for i, s in enumerate(items)]
        if kind is Kind.IDS:
            items = self.array(where, value, f.max)
            return [self.uint('%s[%d]' % (where, i), v, U64_MAX) for i, v in enumerate(items)]
        assert kind is Kind.LIST and f.sub is not None
        items = self.array(where, value, f.max)
        return [self.record(f.sub, r, '%s[%d]' % (where, i)) for i, r in enumerate(items)]

    def record(self, schema: Schema, value: object, path: str) -> Dict[str, Any]:
        if not isinstance(value, _Map):
            raise _fail(path, 'expected map, got %s' % _type_word(value))
        out: Dict[str, Any] = {}
        for key, item in value:
            if not isinstance(key, str):
                raise _fail(path, 'expected string, got %s' % _type_word(key))
            f = schema.by_key.get(key)
            if f is None:
                quoted = ''.join(c if ' ' <= c < '\x7f' else '.' for c in key[:64])
                raise _fail(path, "unknown key '%s'" % quoted)
            where = _path(path, key)
            if key in out:
                raise _fail(where, 'key given twice')
            out[key] = self.value(f, where, item)
        for f in schema.fields:
            if f.kind is Kind.FRAME:
                out[f.key] = self.claim(path)
            elif f.key not in out:
                if f.required:
                    raise _fail(path, "missing required key '%s'" % f.key)
                out[f.key] = _zero(f)
        return out

    def claim(self, where: str) -> bytes:
        if self.next_frame >= len(self.frames):
            raise _fail(where, 'its frame is missing')
        frame = self.frames[self.next_frame]
        self.next_frame += 1
        if self.max_frame is not None and len(frame) > self.max_frame:
            raise _fail(where, 'frame of %d bytes, over the %d-byte limit'
                        % (len(frame), self.max_frame), 413)
        return bytes(frame)


def decode(parts: Sequence[bytes], max_frame: Optional[int] = None) -> Message:
    """A message from the ZeroMQ frames received (without a routing id).

    max_frame: the largest payload or result frame (and inline result)
    taken, in bytes; None takes any (a client trusts the broker, which
    applied its own limit). Raises ProtocolError naming what is wrong."""
    if not parts:
        raise _fail('', 'not an arbiter message (no frames)')
    head = bytes(parts[0])
    if len(head) != HEADER_SIZE or head[:2] != b'AR':
        raise _fail('', 'not an arbiter message (bad header frame)')
    version, type_num = head[2], head[3]
    reqid = int.from_bytes(head[4:8], 'big')
    if version != PROTO_VERSION:
        raise _fail('', 'protocol version %d not spoken (this is version %d)'
                    % (version, PROTO_VERSION), 505)
    try:
        msg_type = MsgType(type_num)
    except ValueError:
        raise _fail('', 'unknown message type %d' % type_num) from None
    if len(parts) < 2:
        raise _fail('', '%s without a body frame' % msg_type.name)
    raw = bytes(parts[1])
    try:
        tree = msgpack.unpackb(raw, raw=False, object_pairs_hook=_Map, strict_map_key=False,
                               use_list=True)
    except msgpack.ExtraData as e:
        raise _fail('', '%d bytes after the body' % len(e.extra)) from None
    except UnicodeDecodeError:
        raise _fail('', 'a string is not valid UTF-8') from None
    except Exception as e:  # truncated, too deep, unreadable: never trusted
        raise _fail('', 'body is not msgpack (%s)' % (str(e) or type(e).__name__)) from None
    dec = _Decoder(parts[2:], max_frame)
    body = dec.record(BODIES[msg_type], tree, '')
    left = len(parts) - 2 - dec.next_frame
    if left:
        raise _fail('', '%d frames more than the body\'s records own' % left)
    return Message(msg_type, reqid, body)
