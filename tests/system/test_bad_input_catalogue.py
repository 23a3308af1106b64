"""A catalogue of bad input (issue 10, part 6): hundreds of malformed or
hostile messages sent to one real broker, each case named for what it
sends and for what proto/PROTOCOL.md says must happen.

After every case the broker must have answered with the documented error
(code, request id, and the reason's substance: the field it names) or
dropped the message as documented, changed nothing it refused, and kept
serving a healthy client, which answers a PING and submits a task with a
client key after each case. The last test runs every one of those tasks
to its end (nothing was lost), and the flood cases check that the
broker's memory does not grow with what it is sent.

The cases are generated where that is the honest way to cover a rule
(every field of every request with a wrong type, every limit just over,
a valid message cut at every byte, counts that lie, every request from
every role that may not send it) and written by hand for the hostile
conversations (results for another worker's lease, EMIT for a task not
leased, heartbeats that lie, absurd credit, floods, ...). A RESULT that
takes nothing is sent twice: by a worker without acks, which gets no
reply, and by one with acks, whose RESULT_OK refuses it.

The roles' cases run last, on a second broker started with --curve,
whose healthy client is an admin.
"""

import copy
import random
import struct
import time

import msgpack
import pytest
import zmq

from arbiter_proto import TYPES, Peer, decode, encode, header
from conftest import SANITIZED, SANITIZER_MARKS, Broker, wait_until
from test_auth import Certs, CurveBroker

MAX_PAYLOAD = 64 * 1024                     # the broker's --max-payload here
MAX_MESSAGE = 2 * MAX_PAYLOAD + (1 << 20)   # what its socket takes at most
REQID = 7                                   # every bad message's request id
PING_REQIDS = 1 << 31                       # the PINGs after them: from here up
DAY_MS = 24 * 3600 * 1000
GHOST = 999999999                           # an id no task has (the healthy ones are low)

# ---------------------------------------------------------------------------
# The requests peers send, field by field, as PROTOCOL.md lists them (the
# limits of "Limits" and of proto/arb_proto.h): (key, kind, limit).

U64, U32, I32, BOOL, STR, NAME, BIN, STRS, IDS, LIST = (
    'u64', 'u32', 'i32', 'bool', 'str', 'name', 'bin', 'strs', 'ids', 'list')

TASK_FIELDS = [
    ('queue', NAME, 200), ('name', NAME, 200), ('key', NAME, 200), ('priority', I32, None),
    ('retries', U32, None), ('backoff', U32, None), ('backoff_ms', U64, None),
    ('backoff_cap_ms', U64, None), ('no_jitter', BOOL, None), ('delay_ms', U64, None),
    ('at_ms', U64, None), ('timeout_ms', U64, None), ('soft_timeout_ms', U64, None),
    ('retention_ms', U64, None), ('expires_ms', U64, None), ('headers', BIN, 65536),
    ('ref', NAME, 200), ('after', LIST, 100000), ('endpoints', STRS, 1000),
    ('broadcast', BOOL, None), ('allow_unknown', BOOL, None),
    ('endpoint_timeout_ms', U64, None), ('input', U32, None), ('args', BIN, 1 << 20),
]
DEP_FIELDS = [('ref', NAME, 200), ('id', U64, None), ('when', U32, None)]
HELD_FIELDS = [('id', U64, None), ('lease', U64, None)]
RESULT_FIELDS = [('id', U64, None), ('lease', U64, None), ('outcome', U32, None),
                 ('error', STR, 4096), ('routed', BOOL, None)]
EMIT_FIELDS = [('id', U64, None), ('lease', U64, None), ('queue', NAME, 200),
               ('name', NAME, 200)]

# a type name: (a valid body whose fields the cases spoil, frames it carries, fields
# by path). A path is the keys and indexes down to the field.
REQUESTS = {
    'SUBMIT': ({'tasks': [{'name': 'cat', 'queue': 'cat-submit'}]}, 1,
               [(('watch',), BOOL, None), (('flow_kind',), U32, None),
                (('flow_name',), NAME, 200), (('tasks',), LIST, 100000)]
               + [(('tasks', 0, k), t, m) for k, t, m in TASK_FIELDS]
               + [(('tasks', 0, 'after', 0, k), t, m) for k, t, m in DEP_FIELDS]),
    'STATUS': ({'ids': [GHOST]}, 0, [(('ids',), IDS, 100000)]),
    'LIST': ({}, 0, [(('state',), U32, None), (('queue',), NAME, 200), (('after_id',), U64, None),
                     (('limit',), U32, None), (('flow',), U64, None), (('before_id',), U64, None),
                     (('newest',), BOOL, None)]),
    'WATCH': ({'ids': [GHOST]}, 0, [(('ids',), IDS, 100000)]),
    'CANCEL': ({'ids': [GHOST]}, 0, [(('ids',), IDS, 100000), (('queue',), NAME, 200),
                                 (('group',), NAME, 200), (('flow',), U64, None)]),
    'RETRY': ({'ids': [GHOST]}, 0, [(('ids',), IDS, 100000), (('queue',), NAME, 200),
                                (('all',), BOOL, None), (('flow',), U64, None),
                                (('group',), STR, 200)]),
    'DELETE': ({'ids': [GHOST]}, 0, [(('ids',), IDS, 1000), (('state',), U32, None),
                                 (('queue',), STR, 200), (('older_than_ms',), U64, None),
                                 (('after_id',), U64, None)]),
    'QUEUE': ({'queue': 'cat-queue', 'op': 'pause'}, 0,
              [(('queue',), NAME, 200), (('op',), STR, 200), (('max_running',), U32, None),
               (('rate_per_sec',), U32, None), (('retention_ms',), U64, None),
               (('on_failure',), STR, 200), (('clear',), STRS, 8)]),
    'LIMIT': ({'name': 'cat-limit'}, 0,
              [(('name',), NAME, 200), (('max_running',), U32, None),
               (('rate_per_sec',), U32, None), (('clear',), STRS, 8)]),
    'LIMITS': ({}, 0, [(('name',), NAME, 200), (('after',), STR, 200), (('limit',), U32, None)]),
    'EVENTS': ({'off': True}, 0, [(('queue',), NAME, 200), (('off',), BOOL, None)]),
    'PEEK': ({'queue': 'cat-peek'}, 0, [(('queue',), NAME, 200), (('max',), U32, None)]),
    'META': ({'op': 'get', 'key': 'cat'}, 0,
             [(('op',), STR, 200), (('key',), STR, 4096), (('value',), BIN, 1 << 20),
              (('expect',), BIN, 1 << 20), (('absent',), BOOL, None), (('remove',), BOOL, None),
              (('after',), STR, 4096), (('limit',), U32, None)]),
    'STATS': ({}, 0, [(('queue',), NAME, 200), (('after',), STR, 200),
                      (('after_worker',), STR, 200), (('limit',), U32, None)]),
    'SCHEDULE': ({'op': 'list'}, 1,
                 [(('op',), STR, 200), (('name',), NAME, 160), (('cron',), STR, 200),
                  (('zone',), STR, 200), (('catch_up',), STR, 200), (('queue',), NAME, 200),
                  (('task',), NAME, 200), (('priority',), I32, None), (('retries',), U32, None),
                  (('backoff',), U32, None), (('backoff_ms',), U64, None),
                  (('backoff_cap_ms',), U64, None), (('no_jitter',), BOOL, None),
                  (('timeout_ms',), U64, None), (('soft_timeout_ms',), U64, None),
                  (('retention_ms',), U64, None)]),
    'REGISTER': ({'name': 'cat-worker'}, 0,
                 [(('name',), NAME, 200), (('mode',), STR, 200), (('slots',), U32, None),
                  (('pid',), U32, None), (('host',), NAME, 200), (('held',), LIST, 100000),
                  (('handles',), STRS, 1000), (('acks',), BOOL, None)]
                 + [(('held', 0, k), t, m) for k, t, m in HELD_FIELDS]),
    'CREDIT': ({'queues': ['cat-credit']}, 0,
               [(('sub',), U32, None), (('queues',), STRS, 64), (('credit',), I32, None),
                (('cancel',), BOOL, None)]),
    'TAKE': ({'queue': 'cat-take'}, 0, [(('queue',), NAME, 200), (('max',), U32, None)]),
    'RESULT': ({'results': [{'id': GHOST, 'lease': 1}]}, 1,
               [(('results',), LIST, 100000)]
               + [(('results', 0, k), t, m) for k, t, m in RESULT_FIELDS]),
    'EMIT': ({'items': [{'id': GHOST, 'lease': 1, 'queue': 'cat-emit'}]}, 1,
             [(('items',), LIST, 100000)]
             + [(('items', 0, k), t, m) for k, t, m in EMIT_FIELDS]),
    'HEARTBEAT': ({}, 0, [(('busy',), U32, None)]),
}

# A value of the wrong type for each kind, and what the reason calls both.
WRONG = {
    U64: ('7', 'expected integer, got string'),
    U32: ('7', 'expected integer, got string'),
    I32: (7.5, 'expected integer, got unsupported type'),
    BOOL: (1, 'expected boolean, got integer'),
    STR: (7, 'expected string, got integer'),
    NAME: (b'bytes', 'expected string, got binary'),
    BIN: ('text', 'expected binary, got string'),
    STRS: ('one', 'expected array, got string'),
    IDS: ({'id': 1}, 'expected array, got map'),
    LIST: (5, 'expected array, got integer'),
}


def path_text(path):
    """'tasks[0].after[0].ref' for ('tasks', 0, 'after', 0, 'ref')."""
    out = ''
    for step in path:
        out += '[%d]' % step if isinstance(step, int) else ('.' if out else '') + step
    return out


def with_value(body, path, value):
    """A copy of body with the field at path set (the lists on the way are
    made when missing)."""
    body = copy.deepcopy(body)
    at = body
    for i, step in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(step, int):
            while len(at) <= step:
                at.append({})
            at = at[step]
        else:
            at = at.setdefault(step, [] if isinstance(nxt, int) else {})
    at[path[-1]] = value
    return body


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def msg(type_name, body, frames=0, reqid=REQID):
    """A message's frames: header, body (packed unless bytes), frames."""
    raw = body if isinstance(body, bytes) else pack(body)
    extra = [b'f%d' % i for i in range(frames)] if isinstance(frames, int) else list(frames)
    return [header(type_name, reqid), raw] + extra


def identity(peer):
    """A peer's routing id as STATS shows it (upper-case hex)."""
    return peer.sock.getsockopt(zmq.IDENTITY).hex().upper()


def short(body, width=60):
    """A body as its case names it: compact, cut at width."""
    text = repr(body).replace("'", '')
    return text if len(text) <= width else text[:width - 3] + '...'


def raw_header(version=1, type_num=2, reqid=REQID, magic=b'AR'):
    return magic + struct.pack('>BBI', version, type_num, reqid)


# ---------------------------------------------------------------------------
# Cases

CASES = []


class Case:
    """One entry of the catalogue. kind groups the cases in the report;
    role (client, worker, admin, none, stranger, anonymous) sends it, as a
    peer of that certificate, to the broker with --curve (None: to the
    broker without, where every peer may send everything)."""

    role = None

    def __init__(self, kind, name):
        self.kind = kind
        self.name = name
        CASES.append(self)

    def __repr__(self):
        return self.name


class Refused(Case):
    """One message from a fresh peer, answered with ERROR code (reason
    holding each of the given texts) and changing nothing. A worker verb
    is sent by a registered peer when registered is set."""

    def __init__(self, kind, name, parts, code, *reason, registered=False, reqid=REQID,
                 role=None):
        super().__init__(kind, name)
        self.parts, self.code, self.reason = parts, code, reason
        self.registered, self.reqid, self.role = registered, reqid, role

    def run(self, arena):
        peer = arena.peer(self.role)
        if self.registered:
            arena.register(peer, 'cat-' + self.kind)
        before = arena.snapshot(peer)
        replies = arena.send_then_ping(peer, self.parts)
        errors = [r for r in replies if r[0] == 'ERROR']
        assert len(errors) == 1, 'expected one ERROR, got %r' % (replies,)
        _, reqid, body, _ = errors[0]
        assert body['code'] == self.code, body
        assert reqid == self.reqid, (reqid, body)
        for text in self.reason:
            assert text in body['reason'], (text, body['reason'])
        assert arena.snapshot(peer) == before, 'a refused request changed something'
        if self.registered:
            peer.send('BYE', {})


class Dropped(Case):
    """One message of a registered worker that the protocol takes without
    a reply (a RESULT or EMIT that quotes no lease of its own, a HEARTBEAT):
    no answer, nothing changed. With refused (a list of ids) the worker
    registers with acks, and its RESULT is answered RESULT_OK refusing
    those ids, storing none."""

    def __init__(self, kind, name, parts, refused=None):
        super().__init__(kind, name)
        self.parts, self.refused = parts, refused

    def run(self, arena):
        peer = arena.peer()
        acks = self.refused is not None
        arena.register(peer, 'cat-' + self.kind, acks=acks)
        before = arena.snapshot(peer)
        arena.late(peer, self.parts, self.refused if acks else None)
        assert arena.snapshot(peer) == before, 'a dropped message changed something'
        peer.send('BYE', {})


