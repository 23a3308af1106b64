"""--retention 0 with real processes: a task that succeeded at its first
handout, outside any workflow, leaves the journal in the transaction that
records its end (one write at its end, not an UPDATE and a DELETE at the
next sweep); ids are still never given out twice, across a kill -9; and a
DAG parent stays until its child has read its result."""

from conftest import Broker, wait_until
from helpers import SUCCEEDED, journal_value, start_exec_worker, start_minion, submit_many

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


def test_a_parent_stays_until_its_child_read_it(tmp_path, processes, peer_factory):
    b = Broker(tmp_path, extra=FAST)
    processes.append(b)
    out = tmp_path / 'parents'
    start_exec_worker(b, processes, tmp_path,
                      'case "$ARBITER_TASK_NAME" in a) printf from-a ;; '
                      'b) cat "$ARBITER_PARENTS" > "$OUT.tmp" && mv "$OUT.tmp" "$OUT" ;; esac',
                      env={'OUT': str(out)})
    client = peer_factory(b.endpoint)
    kind, _, body, _ = client.request('SUBMIT', {'tasks': [
        {'name': 'a', 'ref': 'a'}, {'name': 'b', 'after': [{'ref': 'a'}]}]}, [b'', b''], timeout=10)
    assert kind == 'SUBMITTED', body
    wait_until(out.exists, timeout=20, what='the child ran')
    assert 'from-a' in out.read_text() and '"succeeded"' in out.read_text()
