"""The gateway's Kestrel server with real memcache clients (Debian's
python3-pymemcache and python3-memcache) and plain sockets: round trips,
reliable reads, waits, fan-out, stats, kill -9 of the broker and of the
gateway, and every kind of bad input."""

import os
import signal
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

import memcache
import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

import arbiter_proto
from conftest import SANITIZED, Broker, Gateway, wait_until
from helpers import read_to_end, submit_many


class KSock:
    """A plain socket speaking the memcache text protocol."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        self.buf = b''

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('closed; had %r' % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('closed')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def ask(self, request):
        self.send(request)
        return self.line()

    def get(self, key):
        """(value, flags) or None."""
        self.send(b'get %s\r\n' % key)
        head = self.line()
        if head == b'END':
            return None
        parts = head.split()
        assert parts[0] == b'VALUE' and parts[1] == key, head
        value = self.exact(int(parts[3]) + 2)[:-2]
        assert self.line() == b'END'
        return value, int(parts[2])

    def closed(self):
        """Whether the server closed the connection (EOF), within a while."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def client(gw, **kwargs):
    kwargs.setdefault('default_noreply', False)
    kwargs.setdefault('timeout', 10)
    return Client(('127.0.0.1', gw.kestrel_port), **kwargs)


def ready(gw, timeout=30):
    """Waits until the gateway stores a set (session up, fan-out children
    loaded), and takes the probe back."""
    def probe():
        try:
            k = KSock(gw.kestrel_port, timeout=2)
            try:
                ok = k.ask(b'set _ready 0 0 1\r\nx\r\n') == b'STORED'
                if ok:
                    k.get(b'_ready')
                return ok
            finally:
                k.close()
        except OSError:
            return False
    wait_until(probe, timeout=timeout, interval=0.1, what='the gateway storing a set')


def collect(gw, queue, wanted, timeout=60):
    """Gets items of queue (waiting with t=) until every one of wanted
    came, then what is left; returns them all."""
    c = client(gw)
    got = []
    deadline = time.time() + timeout
    while not wanted <= set(got) and time.time() < deadline:
        value = c.get('%s/t=500' % queue)
        if value is not None:
            got.append(value)
    while True:
        value = c.get(queue)
        if value is None:
            break
        got.append(value)
    c.close()
    return got


def broker_queues(broker):
    """{name: record} of the broker's queue listing, every page of it."""
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        found, after = {}, None
        while True:
            kind, _, body, _ = peer.request('STATS', {'after': after} if after else {})
            assert kind == 'STATS_REPLY', body
            found.update((q['name'], q) for q in body.get('queues', []))
            if not body.get('more'):
                return found
            after = body['queues'][-1]['name']
    finally:
        peer.close()


def broker_meta(broker, prefix):
    """{key: value} of the broker's metadata keys under prefix."""
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        kind, _, body, _ = peer.request('META', {'op': 'list', 'key': prefix})
        assert kind == 'META_REPLY', body
        return {item['key']: item.get('value', b'') for item in body.get('items', [])}
    finally:
        peer.close()


@pytest.fixture
def kgw(gateway):
    gw = gateway()
    ready(gw)
    return gw


# once, in build/: 10,000 items take the paths the other tests take, and
# 11 s of the sanitized suite, the run's critical path
@pytest.mark.skipif(SANITIZED, reason='the count says nothing more under the sanitizers')
def test_round_trip_10000_items(kgw):
    """10,000 items set by 8 clients at once come back exactly once."""
    def producer(n):
        c = client(kgw)
        for i in range(1250):
            assert c.set('bulk', b'item-%d-%d' % (n, i))
        c.close()
    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    got = []
    lock = threading.Lock()

    def consumer():
        c = client(kgw)
        while True:
            value = c.get('bulk')
            if value is None:
                break
            with lock:
                got.append(value)
        c.close()
    threads = [threading.Thread(target=consumer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    expected = {b'item-%d-%d' % (n, i) for n in range(8) for i in range(1250)}
    assert len(got) == len(expected) and set(got) == expected


def test_order_flags_and_pymemcache_noreply(kgw):
    """One producer's items come in order, flags kept; pymemcache's
    default noreply sets are seen by the same client's next get."""
    c = Client(('127.0.0.1', kgw.kestrel_port), timeout=10)  # noreply by default
    for i in range(50):
        c.set('order', b'%d' % i)
    assert [c.get('order') for _ in range(50)] == [b'%d' % i for i in range(50)]
    assert c.get('order') is None
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'set flagged 42 0 3\r\nabc\r\n') == b'STORED'
    assert k.get(b'flagged') == (b'abc', 42)
    # python-memcache pickles objects and says so in the flags
    mc = memcache.Client(['127.0.0.1:%d' % kgw.kestrel_port])
    assert mc.set('objects', {'a': [1, 2]})
    assert mc.get('objects') == {'a': [1, 2]}
    assert mc.set('objects', 17)
    assert mc.get('objects') == 17
    mc.disconnect_all()
    # gets answers a cas field (pymemcache needs one)
    assert c.set('cas', b'v', noreply=False)
    value, cas = c.gets('cas')
    assert value == b'v' and int(cas) > 0


def test_large_items_in_order(kgw):
    """Items over the prefetch size come in order, one at a time."""
    c = client(kgw)
    items = [(b'%03d' % i) * 3000 for i in range(30)]
    for item in items:
        assert c.set('large', item)
    got = [c.get('large/open')]
    got += [c.get('large/close/open') for _ in range(29)]
    assert got == items
    assert c.get('large/close') is None
    assert int(c.stats()[b'queue_large_items']) == 0
    # the first large item the gateway leases ends its leasing ahead, and
    # it keeps what it has; an item aborted then goes back to the broker,
    # so those go back too, to come after it again
    mixed = [b'a', b'b', items[0], b'c']
    assert c.set('mixed', b'a') and c.get('mixed/open') == b'a'
    for item in mixed[1:]:
        assert c.set('mixed', item)
    # (leased: the open one and the two the gateway holds)
    wait_until(lambda: broker_queues(kgw.broker)['mixed']['counts'][4] == 3,
               what='the gateway leasing ahead')
    assert c.get('mixed/abort') is None
    assert [c.get('mixed') for _ in range(5)] == mixed + [None]


# Longer than the gateway's ARB_KESTREL_IDLE_MS (0.5 s): a queue without gets
# for this long gives its prefetched items back to the broker.
IDLE_PAUSE = 0.8


def test_large_items_in_order_across_idle_pauses(kgw):
    """The first get turns prefetching on; the first large item the
    consumer brings turns it off, so the gateway keeps that item and gives
    the ones behind it back. A pause over the idle time then gives the kept
    item back too: it must come out before them, not after."""
    c = client(kgw)
    items = [(b'%03d' % i) * 3000 for i in range(20)]
    for item in items:
        assert c.set('idlelarge', item)
    got = [c.get('idlelarge/open')]
    for i in range(1, 20):
        if i <= 2:
            time.sleep(IDLE_PAUSE)
        got.append(c.get('idlelarge/close/open'))
    assert [g[:3] if g else None for g in got] == [item[:3] for item in items]
    assert c.get('idlelarge/close') is None


def test_abort_after_an_idle_pause_goes_first(kgw):
    """Arbeiter's abort-to-head: an item held open for longer than the idle
    time, while the items prefetched behind it went back, then aborted, is
    the next one out."""
    c = client(kgw)
    for i in range(20):
        assert c.set('idleabort', b'%02d' % i)
    assert c.get('idleabort/open') == b'00'
    time.sleep(IDLE_PAUSE)
    assert c.get('idleabort/abort') is None
    assert [c.get('idleabort') for _ in range(20)] == [b'%02d' % i for i in range(20)]


def test_abort_while_prefetching_goes_first(kgw):
    """/abort while the queue prefetches: the tasks behind the item are
    prefetched or on their way to the gateway (the consumer's credit), yet
    the aborted item is the next one out, round after round, whether the
    commands come one by one or pipelined; two clients' aborted items come
    back in the queue's order; and an item open on a connection that ends
    is the next one out."""
    c = client(kgw)
    for i in range(400):
        assert c.set('abq', b'%03d' % i)
    k = KSock(kgw.kestrel_port)
    expect = 0
    for _ in range(30):
        assert k.get(b'abq/open') == (b'%03d' % expect, 0)
        assert k.get(b'abq/abort') is None
        assert k.get(b'abq/open') == (b'%03d' % expect, 0)
        assert k.get(b'abq/close') is None
        expect += 1
    for _ in range(30):
        k.send(b'get abq/open\r\nget abq/abort\r\nget abq/open\r\nget abq/close\r\n')
        for answer in (b'%03d' % expect, None, b'%03d' % expect, None):
            head = k.line()
            if answer is not None:
                assert head.startswith(b'VALUE abq/open 0 '), head
                assert k.exact(int(head.split()[3]) + 2)[:-2] == answer
                head = k.line()
            assert head == b'END'
        expect += 1
    a, b = client(kgw), client(kgw)
    assert a.get('abq/open') == b'%03d' % expect
    assert b.get('abq/open') == b'%03d' % (expect + 1)
    assert b.get('abq/abort') is None
    assert a.get('abq/abort') is None
    assert [c.get('abq') for _ in range(2)] == [b'%03d' % expect, b'%03d' % (expect + 1)]
    expect += 2
    assert k.get(b'abq/open') == (b'%03d' % expect, 0)
    k.close()
    wait_until(lambda: int(c.stats()[b'queue_abq_open_transactions']) == 0,
               what='the gateway to see the disconnect')
    assert [c.get('abq') for _ in range(400 - expect)] == [b'%03d' % i for i in range(expect, 400)]
    assert c.get('abq') is None


def test_open_then_disconnect_gives_the_item_back(kgw):
    c = client(kgw)
    assert c.set('rel', b'first') and c.set('rel', b'second')
    holder = KSock(kgw.kestrel_port)
    assert holder.get(b'rel/open') == (b'first', 0)
    holder.close()
    wait_until(lambda: int(c.stats()[b'queue_rel_open_transactions']) == 0,
               what='the gateway to see the disconnect')
    assert {c.get('rel/t=5000'), c.get('rel/t=5000')} == {b'first', b'second'}
    assert c.get('rel') is None


def test_close_open_abort_peek(kgw):
    c = client(kgw)
    for v in (b'a', b'b', b'c'):
        assert c.set('rq', v)
    assert c.get('rq/open') == b'a'
    assert c.get('rq/close/open') == b'b'
    assert c.get('rq/abort') is None  # b goes back to the head
    assert c.get('rq/peek') == b'b'
    assert c.get('rq/open') == b'b'
    assert c.get('rq/peek') == b'c'  # a peek beside an open item is fine
    assert c.get('rq/close') is None
    assert c.get('rq/close') is None  # nothing open: nothing to close
    assert c.get('rq') == b'c'
    assert c.get('rq/peek') is None
    # the stats lines count what is open
    assert c.get('rq2/open') is None
    assert c.set('rq2', b'x') and c.get('rq2/open') == b'x'
    assert int(c.stats()[b'queue_rq2_open_transactions']) == 1
    assert c.get('rq2/abort') is None
    assert c.get('rq2') == b'x'


def test_wait_returns_the_item_set_meanwhile(kgw):
    c = client(kgw)
    result = {}

    def waiter():
        w = client(kgw)
        started = time.time()
        result['value'] = w.get('slow/t=20000')
        result['took'] = time.time() - started
        w.close()
    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: int(c.stats().get(b'queue_slow_waiters', 0)) == 1, what='a waiter')
    assert c.set('slow', b'late')
    t.join(30)
    assert result['value'] == b'late' and result['took'] < 20
    # a wait that times out answers END after its time, not before
    started = time.time()
    assert c.get('slow/t=300') is None
    assert time.time() - started >= 0.25
    assert int(c.stats()[b'queue_slow_waiters']) == 0