def late_result(kind, name, body, frames):
    """A RESULT that quotes no lease of the sender's, twice: from a worker
    without acks (no reply) and from one with acks (RESULT_OK refusing
    every id, in order)."""
    parts = msg('RESULT', body, frames)
    Dropped(kind, name + ' -> dropped without a reply', parts)
    Dropped(kind, name + ' from a worker with acks -> RESULT_OK refusing it', parts,
            refused=[r['id'] for r in body['results']])


class Permitted(Case):
    """A request that a certificate's role may send (the positive control
    of the roles table): whatever the broker answers, it is not 403."""

    def __init__(self, kind, name, parts, role):
        super().__init__(kind, name)
        self.parts, self.role = parts, role

    def run(self, arena):
        peer = arena.peer(self.role)
        replies = arena.send_then_ping(peer, self.parts)
        assert not [r for r in replies if r[0] == 'ERROR' and r[2]['code'] == 403], replies
        if self.parts[0][3] == TYPES['REGISTER']:
            peer.send('BYE', {})


class Unheard(Case):
    """A peer whose CURVE handshake the broker refuses (a certificate not
    in allowed/, or none): it never sees a message, and the broker goes on
    serving the others."""

    def __init__(self, kind, name, role):
        super().__init__(kind, name)
        self.role = role

    def run(self, arena):
        peer = arena.peer(self.role)
        # a refused handshake may leave the DEALER without a pipe, where a
        # blocking send waits for one: what it cannot send is unheard too
        for type_name, body, frames in (
                ('PING', {}, ()),
                ('SUBMIT', {'tasks': [{'name': 'x', 'queue': 'cat-unheard'}]}, [b''])):
            peer.reqid += 1
            try:
                peer.sock.send_multipart(encode(type_name, peer.reqid, body, frames), zmq.NOBLOCK)
            except zmq.Again:
                pass
        # silence is all there is to see: a bounded wait, a healthy PING after it
        assert not peer.sock.poll(500), 'a refused peer got %r' % (peer.sock.recv_multipart(),)


class Answered(Case):
    """One request the protocol answers with a reply other than ERROR,
    which check(body) judges; nothing may change."""

    def __init__(self, kind, name, parts, reply, check, registered=False):
        super().__init__(kind, name)
        self.parts, self.reply, self.check, self.registered = parts, reply, check, registered

    def run(self, arena):
        peer = arena.peer()
        if self.registered:
            arena.register(peer, name=self.registered)
        before = arena.snapshot(peer)
        replies = arena.send_then_ping(peer, self.parts)
        assert [(r[0], r[1]) for r in replies] == [(self.reply, REQID)], replies
        assert self.check(replies[0][2]), replies[0][2]
        assert arena.snapshot(peer) == before, 'the request changed something'
        if self.registered:
            peer.send('BYE', {})


class Hostile(Case):
    """A conversation written by hand: fn(arena) does and checks it all."""

    def __init__(self, name, fn, kind='hostile'):
        super().__init__(kind, name)
        self.fn = fn

    def run(self, arena):
        self.fn(arena)


def hostile(name, kind='hostile'):
    def wrap(fn):
        Hostile(name, fn, kind)
        return fn
    return wrap


# --- headers and framing ----------------------------------------------------

for version in (0, 2, 255):
    Refused('header', 'PING with version %d header -> 505 version not spoken' % version,
            [raw_header(version=version), pack({})], 505,
            'protocol version %d not spoken' % version)
for size in range(8):
    Refused('header', 'header of %d bytes -> 400 bad header, reqid 0' % size,
            [raw_header()[:size], pack({})], 400, 'bad header frame', reqid=0)
Refused('header', 'header of 9 bytes -> 400 bad header, reqid 0',
        [raw_header() + b'\x00', pack({})], 400, 'bad header frame', reqid=0)
for magic in (b'XR', b'ar', b'RA', b'\x00\x00'):
    Refused('header', 'header magic %r -> 400 bad header, reqid 0' % magic,
            [raw_header(magic=magic), pack({})], 400, 'bad header frame', reqid=0)
for type_num in (0, 34, 39, 51, 63, 64, 128, 255):
    Refused('header', 'unknown message type %d -> 400 unknown type' % type_num,
            [raw_header(type_num=type_num), pack({})], 400,
            'unknown message type %d' % type_num)
BROKER_BODIES = {'ERROR': {'code': 400, 'reason': 'x'}, 'DONE': {'tasks': []},
                 'WELCOME': {'heartbeat_ms': 1, 'liveness_ms': 1}, 'STOP': {'tasks': []}}
for type_name in ('ERROR', 'PONG', 'SUBMITTED', 'STATUS_REPLY', 'LIST_REPLY', 'WATCHING', 'DONE',
                  'CANCEL_REPLY', 'RETRY_REPLY', 'STATS_REPLY', 'OK', 'EVENT', 'PEEK_REPLY',
                  'META_REPLY', 'SCHEDULE_REPLY', 'DELETE_REPLY', 'WELCOME', 'DISPATCH', 'STOP',
                  'RESULT_OK'):
    Refused('wrong sender', '%s sent to the broker -> 400 not a request the broker takes'
            % type_name, msg(type_name, BROKER_BODIES.get(type_name, {})), 400,
            '%s is not a request the broker takes' % type_name)
for type_name in ('PING', 'SUBMIT', 'RESULT'):
    Refused('framing', '%s without a body frame -> 400' % type_name,
            [header(type_name, REQID)], 400, '%s without a body frame' % type_name)
Refused('framing', 'PING with a payload frame -> 400 frames more than records own',
        msg('PING', {}, 1), 400, '1 frames more than the body')
Refused('framing', 'STATS with three payload frames -> 400 frames more than records own',
        msg('STATS', {}, 3), 400, '3 frames more than the body')
Refused('framing', 'SUBMIT of one task without its frame -> 400 frame missing',
        msg('SUBMIT', {'tasks': [{'name': 'x', 'queue': 'cat-framing'}]}, 0), 400,
        'tasks[0]: its frame is missing')
Refused('framing', 'SUBMIT of two tasks with one frame -> 400 frame missing',
        msg('SUBMIT', {'tasks': [{'name': 'x', 'queue': 'cat-framing'}] * 2}, 1), 400,
        'tasks[1]: its frame is missing')
Refused('framing', 'RESULT of two results with three frames -> 400 frames more',
        msg('RESULT', {'results': [{'id': 1, 'lease': 1}] * 2}, 3), 400,
        '1 frames more than the body')
Refused('framing', 'SCHEDULE list without its payload frame -> 400 frame missing',
        msg('SCHEDULE', {'op': 'list'}, 0), 400, 'its frame is missing')
Refused('framing', 'EMIT of one item without its frame -> 400 frame missing',
        msg('EMIT', {'items': [{'id': 1, 'lease': 1, 'queue': 'q'}]}, 0), 400,
        'items[0]: its frame is missing')

# --- bodies -----------------------------------------------------------------

for what, raw, reason in [
        ('an empty body', b'', 'body truncated'),
        ('an array body', pack([1, 2]), 'expected map, got array'),
        ('a nil body', pack(None), 'expected map, got nil'),
        ('an integer body', pack(5), 'expected map, got integer'),
        ('a string body', pack('{}'), 'expected map, got string'),
        ('a binary body', pack(b'\x80'), 'expected map, got binary'),
        ('a reserved 0xc1 byte body', b'\xc1', 'expected map, got unsupported type'),
        ('a float body', pack(1.5), 'expected map, got unsupported type'),
        ('an extension body', b'\xd4\x01\x00', 'expected map, got unsupported type'),
        ('a byte after the map', pack({}) + b'\x00', '1 bytes after the body'),
        ('two maps', pack({}) + pack({}), '1 bytes after the body'),
        ('an integer key', pack({1: 2}), 'expected string, got integer'),
        ('an unknown key', pack({'bogus': 1}), "unknown key 'bogus'"),
        ('an unknown key with control bytes', pack({'b\x01\n': 1}), "unknown key 'b..'"),
        ('a key that is a field of another request', pack({'ids': [1]}), "unknown key 'ids'")]:
    Refused('body', 'PING with %s -> 400 %s' % (what, reason), msg('PING', raw), 400, reason)
for type_name, body, reason in [
        ('SUBMIT', {}, "missing required key 'tasks'"),
        ('SUBMIT', {'tasks': [{}]}, "tasks[0]: missing required key 'name'"),
        ('STATUS', {}, "missing required key 'ids'"),
        ('WATCH', {}, "missing required key 'ids'"),
        ('QUEUE', {'queue': 'cat-body'}, "missing required key 'op'"),
        ('QUEUE', {'op': 'pause'}, "missing required key 'queue'"),
        ('LIMIT', {}, "missing required key 'name'"),
        ('PEEK', {}, "missing required key 'queue'"),
        ('META', {'key': 'k'}, "missing required key 'op'"),
        ('TAKE', {}, "missing required key 'queue'"),
        ('RESULT', {}, "missing required key 'results'"),
        ('RESULT', {'results': [{'id': 1}]}, "results[0]: missing required key 'lease'"),
        ('EMIT', {'items': [{'id': 1, 'lease': 1}]}, "items[0]: missing required key 'queue'"),
        ('REGISTER', {'held': [{'lease': 1}]}, "held[0]: missing required key 'id'"),
        ('SUBMIT', {'tasks': [{'name': 'x', 'bogus': 1}]}, "tasks[0]: unknown key 'bogus'"),
        ('SUBMIT', {'tasks': [{'name': 'x', 'after': [{'bogus': 1}]}]},
         "tasks[0].after[0]: unknown key 'bogus'"),
        ('SUBMIT', {'tasks': [{'name': 'x', 'payload': b'p'}]}, "tasks[0]: unknown key 'payload'"),
        ('SUBMIT', {'tasks': [5]}, 'tasks[0]: expected map, got integer'),
        ('REGISTER', {'handles': ['a', 5]}, 'handles[1]: expected string, got integer'),
        ('STATUS', {'ids': [1, 'two']}, 'ids: expected integer, got string'),
        ('CREDIT', {'queues': [None]}, 'queues[0]: expected string, got nil')]:
    frames = {'SUBMIT': len(body.get('tasks', [])), 'RESULT': len(body.get('results', [])),
              'EMIT': len(body.get('items', []))}.get(type_name, 0)
    Refused('body', '%s %s -> 400 %s' % (type_name, short(body), reason),
            msg(type_name, body, frames), 400, reason)
Refused('body', 'STATUS with its key given twice -> 400 key given twice',
        msg('STATUS', b'\x82\xa3ids\x91\x01\xa3ids\x91\x02'), 400, 'ids: key given twice')
Refused('body', 'SUBMIT task with name given twice -> 400 key given twice',
        msg('SUBMIT', b'\x81\xa5tasks\x91\x82\xa4name\xa1a\xa4name\xa1b', 1), 400,
        'tasks[0].name: key given twice')

# --- every field of every request: a wrong type, nil, out of range ---------

for type_name, (base, frames, fields) in REQUESTS.items():
    for path, kind, limit in fields:
        where = path_text(path)
        value, reason = WRONG[kind]
        Refused('wrong type', '%s %s of the wrong type -> 400 naming the field'
                % (type_name, where), msg(type_name, with_value(base, path, value), frames),
                400, '%s: %s' % (where, reason))
        Refused('nil', '%s %s nil -> 400 naming the field' % (type_name, where),
                msg(type_name, with_value(base, path, None), frames), 400,
                '%s: expected' % where, 'got nil')
        over = {U32: [1 << 32], I32: [1 << 31, -(1 << 31) - 1], U64: [-1]}.get(kind, [])
        for number in over:
            Refused('out of range', '%s %s = %d -> 400 out of range' % (type_name, where, number),
                    msg(type_name, with_value(base, path, number), frames), 400,
                    '%s: number out of range' % where)

# --- every limit just over ----------------------------------------------------

for type_name, (base, frames, fields) in REQUESTS.items():
    for path, kind, limit in fields:
        where = path_text(path)
        if kind in (STR, NAME):
            value = 'n' * (limit + 1)
            Refused('limit', '%s %s of %d bytes -> 413 over the %d-byte limit'
                    % (type_name, where, limit + 1, limit),
                    msg(type_name, with_value(base, path, value), frames), 413,
                    '%s: string of %d bytes, over the %d-byte limit' % (where, limit + 1, limit))
        elif kind == BIN:
            Refused('limit', '%s %s of %d bytes -> 413 over the limit'
                    % (type_name, where, limit + 1),
                    msg(type_name, with_value(base, path, b'b' * (limit + 1)), frames), 413,
                    '%s: %d bytes, over the %d-byte limit' % (where, limit + 1, limit))
        elif kind in (STRS, IDS, LIST):
            element = {STRS: b'\xa0', IDS: b'\x01', LIST: b'\x80'}[kind]
            n = limit + 1
            head = b'\xdc' + struct.pack('>H', n) if n < 65536 else b'\xdd' + struct.pack('>I', n)
            # the body with a marker where the list goes, then the list's bytes put in
            marked = pack(with_value(base, path, 'MARK-MARK'))
            raw = marked.replace(pack('MARK-MARK'), head + element * n)
            Refused('limit', '%s %s of %d elements -> 413 over the limit of %d'
                    % (type_name, where, n, limit), msg(type_name, raw, frames), 413,
                    '%s: %d elements, over the limit of %d' % (where, n, limit))
    for path, kind, limit in fields:
        if kind == STRS:
            where = path_text(path)
            Refused('limit', '%s %s[0] of 201 bytes -> 413 over the 200-byte limit'
                    % (type_name, where),
                    msg(type_name, with_value(base, path, ['n' * 201]), frames), 413,
                    '%s[0]: string of 201 bytes, over the 200-byte limit' % where)
