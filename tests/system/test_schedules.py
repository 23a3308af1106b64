"""Periodic tasks with a real broker: a per-second schedule fires one task
per slot with its template; a kill -9 right after a slot fired never fires
it twice; a downtime over several slots is caught up by each policy;
pause, resume and remove take effect at once; bad expressions and zones
are refused; `schedule list` shows the next slot in the schedule's zone.

Slots are counted by the tasks' client keys, "schedule:NAME:SLOT_MS"."""

import datetime
import json
import subprocess
import time
import zoneinfo

import pytest

from conftest import Broker, binary, wait_until
from helpers import status


def cli(broker, *args, timeout=30):
    return subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def add(broker, name, cron, *options, payload='tick'):
    proc = cli(broker, 'schedule', 'add', name, '--cron', cron, '--queue', name, *options,
               '--', payload)
    assert proc.returncode == 0, proc.stderr
    return proc


def tasks_of(peer, queue):
    """{slot ms: task info} of the tasks in a queue, every one of them made
    by its schedule (key "schedule:NAME:SLOT"); a slot with two tasks fails."""
    ids, after = [], 0
    while True:
        kind, _, body, _ = peer.request('LIST', {'queue': queue, 'after_id': after,
                                                 'limit': 1000})
        assert kind == 'LIST_REPLY', body
        ids += [t['id'] for t in body.get('tasks', [])]
        if not body.get('more'):
            break
        after = ids[-1]
    slots = {}
    for info in status(peer, ids).values():
        prefix, name, slot = info['key'].split(':')
        assert prefix == 'schedule' and name == queue, info['key']
        assert int(slot) not in slots, 'slot %s fired twice' % slot
        slots[int(slot)] = info
    return slots


def started_ms(peer):
    """When the broker started (Unix ms): the time its catch-up looked at."""
    _, _, body, _ = peer.request('STATS', {})
    return body['now_ms'] - body['uptime_ms']


def contiguous(slots):
    return sorted(slots) == list(range(min(slots), max(slots) + 1000, 1000))


def schedules_json(broker, *names):
    proc = cli(broker, '--json', 'schedule', 'list', *names)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_per_second_schedule_fires_each_slot(broker, peer_factory):
    peer = peer_factory(broker.endpoint)
    before = int(time.time() * 1000)
    add(broker, 'tick', '* * * * * *', '--task', 'job', '--priority', '5', '--retries', '2',
        '--timeout', '30', '--soft-timeout', '20', '--retention', '600', payload='payload-x')
    slots = wait_until(lambda: len(tasks_of(peer, 'tick')) >= 3 and tasks_of(peer, 'tick'),
                       what='three slots')
    assert contiguous(slots) and min(slots) > before and all(s % 1000 == 0 for s in slots)
    for slot, info in slots.items():
        assert info['name'] == 'job' and info['queue'] == 'tick'
        assert info['priority'] == 5 and info['max_attempts'] == 3
        assert info['timeout_ms'] == 30000 and info['soft_timeout_ms'] == 20000
        assert info['created_ms'] >= slot  # never early
    kind, _, body, frames = peer.request('PEEK', {'queue': 'tick', 'max': 2})
    assert kind == 'PEEK_REPLY' and frames == [b'payload-x', b'payload-x']
    [listed] = schedules_json(broker, 'tick')
    assert listed['cron'] == '* * * * * *' and listed['zone'] == 'UTC'
    assert listed['catch_up'] == 'one' and not listed['paused']
    assert listed['last_id'] in [t['id'] for t in tasks_of(peer, 'tick').values()]
    assert listed['next_ms'] > listed['last_slot_ms'] and listed['payload'] == 'payload-x'


def test_kill9_after_a_slot_never_fires_it_twice(tmp_path, processes, peer_factory):
    broker = Broker(tmp_path)
    processes.append(broker)
    add(broker, 'tock', '* * * * * *', '--catch-up', 'all')
    for kill in range(3):
        peer = peer_factory(broker.endpoint)
        seen = len(tasks_of(peer, 'tock'))
        # right after a slot fired: as soon as its task is there
        wait_until(lambda: len(tasks_of(peer, 'tock')) > seen, interval=0.005,
                   what='a new slot')
        broker.kill9()
        broker = broker.restart()
        processes.append(broker)
    peer = peer_factory(broker.endpoint)
    first_after = started_ms(peer) // 1000 * 1000 + 1000
    slots = wait_until(lambda: max(tasks_of(peer, 'tock')) > first_after and
                       tasks_of(peer, 'tock'), what='a slot after the last restart')
    # every slot from the first on fired exactly once: none lost (catch-up
    # all), none twice (tasks_of checks each key)
    assert contiguous(slots), sorted(slots)
    assert schedules_json(broker, 'tock')[0]['last_slot_ms'] >= first_after


