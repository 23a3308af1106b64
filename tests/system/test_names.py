"""Names (queues, task names, keys, worker names, refs, endpoints, flow
names) are printable UTF-8: the codec refuses others in what peers send a
real broker (400, naming the field, nothing stored), and the CLI and the
worker binary refuse them before sending (exit 2, naming the argument)."""

import json
import subprocess

import msgpack

from arbiter_proto import header
from conftest import binary

EXIT_USAGE = 2


def refused(peer, type_name, body, frames=()):
    kind, _, reply, _ = peer.request(type_name, body, frames)
    assert kind == 'ERROR', reply
    assert reply['code'] == 400, reply
    return reply['reason']


def nothing_stored(peer):
    kind, _, body, _ = peer.request('LIST', {})
    assert kind == 'LIST_REPLY' and body.get('tasks', []) == [], body


def test_broker_refuses_names_that_are_not_printable_utf8(broker, peer_factory):
    peer = peer_factory(broker.endpoint)
    assert refused(peer, 'SUBMIT', {'tasks': [{'name': 'two\nlines'}]}, [b'x']) == (
        'tasks[0].name: control character 0x0a at byte 4 (names are printable UTF-8)')
    reason = refused(peer, 'SUBMIT', {'tasks': [{'name': 'ok'}, {'name': 'ok', 'queue': 'q\x1b[2J'}]},
                     [b'', b''])
    assert reason.startswith('tasks[1].queue: control character 0x1b at byte 2')
    reason = refused(peer, 'SUBMIT', {'tasks': [{'name': 'ok', 'endpoints': ['w1', 'w\u0085']}]},
                     [b''])
    assert reason.startswith('tasks[0].endpoints[1]: control character U+0085 at byte 2')
    # a str that is not UTF-8 (msgpack-c and other packers can send one)
    raw = [header('SUBMIT', 99),
           msgpack.packb({'tasks': [{'name': b'caf\xe9'}]}, use_bin_type=False), b'']
    peer.send_raw(raw)
    kind, _, reply, _ = peer.recv()
    assert kind == 'ERROR' and reply['code'] == 400
    assert reply['reason'].startswith('tasks[0].name: invalid UTF-8 at byte 4'), reply
    nothing_stored(peer)
    # every verb that names something follows the rule
    assert refused(peer, 'CANCEL', {'group': 'g\r'}).startswith('group: control character')
    assert refused(peer, 'LIST', {'queue': 'q\t'}).startswith('queue: control character')
    assert refused(peer, 'REGISTER', {'name': 'w\n', 'slots': 1}).startswith('name: control')
    # a printable name in any script is fine
    kind, _, body, _ = peer.request('SUBMIT', {'tasks': [{'name': 'café', 'queue': 'q ü'}]}, [b''])
    assert kind == 'SUBMITTED', body


def arbiter(broker, *args):
    return subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint] + list(args),
                          input=b'', stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def test_cli_names_the_argument_and_sends_nothing(broker, peer_factory, tmp_path):
    proc = arbiter(broker, 'submit', 'two\nlines', 'x')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr == (b'arbiter: NAME: control character 0x0a at byte 4 '
                           b'(names are printable UTF-8)\n')
    proc = arbiter(broker, 'submit', '--queue', 'q\tx', 'echo', 'x')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.startswith(b'arbiter: --queue: control character 0x09 at byte 2')
    proc = arbiter(broker, 'submit', '--key', b'k\xff', 'echo')
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.startswith(b'arbiter: --key: invalid UTF-8 at byte 2')
    dag = tmp_path / 'dag.json'
    dag.write_text(json.dumps({'tasks': [{'name': 'a'}, {'name': 'b', 'queue': 'q\n'}]}))
    proc = arbiter(broker, 'dag', 'submit', str(dag))
    assert proc.returncode == EXIT_USAGE
    assert b"tasks[1] ('b').queue: control character 0x0a at byte 2" in proc.stderr
    nothing_stored(peer_factory(broker.endpoint))


def test_worker_refuses_a_name_the_broker_would(broker):
    proc = subprocess.run([binary('worker', 'arbiter-worker'), '--broker', broker.endpoint,
                           '--exec', 'cat', '--name', 'w\n1'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == EXIT_USAGE
    assert b'--name: not a worker name (1..200 bytes of printable UTF-8)' in proc.stderr