for type_name, path, frames, where in [
        ('SUBMIT', ('tasks', 0), 1, 'tasks[0]: '), ('EMIT', ('items', 0), 1, 'items[0]: '),
        ('SCHEDULE', None, 1, '')]:
    base = REQUESTS[type_name][0]
    parts = msg(type_name, base, 0) + [b'x' * (MAX_PAYLOAD + 1)]
    Refused('limit', '%s payload frame of %d bytes -> 413 over the %d-byte limit'
            % (type_name, MAX_PAYLOAD + 1, MAX_PAYLOAD), parts, 413,
            '%sframe of %d bytes, over the %d-byte limit' % (where, MAX_PAYLOAD + 1, MAX_PAYLOAD))
Refused('limit', 'SUBMIT with the second of two payloads over the limit -> 413 naming tasks[1]',
        msg('SUBMIT', {'tasks': [{'name': 'a', 'queue': 'cat-limit'}] * 2}, 0)
        + [b'', b'x' * (MAX_PAYLOAD + 1)], 413, 'tasks[1]: frame of')

# --- names that are not printable UTF-8 -------------------------------------

NAME_PATHS = [(t, p, k) for t, (b, f, fields) in REQUESTS.items()
              for p, k, _ in fields if k in (NAME, STRS)]
for type_name, path, kind in NAME_PATHS:
    base, frames, _ = REQUESTS[type_name]
    where = path_text(path) + ('[0]' if kind == STRS else '')
    bad = 'abc\ndef'
    Refused('name', '%s %s with a newline -> 400 control character at byte 4' % (type_name, where),
            msg(type_name, with_value(base, path, [bad] if kind == STRS else bad), frames), 400,
            '%s: control character 0x0a at byte 4 (names are printable UTF-8)' % where)
for what, raw, reason in [
        ('a tab', b'a\tb', 'control character 0x09 at byte 2'),
        ('an escape sequence', b'\x1b[31mred', 'control character 0x1b at byte 1'),
        ('a DEL', b'ab\x7f', 'control character 0x7f at byte 3'),
        ('a C1 control U+0085', b'ab\xc2\x85', 'control character U+0085 at byte 3'),
        ('a C1 control U+009B', b'\xc2\x9b2J', 'control character U+009B at byte 1'),
        ('a stray continuation byte', b'ab\x80', 'invalid UTF-8 at byte 3'),
        ('a byte 0xff', b'\xff', 'invalid UTF-8 at byte 1'),
        ('an overlong slash', b'a\xc0\xafb', 'invalid UTF-8 at byte 2'),
        ('a surrogate', b'\xed\xa0\x80', 'invalid UTF-8 at byte 1'),
        ('a code point over U+10FFFF', b'\xf4\x90\x80\x80', 'invalid UTF-8 at byte 1'),
        ('a character cut short', b'abc\xe2\x82', 'invalid UTF-8 at byte 4'),
        ('a NUL byte', b'a\x00b', 'string holds a NUL byte')]:
    # a msgpack str of raw bytes (str 8 header), whatever they are
    name = b'\xd9' + bytes([len(raw)]) + raw
    body = pack({'tasks': [{'queue': 'cat-name', 'name': 'MARK-MARK'}]})
    body = body.replace(pack('MARK-MARK'), name)
    Refused('name', 'SUBMIT task name with %s -> 400 %s' % (what, reason),
            msg('SUBMIT', body, 1), 400, 'tasks[0].name: ' + reason)

# --- counts that lie --------------------------------------------------------

for what, type_name, raw, frames, reason in [
        ('a map of 2^32-1 entries', 'PING', b'\xdf\xff\xff\xff\xff', 0,
         'map of 4294967295 elements in 0 bytes'),
        ('a map of 65535 entries in 2 bytes', 'PING', b'\xde\xff\xff\xa0\x00', 0,
         'map of 65535 elements in 2 bytes'),
        ('a map of 3 entries holding 1', 'STATUS', b'\x83\xa3ids\x91\x01', 0,
         'body truncated'),
        ('ids of 2^32-1 elements', 'STATUS', b'\x81\xa3ids\xdd\xff\xff\xff\xff', 0,
         'ids: array of 4294967295 elements in 0 bytes'),
        ('ids of 3 elements holding 2', 'STATUS', b'\x81\xa3ids\x93\x01\x02', 0,
         'ids: array of 3 elements in 2 bytes'),
        ('tasks of 65535 elements holding 1', 'SUBMIT',
         b'\x81\xa5tasks\xdc\xff\xff\x81\xa4name\xa1a', 1,
         'tasks: array of 65535 elements in 8 bytes'),
        ('a task map of 65535 entries', 'SUBMIT', b'\x81\xa5tasks\x91\xde\xff\xff\xa4name\xa1a', 1,
         'tasks[0]: map of 65535 elements in 7 bytes'),
        ('a name of 2^32-1 bytes', 'SUBMIT', b'\x81\xa5tasks\x91\x81\xa4name\xdb\xff\xff\xff\xffab',
         1, 'tasks[0].name: string truncated'),
        ('a name of 255 bytes holding 2', 'SUBMIT', b'\x81\xa5tasks\x91\x81\xa4name\xd9\xffab', 1,
         'tasks[0].name: string truncated'),
        ('headers of 2^32-1 bytes', 'SUBMIT',
         b'\x81\xa5tasks\x91\x82\xa4name\xa1a\xa7headers\xc6\xff\xff\xff\xffxy', 1,
         'tasks[0].headers: binary truncated'),
        ('endpoints of 2^32-1 names', 'SUBMIT',
         b'\x81\xa5tasks\x91\x82\xa4name\xa1a\xa9endpoints\xdd\xff\xff\xff\xff\xa1a', 1,
         'tasks[0].endpoints: array of 4294967295 elements in 2 bytes'),
        ('handles of 65535 names', 'REGISTER', b'\x81\xa7handles\xdc\xff\xff\xa1a', 0,
         'handles: array of 65535 elements in 2 bytes'),
        ('held of 2^32-1 records', 'REGISTER', b'\x81\xa4held\xdd\xff\xff\xff\xff', 0,
         'held: array of 4294967295 elements in 0 bytes'),
        ('results of 2^32-1 records', 'RESULT', b'\x81\xa7results\xdd\xff\xff\xff\xff\x80', 1,
         'results: array of 4294967295 elements in 1 bytes'),
        ('a key of 2^32-1 bytes', 'PING', b'\x81\xdb\xff\xff\xff\xff\xa0', 0, 'string truncated'),
        ('a META value of 2^32-1 bytes', 'META',
         b'\x82\xa2op\xa3set\xa5value\xc6\xff\xff\xff\xff', 0, 'value: binary truncated'),
        ('a u64 cut after its type byte', 'STATUS', b'\x81\xa3ids\x91\xcf\x01', 0,
         'ids: body truncated')]:
    Refused('lying count', '%s %s -> 400 %s' % (type_name, what, reason),
            msg(type_name, raw, frames), 400, reason)

# --- valid messages cut at every byte ----------------------------------------

TRUNCATED = [
    ('SUBMIT', {'watch': True, 'tasks': [{
        'name': 'cut', 'queue': 'cat-cut', 'key': 'cut-1', 'priority': -5, 'retries': 2,
        'backoff_ms': 300000, 'headers': b'\x01\x02\x03', 'after': [{'id': 1, 'when': 2}]}]}, 1),
    ('REGISTER', {'name': 'w', 'slots': 4, 'held': [{'id': 1, 'lease': 1 << 40}],
                  'handles': ['a', 'bb']}, 0),
]
for type_name, body, frames in TRUNCATED:
    raw = pack(body)
    for cut in range(len(raw)):
        Refused('truncated', '%s body cut to %d of its %d bytes -> 400'
                % (type_name, cut, len(raw)), msg(type_name, raw[:cut], frames), 400)

# --- well formed but refused: the verbs' own checks ---------------------------

# today at 00:00 UTC: the cases' names hold it, and pytest-xdist's
# processes must collect the same names (tests/run_tests.py)
NOW_MS = int(time.time()) // 86400 * 86400 * 1000
for spec, code, reason in [
        ({'name': ''}, 422, 'tasks[0].name: must not be empty'),
        ({'name': 'x', 'queue': ''}, 422, 'tasks[0].queue: must not be empty'),
        ({'name': 'x', 'queue': 'a@b'}, 422, "tasks[0].queue: '@' is reserved"),
        ({'name': 'x', 'retries': 1001}, 422, 'tasks[0].retries: 1001 is over the limit of 1000'),
        ({'name': 'x', 'backoff': 3}, 422, 'tasks[0].backoff: unknown policy 3'),
        ({'name': 'x', 'backoff_ms': 30 * DAY_MS + 1}, 422, 'tasks[0].backoff_ms: '),
        ({'name': 'x', 'backoff_cap_ms': 30 * DAY_MS + 1}, 422, 'tasks[0].backoff_cap_ms: '),
        ({'name': 'x', 'delay_ms': 366 * DAY_MS + 1}, 422, 'tasks[0].delay_ms: '),
        ({'name': 'x', 'at_ms': NOW_MS + 368 * DAY_MS}, 422, 'more than a year ahead'),
        ({'name': 'x', 'at_ms': (1 << 64) - 1}, 422, 'tasks[0].at_ms: '),
        ({'name': 'x', 'at_ms': NOW_MS + DAY_MS, 'delay_ms': 1000}, 422,
         'tasks[0].at_ms and delay_ms: give one'),
        ({'name': 'x', 'timeout_ms': 30 * DAY_MS + 1}, 422, 'tasks[0].timeout_ms: '),
        ({'name': 'x', 'soft_timeout_ms': 30 * DAY_MS + 1}, 422, 'tasks[0].soft_timeout_ms: '),
        ({'name': 'x', 'timeout_ms': 1000, 'soft_timeout_ms': 1000}, 422,
         'soft_timeout_ms: 1000 is not below timeout_ms'),
        ({'name': 'x', 'retention_ms': 3660 * DAY_MS + 1}, 422, 'tasks[0].retention_ms: '),
        ({'name': 'x', 'input': 2}, 422, 'tasks[0].input: 2 is not 0'),
        ({'name': 'x', 'input': 1}, 422, 'exactly one on_success dependency'),
        ({'name': 'x', 'broadcast': True, 'endpoints': ['a']}, 422,
         'give endpoints or broadcast, not both'),
        ({'name': 'x', 'endpoints': ['ghost-worker']}, 422, "no worker named 'ghost-worker'"),
        ({'name': 'x', 'endpoints': [''], 'allow_unknown': True}, 422,
         "endpoints[0]: '' is not a worker name"),
        ({'name': 'x', 'endpoints': ['a@b'], 'allow_unknown': True}, 422,
         "endpoints[0]: 'a@b' is not a worker name"),
        ({'name': 'x', 'endpoints': ['a', 'a'], 'allow_unknown': True}, 422, "'a' is named twice"),
        ({'name': 'x', 'endpoints': ['a'], 'allow_unknown': True, 'after': [{'id': 1}]}, 422,
         'a fan-out task cannot have dependencies'),
        ({'name': 'x', 'broadcast': True, 'endpoint_timeout_ms': 30 * DAY_MS + 1}, 422,
         'tasks[0].endpoint_timeout_ms: over the limit'),
        ({'name': 'x', 'ref': 'a', 'after': [{'ref': 'zz'}]}, 422,
         "'a' waits for 'zz', which names no task in the set"),
        ({'name': 'x', 'ref': 'a', 'after': [{'id': 999999999}]}, 422,
         "waits for task 999999999, which does not exist"),
        ({'name': 'x', 'after': [{'id': 1, 'ref': 'a'}]}, 422, 'give a ref or an id, not both'),
        ({'name': 'x', 'after': [{}]}, 422, 'give a ref or an id, not both or neither'),
        ({'name': 'x', 'after': [{'id': 1, 'when': 3}]}, 422, 'when: 3 is not 0, 1 or 2'),
        ({'name': 'x', 'ref': 'a', 'after': [{'ref': 'a'}]}, 422, 'dependency cycle'),
]:
    spec = dict(spec, queue=spec.get('queue', 'cat-verbs'))
    Refused('verb check', 'SUBMIT task %s -> %d %s' % (short(spec), code, reason),
            msg('SUBMIT', {'tasks': [spec]}, 1), code, reason)
for body, frames, code, reason in [
        ({'flow_kind': 4, 'tasks': [{'name': 'x', 'queue': 'cat-verbs'}]}, 1, 422,
         'flow_kind: 4 is not 1 (dag), 2 (group) or 3 (pipe)'),
        ({'tasks': [{'name': 'x', 'queue': 'cat-verbs'}, {'name': 'y', 'queue': 'cat-verbs',
                                                           'retries': 5000}]}, 2, 422,
         'tasks[1].retries'),
        ({'tasks': [{'name': 'a', 'ref': 'a', 'queue': 'cat-verbs', 'after': [{'ref': 'b'}]},
                    {'name': 'b', 'ref': 'b', 'queue': 'cat-verbs', 'after': [{'ref': 'a'}]}]},
         2, 422, 'dependency cycle:'),
        ({'tasks': [{'name': 'a', 'ref': 'a', 'queue': 'cat-verbs'},
                    {'name': 'b', 'ref': 'a', 'queue': 'cat-verbs'}]}, 2, 422,
         'duplicate task names'),
        ({'tasks': [{'name': 'a', 'ref': 'a', 'queue': 'cat-verbs'},
                    {'name': 'b', 'queue': 'cat-verbs', 'after': [{'ref': 'a'}, {'ref': 'a'}]}]},
         2, 422, 'the same dependency is named twice')]:
    Refused('verb check', 'SUBMIT batch %s -> %d %s' % (short(body, 90), code, reason),
            msg('SUBMIT', body, frames), code, reason)