def test_fanout_copies_from_first_use_and_after_restart(kgw, processes):
    c = client(kgw)
    assert c.set('orders', b'before')
    assert c.get('orders+audit') is None  # first use of the child
    assert c.set('orders', b'one')
    assert c.get('orders') == b'before'
    assert c.get('orders') == b'one'
    assert c.get('orders+audit') == b'one'
    assert c.get('orders+audit') is None
    stats = c.stats()
    assert stats[b'queue_orders_children'] == b'orders+audit'
    c.close()
    # the child is in the broker's metadata: a new gateway knows it
    kgw.stop()
    gw2 = kgw.restart()
    processes.append(gw2)
    ready(gw2)
    c = client(gw2)
    assert c.set('orders', b'two')
    assert c.get('orders+audit') == b'two'
    assert c.get('orders') == b'two'
    # the child's record is under its parent's queue metadata
    key = 'queue@orders@gw.kestrel.fanout.orders+audit'
    assert list(broker_meta(gw2.broker, 'queue@orders@')) == [key]
    # delete of the child detaches it, and deletes the child queue
    assert c.delete('orders+audit')
    assert broker_meta(gw2.broker, 'queue@orders@') == {}
    assert c.set('orders', b'three')
    assert c.get('orders') == b'three'
    assert c.stats().get(b'queue_orders_children') is None


def test_delete_removes_the_queue_and_its_fanout_children(kgw):
    """delete is the broker's queue delete: the queue leaves the listing,
    its tasks go (an open one too), and the records of its fan-out
    children go with its metadata; the child queues keep their items."""
    c = client(kgw)
    assert c.set('parent', b'a')
    assert c.get('parent+copy') is None  # the child, from its first use
    assert c.set('parent', b'b')
    holder = KSock(kgw.kestrel_port)
    assert holder.get(b'parent/open') == (b'a', 0)
    assert list(broker_meta(kgw.broker, 'queue@parent@')) == [
        'queue@parent@gw.kestrel.fanout.parent+copy']
    assert broker_queues(kgw.broker)['parent']['declared']
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'delete parent\r\n') == b'DELETED'
    wait_until(lambda: 'parent' not in broker_queues(kgw.broker), what='parent unlisted')
    assert broker_meta(kgw.broker, 'queue@parent@') == {}
    stats = c.stats()
    assert b'queue_parent_children' not in stats and int(stats[b'queue_deletes']) == 1
    assert holder.get(b'parent/close') is None  # its item went with the queue
    # the parent has no child any more: a set makes no copy
    assert c.set('parent', b'c')
    assert broker_queues(kgw.broker)['parent']['declared']  # named again: declared again
    assert int(c.stats()[b'queue_parent+copy_items']) == 1  # the copy of b only
    assert c.get('parent') == b'c'
    assert c.get('parent+copy') == b'b'
    # delete of a queue nobody knows is fine, as in Kestrel
    assert k.ask(b'delete never\r\n') == b'DELETED'


def test_queue_deletes_counts_only_queues_that_were_there(kgw, peer_factory):
    """As Kestrel's: a delete of a queue that is not there answers DELETED
    and is not counted in queue_deletes; one of a queue the broker knows
    (an item, a declaration, tasks submitted to the broker) is, once."""
    c = client(kgw)

    def deletes():
        return int(c.stats()[b'queue_deletes'])
    assert deletes() == 0
    assert c.delete('nosuch', noreply=False)  # DELETED all the same
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'delete nosuch2\r\n') == b'DELETED'
    k.send(b'delete nosuch3 noreply\r\n')
    assert k.ask(b'version\r\n').startswith(b'VERSION ')  # after the delete's end
    assert deletes() == 0
    assert c.set('real', b'x')
    assert c.delete('real', noreply=False)
    assert deletes() == 1
    assert c.delete('real', noreply=False)  # gone already
    assert deletes() == 1
    assert c.get('named') is None  # named, so declared, while empty
    assert k.ask(b'delete named\r\n') == b'DELETED'
    assert deletes() == 2
    peer = peer_factory(kgw.broker.endpoint)
    submit_many(peer, [{'name': 't', 'queue': 'fromcli'}])  # a queue the gateway never named
    assert k.ask(b'delete fromcli\r\n') == b'DELETED'
    assert deletes() == 3
    assert 'fromcli' not in broker_queues(kgw.broker)


def test_a_named_queue_is_declared_and_listed_while_empty(kgw):
    c = client(kgw)
    assert c.get('fresh') is None  # a get names it
    assert c.get('fresh/peek') is None
    assert c.set('made', b'x') and c.get('made') == b'x'  # a set too
    queues = broker_queues(kgw.broker)
    assert queues['fresh']['declared'] and queues['made']['declared']
    assert sum(queues['fresh'].get('counts', [])) == 0
    stats = c.stats()
    assert int(stats[b'queue_fresh_items']) == 0 and int(stats[b'queue_made_items']) == 0
    # declared by this gateway: _ready (the fixture's probe), fresh, made
    assert int(stats[b'queue_creates']) == 3


def test_old_fanout_records_move_once_under_two_gateways(broker, gateway, peer_factory):
    """Records of the form before (gw.kestrel.fanout.CHILD) move under
    their parent's metadata when the gateways start; two gateways that
    start together move each once, and both know the child."""
    peer = peer_factory(broker.endpoint)
    for child in ('legacy+audit', 'legacy+mail'):
        kind, _, body, _ = peer.request('META', {'op': 'set', 'key': 'gw.kestrel.fanout.' + child})
        assert kind == 'META_REPLY', body
    gw1, gw2 = gateway(), gateway()
    ready(gw1)
    ready(gw2)
    assert broker_meta(broker, 'gw.kestrel.fanout.') == {}
    assert sorted(broker_meta(broker, 'queue@legacy@')) == [
        'queue@legacy@gw.kestrel.fanout.legacy+audit', 'queue@legacy@gw.kestrel.fanout.legacy+mail']
    assert client(gw2).set('legacy', b'x')
    for gw in (gw1, gw2):
        children = client(gw).stats()[b'queue_legacy_children']
        assert sorted(children.split(b',')) == [b'legacy+audit', b'legacy+mail']
    c = client(gw1)
    assert c.get('legacy+audit') == b'x' and c.get('legacy+mail') == b'x'
    assert c.get('legacy') == b'x'


