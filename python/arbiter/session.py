"""What a client connection keeps, whichever way it waits on its socket
(``Client`` blocks, ``AsyncClient`` awaits): request ids, the requests
waiting for their replies, the watchlist (``watchlist.py``: exactly-once
reports, the keep-alive of watches) and the reports not handed out yet.
No I/O here: the owner receives, and files every message through
``file``; it sends through the ``send`` callable it gives.

Every incoming message first lets the watchlist learn from it (an epoch in
PONG, the ids of a SUBMIT with watch, ids the broker does not know in
WATCHING; it takes DONE and reports what is to be reported), then goes to
whoever waits for its request id, to the events (EVENT), or to the bin (a
reply that came after its request timed out, an answer to one of our own
keep-alive requests).

Request ids: the caller's from 1 to 2^31 - 1, then around again; the
watchlist's own requests have the top bit set, so that their answers are
known for ours (they are no news from the broker).

``curve_keys`` and ``secure`` make a socket a CURVE client of a broker
that runs with --curve (README.md, "Securing the broker"), as the C
library does; ``Handshake`` watches its handshakes (libzmq's socket
monitor), so that a wait for a broker that refused them ends at once and
says why, as the C library's arb_handshake does.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import struct
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import zmq
import zmq.auth
from zmq.utils.monitor import parse_monitor_message

from . import codec
from .codec import Message, MsgType
from .errors import ArbiterError, ProtocolError, broker_error
from .records import Done
from .watchlist import Watchlist

log = logging.getLogger('arbiter.client')

INTERNAL = 0x80000000  # top bit: the session's own requests
DEFAULT_ENDPOINT = 'tcp://127.0.0.1:7700'


def endpoint_of(endpoint: Optional[str]) -> str:
    """The broker's endpoint: the one given, else $ARBITER_BROKER, else
    tcp://127.0.0.1:7700."""
    return endpoint or os.environ.get('ARBITER_BROKER') or DEFAULT_ENDPOINT


def endpoint_error(endpoint: str, error: Exception) -> ValueError:
    """A broker endpoint ZeroMQ would not connect to, said as the arbiter
    command says it (a bare HOST:PORT is the usual slip)."""
    if '://' not in endpoint:
        return ValueError('bad broker endpoint %r: expected tcp://HOST:PORT (or ipc://PATH, '
                          'inproc://NAME)' % endpoint)
    return ValueError('bad broker endpoint %r: %s' % (endpoint, error))


_Z85 = frozenset('0123456789abcdefghijklmnopqrstuvwxyz'
                 'ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#')


def _z85_key(text: str) -> bool:
    return len(text) == 40 and all(c in _Z85 for c in text)


CurveKeys = Tuple[bytes, bytes, bytes]  # this peer's public and secret key, the broker's key


def curve_keys(cert: Optional[str] = None,
               broker_key: Optional[str] = None) -> Optional[CurveKeys]:
    """The keys to reach a broker that runs with --curve. cert: this
    peer's secret certificate (``arbiter keygen NAME --role R`` writes
    NAME.cert_secret; NAME.cert finds the secret beside it), else
    $ARBITER_CERT. broker_key: the broker's public key (40 Z85
    characters) or its broker.cert file, else $ARBITER_BROKER_KEY.
    Neither given: None (no CURVE). Only one, or files that hold no key:
    ValueError naming it."""
    cert_what, key_what = 'cert', 'broker_key'
    if not cert:
        cert, cert_what = os.environ.get('ARBITER_CERT'), '$ARBITER_CERT'
    if not broker_key:
        broker_key, key_what = os.environ.get('ARBITER_BROKER_KEY'), '$ARBITER_BROKER_KEY'
    if not cert and not broker_key:
        return None
    if not cert or not broker_key:
        raise ValueError('%s is given but not the %s: CURVE needs both'
                         % (cert_what if cert else key_what,
                            "broker's key" if cert else 'certificate'))
    path = cert + '_secret' if os.path.exists(cert + '_secret') else cert
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise ValueError('%s: cannot read a certificate from %r: %s'
                         % (cert_what, cert, e)) from None
    if not secret:
        raise ValueError('%s: %r holds no secret key (give the NAME.cert_secret file that '
                         '`arbiter keygen` wrote)' % (cert_what, cert))
    if _z85_key(broker_key):
        return public, secret, broker_key.encode()
    try:
        server, _ = zmq.auth.load_certificate(broker_key)
    except (OSError, ValueError) as e:
        raise ValueError("%s: %r is neither the broker's public key (40 Z85 characters) "
                         'nor a certificate file holding it: %s'
                         % (key_what, broker_key[:64], e)) from None
    return public, secret, server