for type_name, body, code, reason in [
        ('LIST', {'state': 6}, 422, 'state: 6 is not a state a task rests in'),
        ('LIST', {'state': 10}, 422, 'state: 10 is not a state a task rests in'),
        ('CANCEL', {}, 400, 'give ids, a queue, a group or a flow'),
        ('CANCEL', {'group': 'no-such-group'}, 404, "group: no group named 'no-such-group'"),
        ('RETRY', {}, 400, 'give ids, a queue and all, a flow or a group'),
        ('RETRY', {'queue': 'cat-verbs'}, 400, 'give ids, a queue and all'),
        ('RETRY', {'flow': 999999999}, 404, 'flow: no flow 999999999'),
        ('RETRY', {'group': 'no-such-group'}, 404, "group: no group named 'no-such-group'"),
        ('DELETE', {}, 400, 'give ids, or a state, a queue or older_than_ms'),
        ('DELETE', {'ids': [1], 'state': 5}, 400, 'not both'),
        ('DELETE', {'ids': [1], 'after_id': 5}, 400, 'not both'),
        ('DELETE', {'state': 3}, 422, 'state: 3 is not a final state'),
        ('DELETE', {'queue': ''}, 422, 'queue: must not be empty'),
        ('QUEUE', {'queue': 'cat-verbs', 'op': 'explode'}, 422,
         "op: 'explode' is not pause, resume, purge, set, declare or delete"),
        ('QUEUE', {'queue': 'cat-verbs', 'op': 'set', 'on_failure': 'maybe'}, 422,
         "on_failure: 'maybe' is not retry, head or dead"),
        ('QUEUE', {'queue': 'cat-verbs', 'op': 'set', 'clear': ['colour']}, 422,
         "clear[0]: 'colour' is not a setting"),
        ('QUEUE', {'queue': 'cat-verbs', 'op': 'set', 'max_running': 5, 'clear': ['x']}, 422,
         "clear[0]: 'x' is not a setting"),
        ('QUEUE', {'queue': 'cat-verbs', 'op': 'set', 'retention_ms': 3660 * DAY_MS + 1}, 422,
         'retention_ms: over the limit'),
        ('QUEUE', {'queue': '', 'op': 'pause'}, 422, "queue: '' is not a queue name"),
        ('QUEUE', {'queue': '', 'op': 'purge'}, 422, "queue: '' is not a queue name"),
        ('QUEUE', {'queue': '', 'op': 'set', 'max_running': 3}, 422,
         "queue: '' is not a queue name"),
        ('QUEUE', {'queue': 'a@b', 'op': 'declare'}, 422, "queue: 'a@b' is not a queue name"),
        ('LIMIT', {'name': ''}, 422, 'name: must not be empty'),
        ('LIMIT', {'name': 'cat-verbs', 'max_running': 3, 'clear': ['speed']}, 422,
         "clear[0]: 'speed' is not a limit"),
        ('META', {'op': 'explode', 'key': 'k'}, 422,
         "op: 'explode' is not get, set, del, list or cas"),
        ('META', {'op': 'get'}, 400, 'key: required for get'),
        ('META', {'op': 'set', 'key': ''}, 400, 'key: required for set'),
        ('META', {'op': 'set', 'key': 'broker.epoch', 'value': b'1'}, 422,
         "'broker.', 'queue.' and 'limit.' keys are the broker's own"),
        ('META', {'op': 'del', 'key': 'broker.epoch'}, 422,
         "'broker.', 'queue.' and 'limit.' keys are the broker's own"),
        ('META', {'op': 'cas', 'key': 'queue.x', 'value': b'1'}, 422,
         "'broker.', 'queue.' and 'limit.' keys are the broker's own"),
        ('REGISTER', {'name': 'w', 'handles': ['a', '']}, 422, 'handles[1]: must not be empty')]:
    Refused('verb check', '%s %s -> %d %s' % (type_name, short(body), code, reason),
            msg(type_name, body), code, reason)
for body, code, reason in [
        ({'op': 'explode'}, 422, "op: 'explode' is not add, list, remove, pause or resume"),
        ({'op': 'add', 'name': 'cat-s', 'cron': '0 25 * * *', 'task': 't'}, 422,
         'cron: field 2 (hour): 25 is out of range 0-23'),
        ({'op': 'add', 'name': 'cat-s', 'cron': '0 0 30 2 *', 'task': 't'}, 422, 'cron: '),
        ({'op': 'add', 'name': 'cat-s', 'cron': '* * * *', 'task': 't'}, 422, 'cron: '),
        ({'op': 'add', 'name': 'cat-s', 'cron': '@daily', 'task': 't', 'zone': 'Mars/Olympus'},
         422, "zone: unknown time zone 'Mars/Olympus'"),
        ({'op': 'add', 'name': 'cat-s', 'cron': '@daily', 'task': 't', 'zone': '../../etc/passwd'},
         422, 'zone: '),
        ({'op': 'add', 'name': 'cat-s', 'cron': '@daily', 'task': 't', 'catch_up': 'some'},
         422, 'catch_up'),
        ({'op': 'add', 'name': 'cat-s', 'cron': '@daily', 'task': 't', 'retries': 1001}, 422,
         'retries: 1001 is over the limit'),
        ({'op': 'add', 'name': 'cat-s', 'cron': '@daily', 'task': 't', 'queue': 'a@b'}, 422,
         "'@' is reserved"),
        ({'op': 'add', 'name': 'cat-s', 'cron': '@daily'}, 422, 'task'),
        ({'op': 'add', 'cron': '@daily', 'task': 't'}, 422, 'name'),
        ({'op': 'remove', 'name': 'no-such-schedule'}, 404, "no schedule 'no-such-schedule'"),
        ({'op': 'pause', 'name': 'no-such-schedule'}, 404, "no schedule 'no-such-schedule'"),
        ({'op': 'pause', 'name': 'x', 'cron': '@daily'}, 422, 'op: pause takes a name only'),
        ({'op': 'remove'}, 422, 'name: 1 to 160 bytes')]:
    Refused('verb check', 'SCHEDULE %s -> %d %s' % (short(body), code, reason),
            msg('SCHEDULE', body, [b'']), code, reason)

# --- worker verbs in the wrong state ---------------------------------------------

for type_name, body, frames in [
        ('CREDIT', {'queues': ['cat-state'], 'credit': 5}, 0),
        ('TAKE', {'queue': 'cat-state', 'max': 5}, 0),
        ('RESULT', {'results': [{'id': GHOST, 'lease': 1}]}, 1),
        ('EMIT', {'items': [{'id': GHOST, 'lease': 1, 'queue': 'cat-state'}]}, 1),
        ('HEARTBEAT', {'busy': 1}, 0),
        ('BYE', {}, 0)]:
    Refused('wrong state', '%s before REGISTER -> 410 unknown worker' % type_name,
            msg(type_name, body, frames), 410, 'unknown worker: send REGISTER again')
Refused('wrong state', 'CREDIT of a new subscription naming no queue -> 400',
        msg('CREDIT', {'sub': 9, 'credit': 5}), 400,
        'queues: subscription 9 is new and names no queue', registered=True)
Refused('wrong state', 'CREDIT naming an empty queue -> 422',
        msg('CREDIT', {'queues': ['ok', ''], 'credit': 5}), 422, 'queues[1]: must not be empty',
        registered=True)
for body, frames in [
        ({'results': [{'id': 999999999, 'lease': 1}]}, 1),
        ({'results': [{'id': GHOST, 'lease': 0}]}, 1),
        ({'results': [{'id': (1 << 64) - 1, 'lease': (1 << 64) - 1, 'outcome': 1,
                       'error': 'x'}]}, 1),
        ({'results': [{'id': GHOST, 'lease': 1, 'outcome': 2}] * 50}, 50)]:
    late_result('wrong state', 'RESULT %s quoting no lease of its own' % short(body), body,
                frames)
for type_name, body, frames in [
        ('EMIT', {'items': [{'id': 999999999, 'lease': 1, 'queue': 'cat-state'}]}, 1),
        ('EMIT', {'items': [{'id': GHOST, 'lease': 0, 'queue': 'cat-state'}] * 50}, 50),
        ('HEARTBEAT', {'busy': (1 << 32) - 1}, 0)]:
    Dropped('wrong state', '%s %s quoting no lease of its own -> dropped without a reply'
            % (type_name, short(body)), msg(type_name, body, frames))


# --- ids that name no task, in every place an id goes -------------------------

for ghost in (0, 999999999, 1 << 63, (1 << 64) - 1):
    Answered('no such id', 'STATUS of id %d -> found false' % ghost,
             msg('STATUS', {'ids': [ghost]}), 'STATUS_REPLY',
             lambda b, g=ghost: [(t['id'], t.get('found', False)) for t in b['tasks']]
             == [(g, False)])
    Answered('no such id', 'WATCH of id %d -> unknown' % ghost,
             msg('WATCH', {'ids': [ghost]}), 'WATCHING',
             lambda b, g=ghost: b.get('watching', 0) == 0 and b['unknown'] == [g])
    for verb in ('CANCEL', 'RETRY', 'DELETE'):
        Answered('no such id', '%s of id %d -> 404 for that id' % (verb, ghost),
                 msg(verb, {'ids': [ghost]}), verb + '_REPLY',
                 lambda b, g=ghost: [(t['id'], t.get('code')) for t in b['tasks']] == [(g, 404)])
    Answered('no such id', 'REGISTER holding id %d -> welcome, nothing adopted' % ghost,
             msg('REGISTER', {'name': 'cat-ghost', 'held': [{'id': ghost, 'lease': 1 << 40}]}),
             'WELCOME', lambda b: not b.get('adopted'), registered='cat-ghost')
    late_result('no such id', 'RESULT for id %d' % ghost,
                {'results': [{'id': ghost, 'lease': 1}]}, 1)
    Dropped('no such id', 'EMIT for id %d -> dropped without a reply' % ghost,
            msg('EMIT', {'items': [{'id': ghost, 'lease': 1, 'queue': 'cat-ghost'}]}, 1))
    if ghost:
        Refused('no such id', 'SUBMIT after id %d -> 422 which does not exist' % ghost,
                msg('SUBMIT', {'tasks': [{'name': 'x', 'queue': 'cat-ghost',
                                          'after': [{'id': ghost}]}]}, 1), 422,
                'waits for task %d, which does not exist' % ghost)
    Refused('no such id', 'CANCEL of flow %d -> 404, nothing cancelled' % max(ghost, 1),
            msg('CANCEL', {'flow': max(ghost, 1)}), 404, 'flow: no flow %d' % max(ghost, 1))
    Answered('no such id', 'LIST after id %d -> only tasks past it' % ghost,
             msg('LIST', {'after_id': ghost, 'queue': 'healthy'}), 'LIST_REPLY',
             lambda b, g=ghost: all(t['id'] > g for t in b.get('tasks', [])))
    Answered('no such id', 'DELETE of the finished tasks after id %d -> only tasks past it'
             % ghost, msg('DELETE', {'state': 5, 'queue': 'cat-nothing-finished-here',
                                     'after_id': ghost}), 'DELETE_REPLY',
             lambda b: b.get('count', 0) == 0)
Refused('no such id', 'SUBMIT after id 0 -> 422 give a ref or an id',
        msg('SUBMIT', {'tasks': [{'name': 'x', 'queue': 'cat-ghost', 'after': [{'id': 0}]}]},
            1), 422, 'give a ref or an id, not both or neither')


# ---------------------------------------------------------------------------
# The arena: one broker for the whole catalogue, a healthy client beside it.