@pytest.mark.parametrize('policy', ['none', 'one', 'all'])
def test_downtime_catch_up(policy, tmp_path, processes, peer_factory):
    broker = Broker(tmp_path)
    processes.append(broker)
    add(broker, policy, '* * * * * *', '--catch-up', policy)
    peer = peer_factory(broker.endpoint)
    wait_until(lambda: len(tasks_of(peer, policy)) >= 2, what='two slots')
    broker.kill9()
    down = time.time()
    while time.time() < down + 3.5:  # the downtime: 3 slots or more
        time.sleep(0.1)
    broker = broker.restart()
    processes.append(broker)
    peer = peer_factory(broker.endpoint)
    start = started_ms(peer)
    slots = wait_until(lambda: max(tasks_of(peer, policy)) > start + 1000 and
                       tasks_of(peer, policy), what='slots after the restart')
    old = [s for s, t in slots.items() if t['created_ms'] < start]
    new = [s for s, t in slots.items() if t['created_ms'] >= start]
    missed = list(range(max(old) + 1000, start // 1000 * 1000 + 1000, 1000))
    assert len(missed) >= 3, (old, start)
    caught = sorted(set(new) & set(missed))
    assert caught == {'none': [], 'one': missed[-1:], 'all': missed}[policy], (caught, missed)
    # the rest are on time, one after another
    on_time = sorted(s for s in new if s > start)
    assert on_time and contiguous(on_time) and on_time[0] == missed[-1] + 1000
    assert contiguous(old)


def test_pause_resume_remove(broker, peer_factory):
    peer = peer_factory(broker.endpoint)
    add(broker, 'pr', '* * * * * *')
    wait_until(lambda: len(tasks_of(peer, 'pr')) >= 1, what='a slot')
    proc = cli(broker, 'schedule', 'pause', 'pr')
    assert proc.returncode == 0 and proc.stdout == b'schedule pr paused\n', proc.stderr
    paused_at = int(time.time() * 1000)
    [listed] = schedules_json(broker, 'pr')
    assert listed['paused'] and listed['next_ms'] is None
    fired = set(tasks_of(peer, 'pr'))
    deadline = time.time() + 2.5  # two slots and more: none fires
    while time.time() < deadline:
        assert set(tasks_of(peer, 'pr')) == fired
        time.sleep(0.2)
    assert max(fired) <= paused_at
    proc = cli(broker, 'schedule', 'resume', 'pr')
    assert proc.returncode == 0 and proc.stdout.startswith(b'schedule pr resumed: next '), proc
    resumed_at = int(time.time() * 1000)
    slots = wait_until(lambda: len(tasks_of(peer, 'pr')) > len(fired) and tasks_of(peer, 'pr'),
                       what='a slot after resume')
    new = sorted(set(slots) - fired)
    assert new[0] > paused_at + 2000 and new[0] <= resumed_at + 1000  # the paused slots never fire
    proc = cli(broker, 'schedule', 'remove', 'pr')
    assert proc.returncode == 0 and proc.stdout == b'schedule pr removed\n', proc.stderr
    removed_at = int(time.time() * 1000)
    assert schedules_json(broker) == []
    kept = tasks_of(peer, 'pr')
    assert kept and max(kept) <= removed_at  # its tasks stay, and no more come
    time.sleep(1.5)
    assert tasks_of(peer, 'pr') == kept
    proc = cli(broker, 'schedule', 'remove', 'pr')
    assert proc.returncode == 2 and b"no schedule 'pr'" in proc.stderr, proc.stderr


def test_bad_input_is_refused(broker, peer_factory):
    peer = peer_factory(broker.endpoint)
    cases = [
        (['--cron', '0 25 * * *'], b'cron: field 2 (hour): 25 is out of range 0-23'),
        (['--cron', '0 0 30 2 *'], b'cron: fields 3 and 4 (day of month, month): no month'),
        (['--cron', '* * * *'], b'cron: 4 fields: give 5'),
        (['--cron', '@daily', '--tz', 'Mars/Olympus'], b"zone: unknown time zone 'Mars/Olympus'"),
        (['--cron', '@daily', '--tz', '../../etc/passwd'], b'is not a time zone name'),
    ]
    for options, reason in cases:
        proc = cli(broker, 'schedule', 'add', 'bad', *options)
        assert proc.returncode == 2 and reason in proc.stderr, (options, proc.stderr)
    # the same over the wire: 422 with the reason, and nothing changes
    payload = [b'']
    for body, code, reason in [
            ({'op': 'add', 'name': 'bad', 'cron': '61 * * * *', 'task': 't'}, 422,
             'cron: field 1 (minute): 61 is out of range 0-59'),
            ({'op': 'add', 'name': 'bad', 'cron': '@daily', 'task': 't', 'retries': 5000}, 422,
             'retries: 5000 is over the limit of 1000'),
            ({'op': 'add', 'name': 'bad', 'cron': '@daily', 'task': 't', 'timeout_ms': 1000,
              'soft_timeout_ms': 2000}, 422, 'soft_timeout_ms: 2000 is not below timeout_ms'),
            ({'op': 'add', 'name': 'bad', 'cron': '@daily', 'task': 't', 'catch_up': 'some'}, 422,
             "catch_up: 'some' is not none, one or all"),
            ({'op': 'add', 'name': 'bad', 'cron': '@daily'}, 422,
             "task: the name of the schedule's tasks is missing"),
            ({'op': 'frob', 'name': 'bad'}, 422, "op: 'frob' is not add, list, remove, pause or "
             "resume"),
            ({'op': 'pause', 'name': 'bad'}, 404, "no schedule 'bad'"),
            ({'op': 'pause'}, 422, 'name: 1 to 160 bytes'),
            ({'op': 'add', 'name': 'bad', 'cron': '@daily', 'task': 't', 'key': 'k'}, 400,
             "unknown key 'key'")]:
        kind, _, reply, _ = peer.request('SCHEDULE', body, payload)
        assert kind == 'ERROR' and reply['code'] == code and reason in reply['reason'], reply
    assert schedules_json(broker) == []
    add(broker, 'twice', '@daily')
    proc = cli(broker, 'schedule', 'add', 'twice', '--cron', '@hourly')
    assert proc.returncode == 1 and b"schedule 'twice' exists" in proc.stderr, proc.stderr
    assert [s['cron'] for s in schedules_json(broker)] == ['@daily']


def local_next(zone, hour, minute, weekdays=range(7)):
    """The next hour:minute in zone after now on one of the weekdays
    (Monday 0), as RFC 3339 with its offset."""
    tz = zoneinfo.ZoneInfo(zone)
    now = datetime.datetime.now(tz)
    day = now.date()
    while True:
        at = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if at > now and at.weekday() in weekdays:
            return at.isoformat()
        day += datetime.timedelta(days=1)


def test_list_shows_next_slot_in_its_zone(broker, processes):
    # 12:30 and 09:15 are never inside a DST change
    add(broker, 'berlin', '30 12 * * *', '--tz', 'Europe/Berlin')
    add(broker, 'newyork', '15 9 * * mon-fri', '--tz', 'America/New_York', '--catch-up', 'none')
    proc = cli(broker, 'schedule', 'list')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0].split() == ['NAME', 'CRON', 'ZONE', 'NEXT', 'CATCH-UP', 'QUEUE', 'TASK',
                                'LAST']
    berlin = local_next('Europe/Berlin', 12, 30)
    assert lines[1].split() == ['berlin', '30', '12', '*', '*', '*', 'Europe/Berlin', berlin,
                                'one', 'berlin', 'berlin', '-']
    listed = {s['name']: s for s in schedules_json(broker)}
    assert listed['berlin']['next_local'] == berlin
    newyork = local_next('America/New_York', 9, 15, range(5))
    assert listed['newyork']['next_local'] == newyork
    assert listed['newyork']['next_ms'] == int(
        datetime.datetime.fromisoformat(newyork).timestamp() * 1000)
    assert lines[2].split()[7] == newyork
    # they survive a restart
    broker.kill9()
    again = broker.restart()
    processes.append(again)
    assert {s['name'] for s in schedules_json(again)} == {'berlin', 'newyork'}