def test_stats_lines_come_from_the_broker(kgw):
    c = client(kgw)
    for i in range(3):
        assert c.set('sl', b'%d' % i)
    holder = client(kgw)
    assert holder.get('sl/open') == b'0'  # and the queue prefetches the rest

    def settled():
        stats = c.stats()
        return (int(stats[b'queue_sl_items']) == 2
                and int(stats[b'queue_sl_open_transactions']) == 1
                and int(stats[b'queue_sl_age']) > 0 and stats)
    stats = wait_until(settled, what='the stats of sl')
    assert int(stats[b'queue_sl_total_items']) == 3 and int(stats[b'queue_sl_waiters']) == 0
    assert int(stats[b'curr_items']) >= 2
    assert holder.get('sl/close') is None
    wait_until(lambda: int(c.stats()[b'queue_sl_total_items']) == 3, what='kept while retained')
    assert c.get('sl') == b'1' and c.get('sl') == b'2'
    wait_until(lambda: int(c.stats()[b'queue_sl_open_transactions']) == 0, what='all settled')
    assert int(c.stats()[b'queue_sl_age']) == 0


def test_a_slow_reader_does_not_make_its_backlog_young(kgw):
    """Items a queue prefetched and gave back (no get for a while) have
    waited since they were set: the queue's age keeps counting."""
    c = client(kgw)
    for i in range(30):
        assert c.set('slow', b'%d' % i)
    started = time.monotonic()
    for _ in range(3):
        assert c.get('slow') is not None  # the queue prefetches the rest ...
        time.sleep(1.2)  # ... and gives them back after its idle time
    waited_ms = (time.monotonic() - started) * 1000
    age = int(c.stats()[b'queue_slow_age'])
    assert age >= waited_ms - 300, (age, waited_ms)  # not the time since the give-back


def test_stats_and_flush_all_read_every_page(kgw, peer_factory):
    """Over 1,000 queues: STATS takes pages, and stats and flush_all see
    them all. The stats answer (over 300 KB) is past the connection's
    output bound: the commands after it, on the same connection, sent
    with it in one write or after it was read, are answered in turn."""
    peer = peer_factory(kgw.broker.endpoint)
    submit_many(peer, [{'name': 't', 'queue': 'pg%04d' % i} for i in range(1100)], batch=1100)
    c = client(kgw)
    stats = c.stats()
    assert all(int(stats[b'queue_pg%04d_items' % i]) == 1 for i in range(1100))
    assert int(stats[b'curr_items']) >= 1100
    assert int(c.stats()[b'queue_pg0000_items']) == 1
    k = KSock(kgw.kestrel_port)
    k.send(b'stats\r\nversion\r\nstats\r\nflush_all\r\n')
    time.sleep(0.5)  # the answers wait in the gateway, past its bound
    for then in (b'VERSION ', b'Flushed all queues.'):
        lines = 0
        while k.line() != b'END':
            lines += 1
        assert lines > 1100
        assert k.line().startswith(then)
    assert c.get('pg1099') is None and c.get('pg0000') is None


def test_listings_ask_the_broker_a_few_at_a_time(broker, gateway):
    """stats and flush_all list every queue of the broker (0.7 s of its
    CPU and 3.7 MB of text for 40,000 queues): at most 4 ask at once over
    the whole gateway, the others wait their turn in order (150 clients at
    once lost the gateway its session). With the broker stopped, 12 at
    once fail in turns: 4 at the rpc timeout, the others later."""
    gw = gateway('--rpc-timeout', '1')
    ready(gw)
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        started, ended = time.monotonic(), []

        def ask(i):
            k = KSock(gw.kestrel_port, timeout=30)
            line = k.ask(b'flush_all\r\n' if i % 3 == 0 else b'stats\r\n')
            ended.append((time.monotonic() - started, line))
            k.close()
        askers = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
        for t in askers:
            t.start()
        for t in askers:
            t.join(60)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    assert len(ended) == 12 and all(line.startswith(b'SERVER_ERROR ') for _, line in ended), \
        ended
    first = [t for t, _ in ended if t < 1.8]
    assert 1 <= len(first) <= 4, sorted(ended)
    assert max(t for t, _ in ended) >= 2, sorted(ended)
    k = KSock(gw.kestrel_port)
    wait_until(lambda: k.ask(b'version\r\n').startswith(b'VERSION'), what='still serving')
    assert client(gw).stats()[b'curr_connections']


def test_unread_stats_answers_cost_their_text_only(kgw, peer_factory):
    """A stats answer that its client does not read waits in the gateway,
    and costs its text alone: the broker's listing is read a page at a
    time and let go, a few listings at a time, and the answer is not
    copied on its way out (50 clients that sent stats over 40,000 queues
    and read nothing took the gateway to 2.67 GB, 45 MB each for 3.7 MB
    of text)."""
    peer = peer_factory(kgw.broker.endpoint)
    submit_many(peer, [{'name': 't', 'queue': 'um%05d' % i} for i in range(5000)], batch=1000)
    size = len(b''.join(read_stats(kgw.kestrel_port)))
    assert size > 400 << 10
    with open('/proc/%d/status' % kgw.pid) as f:
        before = int([line for line in f if line.startswith('VmRSS:')][0].split()[1])
    socks = []
    for _ in range(40):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(('127.0.0.1', kgw.kestrel_port))
        s.sendall(b'stats\r\n')
        socks.append(s)
    # asked after them, answered after them (turns are taken in order)
    read_stats(kgw.kestrel_port)
    with open('/proc/%d/status' % kgw.pid) as f:
        peak = int([line for line in f if line.startswith('VmHWM:')][0].split()[1])
    for s in socks:
        s.close()
    # the 40 answers, and a few listings' pages and answers being built
    # (not under the sanitizers, whose quarantine keeps what is freed)
    if not SANITIZED:
        assert (peak - before) << 10 < 40 * size * 1.5 + (64 << 20), (peak - before, size)
    assert int(client(kgw).stats()[b'queue_um04999_items']) == 1


def read_stats(port):
    """The lines of one stats answer, read whole."""
    k = KSock(port, timeout=60)
    k.send(b'stats\r\n')
    lines = []
    while True:
        line = k.line()
        if line == b'END':
            k.close()
            return lines
        lines.append(line + b'\r\n')


def test_peek_answers_the_flags_from_the_broker(kgw):
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'set pk 42 0 3\r\nabc\r\n') == b'STORED'
    assert k.get(b'pk/peek') == (b'abc', 42)
    # an expired item is not peeked at: the next one is
    assert k.ask(b'set px 7 -1 4\r\ngone\r\n') == b'STORED'
    assert k.ask(b'set px 9 0 4\r\nkept\r\n') == b'STORED'
    assert k.get(b'px/peek') == (b'kept', 9)
    assert k.get(b'pk') == (b'abc', 42)


def test_libmemcached_tools(kgw, tmp_path):
    """libmemcached's own tools (Debian's libmemcached-tools), as clients
    built on that library (pylibmc, PHP's memcached) talk: memccp stores a
    file as an item of the queue named by the file, memccat gets it,
    memcping and memcstat check the server's version first."""
    tools = {name: shutil.which(name) for name in ('memccp', 'memccat', 'memcping', 'memcstat')}
    if not all(tools.values()):
        pytest.skip('libmemcached-tools is not installed')
    servers = '--servers=127.0.0.1:%d' % kgw.kestrel_port
    job = tmp_path / 'mcjobs'
    job.write_bytes(b'a job from memccp\n')

    def run(name, *args):
        r = subprocess.run([tools[name], servers] + list(args), capture_output=True, text=True,
                           timeout=30, cwd=tmp_path)
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        return r.stdout

    run('memcping')
    stat = run('memcstat')
    assert 'version: 2.4.1' in stat and 'curr_items:' in stat, stat
    run('memccp', str(job))
    assert run('memccat', 'mcjobs') == 'a job from memccp\n\n'  # memccat adds a newline
    assert client(kgw).get('mcjobs') is None  # taken: a queue, not a cache


def test_pylibmc(kgw):
    """pylibmc (Debian's python3-pylibmc), a client built on libmemcached."""
    pylibmc = pytest.importorskip('pylibmc')
    mc = pylibmc.Client(['127.0.0.1:%d' % kgw.kestrel_port])
    assert mc.set('plq', b'one') and mc.set('plq', b'two')
    assert mc.get('plq/open') == b'one'
    assert mc.get('plq/close') is None  # close answers END
    assert mc.get_multi(['plq']) == {'plq': b'two'}
    assert mc.get('plq') is None
    assert mc.get_stats()[0][1]['version'] == b'2.4.1'
    assert mc.delete('plq')