class Arena:
    """A broker, the healthy client beside it, and what the cases left.
    certs: the certificates of a broker with --curve (the healthy client
    is then an admin)."""

    def __init__(self, broker, certs=None):
        self.broker = broker
        self.certs = certs
        self.context = zmq.Context()
        self.healthy = Peer(broker.endpoint, self.context,
                            curve=certs.peer_keys(CURVE_NAMES['admin']) if certs else None)
        self.healthy_ids = {}   # client key -> task id
        self.peers = []
        self.rss = {}           # label -> RSS in KiB
        self.ran = []
        self.crashes = []       # (case, the end of its log) for each broker that died

    def close(self):
        for p in self.peers + [self.healthy]:
            p.close()
        self.context.term()

    def ensure_broker(self):
        """A broker that died (the case before failed for it) is recorded
        and started again on its journal, so that the other cases still
        tell what they test."""
        if self.broker.alive():
            return
        self.crashes.append((self.ran[-1] if self.ran else '?', self.broker.output()[-2000:]))
        self.broker.stop()
        self.broker = self.broker.restart()
        self.rss['start'] = self.rss_kib()

    def peer(self, role=None):
        """A fresh DEALER: its own connection and routing id; on the broker
        with --curve, with the certificate of role (admin if None)."""
        curve = None
        if self.certs and role != 'anonymous':
            curve = self.certs.peer_keys(CURVE_NAMES[role or 'admin'])
        elif role and not self.certs:
            raise AssertionError('a case with a role runs on the broker with --curve')
        p = Peer(self.broker.endpoint, self.context, curve=curve)
        p.role = role
        self.peers.append(p)
        return p

    def late(self, peer, parts, refused=None):
        """Sends a RESULT (or EMIT, HEARTBEAT) that takes nothing: a worker
        registered with acks gets RESULT_OK refusing the ids refused, and
        storing none; any other no reply at all."""
        replies = self.send_then_ping(peer, parts)
        if refused is None:
            assert replies == [], 'expected no reply, got %r' % (replies,)
            return
        reqid = struct.unpack('>I', parts[0][4:8])[0]
        assert [(r[0], r[1]) for r in replies] == [('RESULT_OK', reqid)], replies
        assert replies[0][2].get('refused') == refused, replies[0][2]
        assert not replies[0][2].get('stored'), replies[0][2]

    def drop_peers(self):
        for p in self.peers:
            p.close()
        self.peers = []

    def register(self, peer, queue=None, credit=0, name=None, **extra):
        body = dict(extra, name=name or 'cat-%s' % peer.sock.getsockopt(zmq.IDENTITY).hex()[:8])
        kind, _, welcome, _ = peer.request('REGISTER', body)
        assert kind == 'WELCOME', welcome
        if queue and credit:
            peer.send('CREDIT', {'queues': [queue], 'credit': credit})
        return welcome

    def send_then_ping(self, peer, parts, timeout=10.0):
        """Sends parts, then a PING on the same connection; returns the
        replies (ERROR or other) that came before the PONG, leaving out
        what the broker streams on its own (reqid 0 but ERROR). A peer
        whose certificate has no role gets 403 for its PING instead."""
        peer.send_raw(parts)
        # a reqid of its own, apart from the cases' (REQID) and the peer's
        peer.reqid += 1
        ping = PING_REQIDS + peer.reqid
        peer.send_raw(msg('PING', {}, reqid=ping))
        pong = ('ERROR', 403) if getattr(peer, 'role', None) == 'none' else ('PONG', None)
        replies = []
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            assert left > 0 and peer.sock.poll(int(left * 1000)), 'no PONG: the broker hangs'
            m = decode(peer.sock.recv_multipart())
            if m[1] == ping:
                assert (m[0], m[2].get('code')) == pong, m
                return replies
            if m[1] != 0 or m[0] == 'ERROR':
                replies.append(m)

    def snapshot(self, *peers):
        """What a refused request must not change: per queue its counts and
        settings, the broker's totals, the sessions of the given peers, the
        schedules and the metadata."""
        stats = self.stats()
        queues = sorted(
            (q['name'], tuple(q.get('counts', [])), q.get('paused', False),
             q.get('max_running', 0), q.get('rate_per_sec', 0), q.get('retention_ms', 0),
             q.get('on_failure')) for q in stats.get('queues', [])
            # an idle queue may be forgotten at any time
            if any(q.get('counts', [])) or q.get('paused') or q.get('max_running')
            or q.get('rate_per_sec') or q.get('retention_ms') or q.get('on_failure'))
        ids = {identity(p) for p in peers}
        workers = sorted((w['identity'], w.get('name'), w.get('slots', 0), w.get('credit', 0),
                          w.get('busy', 0), tuple(w.get('queues', [])))
                         for w in stats.get('workers', []) if w['identity'] in ids)
        totals = (stats.get('submitted', 0), stats.get('dispatched', 0),
                  tuple(stats.get('finished', [])))
        kind, _, sch, _ = self.healthy.request('SCHEDULE', {'op': 'list'}, [b''], timeout=10)
        assert kind == 'SCHEDULE_REPLY', sch
        schedules = sorted((s['name'], s.get('paused', False), s.get('cron'))
                           for s in sch.get('schedules', []))
        kind, _, meta, _ = self.healthy.request('META', {'op': 'list'}, timeout=10)
        assert kind == 'META_REPLY', meta
        items = sorted((i['key'], i.get('value', b'')) for i in meta.get('items', []))
        return queues, workers, totals, schedules, items

    def stats(self):
        """STATS, every page of queues and of workers in one reply."""
        pages = {'queues': [], 'workers': []}
        ask, more = {}, {'queues': True, 'workers': True}
        while True:
            kind, _, stats, _ = self.healthy.request('STATS', dict(ask), timeout=10)
            assert kind == 'STATS_REPLY', stats
            for key, flag, after, name in (('queues', 'more', 'after', 'name'),
                                           ('workers', 'more_workers', 'after_worker',
                                            'identity')):
                if more[key]:
                    got = stats.get(key, [])
                    pages[key] += got
                    more[key] = stats.get(flag, False)
                    if got:
                        ask[after] = got[-1][name]
            if not more['queues'] and not more['workers']:
                return dict(stats, **pages)

    def knows_queue(self, name):
        """Whether the broker holds a queue of this name (listed or not)."""
        kind, _, stats, _ = self.healthy.request('STATS', {'queue': name}, timeout=10)
        return bool(stats.get('queues'))

    def healthy_turn(self, n):
        """The healthy client is served: PING answered, and a keyed task
        submitted (all run at the end)."""
        started = time.time()
        kind, _, body, _ = self.healthy.request('PING', {}, timeout=10)
        assert kind == 'PONG', body
        assert time.time() - started < 5, 'PING took %.1f s' % (time.time() - started)
        key = 'healthy-%d' % n
        kind, _, body, _ = self.healthy.request(
            'SUBMIT', {'tasks': [{'name': 'healthy', 'queue': 'healthy', 'key': key}]},
            [key.encode()], timeout=10)
        assert kind == 'SUBMITTED', body
        self.healthy_ids[key] = body['tasks'][0]['id']
        assert self.broker.alive(), 'arbiterd died:\n' + self.broker.output()[-3000:]

    def rss_kib(self):
        with open('/proc/%d/status' % self.broker.pid) as f:
            return int([line for line in f if line.startswith('VmRSS:')][0].split()[1])

    # helpers of the hostile cases

    def submit(self, tasks, client=None, **body):
        specs = [{k: v for k, v in t.items() if k != 'payload'} for t in tasks]
        kind, _, reply, _ = (client or self.healthy).request(
            'SUBMIT', dict(body, tasks=specs), [t.get('payload', b'') for t in tasks])
        assert kind == 'SUBMITTED', reply
        return [t['id'] for t in reply['tasks']]

    def ended(self, ids, state=5, what='done'):
        """Waits until every task of ids is in state (succeeded by default);
        returns their STATUS records by id."""
        def reached():
            records = self.status(ids)
            return records if all(t.get('state') == state for t in records.values()) else None
        return wait_until(reached, what=what)

    def worker(self, **register):
        """A fresh peer, registered (register: its REGISTER's fields)."""
        w = self.peer()
        self.register(w, **register)
        return w

    def one_leased(self, queue, **register):
        """A task submitted to queue and leased to a fresh worker (register:
        more of its REGISTER): (the task's id, the worker, its DISPATCH
        record)."""
        [tid] = self.submit([{'name': 't', 'queue': queue}])
        w = self.peer()
        self.register(w, queue, 1, **register)
        [task] = self.dispatched(w, 1)
        return tid, w, task

    def status(self, ids):
        kind, _, body, _ = self.healthy.request('STATUS', {'ids': list(ids)}, timeout=10)
        assert kind == 'STATUS_REPLY', body
        return {t['id']: t for t in body['tasks']}

    def counts(self, queue):
        kind, _, stats, _ = self.healthy.request('STATS', {'queue': queue}, timeout=10)
        for q in stats.get('queues', []):
            if q['name'] == queue:
                return q.get('counts', [])
        return []

    def dispatched(self, peer, want, timeout=5.0):
        """want tasks dispatched to peer (DISPATCH messages of reqid 0)."""
        got = []
        deadline = time.time() + timeout
        while len(got) < want:
            left = max(0.1, deadline - time.time())
            kind, _, body, frames = peer.next_of('DISPATCH', timeout=left)
            for t, f in zip(body.get('tasks', []), frames):
                got.append(dict(t, payload=f))
        return got

    def quiet(self, peer, seconds=0.3):
        """No DISPATCH reaches peer within seconds (after a full turn)."""
        peer.request('PING', {})
        try:
            kind, _, body, _ = peer.next_of('DISPATCH', timeout=seconds)
        except TimeoutError:
            return True
        raise AssertionError('unexpected DISPATCH %r' % (body,))

    def finish(self, ids):
        """Cancels what is left of ids (a case leaves nothing running)."""
        self.healthy.request('CANCEL', {'ids': list(ids)})


# ---------------------------------------------------------------------------
# Hostile conversations


def hostile_acks(name, kind='hostile'):
    """A conversation whose worker sends RESULTs that take nothing, run
    twice: fn(arena, acks) by a worker without acks (no reply) and by one
    with acks (RESULT_OK refusing them)."""
    def wrap(fn):
        Hostile(name + ' [worker without acks: no reply]', lambda arena: fn(arena, False), kind)
        Hostile(name + ' [worker with acks: RESULT_OK refused]', lambda arena: fn(arena, True),
                kind)
        return fn
    return wrap


def refused_if(acks, ids):
    """What Arena.late expects: the ids refused, for a worker with acks."""
    return list(ids) if acks else None


@hostile_acks('RESULT for another worker\'s lease -> refused; the task stays with its owner')
def _(arena, acks):
    q = 'cat-h-steal-%d' % acks
    [tid] = arena.submit([{'name': 't', 'queue': q, 'payload': b'p'}])
    owner, thief = arena.peer(), arena.peer()
    arena.register(owner, q, 1, name='owner')
    [task] = arena.dispatched(owner, 1)
    arena.register(thief, name='thief', acks=acks)
    before = arena.snapshot(owner, thief)
    for outcome in (0, 1, 2):
        arena.late(thief, msg('RESULT', {'results': [
            {'id': tid, 'lease': task['lease'], 'outcome': outcome, 'error': 'stolen'}]},
            [b'stolen']), refused_if(acks, [tid]))
    assert arena.snapshot(owner, thief) == before
    info = arena.status([tid])[tid]
    assert info['state'] == 4 and info['worker'] == 'owner', info
    owner.send('RESULT', {'results': [{'id': tid, 'lease': task['lease']}]}, [b'mine'])
    arena.ended([tid], what='owner result kept')
    assert arena.status([tid])[tid]['result'] == b'mine'
    owner.send('BYE', {})
    thief.send('BYE', {})


@hostile_acks('RESULT and REGISTER held quoting a made-up lease for a ready task -> '
              'nothing taken, nothing finished')
def _(arena, acks):
    q = 'cat-h-madeup-%d' % acks
    [tid] = arena.submit([{'name': 't', 'queue': q}])
    stranger, worker = arena.peer(), arena.peer()
    arena.register(worker, name='madeup', acks=acks)
    before = arena.snapshot(stranger, worker)
    # not registered: 410, and the result is not kept
    replies = arena.send_then_ping(stranger, msg('RESULT', {'results': [
        {'id': tid, 'lease': 1}]}, [b'forged']))
    assert [(r[0], r[2]['code']) for r in replies] == [('ERROR', 410)], replies
    epoch = arena.broker.epoch
    for lease in (1, (1 << 40) - 1, (epoch << 40) | 999999, ((epoch + 1) << 40) | 1):
        for outcome in (0, 1, 2):
            arena.late(worker, msg('RESULT', {'results': [
                {'id': tid, 'lease': lease, 'outcome': outcome}]}, [b'forged']),
                refused_if(acks, [tid]))
        kind, _, welcome, _ = worker.request('REGISTER', {
            'name': 'madeup', 'held': [{'id': tid, 'lease': lease}], 'acks': acks})
        assert kind == 'WELCOME' and not welcome.get('adopted'), (lease, welcome)
    assert arena.snapshot(stranger, worker) == before
    info = arena.status([tid])[tid]
    assert info['state'] == 3 and info.get('attempts', 0) == 0 and not info.get('result'), info
    arena.finish([tid])
    worker.send('BYE', {})


@hostile_acks('RESULT with a lease of an ended attempt (released) -> refused; the new one '
              'counts')
def _(arena, acks):
    q = 'cat-h-stale-%d' % acks
    tid, w, first = arena.one_leased(q, acks=acks)
    w.send('RESULT', {'results': [{'id': tid, 'lease': first['lease'], 'outcome': 2}]}, [b''])
    w.send('CREDIT', {'credit': 1})
    [second] = arena.dispatched(w, 1)
    assert second['lease'] != first['lease']
    arena.late(w, msg('RESULT', {'results': [{'id': tid, 'lease': first['lease']}]}, [b'old']),
               refused_if(acks, [tid]))
    assert arena.status([tid])[tid]['state'] == 4
    w.send('RESULT', {'results': [{'id': tid, 'lease': second['lease']}]}, [b'new'])
    arena.ended([tid], what='new lease kept')
    assert arena.status([tid])[tid]['result'] == b'new'
    w.send('BYE', {})