# TCP keepalive, as the C library's (proto/arb_tcp.h): after 60 s without a
# byte from the broker the kernel probes every 10 s and ends the connection
# after 6 unanswered, so a broker whose host vanished without a FIN is
# found within two minutes even by a socket with nothing to send.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 60, 10, 6


def keepalive(sock: 'zmq.Socket[Any]') -> None:
    """Sets TCP keepalive (above) on sock, before it connects."""
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, KEEPALIVE_IDLE_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, KEEPALIVE_INTERVAL_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, KEEPALIVE_PROBES)


def secure(sock: 'zmq.Socket[Any]', keys: Optional[CurveKeys]) -> None:
    """Makes sock, before it connects, a CURVE client with keys
    (``curve_keys``; None: nothing is done)."""
    if keys is not None:
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys[0])
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys[1])
        sock.setsockopt(zmq.CURVE_SERVERKEY, keys[2])


NEEDS_CURVE = ("the broker requires CURVE: give a certificate and the broker's key (cert and "
               "broker_key, or $ARBITER_CERT and $ARBITER_BROKER_KEY)")
HANDSHAKE_DROPS_MAX = 2  # handshakes dropped without a reason, running, that count as a refusal
_HANDSHAKE_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_DISCONNECTED)
# not EVENT_CLOSED: libzmq sends it for each failed connection attempt (a
# descriptor CONNECTED never named), ten a second while no broker listens,
# and a client reads these events only while a call waits: they piled up
_TCPI_LAST_DATA_RECV = 52  # struct tcp_info: ms since the kernel last received data
_MECHANISM_MISMATCH = 0x11000002  # ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH


class Handshake:
    """Why a socket's handshakes with the broker fail (the C library's
    arb_handshake.h). A broker that refuses a peer (no certificate where
    it wants one, one it does not allow, a wrong broker key, a certificate
    where it runs without --curve) sends nothing: ZeroMQ keeps the
    messages and tries again. The socket's monitor tells; ``events`` is
    the socket to poll beside it while a call waits (so nothing is read
    while none does), and ``refusal`` says whether what came is a refusal
    that trying again will not mend. Make it before the socket connects;
    ``close`` it before the socket."""

    def __init__(self, sock: 'zmq.Socket[Any]', secured: bool) -> None:
        self.secured = secured
        # as get_monitor_socket makes it, but without a limit: libzmq's I/O
        # thread blocks on a full monitor, and the events (one a connection
        # attempt) are read only while a call waits
        endpoint = 'inproc://arbiter-handshake-%s' % os.urandom(8).hex()
        sock.monitor(endpoint, _HANDSHAKE_EVENTS)
        events = sock.context.socket(zmq.PAIR)
        events.setsockopt(zmq.RCVHWM, 0)
        events.setsockopt(zmq.LINGER, 0)
        events.connect(endpoint)
        # an asyncio socket's monitor is one too: polled by the owner's
        # loop, read here through a blocking shadow (never blocking: NOBLOCK)
        self.events: 'zmq.Socket[Any]' = events
        self._reader: 'zmq.Socket[Any]' = zmq.Socket.shadow(events.underlying)
        self._sock = sock
        self._auth: Optional[int] = None  # the last ZAP status refused with
        self._mismatch = False             # one side CURVE, the other not
        self._protocol: Optional[int] = None  # another ZMTP protocol error
        self._drops = 0                    # handshakes dropped without a reason
        self._reached = False              # a connection was made, ever
        self._fd: Optional[int] = None     # the connection's descriptor (libzmq's)

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.events.close(0)

    def _drain(self) -> None:
        while True:
            try:
                parts = self._reader.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = parse_monitor_message(parts)
            kind, value = event['event'], event['value']
            if kind == zmq.EVENT_CONNECTED:
                self._reached = True
                self._fd = value
            elif kind == zmq.EVENT_DISCONNECTED and value == self._fd:
                self._fd = None
            elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._auth, self._mismatch, self._protocol, self._drops = None, False, None, 0
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._auth = value
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == _MECHANISM_MISMATCH:
                self._mismatch = True
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                self._protocol = value
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self._drops += 1

    def _describe(self) -> str:
        if not self.secured:  # a peer without CURVE fails only at a broker that wants it
            return NEEDS_CURVE
        if self._auth is not None:
            return ("the broker refused this peer's certificate (ZAP %d): its public key is "
                    "not among the broker's allowed certificates" % self._auth)
        if self._mismatch:
            return ('the broker does not use CURVE (it runs without --curve): connect without '
                    'a certificate')
        if self._protocol is not None:
            return 'the handshake with the broker failed (ZMTP protocol error 0x%x)' % self._protocol
        return ("the CURVE handshake with the broker failed: is the broker key this broker's "
                "public key, and does the broker run with --curve?")

    def failure(self) -> Optional[str]:
        """Why the handshakes failed since the last one that succeeded,
        or None if none did."""
        self._drain()
        failed = (self._auth is not None or self._mismatch or self._protocol is not None
                  or self._drops > 0)
        return self._describe() if failed else None

    def reached(self) -> bool:
        """Whether a connection to the endpoint was ever made. False:
        nothing answered there, so nothing sent reached a broker."""
        self._drain()
        return self._reached

    def data_ago(self) -> Optional[float]:
        """Seconds since the kernel last received data on the socket's
        connection (Linux's TCP_INFO), or None when there is no connection
        or the kernel does not say. libzmq hands on whole messages only:
        this is what tells a big message on a slow link from silence.
        The descriptor is libzmq's, read here, never closed."""
        self._drain()
        if self._fd is None or not hasattr(socket, 'TCP_INFO'):
            return None
        try:
            # family, type and SOCK_NONBLOCK given: the constructor then
            # leaves the descriptor's flags alone (with only fileno, a
            # socket.setdefaulttimeout() in force has it set O_NONBLOCK: on a
            # number libzmq closed and the process reused, another's socket)
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK,
                                 socket.IPPROTO_TCP, fileno=self._fd)
        except OSError:  # closed meanwhile: no socket there, or not ours
            return None
        try:
            info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        except OSError:
            return None
        finally:
            conn.detach()  # libzmq's descriptor stays open
        if len(info) < _TCPI_LAST_DATA_RECV + 4:
            return None
        ms: int = struct.unpack_from('I', info, _TCPI_LAST_DATA_RECV)[0]
        return ms / 1000.0

    def unreached(self, endpoint: str, timeout: float) -> Optional[str]:
        """After a request went unanswered: if no connection was ever
        made, drops what the socket queued (ZeroMQ would send it to a
        broker that starts later: a submit given up would happen after
        all) and says so; None otherwise (the outcome is unknown)."""
        if self.failure() is not None or self.reached():
            return None
        # with linger 0 the pipe goes at once with what it holds; a new
        # routing id, as for any new connection of this peer
        self._sock.disconnect(endpoint)
        old = self._sock.getsockopt(zmq.ROUTING_ID)
        self._sock.setsockopt(zmq.ROUTING_ID,
                              routing_id(old[:1] if isinstance(old, bytes) else b'c'))
        self._sock.connect(endpoint)
        return ('cannot reach the broker at %s: no connection within %.1f s (is arbiterd '
                'running there?)' % (endpoint, timeout))

    def refusal(self) -> Optional[str]:
        """Why the broker will not take this peer, or None: ZAP refused its
        certificate (any status but 300, "try later"), a mechanism
        mismatch, another ZMTP error, or, for a CURVE peer,
        HANDSHAKE_DROPS_MAX handshakes dropped running (to a plain peer a
        dropped handshake is a broker killed mid-handshake, which a restart
        mends). Reads what came; never waits."""
        self._drain()
        refused = ((self._auth is not None and self._auth != 300) or self._mismatch
                   or self._protocol is not None
                   or (self.secured and self._drops >= HANDSHAKE_DROPS_MAX))
        return self._describe() if refused else None


def routing_id(first: bytes) -> bytes:
    """A fresh random 16-byte routing id (ZeroMQ reserves ids that start
    with a zero byte)."""
    return first + os.urandom(15)