def test_stats_version_delete_flush(kgw):
    c = client(kgw)
    for i in range(3):
        assert c.set('st', b'%d' % i)
    stats = c.stats()
    for key in (b'uptime', b'time', b'version', b'curr_items', b'total_items',
                b'curr_connections', b'total_connections', b'cmd_get', b'cmd_set', b'cmd_peek',
                b'get_hits', b'get_misses', b'bytes_read', b'bytes_written'):
        assert key in stats, key
    assert int(stats[b'queue_st_items']) == 3
    assert int(stats[b'queue_st_waiters']) == 0
    assert stats[b'version'] == b'2.4.1' and stats[b'arbiter_version'] == b'0.1.0'
    assert c.version() == b'2.4.1 arbiter-gateway/0.1.0'
    mc = memcache.Client(['127.0.0.1:%d' % kgw.kestrel_port])
    (_, mstats), = mc.get_stats()
    assert mstats['queue_st_items'] == '3'
    # memcached's sub-lists get the one list there is, as from Kestrel,
    # which ignores the arguments of stats, version, quit and shutdown
    assert int(c.stats('items')[b'queue_st_items']) == 3
    (_, mstats), = mc.get_stats('slabs')
    assert mstats['queue_st_items'] == '3'
    assert KSock(kgw.kestrel_port).ask(b'version please\r\n') == b'VERSION 2.4.1 arbiter-gateway/0.1.0'
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'flush st\r\n') == b'END'
    assert c.get('st') is None
    assert c.set('st', b'again')
    assert k.ask(b'delete st\r\n') == b'DELETED'
    assert c.get('st') is None
    assert c.set('a1', b'x') and c.set('a2', b'y')
    # a queue of another protocol's (a name Kestrel cannot have): left alone
    peer = arbiter_proto.Peer(kgw.broker.endpoint)
    try:
        submit_many(peer, [{'name': 't', 'queue': 'jobs.email'}])
    finally:
        peer.close()
    assert k.ask(b'flush_all\r\n') == b'Flushed all queues.'
    assert c.get('a1') is None and c.get('a2') is None
    assert broker_queues(kgw.broker)['jobs.email']['counts'][3] == 1  # ready
    mc.disconnect_all()


def test_expiry_drops_an_unread_item(kgw):
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'set ttl 0 1 4\r\ngone\r\n') == b'STORED'
    assert k.ask(b'set ttl 0 0 4\r\nkept\r\n') == b'STORED'
    assert k.ask(b'set ttl 0 -1 4\r\npast\r\n') == b'STORED'
    c = client(kgw)
    wait_until(lambda: int(c.stats()[b'queue_ttl_items']) == 1, timeout=10,
               what='the expired items dropped')
    assert k.get(b'ttl') == (b'kept', 0)
    assert k.get(b'ttl') is None


def test_a_waiting_peek_leaves_the_head_in_front(kgw):
    """A peek that waits on an empty queue which another client reads (the
    gateway leases its items ahead) sees the first item set, and that
    item stays first: the gets after it come in the order of the sets."""
    reader = KSock(kgw.kestrel_port)
    assert reader.get(b'pk') is None  # a get: the queue prefetches
    peeker = KSock(kgw.kestrel_port)
    peeker.send(b'get pk/peek/t=5000\r\n')
    c = client(kgw)
    wait_until(lambda: int(c.stats()[b'queue_pk_waiters']) == 1, what='the peek waiting')
    setter = KSock(kgw.kestrel_port)
    setter.send(b''.join(b'set pk 0 0 2\r\ni%d\r\n' % i for i in range(10)))
    assert [setter.line() for _ in range(10)] == [b'STORED'] * 10
    assert peeker.line() == b'VALUE pk/peek/t=5000 0 2'
    assert peeker.exact(4) == b'i0\r\n' and peeker.line() == b'END'
    assert [reader.get(b'pk')[0] for _ in range(10)] == [b'i%d' % i for i in range(10)]
    assert reader.get(b'pk') is None
    # on a queue nobody gets from (no leasing ahead), the item comes to the
    # waiting peek from the broker: it is a look all the same, and stays
    peeker.send(b'get pk2/peek/t=5000\r\n')
    wait_until(lambda: int(c.stats()[b'queue_pk2_waiters']) == 1, what='the peek waiting')
    assert setter.ask(b'set pk2 0 0 4\r\nonly\r\n') == b'STORED'
    assert peeker.line() == b'VALUE pk2/peek/t=5000 0 4'
    assert peeker.exact(6) == b'only\r\n' and peeker.line() == b'END'
    assert reader.get(b'pk2') == (b'only', 0)
    for k in (reader, peeker, setter):
        k.close()


def test_items_the_gateway_holds_are_not_handed_out_past_their_expiry(kgw):
    """The gateway leases items ahead of the gets (a queue read often),
    and keeps an aborted one in front of them; the broker expires only
    the items it holds, so the gateway looks too: past its exptime none
    is handed out, by a get or a peek, and each ends in the broker."""
    c = client(kgw)
    started = time.time()
    for i in range(30):
        assert c.set('xq', b'%02d' % i, expire=1)
    assert c.get('xq') == b'00'  # the queue prefetches from here on
    k = KSock(kgw.kestrel_port)
    assert k.get(b'xq/open') == (b'01', 0)
    # gets keep the queue busy (it gives its items back after 500 ms
    # without one) until every item is past its expiry
    while time.time() - started < 1.6:
        c.get('xq')
        time.sleep(0.2)
    assert k.get(b'xq/abort') is None  # kept in the gateway, in front
    assert c.get('xq/peek') is None
    assert c.get('xq') is None
    wait_until(lambda: int(c.stats()[b'queue_xq_items']) == 0, timeout=10,
               what='the expired items ended')
    assert c.set('xq', b'live')
    assert c.get('xq') == b'live'
    k.close()


def test_hundreds_of_clients_at_once(kgw):
    socks = [KSock(kgw.kestrel_port) for _ in range(300)]
    for i, k in enumerate(socks):
        k.send(b'set many 0 0 %d\r\n%d\r\n' % (len(b'%d' % i), i))
    assert all(k.line() == b'STORED' for k in socks)
    for k in socks:
        k.send(b'get many/t=5000\r\n')
    got = set()
    for k in socks:
        head = k.line()
        assert head.startswith(b'VALUE many/t=5000 0 '), head
        got.add(k.exact(int(head.split()[3]) + 2)[:-2])
        assert k.line() == b'END'
        k.close()
    assert got == {b'%d' % i for i in range(300)}


def test_bad_input(gateway):
    gw = gateway('--kestrel-max-item', '1K')
    ready(gw)
    c = client(gw)
    k = KSock(gw.kestrel_port)
    # refused, and the connection goes on
    bad = [
        b'set a~b 0 0 1\r\nx\r\n', b'set a.b 0 0 1\r\nx\r\n', b'set +x 0 0 1\r\nx\r\n',
        b'set q/open 0 0 1\r\nx\r\n', b'set q x 0 1\r\nx\r\n', b'set q 0 zz 1\r\nx\r\n',
        b'set ' + b'q' * 201 + b' 0 0 1\r\nx\r\n',
        b'get ' + b'q' * 200 + b'/open/t=1000000000000000000000000000000000000000000000000000\r\n',
        b'get q/\x01\r\n', b'get q/peek/open\r\n', b'add q 0 0 1\r\nx\r\n',
        b'set big 0 0 1025\r\n' + b'x' * 1025 + b'\r\n', b'\r\n',
        b'flush_all 30\r\n', b'shutdown\r\n',
    ]
    for request in bad:
        assert k.ask(request).startswith(b'CLIENT_ERROR '), request
    assert k.ask(b'version\r\n').startswith(b'VERSION ')
    assert k.ask(b'set big 0 0 1024\r\n' + b'x' * 1024 + b'\r\n') == b'STORED'
    assert c.get('big') == b'x' * 1024
    # refused with noreply: nothing comes back, the next answer is in step
    k.send(b'set a~b 0 0 1 noreply\r\nx\r\n')
    assert k.ask(b'version\r\n').startswith(b'VERSION ')
    # the stream cannot resync: CLIENT_ERROR, then the connection closes
    fatal = [
        b'set q 0 0 5\r\nabcdefgh\r\n',          # longer than its length
        b'set q 0 0 10\r\nabcde\r\nfghijk\r\n',  # shorter: the next bytes are not CR LF
        b'set q 0 0\r\n',                         # no length
        b'frobnicate q\r\n',                      # unknown: a block may follow
        b'x' * 3000,                              # a line too long
    ]
    for request in fatal:
        f = KSock(gw.kestrel_port, timeout=5)
        f.send(request)
        assert f.line().startswith(b'CLIENT_ERROR '), request
        assert f.closed(), request
        f.close()
    assert c.get('q') is None  # none of that was stored
    # Kestrel's ERROR: a plain get beside an open item; the client goes,
    # its open item comes back
    assert c.set('err', b'held')
    e = KSock(gw.kestrel_port, timeout=5)
    assert e.get(b'err/open') == (b'held', 0)
    assert e.ask(b'get err\r\n') == b'ERROR'
    assert e.closed()
    assert c.get('err/t=5000') == b'held'
    # the server went on serving the others all along
    assert c.set('fine', b'yes') and c.get('fine') == b'yes'
    assert gw.alive()