@hostile_acks('RESULT after the task was cancelled (STOP sent) -> refused; it stays cancelled')
def _(arena, acks):
    q = 'cat-h-stop-%d' % acks
    tid, w, task = arena.one_leased(q, acks=acks)
    kind, _, body, _ = arena.healthy.request('CANCEL', {'ids': [tid]})
    assert body['tasks'][0]['state'] == 8
    kind, _, stop, _ = w.next_of('STOP')
    assert stop['tasks'][0]['id'] == tid and stop['tasks'][0]['reason'] == 2
    arena.late(w, msg('RESULT', {'results': [{'id': tid, 'lease': task['lease']}]}, [b'late']),
               refused_if(acks, [tid]))
    info = arena.status([tid])[tid]
    assert info['state'] == 8 and not info.get('result'), info
    w.send('BYE', {})


@hostile_acks('RESULT naming the same task twice, then again -> the first counts, the others '
              'are refused')
def _(arena, acks):
    q = 'cat-h-twice-%d' % acks
    tid, w, task = arena.one_leased(q, acks=acks)
    r = {'id': tid, 'lease': task['lease']}
    replies = arena.send_then_ping(w, msg('RESULT', {'results': [r, dict(r, outcome=1)]},
                                          [b'first', b'']))
    if acks:
        assert [(m[0], m[2].get('stored'), m[2].get('refused')) for m in replies] == [
            ('RESULT_OK', [tid], [tid])], replies
    else:
        assert replies == []
    info = arena.status([tid])[tid]
    assert info['state'] == 5 and info['result'] == b'first', info
    # the same RESULT again: its lease ended with the first outcome
    arena.late(w, msg('RESULT', {'results': [r]}, [b'again']), refused_if(acks, [tid]))
    assert arena.status([tid])[tid]['result'] == b'first'
    w.send('BYE', {})


@hostile('HEARTBEAT busy 0 twice in a row from a worker with acks that holds a lease -> '
         '410; the task back in its queue, claimed again by the same worker')
def _(arena):
    q = 'cat-h-busy'
    who = {'name': 'cat-busy', 'pid': 4242, 'host': 'cat-host'}
    tid, w, task = arena.one_leased(q, acks=True, **who)
    # honest heartbeats (the lease is older than the heartbeat before last
    # after the third), then one lie is let pass, the second in a row is not
    for _ in range(3):
        arena.late(w, msg('HEARTBEAT', {'busy': 1}))
    arena.late(w, msg('HEARTBEAT', {'busy': 0}))
    replies = arena.send_then_ping(w, msg('HEARTBEAT', {'busy': 0}))
    assert [(r[0], r[2]['code']) for r in replies] == [('ERROR', 410)], replies
    assert 'your leases are out of step' in replies[0][2]['reason']
    info = arena.status([tid])[tid]
    assert info['state'] == 3 and not info.get('lost'), info
    # the session is gone: its next verb is 410 too
    replies = arena.send_then_ping(w, msg('CREDIT', {'credit': 1}))
    assert [(r[0], r[2]['code']) for r in replies] == [('ERROR', 410)], replies
    # the same worker claims its lease, and its result under the new one is stored
    welcome = arena.register(w, acks=True, held=[{'id': tid, 'lease': task['lease']}], **who)
    [adopted] = welcome['adopted']
    assert adopted['id'] == tid and adopted['lease'] != task['lease'], welcome
    kind, _, ok, _ = w.request('RESULT', {'results': [{'id': tid, 'lease': adopted['lease']}]},
                               [b'kept'])
    assert kind == 'RESULT_OK' and ok.get('stored') == [tid], ok
    info = arena.status([tid])[tid]
    assert info['state'] == 5 and info['result'] == b'kept', info
    w.send('BYE', {})


@hostile('HEARTBEAT busy 0 from a worker without acks that holds a lease -> not checked: '
         'no reply, the lease stays')
def _(arena):
    q = 'cat-h-busy-old'
    tid, w, task = arena.one_leased(q)
    for _ in range(6):
        arena.late(w, msg('HEARTBEAT', {'busy': 0}))
    assert arena.status([tid])[tid]['state'] == 4
    w.send('RESULT', {'results': [{'id': tid, 'lease': task['lease']}]}, [b''])
    arena.ended([tid])
    w.send('BYE', {})


@hostile('RESULT with an unknown outcome 7 -> the attempt fails, nothing else')
def _(arena):
    q = 'cat-h-outcome'
    tid, w, task = arena.one_leased(q)
    assert arena.send_then_ping(w, msg('RESULT', {'results': [
        {'id': tid, 'lease': task['lease'], 'outcome': 7}]}, [b''])) == []
    info = arena.status([tid])[tid]
    assert info['state'] == 7 and 'unknown outcome' in info['error'], info
    w.send('BYE', {})


@hostile('RESULT error that is not UTF-8 -> the task fails; STATUS and DONE stay readable')
def _(arena):
    q = 'cat-h-error-bytes'
    watcher = arena.peer()
    [tid] = arena.submit([{'name': 't', 'queue': q}], client=watcher, watch=True)
    w = arena.peer()
    arena.register(w, q, 1)
    [task] = arena.dispatched(w, 1)
    body = pack({'results': [{'id': tid, 'lease': task['lease'], 'outcome': 1,
                              'error': 'MARK-MARK'}]})
    body = body.replace(pack('MARK-MARK'), b'\xd9\x08bad \xff\xfe\xc3!')
    assert arena.send_then_ping(w, msg('RESULT', body, [b''])) == []
    kind, _, done, _ = watcher.next_of('DONE')  # decodes as UTF-8, or raises
    assert done['tasks'][0]['state'] == 7 and done['tasks'][0]['error'].startswith('bad ')
    info = arena.status([tid])[tid]
    assert info['state'] == 7 and info['error'].startswith('bad '), info
    w.send('BYE', {})


@hostile('RESULT over --max-payload fails only its own task; the others of the message count')
def _(arena):
    q = 'cat-h-bigresult'
    ids = arena.submit([{'name': 't', 'queue': q}, {'name': 't', 'queue': q}])
    w = arena.peer()
    arena.register(w, q, 2)
    tasks = arena.dispatched(w, 2)
    by_id = {t['id']: t for t in tasks}
    big, small = ids
    assert arena.send_then_ping(w, msg('RESULT', {'results': [
        {'id': big, 'lease': by_id[big]['lease']},
        {'id': small, 'lease': by_id[small]['lease']}]},
        [b'x' * (MAX_PAYLOAD + 1), b'ok'])) == []
    st = arena.status(ids)
    assert st[big]['state'] == 7, st[big]
    assert st[big]['error'] == 'result of %d bytes is over the %d-byte limit' % (
        MAX_PAYLOAD + 1, MAX_PAYLOAD)
    assert st[small]['state'] == 5 and st[small]['result'] == b'ok'
    w.send('BYE', {})


@hostile('EMIT for a task not leased, or under a lease not its own -> dropped, never enqueued')
def _(arena):
    q, out = 'cat-h-emit', 'cat-h-emit-out'
    [tid, other] = arena.submit([{'name': 't', 'queue': q}, {'name': 't', 'queue': 'cat-h-emit2'}])
    owner, thief = arena.peer(), arena.peer()
    arena.register(owner, q, 1, name='emit-owner')
    [task] = arena.dispatched(owner, 1)
    arena.register(thief, name='emit-thief')
    before = arena.snapshot(owner, thief)
    for sender, item in [
            (thief, {'id': tid, 'lease': task['lease']}),        # another worker's lease
            (owner, {'id': tid, 'lease': task['lease'] + 1}),    # a lease that is not the task's
            (owner, {'id': other, 'lease': task['lease']}),      # a ready task, not leased
            (owner, {'id': 999999999, 'lease': task['lease']}),  # no such task
    ]:
        replies = arena.send_then_ping(sender, msg('EMIT', {'items': [
            dict(item, queue=out, name='routed')]}, [b'bad']))
        assert replies == []
    assert arena.snapshot(owner, thief) == before
    # the owner's own item is the only one that enters, with its success
    owner.send('EMIT', {'items': [{'id': tid, 'lease': task['lease'], 'queue': out}]}, [b'good'])
    owner.send('RESULT', {'results': [{'id': tid, 'lease': task['lease']}]}, [b''])
    arena.ended([tid], what='emitting task done')
    counts = arena.counts(out)
    assert counts and counts[3] == 1 and sum(counts) == 1, counts
    kind, _, body, frames = arena.healthy.request('PEEK', {'queue': out, 'max': 10})
    assert frames == [b'good']
    arena.healthy.request('QUEUE', {'queue': out, 'op': 'purge'})
    arena.finish([other])
    owner.send('BYE', {})
    thief.send('BYE', {})


@hostile('EMIT to an empty queue or an endpoint queue -> the success is refused as a failure')
def _(arena):
    q = 'cat-h-emit-bad'
    tid, w, task = arena.one_leased(q)
    w.send('EMIT', {'items': [{'id': tid, 'lease': task['lease'], 'queue': 'x@y'}]}, [b''])
    w.send('RESULT', {'results': [{'id': tid, 'lease': task['lease']}]}, [b''])
    arena.ended([tid], 7, what='refused routing')
    assert 'routed items were refused' in arena.status([tid])[tid]['error']
    w.send('BYE', {})


@hostile('CREDIT with absurd numbers never puts more tasks in flight than the credit given')
def _(arena):
    q = 'cat-h-credit'
    ids = arena.submit([{'name': 't', 'queue': q} for _ in range(3)])
    w = arena.worker()
    w.send('CREDIT', {'queues': [q], 'credit': -(1 << 31)})
    assert arena.quiet(w)
    w.send('CREDIT', {'credit': (1 << 31) - 1})    # -1 in all
    assert arena.quiet(w)
    w.send('CREDIT', {'credit': 2})                # 1 in all
    got = arena.dispatched(w, 1)
    assert arena.quiet(w)
    # a second subscription with the largest credit and sub number takes the rest, no more
    w.send('CREDIT', {'sub': (1 << 32) - 1, 'queues': [q], 'credit': (1 << 31) - 1})
    got += arena.dispatched(w, 2)
    assert sorted(t['id'] for t in got) == sorted(ids)
    for _ in range(3):  # credit past the cap is not counted
        w.send('CREDIT', {'sub': (1 << 32) - 1, 'credit': (1 << 31) - 1})
    # its own PING's answer says its CREDITs were taken: the broker takes
    # one message from each peer in turn, so another peer's STATS may come
    # between them
    w.request('PING', {})
    stats = arena.stats()
    me = identity(w)
    [worker] = [x for x in stats['workers'] if x['identity'] == me]
    assert worker['busy'] == 3
    assert worker['credit'] == 100000, worker  # one subscription's credit is capped
    w.send('RESULT', {'results': [{'id': t['id'], 'lease': t['lease']} for t in got]},
           [b''] * 3)
    arena.ended(ids)
    w.send('CREDIT', {'sub': (1 << 32) - 1, 'cancel': True})
    w.send('CREDIT', {'sub': 0, 'cancel': True})
    w.send('CREDIT', {'sub': 12345, 'cancel': True})  # a subscription it never had
    assert arena.send_then_ping(w, msg('HEARTBEAT', {})) == []
    w.send('BYE', {})


@hostile('TAKE with max 4 billion leases what there is, at once')
def _(arena):
    q = 'cat-h-take'
    ids = arena.submit([{'name': 't', 'queue': q} for _ in range(5)])
    w = arena.worker()
    started = time.time()
    kind, _, body, frames = w.request('TAKE', {'queue': q, 'max': (1 << 32) - 1})
    assert kind == 'DISPATCH' and len(body['tasks']) == 5 and len(frames) == 5
    kind, _, empty, _ = w.request('TAKE', {'queue': q, 'max': (1 << 32) - 1})
    assert kind == 'DISPATCH' and not empty.get('tasks')
    assert time.time() - started < 5
    w.send('RESULT', {'results': [{'id': t['id'], 'lease': t['lease']} for t in body['tasks']]},
           [b''] * 5)
    arena.ended(ids)
    w.send('BYE', {})


@hostile('PEEK and LIST with max and limit 4 billion answer a bounded page')
def _(arena):
    q = 'cat-h-peek'
    ids = arena.submit([{'name': 't', 'queue': q} for _ in range(3)])
    kind, _, body, frames = arena.healthy.request('PEEK', {'queue': q, 'max': (1 << 32) - 1})
    assert kind == 'PEEK_REPLY' and len(body['tasks']) == 3
    kind, _, body, _ = arena.healthy.request('LIST', {'queue': q, 'limit': (1 << 32) - 1})
    assert kind == 'LIST_REPLY' and len(body['tasks']) == 3
    kind, _, body, _ = arena.healthy.request('LIST', {'after_id': (1 << 64) - 1})
    assert kind == 'LIST_REPLY' and not body.get('tasks')
    arena.finish(ids)


@hostile('ids of tasks that do not exist: STATUS not found, WATCH unknown, CANCEL/RETRY/DELETE 404')
def _(arena):
    ghost = [999999990, (1 << 64) - 1, 0]
    before = arena.snapshot()
    kind, _, body, _ = arena.healthy.request('STATUS', {'ids': ghost})
    assert kind == 'STATUS_REPLY' and [t['id'] for t in body['tasks']] == ghost
    assert not any(t.get('found') for t in body['tasks'])
    p = arena.peer()
    kind, _, body, _ = p.request('WATCH', {'ids': ghost})
    assert kind == 'WATCHING' and body.get('watching', 0) == 0 and body['unknown'] == ghost
    for verb, reply in (('CANCEL', 'CANCEL_REPLY'), ('RETRY', 'RETRY_REPLY'),
                        ('DELETE', 'DELETE_REPLY')):
        kind, _, body, _ = p.request(verb, {'ids': ghost})
        assert kind == reply, body
        assert [(t['id'], t.get('code')) for t in body['tasks']] == [(i, 404) for i in ghost]
    assert arena.snapshot() == before