class Session:
    def __init__(self, send: Callable[[Message], bool], rewatch: float) -> None:
        self._send = send
        self.reqid = 0
        self.internal = 0
        self.replies: Dict[int, Optional[Message]] = {}  # reqid -> reply, None until it comes
        self.errors: Dict[int, ArbiterError] = {}  # reqid -> a reply we could not read
        self.reports: 'collections.OrderedDict[int, Deque[Done]]' = collections.OrderedDict()
        self.events: Deque[Message] = collections.deque()
        self.watchlist = Watchlist(self._send_own, self._report, rewatch)

    # -- sending --

    def next_reqid(self) -> int:
        self.reqid = self.reqid % (INTERNAL - 1) + 1
        return self.reqid

    def _send_own(self, msg: Message) -> bool:
        self.internal = (self.internal + 1) & ~INTERNAL or 1
        msg.reqid = INTERNAL | self.internal
        return self._send(msg)

    def expect(self, msg: Message) -> None:
        """Notes a request of the caller's (its id from ``next_reqid``) as
        waiting for a reply, and tells the watchlist what it means: call it
        right before the request goes out."""
        self.replies[msg.reqid] = None
        self.watchlist.track(msg)

    def abandon(self, reqid: int) -> None:
        """A request whose reply will not be waited for any more (not sent,
        timed out): its late reply goes to the bin."""
        self.replies.pop(reqid, None)
        self.errors.pop(reqid, None)
        self.watchlist.untrack(reqid)

    def take_reply(self, reqid: int, request: MsgType) -> Optional[Message]:
        """The reply to reqid if it came (ERROR raised as its exception, a
        reply of the wrong type or unreadable as ProtocolError), else None."""
        error = self.errors.pop(reqid, None)
        if error is not None:
            self.replies.pop(reqid, None)
            raise error
        reply = self.replies.get(reqid)
        if reply is None:
            return None
        del self.replies[reqid]
        if reply.type is MsgType.ERROR:
            raise broker_error(reply.body['code'], reply.body['reason'])
        want = codec.REPLY_TYPE.get(request)
        if want is not None and reply.type is not want:
            raise ProtocolError('broker answered %s with %s' % (request.name, reply.type.name))
        return reply

    # -- receiving --

    def _report(self, done: Done) -> None:
        self.reports.setdefault(done.id, collections.deque()).append(done)

    def file(self, parts: Sequence[bytes]) -> None:
        """Decodes and files one message from the broker."""
        try:
            msg: Optional[Message] = codec.decode(parts)
        except ProtocolError as e:
            self._file_malformed(parts, e)
            return
        assert msg is not None
        ours = bool(msg.reqid & INTERNAL)
        if self.watchlist.learn(msg, ours):
            return  # a DONE: the watchlist reported what is to be reported
        if ours and msg.type is MsgType.ERROR:
            log.warning('client: broker refused a keep-alive reason=%s', msg.body['reason'])
        if msg.reqid and msg.reqid in self.replies:
            self.replies[msg.reqid] = msg
        elif msg.reqid == 0 and msg.type is MsgType.EVENT:
            self.events.append(msg)
        # else: a late reply to a timed-out request, or our own keep-alive's
        # reports a SUBMITTED made reportable follow the reply that named them
        self.watchlist.settle()

    def _file_malformed(self, parts: Sequence[bytes], error: ProtocolError) -> None:
        head = bytes(parts[0]) if parts else b''
        reqid = int.from_bytes(head[4:8], 'big') if len(head) == 8 else 0
        log.warning('client: malformed message from broker reqid=%d reason=%s', reqid, error)
        self.watchlist.learn(None, bool(reqid & INTERNAL))
        self.watchlist.untrack(reqid)  # its SUBMITTED will never be read
        if reqid and reqid in self.replies:
            self.errors[reqid] = ProtocolError('malformed reply from the broker: %s' % error)

    # -- reports --

    def take_report(self, id: Optional[int] = None) -> Optional[Done]:
        """The report of task id (None: the first one that came), if it
        came and was not handed out yet."""
        if id is None:
            if not self.reports:
                return None
            id = next(iter(self.reports))
        queue = self.reports.get(id)
        if not queue:
            return None
        done = queue.popleft()
        if not queue:
            del self.reports[id]
        return done

    def reported(self) -> List[int]:
        return list(self.reports)