def test_an_empty_queue_name_is_refused_by_name_in_every_form(kgw):
    """A key that is empty (pymemcache sends '' as it is), or a queue name
    empty before its options, answers one CLIENT_ERROR for every command,
    naming the problem and the command's form; the connection goes on (a
    set's block skipped by its length), and nothing is stored or deleted."""
    c = client(kgw)
    assert c.set('noreply', b'kept')
    before = c.stats()
    set_form = b'(set <queue> <flags> <exptime> <bytes> [noreply])'
    calls = [
        (lambda: c.set('', b'x', noreply=False), set_form),  # set  0 0 1
        (lambda: c.set('/t', b'x', noreply=False), set_form),
        (lambda: c.get(''), b'(get <queue>[/options])'),  # get
        (lambda: c.get('/t=10'), b'(get <queue>[/options])'),
        (lambda: c.gets('/open'), b'(gets <queue>[/options])'),
        (lambda: c.delete('', noreply=False), b'(delete <queue> [noreply])'),  # delete
    ]
    for call, form in calls:
        with pytest.raises(MemcacheClientError) as refused:
            call()
        assert refused.value.args[0] == b'empty queue name ' + form, refused.value
    # pymemcache's delete('') with noreply (its default): 'delete  noreply',
    # refused in silence, not a delete of the queue noreply
    c.delete('', noreply=True)
    k = KSock(kgw.kestrel_port)
    for request, form in (
            (b'set  0 0 1\r\nx\r\n', set_form), (b'set /open 0 0 1\r\nx\r\n', set_form),
            (b'get\r\n', b'(get <queue>[/options])'), (b'get \r\n', b'(get <queue>[/options])'),
            (b'gets\r\n', b'(gets <queue>[/options])'),
            (b'get /t=10\r\n', b'(get <queue>[/options])'),
            (b'delete\r\n', b'(delete <queue> [noreply])'),
            (b'delete /x\r\n', b'(delete <queue> [noreply])'),
            (b'flush\r\n', b'(flush <queue> [noreply])'),
            (b'flush /x\r\n', b'(flush <queue> [noreply])')):
        assert k.ask(request) == b'CLIENT_ERROR empty queue name ' + form, request
        assert k.ask(b'version\r\n').startswith(b'VERSION '), request
    k.send(b'set  0 0 1 noreply\r\nx\r\ndelete  noreply\r\nflush  noreply\r\n')
    assert k.ask(b'version\r\n').startswith(b'VERSION ')  # nothing before it
    # over-long keys say which limit, in the command's form
    assert k.ask(b'get %s\r\n' % (b'q' * 200 + b'/t=1' * 13)) == (
        b'CLIENT_ERROR key of 252 bytes, over 250 (get <queue>[/options])')
    assert k.ask(b'set %s 0 0 1\r\nx\r\n' % (b'q' * 251)) == (
        b'CLIENT_ERROR key of 251 bytes, over 250 ' + set_form)
    assert k.ask(b'delete %s\r\n' % (b'q' * 201)) == (
        b'CLIENT_ERROR queue name of 201 bytes, over 200')
    # a line a field short with single spaces: which one is missing is
    # unknown, and so the block's length: refused, and the connection closes
    f = KSock(kgw.kestrel_port, timeout=5)
    assert f.ask(b'set 0 0 1\r\nx\r\n') == (b'CLIENT_ERROR missing fields ' + set_form)
    assert f.closed()
    # nothing was stored, the queue noreply was not deleted
    stats = c.stats()
    for key in (b'cmd_set', b'queue_deletes', b'queue_noreply_items'):
        assert stats[key] == before[key], key
    assert c.get('noreply') == b'kept'


def test_a_bad_get_option_is_quoted_printable(kgw):
    """A get option with a control byte is refused (the key goes back in
    the VALUE line), quoted printable (a control byte as '.', cut at 32
    bytes, marked), never a CR or other control byte of the client's in
    the line; t= without its number is a bad t=."""
    c = client(kgw)
    with pytest.raises(MemcacheClientError) as refused:
        c.get('q/t=')
    assert refused.value.args[0] == b'bad get option t=: a wait in ms, at most 2147483647'
    with pytest.raises(MemcacheClientError) as refused:
        c.get('q/\x01x\x7f')
    assert refused.value.args[0] == b"control character in get option '.x.'"
    k = KSock(kgw.kestrel_port)
    k.send(b'get q/a\rb\r\nget q/%s\x01\r\nversion\r\n' % (b'o' * 40))
    k.sock.settimeout(5)
    answers = b''
    while answers.count(b'\r\n') < 3:
        answers += k.sock.recv(4096)
    assert answers.split(b'\r\n')[:3] == [
        b"CLIENT_ERROR control character in get option 'a.b'",
        b"CLIENT_ERROR control character in get option '%s...'" % (b'o' * 32),
        b'VERSION 2.4.1 arbiter-gateway/0.1.0']


def test_what_kestrel_ignores_is_ignored(kgw):
    """As Kestrel reads a line: a get of several keys serves the first (a
    memcache client's multi-get), an unknown or empty get option is
    ignored, and a delete's fields after the queue are (memcached's
    `delete <key> 0`, which older clients send)."""
    c = client(kgw)
    for queue in ('m1', 'm2'):
        assert c.set(queue, b'in ' + queue.encode())
    assert c.get_many(['m1', 'm2']) == {'m1': b'in m1'}
    assert c.get('m2/opne') == b'in m2'  # a plain get: taken, nothing open
    assert c.get('m2/close') is None
    mc = memcache.Client(['127.0.0.1:%d' % kgw.kestrel_port])
    assert mc.set('m3', 'x') and mc.set('m3', 'y')
    assert mc.get_multi(['m3'] + ['n%d' % i for i in range(12)]) == {'m3': 'x'}
    assert mc.set('m3', 'z')  # the server is not marked dead: the set is stored
    assert mc.get('m3//open/') == 'y' and mc.get('m3/close') is None
    k = KSock(kgw.kestrel_port)
    assert k.ask(b'delete m3 0\r\n') == b'DELETED'
    assert c.get('m3') is None  # z went with the queue
    assert c.set('m5', b'x')
    k.send(b'delete m5 0 noreply\r\n')
    assert k.ask(b'version\r\n').startswith(b'VERSION ')
    assert c.get('m5') is None


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        return int([line for line in f if line.startswith('VmRSS:')][0].split()[1])


def test_a_line_too_long_behind_a_wait_is_refused_once(kgw):
    """A line too long, sent a byte at a time behind a get that waits, is
    refused once, after the get's answer, and the connection closed: not
    once more for every read while the get waits (each refusal an answer
    held in memory)."""
    k = KSock(kgw.kestrel_port, timeout=10)
    k.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    k.send(b'get lw/t=2000\r\n' + b'x' * 3000)
    for _ in range(40):
        time.sleep(0.01)
        k.send(b'y')
    assert read_to_end(k.sock) == b'END\r\nCLIENT_ERROR line too long\r\n'
    k.close()


def test_a_binary_protocol_request_is_refused_at_once(kgw):
    """A client set to memcached's binary protocol (pylibmc binary=True)
    sends a request without a line end: it is refused and closed at once,
    not left waiting for its timeout; a text client goes on meanwhile."""
    other = KSock(kgw.kestrel_port, timeout=10)
    k = KSock(kgw.kestrel_port, timeout=5)
    version = bytes([0x80, 0x0b]) + bytes(22)  # the binary VERSION request
    k.send(version)
    assert read_to_end(k.sock) == \
        b'CLIENT_ERROR the binary protocol is not supported, only the text one\r\n'
    k.close()
    assert other.ask(b'version\r\n').startswith(b'VERSION ')
    other.close()


