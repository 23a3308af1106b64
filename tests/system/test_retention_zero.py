"""--retention 0 with real processes: a task that succeeded at its first
handout, outside any workflow, whose result reached a watcher, leaves the
journal in the transaction that records its end (one write at its end, not
an UPDATE and a DELETE at the next sweep); ids are still never given out
twice, across a kill -9; a task nobody watched is still there for a watch
sent just after its end; a DAG parent stays while its child waits; a lease
lost and claimed back leaves no history behind; a task submitted unwatched
goes at its end too, even read back from the journal (after a restart, or
from the cold backlog); a kill -9 in a stream of the batched inserts and
drops loses no acknowledged task and brings back none told DONE."""

import os
import signal
import time

import pytest

from conftest import Broker, wait_until
from helpers import (SUCCEEDED, journal_rows, journal_value, start_exec_worker, start_minion,
                     status, submit_many)

RUNNING = 4

FAST = ['--heartbeat-ms', '200', '--liveness-ms', '1000', '--retention', '0']


def rows(broker, ids):
    return journal_value(broker, 'SELECT count(*) FROM tasks WHERE id IN (%s)'
                         % ','.join(str(i) for i in ids))


def done_in_turns(client, ids):
    """Waits for the DONE of every id; returns, for each DONE message, how
    many of its tasks the journal still held when it arrived."""
    left, held = set(ids), []
    while left:
        _, _, body, results = client.next_of('DONE', timeout=20)
        told = [t['id'] for t in body['tasks']]
        held.append(rows(client.broker, told))
        assert all(t['state'] == SUCCEEDED for t in body['tasks']), body
        assert results == [b'3'] * len(told)
        left -= set(told)
    return held


def adding(tmp_path, processes, peer_factory, count):
    """A broker with --retention 0 and a minion; count additions submitted
    and watched. Returns the broker, the client and the ids."""
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    client = peer_factory(b.endpoint)
    client.broker = b
    start_minion(b, processes, tmp_path, '--slots', '4')
    ids = submit_many(client, [{'name': 'simple_add', 'payload': b'1 2'}] * count, watch=True)
    return b, client, ids


def test_a_plain_task_leaves_the_journal_at_its_end(tmp_path, processes, peer_factory):
    b, client, ids = adding(tmp_path, processes, peer_factory, 20)
    # the sweep runs once a second: a row saved final would still be there
    assert set(done_in_turns(client, ids)) == {0}
    assert rows(b, ids) == 0


def test_ids_are_not_given_twice_after_a_kill(tmp_path, processes, peer_factory):
    b, client, ids = adding(tmp_path, processes, peer_factory, 5)
    done_in_turns(client, ids)
    assert journal_value(b, 'SELECT count(*) FROM tasks') == 0
    b.kill9()
    again = b.restart()
    processes.append(again)
    client = peer_factory(again.endpoint)
    [after] = submit_many(client, [{'name': 'simple_add', 'payload': b'1 2'}])
    assert after > max(ids)


def test_a_parent_stays_while_its_child_waits(tmp_path, processes, peer_factory):
    """The child's queue has no worker at first: the sweep (once a
    second) must leave the parent, whose result the child will read."""
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    out = tmp_path / 'parents'
    node = ('case "$ARBITER_TASK_NAME" in a) printf from-a ;; '
            'b) cat "$ARBITER_PARENTS" > "$OUT.tmp" && mv "$OUT.tmp" "$OUT" ;; esac')
    start_exec_worker(b, processes, tmp_path, node, env={'OUT': str(out)})
    client = peer_factory(b.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'watch': True, 'tasks': [
        {'name': 'a', 'ref': 'a'},
        {'name': 'b', 'queue': 'later', 'after': [{'ref': 'a'}]}]}, [b'', b''], timeout=10)
    assert kind == 'SUBMITTED', body
    parent = body['tasks'][0]['id']
    assert client.next_of('DONE', timeout=20)[2]['tasks'][0]['id'] == parent
    time.sleep(2.5)
    assert rows(b, [parent]) == 1
    start_exec_worker(b, processes, tmp_path, node, '--queue', 'later', env={'OUT': str(out)})
    wait_until(out.exists, timeout=20, what='the child ran')
    assert 'from-a' in out.read_text() and '"succeeded"' in out.read_text()


