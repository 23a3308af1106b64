"""A minimal Python speaker of the arbiter wire protocol (proto/PROTOCOL.md),
for the system tests: it lets a test act as a raw client or worker, and send
frames the C codec would never build (malformed, oversized, random).

It is a test tool, not a second implementation to keep in step: it knows only
the framing (8-byte header, msgpack body map, payload frames) and leaves the
field names to the tests, which use the names of PROTOCOL.md.
"""

import os
import struct

import msgpack
import zmq

TYPES = {
    'ERROR': 1, 'PING': 2, 'PONG': 3, 'SUBMIT': 4, 'SUBMITTED': 5, 'STATUS': 6,
    'STATUS_REPLY': 7, 'LIST': 8, 'LIST_REPLY': 9, 'WATCH': 10, 'WATCHING': 11, 'DONE': 12,
    'CANCEL': 13, 'CANCEL_REPLY': 14, 'RETRY': 15, 'RETRY_REPLY': 16, 'STATS': 17,
    'STATS_REPLY': 18, 'QUEUE': 19, 'OK': 20, 'EVENTS': 21, 'EVENT': 22, 'PEEK': 23,
    'PEEK_REPLY': 24, 'META': 25, 'META_REPLY': 26, 'LIMIT': 27, 'SCHEDULE': 28,
    'SCHEDULE_REPLY': 29, 'DELETE': 30, 'DELETE_REPLY': 31, 'LIMITS': 32, 'LIMITS_REPLY': 33,
    'REGISTER': 40, 'WELCOME': 41,
    'CREDIT': 42, 'TAKE': 43, 'DISPATCH': 44, 'RESULT': 45, 'EMIT': 46, 'HEARTBEAT': 47,
    'STOP': 48, 'BYE': 49, 'RESULT_OK': 50,
}
NAMES = {v: k for k, v in TYPES.items()}
STATES = {1: 'waiting', 2: 'scheduled', 3: 'ready', 4: 'running', 5: 'succeeded',
          6: 'failed', 7: 'dead', 8: 'cancelled'}


def header(type_name, reqid, version=1):
    return b'AR' + struct.pack('>BBI', version, TYPES[type_name], reqid)


def encode(type_name, reqid, body, frames=()):
    return [header(type_name, reqid), msgpack.packb(body, use_bin_type=True)] + list(frames)


def decode(parts):
    """Returns (type name, reqid, body dict, payload frames)."""
    h = parts[0]
    assert len(h) == 8 and h[:2] == b'AR', h
    version, type_num, reqid = struct.unpack('>BBI', h[2:])
    assert version == 1
    body = msgpack.unpackb(parts[1], raw=False)
    return NAMES[type_num], reqid, body, parts[2:]


SEND_TIMEOUT_MS = 30000  # a Peer's send waits this long for a pipe, at most


class Peer:
    """A DEALER connected to the broker: sends requests, reads replies.
    curve: (public key, secret key, broker's key), Z85, for a broker that
    runs with --curve. identity: its routing id (random if None)."""

    def __init__(self, endpoint, context=None, curve=None, sockopts=(), identity=None):
        self.context = context or zmq.Context.instance()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        for option, value in sockopts:  # before the connection is made
            self.sock.setsockopt(option, value)
        # a DEALER's send blocks while it has no pipe to the broker (after a
        # refused handshake, until it connects again): a bound, not a hang
        self.sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        # never a zero first byte: ZeroMQ reserves those ids, and the broker
        # replaces them with one of its own (docs/broker.md), so that a test
        # comparing a peer's id with STATS would fail once in 256 runs
        if identity is None:
            identity = bytearray(os.urandom(16))
            identity[0] |= 0x80
        self.identity = bytes(identity)
        self.sock.setsockopt(zmq.IDENTITY, self.identity)
        if curve:
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve[0])
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve[1])
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, curve[2])
        self.sock.connect(endpoint)
        self.reqid = 0
        self.pending = []  # streamed messages read while waiting for a reply

    def close(self):
        self.sock.close(0)

    def send(self, type_name, body, frames=()):
        self.reqid += 1
        self.send_raw(encode(type_name, self.reqid, body, frames))
        return self.reqid

    def send_raw(self, parts):
        try:
            self.sock.send_multipart(parts)
        except zmq.Again:
            raise TimeoutError('could not send within %.1f s' % (SEND_TIMEOUT_MS / 1000.0))

    def recv(self, timeout=5.0):
        if self.pending:
            return self.pending.pop(0)
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError('no message within %.1f s' % timeout)
        return decode(self.sock.recv_multipart())

    def recv_raw(self, timeout=5.0):
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError('no message within %.1f s' % timeout)
        return self.sock.recv_multipart()

    def request(self, type_name, body, frames=(), timeout=5.0):
        reqid = self.send(type_name, body, frames)
        while True:
            if not self.sock.poll(int(timeout * 1000)):
                raise TimeoutError('no reply to %s within %.1f s' % (type_name, timeout))
            msg = decode(self.sock.recv_multipart())
            if msg[1] == reqid:
                return msg
            self.pending.append(msg)

    def next_of(self, type_name, timeout=5.0):
        """The next streamed message of a type (others are kept)."""
        for i, msg in enumerate(self.pending):
            if msg[0] == type_name:
                return self.pending.pop(i)
        import time
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise TimeoutError('no %s within %.1f s' % (type_name, timeout))
            msg = decode(self.sock.recv_multipart())
            if msg[0] == type_name:
                return msg
            self.pending.append(msg)