def test_a_block_too_long_to_skip_closes_the_connection(gateway):
    """A set over --kestrel-max-item is refused and its block skipped, so
    that a pipelining client stays in step, but only up to 16 MiB (or the
    limit, if larger): a longer declared length is refused and the
    connection closed at once, never swallowing the client's next
    commands while the gateway waits for gigabytes; nothing is allocated
    for it, and the other connections go on."""
    gw = gateway('--kestrel-max-item', '1K')
    ready(gw)
    c = client(gw)
    # modestly too large, pipelined: refused, skipped, and the next in step
    k = KSock(gw.kestrel_port, timeout=10)
    k.send(b'set big 0 0 2000\r\n' + b'x' * 2000 + b'\r\nset small 0 0 2\r\nok\r\n'
           b'set big 0 0 16777216\r\n' + b'y' * (16 << 20) + b'\r\nget small\r\n')
    assert k.line() == b'CLIENT_ERROR item of 2000 bytes, over the limit of 1024 bytes'
    assert k.line() == b'STORED'
    assert k.line() == b'CLIENT_ERROR item of 16777216 bytes, over the limit of 1024 bytes'
    assert k.line() == b'VALUE small 0 2' and k.line() == b'ok' and k.line() == b'END'
    # a real client: pymemcache hears the refusal, and goes on
    with pytest.raises(MemcacheClientError, match='over the limit'):
        c.set('big', b'z' * 2000)
    assert c.set('after', b'a') and c.get('after') == b'a'
    rss_before = rss_kib(gw.pid)
    # too long to skip: refused, then the end, whatever follows
    huge = [b'set q 0 0 4000000000\r\n', b'set q 0 0 16777217\r\n',
            b'set q 0 0 18446744073709551615\r\n', b'set q 0 0 4000000000 noreply\r\n',
            b'set a~b 0 0 4000000000\r\n', b'add q 0 0 4000000000\r\n']
    socks = []
    for request in huge * 10:
        f = KSock(gw.kestrel_port, timeout=5)
        f.send(request + b'version\r\nset q 0 0 1\r\nx\r\n')
        socks.append((request, f))
    for request, f in socks:
        line = f.line()
        assert line.startswith(b'CLIENT_ERROR ') and line.endswith(
            b'a data block over 16777216 bytes is not skipped: closing'), (request, line)
        assert f.closed(), request
        assert f.buf == b'', (request, f.buf)  # nothing after: version was not run
        f.close()
    assert rss_kib(gw.pid) - rss_before < 16 << 10
    assert c.get('q') is None  # nothing stored
    assert c.set('fine', b'yes') and c.get('fine') == b'yes'
    assert gw.alive()


def half_close(port, request, timeout=15):
    """Sends request, ends the sending side (shutdown SHUT_WR, as `nc -q1`
    and socat do), and reads to the end: (what came, seconds to the end).
    The gateway's end must come: a read that times out fails."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    started = time.time()
    try:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        got = b''
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got, time.time() - started
            got += chunk
    finally:
        sock.close()


def test_half_close_answers_every_command_in_order_then_closes(kgw):
    """memcached answers what it read before a client's half-close: the
    commands that wait for the broker too, in order, then the end."""
    # the new-user walk's line
    got, _ = half_close(kgw.kestrel_port, b'set kq 0 0 5\r\nhello\r\nget kq\r\n')
    assert got == b'STORED\r\nVALUE kq 0 5\r\nhello\r\nEND\r\n'
    request = (b'set hq 0 0 3\r\none\r\nset hq 0 0 3\r\ntwo\r\nset hq 0 0 5\r\nthree\r\n'
               b'get hq\r\nget hq/open\r\nget hq/peek\r\nversion\r\nstats\r\n'
               b'get hq/close\r\nset hf 0 0 1\r\nx\r\nflush hf\r\nget hf\r\n'
               b'delete hq\r\nget hq\r\nget hq/t=100\r\nquit\r\nversion\r\n')
    got, _ = half_close(kgw.kestrel_port, request)
    lines = got.split(b'\r\n')
    assert lines[-1] == b''  # every answer whole
    lines = lines[:-1]
    stats = [line for line in lines if line.startswith(b'STAT ')]
    assert any(line.startswith(b'STAT queue_hq_items ') for line in stats), stats
    lines = [line for line in lines if not line.startswith(b'STAT ')]
    assert lines == [
        b'STORED', b'STORED', b'STORED',
        b'VALUE hq 0 3', b'one', b'END',
        b'VALUE hq/open 0 3', b'two', b'END',
        b'VALUE hq/peek 0 5', b'three', b'END',
        b'VERSION 2.4.1 arbiter-gateway/0.1.0',
        b'END',  # stats
        b'END',  # get hq/close: two completed
        b'STORED', b'END', b'END',  # set, flush, get hf
        b'DELETED', b'END', b'END',  # delete hq (three with it), get, get t=100
    ], lines  # quit: the end; the version after it is not answered
    c = client(kgw)
    assert c.get('hq') is None and c.get('hf') is None
    # the connection is gone from the gateway's count, nothing left open
    wait_until(lambda: int(c.stats()[b'curr_connections']) == 1,
               what='the half-closed connections gone')


def test_half_close_ends_a_waiting_get_at_once(kgw):
    """A get with t= at the half-close (pending, or read before it and run
    after) ends with END at once, not at its wait's end, and the item that
    comes later stays in the queue: an EOF is also how a client that died
    looks, and an item given to its wait would be written to nobody."""
    got, took = half_close(kgw.kestrel_port, b'get hw/t=5000\r\n')
    assert got == b'END\r\n'
    assert took < 4, took
    c = client(kgw)
    assert int(c.stats()[b'queue_hw_waiters']) == 0
    # a waiter that half-closes while it waits: END at once, the item kept
    with socket.create_connection(('127.0.0.1', kgw.kestrel_port), timeout=10) as conn:
        conn.sendall(b'set hw 0 0 5\r\nfirst\r\nget hw\r\nget hw/t=60000\r\n')
        wait_until(lambda: int(c.stats()[b'queue_hw_waiters']) == 1, what='the waiter')
        started = time.time()
        conn.shutdown(socket.SHUT_WR)
        got = read_to_end(conn)
    assert got == b'STORED\r\nVALUE hw 0 5\r\nfirst\r\nEND\r\nEND\r\n'
    assert time.time() - started < 10
    assert int(c.stats()[b'queue_hw_waiters']) == 0
    assert c.set('hw', b'later')
    assert c.get('hw') == b'later'


def test_half_close_ends_a_waiting_get_with_commands_behind_it(kgw):
    """The commands after a waiting get are held until it ends; the end of
    the client's side, behind them, still ends the wait at once, and they
    are answered after it, in order."""
    got, took = half_close(kgw.kestrel_port, b'get hb/t=5000\r\nversion\r\n')
    assert got == b'END\r\nVERSION 2.4.1 arbiter-gateway/0.1.0\r\n', got
    assert took < 4, took
    got, took = half_close(kgw.kestrel_port,
                           b'set hb 0 0 3\r\none\r\nget hb\r\nget hb/t=5000\r\n'
                           b'get hb/t=5000\r\nset hb 0 0 3\r\ntwo\r\n')
    assert got == b'STORED\r\nVALUE hb 0 3\r\none\r\nEND\r\nEND\r\nEND\r\nSTORED\r\n', got
    assert took < 4, took
    assert client(kgw).get('hb') == b'two'


def test_the_end_behind_more_commands_than_the_gateway_buffers(kgw):
    """A waiting get with more commands behind it than the gateway reads
    ahead (its input limit, about 66 KB), then the client's end: the end
    is still seen at once. A client that died there (closed its socket)
    gets no item set later, which stays in its queue, and its open item
    goes back; one that half-closed gets END, then every answer after."""
    behind = b'version\r\n' * 10000  # 90 KB
    c = client(kgw)
    assert c.set('hsd', b'held')
    dead = KSock(kgw.kestrel_port)
    assert dead.get(b'hsd/open') == (b'held', 0)
    dead.send(b'get hsw/t=60000\r\n' + behind)
    wait_until(lambda: int(c.stats()[b'queue_hsw_waiters']) == 1, what='the waiter')
    dead.close()
    wait_until(lambda: int(c.stats()[b'queue_hsw_waiters']) == 0
               and int(c.stats()[b'queue_hsd_open_transactions']) == 0,
               timeout=20, what='the dead client gone before its wait ends')
    assert c.set('hsw', b'kept')
    assert c.get('hsw') == b'kept'
    assert c.get('hsd') == b'held'
    version = b'VERSION 2.4.1 arbiter-gateway/0.1.0\r\n'
    got, took = half_close(kgw.kestrel_port, b'get hsw/t=60000\r\n' + behind, timeout=30)
    assert got == b'END\r\n' + version * 10000, (len(got), got[:64])
    assert took < 20, took


def test_bare_value_key_names_the_queue_on_a_peek(gateway):
    """With --kestrel-bare-value-key a VALUE line names the queue; a peek
    of a queue's last item too (the queue's record could be let go before
    its name was written: the line carried other bytes)."""
    gw = gateway('--kestrel-bare-value-key')
    ready(gw)
    k = KSock(gw.kestrel_port)
    try:
        for i in range(2):
            assert k.ask(b'set bv 0 0 2\r\nb%d\r\n' % i) == b'STORED'
        for _ in range(3):
            k.send(b'get bv/peek\r\n')
            assert k.line() == b'VALUE bv 0 2'
            assert k.exact(4) == b'b0\r\n'
            assert k.line() == b'END'
        k.send(b'get bv\r\nget bv/open\r\n')
        assert k.line() == b'VALUE bv 0 2'
        assert k.exact(4) == b'b0\r\n' and k.line() == b'END'
        assert k.line() == b'VALUE bv 0 2'
        assert k.exact(4) == b'b1\r\n' and k.line() == b'END'
    finally:
        k.close()


def test_half_close_drops_a_partial_command(kgw):
    # an item cut short
    got, _ = half_close(kgw.kestrel_port,
                        b'set hp 0 0 5\r\nhello\r\nset hp 0 0 5\r\nwor')
    assert got == b'STORED\r\n'
    # a line without its end
    got, _ = half_close(kgw.kestrel_port, b'set hp 0 0 5\r\nthere\r\nget hp')
    assert got == b'STORED\r\n'
    # nothing at all
    got, _ = half_close(kgw.kestrel_port, b'')
    assert got == b''
    c = client(kgw)
    assert c.get('hp') == b'hello' and c.get('hp') == b'there' and c.get('hp') is None


def test_a_reset_still_drops_the_connection_at_once(kgw):
    """A client that resets (or closes with input unread) is gone: its
    waiter and its open item go at once, as before."""
    c = client(kgw)
    assert c.set('hr', b'held')
    k = KSock(kgw.kestrel_port)
    assert k.get(b'hr/open') == (b'held', 0)
    k.send(b'get hz/t=60000\r\n')
    wait_until(lambda: int(c.stats()[b'queue_hz_waiters']) == 1, what='the waiter')
    k.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    k.close()
    wait_until(lambda: int(c.stats()[b'queue_hz_waiters']) == 0, timeout=5,
               what='the waiter gone')
    assert c.get('hr/t=5000') == b'held'


def test_a_stuck_client_blocks_only_itself(kgw):
    """A client that sends without reading is stopped at its buffers: the
    others are served, and the gateway's memory stays small."""
    stuck = socket.create_connection(('127.0.0.1', kgw.kestrel_port))
    stuck.setblocking(False)
    request = b'version\r\n' * 10000
    sent = 0
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            sent += stuck.send(request)
        except BlockingIOError:
            break  # the gateway stopped reading it
    assert sent < 64 << 20
    c = client(kgw)
    for i in range(20):
        assert c.set('others', b'%d' % i)
        assert c.get('others') == b'%d' % i
    with open('/proc/%d/status' % kgw.pid) as f:
        rss_kb = int([line for line in f if line.startswith('VmRSS:')][0].split()[1])
    assert rss_kb < 200 * 1024, rss_kb
    stuck.close()