@hostile('verbs in the wrong state: CANCEL done 409, RETRY running 409, DELETE running 409')
def _(arena):
    q = 'cat-h-state'
    [done, running] = arena.submit([{'name': 'a', 'queue': q}, {'name': 'b', 'queue': q}])
    w = arena.peer()
    arena.register(w, q, 1, handles=['a'])
    [task] = arena.dispatched(w, 1)
    w.send('RESULT', {'results': [{'id': done, 'lease': task['lease']}]}, [b''])
    arena.ended([done], what='a done')
    w.send('BYE', {})
    w2 = arena.peer()
    arena.register(w2, q, 1, handles=['b'])
    [task2] = arena.dispatched(w2, 1)
    before = arena.snapshot(w2)
    for verb, ids, code, state in [('CANCEL', [done], 409, 5), ('RETRY', [running], 409, 4),
                                   ('RETRY', [done], 409, 5), ('DELETE', [running], 409, 4)]:
        kind, _, body, _ = arena.healthy.request(verb, {'ids': ids})
        assert (body['tasks'][0]['code'], body['tasks'][0]['state']) == (code, state), (verb, body)
    assert arena.snapshot(w2) == before
    w2.send('RESULT', {'results': [{'id': running, 'lease': task2['lease']}]}, [b''])
    arena.ended([running], what='b done')
    w2.send('BYE', {})


@hostile('SCHEDULE add of a name that exists -> 409, the first unchanged')
def _(arena):
    p = arena.peer()
    add = {'op': 'add', 'name': 'cat-h-sched', 'cron': '0 0 1 1 *', 'task': 't',
           'queue': 'cat-h-sched'}
    kind, _, body, _ = p.request('SCHEDULE', add, [b'first'])
    assert kind == 'SCHEDULE_REPLY', body
    before = arena.snapshot()
    kind, _, body, _ = p.request('SCHEDULE', dict(add, cron='@hourly'), [b'second'])
    assert kind == 'ERROR' and body['code'] == 409 and 'exists already' in body['reason']
    assert arena.snapshot() == before
    kind, _, body, _ = p.request('SCHEDULE', {'op': 'remove', 'name': 'cat-h-sched'}, [b''])
    assert kind == 'SCHEDULE_REPLY'


@hostile('BYE twice -> the second gets 410; a REGISTER after it is welcome again')
def _(arena):
    w = arena.worker()
    assert arena.send_then_ping(w, msg('BYE', {})) == []
    replies = arena.send_then_ping(w, msg('BYE', {}))
    assert [(r[0], r[2]['code']) for r in replies] == [('ERROR', 410)]
    arena.register(w)
    w.send('BYE', {})


@hostile('names printable in many scripts are accepted (the positive control of the name rule)')
def _(arena):
    name = 'Zürich-東京-Москва-🚀'
    [tid] = arena.submit([{'name': name, 'queue': 'cat-h-' + name, 'key': name + '-k'}])
    info = arena.status([tid])[tid]
    assert info['name'] == name and info['queue'] == 'cat-h-' + name
    arena.finish([tid])


@hostile('a name of exactly 200 bytes is accepted; 201 is refused (the limit is exact)')
def _(arena):
    q = 'cat-h-200'
    name = 'é' * 100
    assert len(name.encode()) == 200
    [tid] = arena.submit([{'name': name, 'queue': q}])
    assert arena.status([tid])[tid]['name'] == name
    kind, _, body, _ = arena.healthy.request('SUBMIT', {'tasks': [{'name': name + 'x',
                                                                    'queue': q}]}, [b''])
    assert kind == 'ERROR' and body['code'] == 413
    arena.finish([tid])


@hostile('a DAG with a long cycle of long names -> 422 whose reason is valid UTF-8, cut short')
def _(arena):
    # the reason lists the cycle's names; cut at the 4096-byte limit it must
    # still be UTF-8 that a peer can decode (Python's msgpack refuses it else)
    for pad in range(3):
        refs = ['%s%03d%s' % ('r' * pad, i, '€' * 64) for i in range(40)]
        tasks = [{'name': 'c', 'queue': 'cat-h-cycle', 'ref': r,
                  'after': [{'ref': refs[(i + 1) % len(refs)]}]} for i, r in enumerate(refs)]
        kind, _, body, _ = arena.healthy.request('SUBMIT', {'tasks': tasks, 'flow_kind': 1},
                                                 [b''] * len(tasks))
        assert kind == 'ERROR' and body['code'] == 422, body
        assert body['reason'].startswith('dependency cycle:'), body['reason'][:80]
        assert len(body['reason'].encode()) <= 4096


@hostile('reasons echo what a peer sent: bytes that are not UTF-8 come back as valid UTF-8')
def _(arena):
    p = arena.peer()
    for type_name, field, body, frames in [
            ('QUEUE', 'op', {'queue': 'cat-h-echo', 'op': 'MARK-MARK'}, 0),
            ('QUEUE', 'on_failure', {'queue': 'cat-h-echo', 'op': 'set',
                                     'on_failure': 'MARK-MARK'}, 0),
            ('META', 'op', {'op': 'MARK-MARK', 'key': 'k'}, 0),
            ('SCHEDULE', 'op', {'op': 'MARK-MARK'}, 1),
            ('SCHEDULE', 'zone', {'op': 'add', 'name': 'x', 'cron': '@daily', 'task': 't',
                                  'zone': 'MARK-MARK'}, 1),
            ('SCHEDULE', 'catch_up', {'op': 'add', 'name': 'x', 'cron': '@daily', 'task': 't',
                                      'catch_up': 'MARK-MARK'}, 1),
            ('SCHEDULE', 'cron', {'op': 'add', 'name': 'x', 'cron': 'MARK-MARK', 'task': 't'}, 1)]:
        raw = pack(body).replace(pack('MARK-MARK'), b'\xa6\xff\xfe\xc3(\xe2\x82')
        replies = arena.send_then_ping(p, msg(type_name, raw, frames))  # decoding raises if not
        assert len(replies) == 1 and replies[0][0] == 'ERROR', (field, replies)
        assert replies[0][2]['code'] in (400, 422), (field, replies)


@hostile('META key that is not UTF-8 -> 400; META list stays readable to everyone')
def _(arena):
    p = arena.peer()
    raw = pack({'op': 'set', 'key': 'MARK-MARK', 'value': b'v'}).replace(
        pack('MARK-MARK'), b'\xa4k\xff\xfek')
    replies = arena.send_then_ping(p, msg('META', raw))
    assert [(r[0], r[2]['code']) for r in replies] == [('ERROR', 400)], replies
    assert 'key: invalid UTF-8 at byte 2' in replies[0][2]['reason']
    kind, _, body, _ = arena.healthy.request('META', {'op': 'list'})
    assert kind == 'META_REPLY'


@hostile('TAKE of 2000 queues that do not exist leaves none of them behind', kind='flood')
def _(arena):
    w = arena.worker()
    n = 2000
    for i in range(n):
        w.send('TAKE', {'queue': 'cat-h-ghost-take-%d' % i, 'max': 1})
    for i in range(n):
        kind, _, body, _ = w.recv(timeout=10)
        assert kind == 'DISPATCH' and not body.get('tasks'), body
    # the broker forgets them (a STATS of one queue answers for any it holds,
    # listed or not) while the worker that named them is still there
    sample = ['cat-h-ghost-take-%d' % i for i in range(0, n, 37)]

    def forgotten():
        w.send('HEARTBEAT', {})  # (a silent worker's end would forget them anyway)
        return not any(arena.knows_queue(q) for q in sample)
    wait_until(forgotten, timeout=4, interval=0.2, what='the queues forgotten')
    w.send('BYE', {})


@hostile('QUEUE purge and resume of 2000 queues that do not exist leave none of them behind',
         kind='flood')
def _(arena):
    n = 2000
    for i in range(n):
        arena.healthy.send('QUEUE', {'queue': 'cat-h-ghost-purge-%d' % i, 'op': 'purge'})
        arena.healthy.send('QUEUE', {'queue': 'cat-h-ghost-resume-%d' % i, 'op': 'resume'})
    for i in range(2 * n):
        kind, _, body, _ = arena.healthy.recv(timeout=10)
        assert kind == 'OK', body
    sample = ['cat-h-ghost-%s-%d' % (op, i) for op in ('purge', 'resume')
              for i in range(0, n, 37)]
    wait_until(lambda: not any(arena.knows_queue(q) for q in sample), timeout=4,
               interval=0.2, what='the queues forgotten')


@hostile('REGISTER flood: 2000 from one peer and one each from 200 peers -> all welcome',
         kind='flood')
def _(arena):
    w = arena.peer()
    for i in range(2000):
        w.send('REGISTER', {'name': 'cat-flood', 'slots': i, 'held': [{'id': i + 1, 'lease': 1}]})
    for i in range(2000):
        kind, reqid, body, _ = w.recv(timeout=10)
        assert kind == 'WELCOME', body
    many = [arena.peer() for _ in range(200)]
    for i, p in enumerate(many):
        p.send('REGISTER', {'name': 'cat-flood-%d' % i})
    for p in many:
        assert p.recv(timeout=10)[0] == 'WELCOME'
    stats = arena.stats()
    names = [x['name'] for x in stats['workers'] if x['name'].startswith('cat-flood')]
    assert names.count('cat-flood') == 1 and len(names) == 201
    for p in many + [w]:
        p.send('BYE', {})
    arena.healthy.request('PING', {})
    wait_until(lambda: not [x for x in arena.stats()['workers']
                            if x['name'].startswith('cat-flood')], what='sessions closed')


@hostile('CREDIT flood: new subscriptions of 64 new queues each -> 413 past 10,000 names; '
         'the queues forgotten when cancelled', kind='flood')
def _(arena):
    w = arena.worker()
    before = arena.rss_kib()
    started = time.time()
    subs = 300
    for sub in range(subs):
        w.send('CREDIT', {'sub': sub + 1, 'credit': 1,
                          'queues': ['cat-h-sub-%d-%d' % (sub, k) for k in range(64)]})
    replies = arena.send_then_ping(w, msg('HEARTBEAT', {}), timeout=60)
    took = time.time() - started
    kept = 10000 // 64
    assert len(replies) == subs - kept, len(replies)
    assert all(r[0] == 'ERROR' and r[2]['code'] == 413 and 'over the limit of 10000'
               in r[2]['reason'] for r in replies), replies[:2]
    arena.rss['credit flood'] = arena.rss_kib() - before
    assert took < 30, took
    assert arena.knows_queue('cat-h-sub-0-0') and not arena.knows_queue('cat-h-sub-%d-0' % kept)
    for sub in range(subs):
        w.send('CREDIT', {'sub': sub + 1, 'cancel': True})
    arena.send_then_ping(w, msg('HEARTBEAT', {}), timeout=60)
    def forgotten():
        w.send('HEARTBEAT', {})  # (a silent worker's end would forget them anyway)
        return not arena.knows_queue('cat-h-sub-0-0') and not arena.knows_queue(
            'cat-h-sub-%d-63' % (kept - 1))
    wait_until(forgotten, timeout=4, interval=0.2,
               what='the queues of cancelled subscriptions forgotten')
    w.send('BYE', {})


@hostile('CREDIT flood: 10,001 subscriptions of one queue -> 413 for the one past 10,000 '
         '(its credit not counted)', kind='flood')
def _(arena):
    q = 'cat-h-subs'
    w = arena.worker()
    limit = 10000
    for sub in range(limit + 1):
        w.send('CREDIT', {'sub': sub + 1, 'credit': 1, 'queues': [q]})
    replies = arena.send_then_ping(w, msg('HEARTBEAT', {}), timeout=60)
    assert [(r[0], r[1], r[2]['code'], r[2]['reason']) for r in replies] == [
        ('ERROR', limit + 2, 413, 'sub: this session holds %d subscriptions, the limit' % limit)]
    me = identity(w)
    [worker] = [x for x in arena.stats()['workers'] if x['identity'] == me]
    assert worker['credit'] == limit and worker['queues'] == [q], worker
    [info] = arena.healthy.request('STATS', {'queue': q})[2]['queues']
    assert info['consumers'] == 1, info
    # the subscriptions go with the session
    w.send('BYE', {})
    wait_until(lambda: not arena.knows_queue(q), timeout=4, interval=0.2,
               what='the queue forgotten')


@hostile('a peer that floods STATUS and never reads its replies does not stall the others',
         kind='flood')
def _(arena):
    # 2000 replies of 200 unknown ids each (about 2 KB): the broker queues
    # them for the peer up to its high-water mark, or drops them
    rogue = arena.peer()
    rogue.sock.setsockopt(zmq.RCVHWM, 10)
    ids = list(range(900000000, 900000200))
    body = pack({'ids': ids})
    for i in range(2000):
        rogue.send_raw([header('STATUS', i + 1), body])
        if i % 200 == 0:
            started = time.time()
            kind, _, _, _ = arena.healthy.request('PING', {}, timeout=10)
            assert time.time() - started < 5
    arena.healthy.request('PING', {}, timeout=30)
    arena.rss['unread replies'] = arena.rss_kib()
    rogue.sock.close(0)
    arena.peers.remove(rogue)