def test_a_task_nobody_watched_is_there_for_a_later_watch(tmp_path, processes, peer_factory):
    """A client that submits, then watches (arbiter wait, the bridge's
    reply_to) still finds a task that ended meanwhile: only a task whose
    result reached a watcher leaves at its end; the others wait for the
    sweep. The sweep runs once a second and these watches come 0.15 s
    apart, so it can take at most two of them."""
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    client = peer_factory(b.endpoint)
    start_minion(b, processes, tmp_path, '--slots', '2')
    found = 0
    for _ in range(8):
        [task] = submit_many(client, [{'name': 'simple_add', 'payload': b'1 2'}])
        time.sleep(0.15)
        kind, _, body, _ = client.request('WATCH', {'ids': [task]}, timeout=10)
        assert kind == 'WATCHING', body
        if task not in body.get('unknown', []):
            done = client.next_of('DONE', timeout=20)
            assert done[2]['tasks'][0]['id'] == task and done[3] == [b'3']
            found += 1
    assert found >= 5


def test_a_lease_claimed_back_leaves_no_history_behind(tmp_path, processes, peer_factory):
    """A worker stopped past the liveness window loses its lease (a row of
    history says so); back, it claims the task and finishes it: the loss
    is undone, its row too, and nothing of the task stays. The liveness
    window is 2 s, not FAST's 1 s: a second loss (a worker just back from
    its stop, on a loaded CI machine, silent for another window) makes the
    task's second handout its end, which rightly keeps its row for the
    sweep; this test is about the first loss only."""
    b = Broker(tmp_path, extra=['--heartbeat-ms', '200', '--liveness-ms', '2000',
                                '--retention', '0'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    minion = start_minion(b, processes, tmp_path, '--slots', '1', '--verbose')
    [task] = submit_many(client, [{'name': 'sleep', 'payload': b'4500'}], watch=True)
    wait_until(lambda: status(client, [task])[task].get('state') == RUNNING, timeout=20,
               what='the task runs')
    # running at the worker, not only handed out: stopped before it read
    # the DISPATCH, the worker would claim nothing back (a CI run of
    # 2026-12-05), and the task's second handout would keep its row
    wait_until(lambda: 'task start id=%d ' % task in minion.output(), timeout=20,
               what='the worker starts the task')
    os.kill(minion.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: journal_value(b, 'SELECT count(*) FROM attempts WHERE task_id = ?',
                                         task) == 1, timeout=20, what='the lease is lost')
    finally:
        os.kill(minion.pid, signal.SIGCONT)
    done = client.next_of('DONE', timeout=30)
    assert done[2]['tasks'][0]['state'] == SUCCEEDED
    logs = '\n'.join(p.output()[-4000:] for p in (b, minion))
    assert rows(b, [task]) == 0, logs
    assert journal_value(b, 'SELECT count(*) FROM attempts WHERE task_id = ?', task) == 0, logs


def test_an_unwatched_task_is_never_saved_final(tmp_path, processes, peer_factory):
    """A task submitted unwatched (as the gateway submits its messages)
    goes at its end like a watched one; a plain one beside it, nobody
    watching, waits for the sweep: the journal shows it final meanwhile,
    which is how the test knows it looked in time."""
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    client = peer_factory(b.endpoint)
    start_minion(b, processes, tmp_path, '--slots', '2')
    seen_plain_final = False
    for _ in range(5):
        unwatched, plain = submit_many(client, [
            {'name': 'simple_add', 'payload': b'1 2', 'unwatched': True},
            {'name': 'simple_add', 'payload': b'1 2'}])
        deadline = time.time() + 0.3
        while time.time() < deadline:
            states = dict(journal_rows(b, 'SELECT id, state FROM tasks WHERE id IN (?, ?)',
                                       unwatched, plain))
            assert states.get(unwatched, 0) < SUCCEEDED, 'the unwatched task was saved final'
            seen_plain_final |= states.get(plain) == SUCCEEDED
            time.sleep(0.005)
        assert rows(b, [unwatched]) == 0
    assert seen_plain_final


def unwatched_and_plain(client, count):
    """count tasks submitted unwatched and count plain ones (nobody
    watching), in turn, in one batch. Returns both lists of ids."""
    ids = submit_many(client, [{'name': 'simple_add', 'payload': b'1 2', 'unwatched': True},
                               {'name': 'simple_add', 'payload': b'1 2'}] * count)
    return ids[0::2], ids[1::2]


def never_saved_final(broker, unwatched, plain, timeout=30):
    """Looks at the journal while the tasks run, until every unwatched row
    is gone: no unwatched task may be seen final (it goes as it ends). A
    plain one, nobody watching, waits for the sweep (once a second): it is
    seen final meanwhile, which is how the test knows it looked in time."""
    ids = unwatched + plain
    sql = 'SELECT id, state FROM tasks WHERE id IN (%s)' % ','.join('?' * len(ids))
    seen_plain_final = False
    deadline = time.time() + timeout
    while True:
        states = dict(journal_rows(broker, sql, *ids))
        final = [i for i in unwatched if states.get(i, 0) >= SUCCEEDED]
        assert not final, 'unwatched tasks saved final: %s' % final
        seen_plain_final |= any(states.get(i) == SUCCEEDED for i in plain)
        if seen_plain_final and not any(i in states for i in unwatched):
            return
        assert time.time() < deadline, 'unwatched tasks left: %s, a plain one seen final: %s' % (
            [i for i in unwatched if i in states], seen_plain_final)
        time.sleep(0.005)


@pytest.mark.parametrize('extra', [[], ['--aging', '3600']], ids=['cold', 'hot'])
def test_an_unwatched_task_keeps_its_mark_across_a_restart(tmp_path, processes, peer_factory,
                                                          extra):
    """The mark is in the journal: tasks submitted unwatched, the broker
    stopped before any worker came and started again, still go at their
    end. At start a queue's plain ready tasks stay in the journal and are
    read back in order (cold); with aging every task is loaded into memory
    at start (hot). A clean stop (SIGTERM), because after a kill -9 every
    ready task counts as handed out once more, and one handed out twice is
    kept for the sweep, watched or not."""
    b = Broker(tmp_path, extra=FAST + ['--recovery-ms', '0'] + extra)
    processes.append(b)
    client = peer_factory(b.endpoint)
    unwatched, plain = unwatched_and_plain(client, 10)
    assert rows(b, unwatched + plain) == 20
    assert b.stop() == 0
    b = b.restart()
    processes.append(b)
    start_minion(b, processes, tmp_path, '--slots', '1')
    never_saved_final(b, unwatched, plain)


def test_an_unwatched_task_keeps_its_mark_in_the_cold_backlog(tmp_path, processes, peer_factory):
    """Ready tasks beyond a queue's --hot-tasks wait in the journal, out of
    memory, and are read back when the worker comes: those submitted
    unwatched still go at their end."""
    b = Broker(tmp_path, extra=FAST + ['--hot-tasks', '4'])
    processes.append(b)
    client = peer_factory(b.endpoint)
    unwatched, plain = unwatched_and_plain(client, 20)
    start_minion(b, processes, tmp_path, '--slots', '1')
    never_saved_final(b, unwatched, plain)


def test_a_kill_in_a_stream_of_batched_writes_loses_nothing(tmp_path, processes, peer_factory):
    """Plain tasks one to a SUBMIT, up to 64 in flight, while a minion ends
    others with nothing to keep: the broker's turns hold rows and drops
    and write them in batches (broker/arb_journal_batch.c). Then the
    minion is stopped (no DONE can be on its way) and the broker is killed
    -9 while the SUBMITs go on. After the restart, every task acknowledged
    and not told DONE is in the journal, and every task told DONE is not:
    its DONE went out after the commit that dropped it."""
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    client = peer_factory(b.endpoint)
    minion = start_minion(b, processes, tmp_path, '--slots', '8')
    acked, done, inflight = set(), set(), 0

    def stream(seconds, kill_at=None):
        nonlocal inflight
        end = time.time() + seconds
        while time.time() < end:
            while inflight < 64:
                client.send('SUBMIT', {'watch': True, 'tasks': [{'name': 'simple_add'}]},
                            [b'1 2'])
                inflight += 1
            try:
                kind, _, body, _ = client.recv(timeout=0.2)
            except TimeoutError:
                continue
            if kind == 'SUBMITTED':
                inflight -= 1
                acked.update(t['id'] for t in body['tasks'])
            elif kind == 'DONE':
                done.update(t['id'] for t in body['tasks'] if t['state'] == SUCCEEDED)
            if kill_at and len(acked) >= kill_at:
                b.kill9()
                return

    stream(2.0)
    assert len(done) > 100, 'the minion ended %d tasks' % len(done)
    os.kill(minion.pid, signal.SIGSTOP)
    stream(0.5)
    stream(10.0, kill_at=len(acked) + 200)
    assert not b.alive()
    os.kill(minion.pid, signal.SIGKILL)
    again = b.restart()
    processes.append(again)
    waiting = acked - done
    assert waiting and done <= acked
    assert rows(again, waiting) == len(waiting)
    assert rows(again, done) == 0