def test_a_command_must_arrive_within_the_request_timeout(gateway):
    """--kestrel-request-timeout: a command must arrive, its first byte to
    its last, within it, else the connection closes (1,000 connections
    each holding 1 MiB less a byte of a set held 1 GB; a client sending a
    byte every 5 s stayed for good). A get that waits for an item longer,
    a connection idle between commands, and commands behind a waiting get
    are not arriving commands: none is cut."""
    gw = gateway('--kestrel-request-timeout', '1')
    ready(gw)
    waiter = KSock(gw.kestrel_port)
    waiter.send(b'get tw/t=3000\r\n')
    behind = KSock(gw.kestrel_port)
    behind.send(b'get tb/t=2500\r\nset tb 0 0 2\r\no')
    idle = KSock(gw.kestrel_port)
    assert idle.ask(b'version\r\n').startswith(b'VERSION ')
    partial = []
    for _ in range(10):
        k = KSock(gw.kestrel_port)
        k.send(b'set slow 0 0 1048576\r\n' + b'z' * 1048575)
        partial.append(k)
    line = KSock(gw.kestrel_port)
    line.send(b'get tw')  # and never the line's end
    trickle = socket.create_connection(('127.0.0.1', gw.kestrel_port), timeout=0.25)
    trickle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    trickle.sendall(b'set tt 0 0 100\r\n')
    trickled, cut = 0, False
    while trickled < 40 and not cut:  # a byte every 0.25 s, 10 s at most
        try:
            trickle.sendall(b'x')
            trickled += 1
            cut = trickle.recv(100) == b''
        except socket.timeout:
            pass
        except OSError:
            cut = True
    assert cut and trickled < 40, trickled
    trickle.close()
    for k in partial + [line]:
        assert k.closed() and k.buf == b''
        k.close()
    assert waiter.line() == b'END'  # waited 3 s, past the timeout
    assert waiter.ask(b'version\r\n').startswith(b'VERSION ')
    assert behind.line() == b'END'
    behind.send(b'k\r\n')
    assert behind.line() == b'STORED'
    assert idle.ask(b'version\r\n').startswith(b'VERSION ')
    assert client(gw).get('slow') is None and client(gw).get('tb') == b'ok'
    assert 'command not in within the request timeout: closing' in gw.output()


def test_idle_connections_are_closed_but_not_a_waiting_get(gateway):
    """--kestrel-idle-timeout 1, --kestrel-max-connections 4: a connection
    idle for a second is closed, and so is one holding an item open (the
    item goes back to its queue), so that a client refused while they held
    their places gets in; a get waiting longer than the timeout (t=1800)
    is not cut, nor is a client that sends a command now and then. Without
    the timeout, idle connections at the limit locked everyone else out
    for good."""
    gw = gateway('--kestrel-idle-timeout', '1', '--kestrel-max-connections', '4')
    ready(gw)
    holder = KSock(gw.kestrel_port)
    assert holder.ask(b'set idleq 0 0 3\r\nabc\r\n') == b'STORED'
    assert holder.get(b'idleq/open') == (b'abc', 0)
    idle = KSock(gw.kestrel_port)
    assert idle.ask(b'version\r\n').startswith(b'VERSION ')
    waiter = KSock(gw.kestrel_port)
    waiter.send(b'get idle_none/t=1800\r\n')
    busy = KSock(gw.kestrel_port)
    started = time.time()
    assert busy.ask(b'version\r\n').startswith(b'VERSION ')
    refused = KSock(gw.kestrel_port)
    assert refused.ask(b'version\r\n') == b'SERVER_ERROR too many connections'
    refused.close()
    assert 'kestrel: connection refused: kestrel-max-connections (4) open' in gw.output()
    for k in (holder, idle):
        k.sock.settimeout(0.05)
    open_ = [holder, idle]
    while open_ and time.time() < started + 3:
        assert busy.ask(b'version\r\n').startswith(b'VERSION ')  # a command every 0.2 s
        time.sleep(0.2)
        open_ = [k for k in open_ if not k.closed()]
    assert not open_ and time.time() - started >= 0.9
    newcomer = KSock(gw.kestrel_port)
    assert newcomer.get(b'idleq') == (b'abc', 0)  # back from the closed holder
    assert waiter.line() == b'END' and time.time() - started >= 1.7
    assert waiter.ask(b'version\r\n').startswith(b'VERSION ')
    assert busy.ask(b'version\r\n').startswith(b'VERSION ')
    assert 'kestrel: idle for the idle timeout: closing' in gw.output()
    for k in (holder, idle, waiter, busy, newcomer):
        k.close()


def test_shutdown_when_allowed(gateway):
    gw = gateway('--kestrel-allow-shutdown')
    ready(gw)
    k = KSock(gw.kestrel_port)
    k.send(b'shutdown\r\n')
    assert k.closed()
    wait_until(lambda: not gw.alive(), timeout=15, what='the gateway to stop')
    assert gw.proc.returncode == 0


def quick_pair(tmp_path, processes):
    """A broker that gives a silent session up in 1.5 s, and a gateway."""
    broker = Broker(tmp_path, extra=['--heartbeat-ms', '200', '--liveness-ms', '1500'])
    processes.append(broker)
    gw = Gateway(tmp_path, broker)
    processes.append(gw)
    ready(gw)
    return broker, gw


def test_kill9_broker_loses_nothing(tmp_path, processes):
    broker, gw = quick_pair(tmp_path, processes)
    c = client(gw)
    for i in range(200):
        assert c.set('durable', b'%d' % i)
    holder = KSock(gw.kestrel_port)
    assert holder.get(b'durable/open') == (b'0', 0)
    assert holder.get(b'durable/close/open') == (b'1', 0)
    assert holder.get(b'durable/close/open') == (b'2', 0)  # 0 and 1 done, 2 open
    broker.kill9()
    # while it is away: SERVER_ERROR, and nothing is promised
    k = KSock(gw.kestrel_port)
    assert k.ask(b'set durable 0 0 1\r\nx\r\n').startswith(b'SERVER_ERROR')
    broker2 = broker.restart()
    processes.append(broker2)
    ready(gw)
    holder.close()  # its open item comes back
    # the one open came back with the others; the two closed just before
    # the kill may come again (at least once), nothing else
    wanted = {b'%d' % i for i in range(2, 200)}
    got = collect(gw, 'durable', wanted)
    assert wanted <= set(got) <= wanted | {b'0', b'1'}