@hostile('a flood of 5000 random and mutated messages is answered with errors only',
         kind='flood')
def _(arena):
    rng = random.Random(20261124)
    seeds = [msg(t, b, f) for t, (b, f, _) in REQUESTS.items()] + [msg('PING', {})]
    p = arena.peer()
    flood = []
    for i in range(5000):
        parts = [bytearray(x) for x in rng.choice(seeds)]
        frame = parts[rng.randrange(min(2, len(parts)))]
        for _ in range(rng.randrange(1, 4)):
            if frame:
                at = rng.randrange(len(frame))
                frame[at] = rng.randrange(256)
        if i % 3 == 0 and len(parts) > 1:
            parts[1] = parts[1][:rng.randrange(len(parts[1]) + 1)]
        # never a valid SUBMIT, RESULT or REGISTER of something: the mutated
        # body stays within cat- queues or fails
        flood.append([bytes(x) for x in parts])
    for parts in flood[:-1]:
        p.send_raw(parts)
    # the replies to all of them come before the PONG after the last
    replies = arena.send_then_ping(p, flood[-1], timeout=60)
    for m in replies:
        assert m[0] in ('ERROR', 'PONG', 'STATUS_REPLY', 'LIST_REPLY', 'WATCHING',
                        'CANCEL_REPLY', 'RETRY_REPLY', 'DELETE_REPLY', 'OK', 'PEEK_REPLY',
                        'META_REPLY', 'SCHEDULE_REPLY', 'SUBMITTED', 'WELCOME', 'DISPATCH',
                        'STATS_REPLY', 'LIMITS_REPLY', 'RESULT_OK'), m[0]
    replies = len(replies)
    assert replies > 1000
    p.send('BYE', {})


@hostile('a message over the socket\'s maximum: the connection is dropped, nothing stored, '
         'the broker carries on', kind='flood')
def _(arena):
    before = arena.snapshot()
    rogue = arena.peer()
    rogue.send_raw(msg('SUBMIT', {'tasks': [{'name': 'huge', 'queue': 'cat-h-huge'}]}, 0)
                   + [b'y' * (MAX_MESSAGE + 1)])
    kind, _, body, _ = arena.healthy.request('PING', {})
    assert kind == 'PONG'

    # the rogue's socket reconnects (what it had in flight is lost with the
    # connection) and is served again
    def served():
        try:
            return rogue.request('PING', {}, timeout=1)[0] == 'PONG'
        except TimeoutError:
            return False
    wait_until(served, timeout=30, what='the rogue served again')
    assert arena.snapshot() == before


def finished_with_big_result(arena, q, key=None):
    """A task of queue q that succeeded with a result of MAX_PAYLOAD bytes."""
    [tid] = arena.submit([dict({'name': 't', 'queue': q}, **({'key': key} if key else {}))])
    w = arena.peer()
    arena.register(w, q, 1)
    [task] = arena.dispatched(w, 1)
    w.send('RESULT', {'results': [{'id': tid, 'lease': task['lease']}]}, [b'r' * MAX_PAYLOAD])
    arena.ended([tid])
    w.send('BYE', {})
    return tid


@hostile('WATCH of one finished task 20000 times in one request -> one DONE, once',
         kind='flood')
def _(arena):
    tid = finished_with_big_result(arena, 'cat-h-watch')
    p = arena.peer()
    kind, _, body, _ = p.request('WATCH', {'ids': [tid] * 20000 + [999999999] * 3}, timeout=60)
    assert kind == 'WATCHING' and body['watching'] == 1 and body['unknown'] == [999999999]
    kind, _, done, frames = p.next_of('DONE', timeout=60)
    assert [t['id'] for t in done['tasks']] == [tid] and frames == [b'r' * MAX_PAYLOAD]
    assert arena.send_then_ping(p, msg('HEARTBEAT', {})) != []  # (410: not a worker)


@hostile('SUBMIT with watch of one known key 20000 times -> one task, one DONE', kind='flood')
def _(arena):
    tid = finished_with_big_result(arena, 'cat-h-keys', key='cat-h-key')
    p = arena.peer()
    n = 20000
    kind, _, body, _ = p.request(
        'SUBMIT', {'watch': True, 'tasks': [{'name': 't', 'queue': 'cat-h-keys',
                                             'key': 'cat-h-key'}] * n}, [b''] * n, timeout=60)
    assert kind == 'SUBMITTED', body
    assert all(t['id'] == tid and t['existing'] for t in body['tasks'])
    kind, _, done, frames = p.next_of('DONE', timeout=60)
    assert [t['id'] for t in done['tasks']] == [tid] and len(frames) == 1


@hostile('STATUS of one finished task 20000 times -> 20000 records, the result once',
         kind='flood')
def _(arena):
    tid = finished_with_big_result(arena, 'cat-h-status')
    kind, _, body, _ = arena.healthy.request('STATUS', {'ids': [tid] * 20000}, timeout=60)
    assert kind == 'STATUS_REPLY' and len(body['tasks']) == 20000
    assert body['tasks'][0]['result'] == b'r' * MAX_PAYLOAD
    assert all(t['id'] == tid and t['state'] == 5 and not t.get('result')
               for t in body['tasks'][1:])


# ---------------------------------------------------------------------------
# Roles: the same broker's verbs, on a second broker with --curve, from
# peers whose certificates may not send them (PROTOCOL.md, "Authentication
# and roles"). These cases come last: that broker starts when the first
# of them runs.

# role -> the certificate its peers use (none: allowed, without a role;
# stranger: not in allowed/; a peer of role anonymous has no certificate)
CURVE_NAMES = {'admin': 'root', 'client': 'alice', 'worker': 'wendy', 'none': 'nobody',
               'stranger': 'stranger'}

# (what a refusal names, type, body, the roles besides admin that may send it)
ROLE_TABLE = [('PING', 'PING', {}, ('client', 'worker'))]
for type_name in ('SUBMIT', 'STATUS', 'LIST', 'WATCH', 'STATS', 'LIMITS', 'EVENTS'):
    ROLE_TABLE.append((type_name, type_name, REQUESTS[type_name][0], ('client',)))
ROLE_TABLE += [
    ('CANCEL', 'CANCEL', {'ids': [GHOST]}, ('client',)),
    ('CANCEL', 'CANCEL', {'flow': GHOST}, ('client',)),
    ('CANCEL by queue or group', 'CANCEL', {'queue': 'cat-roles'}, ()),
    ('CANCEL by queue or group', 'CANCEL', {'group': 'cat-roles'}, ()),
    ('CANCEL by queue or group', 'CANCEL', {'ids': [GHOST], 'queue': 'cat-roles'}, ())]
for type_name in ('RETRY', 'DELETE', 'QUEUE', 'LIMIT', 'PEEK', 'META', 'SCHEDULE'):
    ROLE_TABLE.append((type_name, type_name, REQUESTS[type_name][0], ()))
for type_name in ('REGISTER', 'CREDIT', 'TAKE', 'RESULT', 'EMIT', 'HEARTBEAT'):
    ROLE_TABLE.append((type_name, type_name, REQUESTS[type_name][0], ('worker',)))
ROLE_TABLE.append(('BYE', 'BYE', {}, ('worker',)))
NEEDS = {('client', 'worker'): 'a client, worker or admin', ('client',): 'a client or admin',
         ('worker',): 'a worker or admin', (): 'an admin'}

for what, type_name, body, roles in ROLE_TABLE:
    frames = REQUESTS.get(type_name, ({}, 0))[1]
    for role in ('client', 'worker', 'none'):
        parts = msg(type_name, body, frames)
        if role in roles:
            Permitted('roles', '%s %s from a %s certificate -> served, not 403'
                      % (type_name, short(body), role), parts, role)
            continue
        has = ("has no role the broker knows" if role == 'none'
               else "has the role %s" % role)
        Refused('roles', '%s %s from a %s certificate -> 403 needs %s'
                % (type_name, short(body), role if role != 'none' else 'role-less',
                   NEEDS[roles]),
                parts, 403, "%s needs %s certificate; this peer's certificate %s"
                % (what, NEEDS[roles], has), role=role)
Unheard('roles', 'a certificate not in allowed/ -> its handshake fails: no reply at all',
        'stranger')
Unheard('roles', 'a peer without a certificate -> its handshake fails: no reply at all',
        'anonymous')


# ---------------------------------------------------------------------------
# The test


BROKER_ARGS = ['--max-payload', str(MAX_PAYLOAD), '--liveness-ms', '5000']


def stopped(arena):
    """Stops an arena's broker: it must exit 0 on SIGTERM, without a
    sanitizer's report."""
    arena.close()
    rc = arena.broker.stop(timeout=30)
    out = arena.broker.output()
    assert not any(mark in out for mark in SANITIZER_MARKS), out[-4000:]
    assert rc == 0, 'arbiterd exited with %s on SIGTERM' % rc


@pytest.fixture(scope='module')
def arena(tmp_path_factory):
    a = Arena(Broker(tmp_path_factory.mktemp('catalogue'), extra=BROKER_ARGS))
    a.rss['start'] = a.rss_kib()
    yield a
    stopped(a)


@pytest.fixture(scope='module')
def curve_arena(tmp_path_factory):
    """A broker with --curve, and a certificate for each role (and one
    without a role, and one it does not allow)."""
    tmp = tmp_path_factory.mktemp('catalogue-curve')
    certs = Certs(tmp)
    for role, name in CURVE_NAMES.items():
        certs.make(name, 'client' if role in ('none', 'stranger') else role,
                   allow=role != 'stranger')
    allowed = certs.curve / 'allowed' / 'nobody.cert'
    allowed.write_text(allowed.read_text().replace('    role = "client"\n', ''))
    a = Arena(CurveBroker(tmp, certs, extra=BROKER_ARGS), certs)
    yield a
    stopped(a)


@pytest.mark.parametrize('case', CASES, ids=['%s: %s' % (c.kind, c.name) for c in CASES])
def test_case(request, case):
    arena = request.getfixturevalue('curve_arena' if case.role else 'arena')
    arena.ensure_broker()
    try:
        case.run(arena)
    finally:
        arena.ran.append(case.name)
        arena.drop_peers()
    arena.healthy_turn(len(arena.ran))


def test_catalogue_has_at_least_200_cases():
    kinds = {}
    for c in CASES:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    print('cases by kind:', sorted(kinds.items()))
    assert len(CASES) >= 200 and len({c.name for c in CASES}) == len(CASES)


def test_nothing_lost_and_memory_bounded(arena):
    """Every task the healthy client submitted during the run is there,
    its key still known, and runs to success; the broker's memory did not
    grow with what it was sent; and it never died."""
    nothing_lost(arena)
    rss = arena.rss_kib()
    print('RSS KiB:', arena.rss['start'], '->', rss, arena.rss)
    # generous: what floods leave is freed for reuse, not given back, and
    # AddressSanitizer keeps up to 256 MiB of freed memory in quarantine
    bound = 768 * 1024 if SANITIZED else 256 * 1024
    assert rss - arena.rss['start'] < bound, (arena.rss, rss)


def test_nothing_lost_under_curve(curve_arena):
    """The same on the broker with --curve, whose cases were the roles'."""
    nothing_lost(curve_arena)


def nothing_lost(arena):
    assert not arena.crashes, 'the broker died after: %s\n%s' % (
        [case for case, _ in arena.crashes], arena.crashes[0][1])
    assert arena.healthy_ids, 'no case ran'
    keys = sorted(arena.healthy_ids)
    kind, _, body, _ = arena.healthy.request(
        'SUBMIT', {'tasks': [{'name': 'healthy', 'queue': 'healthy', 'key': k} for k in keys]},
        [b''] * len(keys), timeout=30)
    assert kind == 'SUBMITTED'
    assert [t['id'] for t in body['tasks']] == [arena.healthy_ids[k] for k in keys]
    assert all(t.get('existing') for t in body['tasks'])
    ids = [arena.healthy_ids[k] for k in keys]
    watcher = arena.peer()
    kind, _, body, _ = watcher.request('WATCH', {'ids': ids})
    assert body.get('watching') == len(ids) and not body.get('unknown')
    worker = arena.peer()
    arena.register(worker, 'healthy', 100, name='healthy-worker', handles=['healthy'])
    done = {}
    deadline = time.time() + 60
    while len(done) < len(ids):
        assert time.time() < deadline, '%d of %d done' % (len(done), len(ids))
        while True:
            try:
                kind, _, body, frames = worker.next_of('DISPATCH', timeout=0.05)
            except TimeoutError:
                break
            tasks = body.get('tasks', [])
            worker.send('RESULT', {'results': [{'id': t['id'], 'lease': t['lease']}
                                               for t in tasks]}, [f.upper() for f in frames])
            worker.send('CREDIT', {'credit': len(tasks)})
        try:
            kind, _, body, frames = watcher.next_of('DONE', timeout=0.05)
        except TimeoutError:
            continue
        for t, f in zip(body['tasks'], frames):
            done[t['id']] = (t['state'], f)
    by_id = {v: k for k, v in arena.healthy_ids.items()}
    for tid, (state, result) in done.items():
        assert state == 5 and result == by_id[tid].upper().encode(), (tid, state, result)
    worker.send('BYE', {})
