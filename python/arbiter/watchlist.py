"""The tasks one connection watches: each reported once, and the watches
kept alive across broker restarts (a port of client/arb_watchlist.c).

Watches live in the broker's memory only. While ids are watched and not
reported yet, the watchlist keeps them alive on its own, every interval
(``tick``): it pings the broker, and sends WATCH again for every
outstanding id when the broker's epoch changes (it restarted: PONG and
WELCOME tell the epoch) or when nothing at all has arrived for a whole
interval (a DONE may have been lost: a "probe"). The broker treats a
repeated WATCH as idempotent and reports finished tasks again; the
watchlist drops the duplicates: a report is kept only if its id leaves
the set of watched ids, so each task is reported exactly once.

A SUBMIT with watch names its ids only in its SUBMITTED, and the broker
may report an already finished task (a re-submitted key) before that
reply: while such a submit is pending, reports of ids not watched yet wait
in a limbo; SUBMITTED adds its ids and runs the limbo through the filter
again; once no such submit is pending, the rest of the limbo was
duplicates and goes.

The owner (``Client``, ``AsyncClient``) owns the socket: it tells the
watchlist about every request before it goes out (``track``), every
message that arrives (``learn``, then ``settle``), runs its timer
(``tick``), and gives it two callables: ``send`` for the watchlist's own
requests (PING, WATCH; the owner gives them request ids of its own) and
``report`` for each report to hand out. Not thread-safe.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, List, Optional, Set

from .codec import IDS_MAX, Message, MsgType
from .records import Done, State

log = logging.getLogger('arbiter.watchlist')

INTERVAL = 2.0  # seconds: default keep-alive interval


def now() -> float:
    return time.monotonic()


class Watchlist:
    def __init__(self, send: Callable[[Message], bool], report: Callable[[Done], None],
                 interval: float = INTERVAL) -> None:
        self._send = send  # returns whether it went out
        self._report = report
        self.interval = interval
        self.watched: Set[int] = set()  # ids watched and not reported yet
        self.watch_submits: Set[int] = set()  # reqids of SUBMIT with watch awaiting SUBMITTED
        self.limbo: List[Done] = []  # reports awaiting a pending SUBMITTED
        self.refile = False  # settle must run the limbo through the filter again
        self.epoch: Optional[int] = None  # broker start count, from PONG or WELCOME
        self.last_news = now()  # last message that was not an answer to our requests
        self.tick_at = 0.0
        self.ping_at = 0.0  # our unanswered PING went out; 0: none
        self.probe_at = 0.0  # an unanswered re-WATCH went out in silence; 0: none

    # -- what we send --

    def is_outstanding(self) -> bool:
        """Whether anything is still to be reported: watched ids, or a
        SUBMIT with watch whose SUBMITTED has not come."""
        return bool(self.watched) or bool(self.watch_submits)

    def _watch_id(self, id: int) -> None:
        if not self.watched:
            # the first outstanding watch starts the keep-alive clock
            t = now()
            self.tick_at = t + self.interval
            self.last_news = t
        self.watched.add(id)

    def _ping(self, t: float) -> None:
        if self._send(Message(MsgType.PING, 0, {})):
            self.ping_at = t

    def rewatch(self) -> None:
        """Sends WATCH again for every watched id now."""
        ids = sorted(self.watched)
        for start in range(0, len(ids), IDS_MAX):
            if not self._send(Message(MsgType.WATCH, 0, {'ids': ids[start:start + IDS_MAX]})):
                break  # the next keep-alive tries again

    def track(self, msg: Message) -> bool:
        """Notes what a request means before it goes out: the ids of a
        WATCH are watched from now on, and a SUBMIT with watch will name
        ids in its reply. Returns whether the request starts watches."""
        watches = False
        if msg.type is MsgType.SUBMIT and msg.body.get('watch'):
            self.watch_submits.add(msg.reqid)
            watches = True
        elif msg.type is MsgType.WATCH:
            for id in msg.body['ids']:
                self._watch_id(id)
            watches = True
        # learn the broker's epoch as soon as there are watches, so that a
        # restart later shows as a change
        if watches and self.epoch is None and not self.ping_at:
            self._ping(now())
        return watches

    def untrack(self, reqid: int) -> None:
        """A request that will never be answered (not sent, timed out,
        malformed reply): a SUBMIT with watch names no ids."""
        if reqid in self.watch_submits:
            self.watch_submits.discard(reqid)
            self._refile_limbo()

    def tick_due(self) -> float:
        """When ``tick`` is due next (time.monotonic), or inf while nothing
        is watched."""
        return self.tick_at if self.watched else float('inf')

    def tick(self, t: float, timeout: float) -> None:
        """The keep-alive, when due: a PING (again, if the last one is
        older than timeout), and a WATCH of everything if nothing but
        answers to the owner's own requests arrived for a whole interval."""
        if not self.watched or t < self.tick_at:
            return
        self.tick_at = t + self.interval
        if not self.ping_at or t - self.ping_at >= timeout:
            self._ping(t)
        if t - self.last_news >= self.interval and not self.probe_at:
            self.rewatch()
            self.probe_at = t

    # -- what we receive --

    def _on_done(self, reports: List[Done]) -> None:
        for done in reports:
            if done.id in self.watched:
                self.watched.discard(done.id)
                self._report(done)
            elif self.watch_submits:
                self.limbo.append(done)
            # else: a duplicate of a report handed out already

    def _refile_limbo(self) -> None:
        self.refile = False
        limbo, self.limbo = self.limbo, []
        self._on_done(limbo)

    def _on_epoch(self, epoch: int, where: str) -> None:
        if self.epoch is not None and epoch != self.epoch and self.watched:
            log.info('watchlist: broker restarted epoch=%d seen_in=%s watched=%d',
                     epoch, where, len(self.watched))
            self.rewatch()
        self.epoch = epoch

    def learn(self, msg: Optional[Message], ours: bool) -> bool:
        """Applies what a message from the broker tells (call it for every
        message received; None for one that could not be decoded: it still
        shows the broker is there). ours: it answers one of the owner's own
        requests, so it is no news from the broker. Returns True for a DONE,
        which the watchlist has taken (its reports go to ``report``)."""
        self.probe_at = 0.0
        if msg is None:
            return False
        if not ours:
            self.last_news = now()
        body = msg.body
        if msg.type is MsgType.DONE:
            self._on_done([Done(t['id'], _state(t['state']), t['attempts'], t['error'],
                                t['result']) for t in body['tasks']])
            return True
        if msg.type is MsgType.PONG:
            if ours:
                self.ping_at = 0.0
            self._on_epoch(body['epoch'], 'PONG')
        elif msg.type is MsgType.WELCOME:
            self._on_epoch(body['epoch'], 'WELCOME')
        elif msg.type is MsgType.SUBMITTED:
            if msg.reqid in self.watch_submits:
                self.watch_submits.discard(msg.reqid)
                for t in body['tasks']:
                    self._watch_id(t['id'])
                self.refile = True
        elif msg.type is MsgType.WATCHING:
            # ids the broker does not know will never be reported by it:
            # report them ourselves, once, if we were watching them
            for id in body['unknown']:
                if id in self.watched:
                    self.watched.discard(id)
                    self._report(Done(id, State.UNKNOWN, 0, 'no such task', b''))
        elif msg.type is MsgType.ERROR:
            # a refused SUBMIT names no ids to watch
            if msg.reqid in self.watch_submits:
                self.watch_submits.discard(msg.reqid)
                self.refile = True
        return False

    def settle(self) -> None:
        """Reports what the message just learnt made reportable (the parked
        reports of a SUBMITTED's ids), so that they follow its reply."""
        if self.refile:
            self._refile_limbo()


_STATES: Dict[int, State] = {s.value: s for s in State}


def _state(value: int) -> State:
    return _STATES.get(value, State.UNKNOWN)