def test_a_broker_stopped_is_unavailable_at_once(tmp_path, processes):
    # a broker that stopped (its connection gone) answers nothing: a set or
    # a POST is refused at once as unavailable, not queued for a
    # connection that is not there and failed seconds later as of unknown
    # outcome; nothing of it is stored once the broker is back
    broker = Broker(tmp_path)  # the default liveness window: 5 s
    processes.append(broker)
    gw = Gateway(tmp_path, broker)
    processes.append(gw)
    ready(gw)
    c = client(gw)
    assert c.set('away', b'before')
    assert broker.stop() == 0
    time.sleep(0.5)  # its connection's end reaches the gateway at once
    k = KSock(gw.kestrel_port)
    started = time.time()
    assert k.ask(b'set away 0 0 6\r\nduring\r\n') == b'SERVER_ERROR the broker is unavailable'
    req = urllib.request.Request('http://127.0.0.1:%d/deploy' % gw.http_port, method='POST',
                                 data=b'{"identifier": "during"}')
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 503
    assert time.time() - started < 2, 'refused only after %.1f s' % (time.time() - started)
    broker2 = broker.restart()
    processes.append(broker2)
    ready(gw)
    assert collect(gw, 'away', {b'before'}) == [b'before']
    assert c.get('away') is None


def test_a_request_in_flight_fails_when_the_connection_drops(tmp_path, processes):
    # a set the broker took and never answered (stopped, then killed): the
    # gateway fails it once the connection drops, as of unknown outcome,
    # not at the end of the liveness window (5 s here)
    broker = Broker(tmp_path)
    processes.append(broker)
    gw = Gateway(tmp_path, broker)
    processes.append(gw)
    ready(gw)
    assert client(gw).set('inflight', b'before')
    os.kill(broker.proc.pid, signal.SIGSTOP)
    k = KSock(gw.kestrel_port)
    k.send(b'set inflight 0 0 6\r\nduring\r\n')
    time.sleep(0.3)  # the set is on the connection, unanswered
    started = time.time()
    broker.kill9()
    answer = k.line()
    assert answer.startswith(b'SERVER_ERROR SUBMIT lost with the connection'), answer
    assert answer.endswith(b'outcome unknown'), answer
    assert time.time() - started < 2.5, 'failed only after %.1f s' % (time.time() - started)


def test_kill9_gateway_loses_nothing(tmp_path, processes):
    broker, gw = quick_pair(tmp_path, processes)
    c = client(gw)
    for i in range(300):
        assert c.set('kept', b'%d' % i)
    holder = KSock(gw.kestrel_port)
    assert holder.get(b'kept/open') is not None
    assert c.get('kept/open') is not None  # and the queue prefetched more
    gw.kill9()
    gw2 = gw.restart()
    processes.append(gw2)
    ready(gw2)
    # the leased ones come back once the broker gives the dead session up
    wanted = {b'%d' % i for i in range(300)}
    got = collect(gw2, 'kept', wanted)
    assert set(got) == wanted


def test_the_example_config_is_valid():
    from conftest import ROOT, binary
    example = os.path.join(ROOT, 'examples', 'arbiter-gateway.conf')
    out = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', example,
                          '--check-config'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for key in ('kestrel', 'kestrel-max-item', 'kestrel-max-connections',
                'kestrel-request-timeout', 'kestrel-idle-timeout', 'kestrel-allow-shutdown',
                'kestrel-bare-value-key'):
        assert '\n%s = ' % key in out.stdout


def test_a_full_queue_refuses_or_drops(kgw):
    """Kestrel's maxItems/maxSize: with overflow reject a set to a full
    queue answers NOT_STORED and changes nothing; with drop-head (its
    discardOldWhenFull) the oldest items go."""
    peer = arbiter_proto.Peer(kgw.broker.endpoint)
    try:
        for queue, overflow in ((b'full', 'reject'), (b'rolling', 'drop-head')):
            kind, _, body, _ = peer.request('QUEUE', {
                'queue': queue.decode(), 'op': 'set', 'max_ready': 2, 'max_ready_bytes': 10,
                'overflow': overflow})
            assert kind == 'OK', body
    finally:
        peer.close()
    k = KSock(kgw.kestrel_port)
    # (before any get: a queue that is read has items prefetched by the
    # gateway, which the broker counts as taken)
    answers = [k.ask(b'set full 0 0 %d\r\n%s\r\n' % (len(v), v))
               for v in (b'a', b'b', b'c', b'12345678901')]
    assert answers == [b'STORED', b'STORED', b'NOT_STORED', b'NOT_STORED']
    # a smaller one would fit the bytes, not the count
    assert k.ask(b'set full 0 0 1\r\nz\r\n') == b'NOT_STORED'
    # sent together (one SUBMIT): every one is stored, the oldest dropped
    k.send(b''.join(b'set rolling 0 0 1\r\n%s\r\n' % v for v in (b'a', b'b', b'c')))
    assert [k.line(), k.line(), k.line()] == [b'STORED'] * 3
    assert [k.get(b'full'), k.get(b'full'), k.get(b'full')] == [(b'a', 0), (b'b', 0), None]
    assert [k.get(b'rolling'), k.get(b'rolling'), k.get(b'rolling')] == \
        [(b'b', 0), (b'c', 0), None]
    k.send(b'stats\r\n')
    stats = {}
    while True:
        line = k.line()
        if line == b'END':
            break
        _, key, value = line.split(b' ', 2)
        stats[key] = value
    # Kestrel's discarded: what the bound dropped (the refused were never items)
    assert (stats[b'queue_rolling_discarded'], stats[b'queue_full_discarded']) == (b'1', b'0')
    k.close()


def test_max_connections_counts_the_open_ones_exactly(gateway):
    """--kestrel-max-connections 3: a short connection closed before
    three others open is not counted, and a fourth is refused every time."""
    gw = gateway('--kestrel-max-connections', '3')
    ready(gw)
    for round_ in range(3):
        short = KSock(gw.kestrel_port)
        assert short.ask(b'get mc/peek\r\n') == b'END'
        short.close()
        three = [KSock(gw.kestrel_port) for _ in range(3)]
        for k in three:
            assert k.ask(b'version\r\n').startswith(b'VERSION '), round_
        fourth = KSock(gw.kestrel_port)
        fourth.send(b'version\r\n')
        try:
            assert fourth.line() == b'SERVER_ERROR too many connections', round_
        finally:
            fourth.close()
            for k in three:
                k.close()


def test_a_closing_error_keeps_the_answers_before_it(kgw):
    """A pipeline whose last command is refused with a close: the answers
    before it arrive whole, then CLIENT_ERROR, then the end: a FIN, never
    a reset. The client sends 1 MiB behind the refused command, more than
    the gateway reads before it closes, so that a close with that input
    unread (no lingering) makes the kernel answer with a reset, which
    discards what the gateway had not sent yet and is seen here as
    ECONNRESET in place of the end."""
    tail = b'version\r\n' * (1 << 17)
    for _ in range(5):
        k = KSock(kgw.kestrel_port)
        try:
            k.send(b'version\r\n' * 5 + b'set 0 0 1\r\nx\r\nversion\r\n' + tail)
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed under the tail: the reads below say how
        for _ in range(5):
            assert k.line().startswith(b'VERSION ')
        assert k.line().startswith(b'CLIENT_ERROR ')
        assert k.sock.recv(65536) == b''  # the end, not ECONNRESET
        k.close()


def test_a_max_item_over_max_payload_is_refused():
    """--kestrel-max-item over --max-payload (16M by default) could never
    be stored: --check-config and a start both refuse it (exit 2) and say
    why, instead of showing 20M and using 16M."""
    from conftest import binary
    gw = binary('gateway', 'arbiter-gateway')
    base = [gw, '--config', '/dev/null', '--broker', 'tcp://127.0.0.1:9',
            '--kestrel', '127.0.0.1:0', '--amqp', 'off', '--http', 'off']
    for extra in (['--check-config'], []):
        out = subprocess.run(base + ['--kestrel-max-item', '20M'] + extra,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, (extra, out.stdout, out.stderr)
        assert 'kestrel-max-item 20971520 is over max-payload 16777216' in out.stderr, out.stderr
    out = subprocess.run(base + ['--kestrel-max-item', '20M', '--max-payload', '20M',
                                 '--check-config'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '\nkestrel-max-item = 20971520\n' in out.stdout, out.stdout
    out = subprocess.run(base + ['--kestrel-max-item', '16M', '--check-config'],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # the default (1M) is lowered to a smaller --max-payload, and shown so
    out = subprocess.run(base + ['--max-payload', '512K', '--check-config'],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '\nkestrel-max-item = 524288\n' in out.stdout, out.stdout


def test_a_kestrel_address_off_loopback_is_refused_before_anything_listens():
    """Kestrel has no authentication and the gateway acts with its own
    (admin) rights, so an address other hosts can reach is refused at
    start, as by --check-config (test_check_config.py), before any server
    binds: the HTTP port in use here is not tried."""
    from conftest import binary
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        out = subprocess.run([binary('gateway', 'arbiter-gateway'), '--config', '/dev/null',
                              '--broker', 'tcp://127.0.0.1:9', '--kestrel', '0.0.0.0:0',
                              '--amqp', 'off', '--http', '127.0.0.1:%d' % taken.getsockname()[1]],
                             capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert 'kestrel: refusing to listen on 0.0.0.0:0 without authentication' in out.stderr
    assert 'cannot listen' not in out.stderr and 'listening' not in out.stderr, out.stderr
