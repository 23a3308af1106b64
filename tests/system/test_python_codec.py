"""The Python package's codec, option checks and workflow files, without a
broker: every message survives a round trip, malformed input is refused
naming the field (as the C decoder names it), and what the broker would
refuse is refused before sending, in the broker's and the CLI's words."""

import os
import re
import struct
import time

import msgpack
import pytest

from python_support import arbiter  # noqa: F401 (puts the package on sys.path)
from arbiter import codec, flows
from arbiter.codec import Message, MsgType, decode, encode
from arbiter.errors import BadRequest, Invalid, ProtocolError, TooLarge
from arbiter.spec import task_spec


def raw(type_name, body, frames=(), reqid=7, version=1):
    return [codec.header(MsgType[type_name], reqid, version),
            msgpack.packb(body, use_bin_type=True)] + list(frames)


def refused(parts, max_frame=None):
    with pytest.raises(ProtocolError) as e:
        decode(parts, max_frame)
    return e.value


SAMPLES = [
    Message(MsgType.SUBMIT, 3, {'watch': True, 'flow_kind': 1, 'flow_name': 'nightly', 'tasks': [
        {'name': 'a', 'ref': 'a', 'payload': b'one', 'priority': -5, 'retries': 3,
         'backoff': 2, 'backoff_ms': 1000, 'backoff_cap_ms': 60000, 'headers': b'\x00h',
         'endpoints': ['w1', 'w2'], 'args': b'{}'},
        {'name': 'b', 'ref': 'b', 'after': [{'ref': 'a', 'when': 2}, {'id': 9}], 'input': 1,
         'payload': b''}]}),
    Message(MsgType.DONE, 0, {'tasks': [
        {'id': 1, 'state': 5, 'attempts': 1, 'result': b'first'},
        {'id': 2, 'state': 7, 'attempts': 3, 'error': 'it broke\nbadly', 'result': b''}]}),
    Message(MsgType.DISPATCH, 0, {'tasks': [
        {'id': 4, 'lease': 1 << 40, 'attempt': 1, 'queue': 'q', 'name': 'n',
         'parents': [{'name': 'p', 'id': 3, 'state': 5, 'result': b'r'}], 'payload': b'in'}]}),
    Message(MsgType.RESULT, 9, {'results': [
        {'id': 4, 'lease': 2, 'outcome': 0, 'result': b'out'},
        {'id': 5, 'lease': 3, 'outcome': 1, 'error': 'no', 'routed': True, 'result': b''}]}),
    Message(MsgType.SCHEDULE, 2, {'op': 'add', 'name': 's', 'cron': '@daily', 'task': 't',
                                  'payload': b'p'}),
    Message(MsgType.STATS_REPLY, 5, {'now_ms': 1, 'queues': [
        {'name': 'q', 'counts': [0, 1, 2, 3, 4, 5, 0, 7, 8, 9], 'paused': True}],
        'workers': [{'name': 'w', 'queues': ['q'], 'slots': 4}]}),
    Message(MsgType.CREDIT, 1, {'sub': 0, 'queues': ['a', 'b'], 'credit': -2}),
    Message(MsgType.PING, 1, {}),
    Message(MsgType.STATUS, 4, {'ids': [7, 8], 'with_payload': True}),
    Message(MsgType.STATUS_REPLY, 4, {'tasks': [
        {'id': 7, 'found': True, 'state': 5, 'result': b'out', 'payload': b'{"k":1}'},
        {'id': 8}]}),
]


@pytest.mark.parametrize('msg', SAMPLES, ids=lambda m: m.type.name)
def test_every_sample_survives_a_round_trip(msg):
    back = decode(encode(msg))
    assert back.type is msg.type and back.reqid == msg.reqid

    def same(schema, sent, got):
        for f in schema.fields:
            value = sent.get(f.key)
            if f.kind is codec.Kind.LIST:
                for a, b in zip(value or [], got[f.key]):
                    same(f.sub, a, b)
                assert len(value or []) == len(got[f.key])
            elif value is None:
                assert got[f.key] in (None, 0, False, b'', [])
            else:
                assert got[f.key] == value, f.key
    same(codec.BODIES[msg.type], msg.body, back.body)


def test_frames_follow_records_depth_first():
    parts = encode(SAMPLES[1])
    assert parts[2:] == [b'first', b'']
    assert decode(parts).body['tasks'][1]['error'] == 'it broke\nbadly'


def test_absent_fields_come_back_as_their_zero():
    body = decode(raw('DONE', {'tasks': [{'id': 1, 'state': 5}]}, [b'r'])).body
    assert body['tasks'][0] == {'id': 1, 'state': 5, 'attempts': 0, 'error': None,
                                'result': b'r'}


@pytest.mark.parametrize('parts, reason, code', [
    ([b'XR\x01\x01\x00\x00\x00\x01', b'\x80'], 'not an arbiter message (bad header frame)', 400),
    ([b'AR\x01\x01\x00\x00\x00', b'\x80'], 'not an arbiter message (bad header frame)', 400),
    ([b'AR\x02\x02\x00\x00\x00\x01', b'\x80'], 'protocol version 2 not spoken', 505),
    ([b'AR\x01\x3f\x00\x00\x00\x01', b'\x80'], 'unknown message type 63', 400),
    ([b'AR\x01\x02\x00\x00\x00\x01'], 'PING without a body frame', 400),
    ([b'AR\x01\x02\x00\x00\x00\x01', b'\xc1'], 'body is not msgpack', 400),
    ([b'AR\x01\x02\x00\x00\x00\x01', b'\x80\x00'], '1 bytes after the body', 400),
    ([b'AR\x01\x02\x00\x00\x00\x01', b'\x90'], 'expected map, got array', 400),
    ([b'AR\x01\x02\x00\x00\x00\x01', b'\x80', b'extra'], '1 frames more than', 400),
])
def test_bad_headers_and_bodies_are_refused(parts, reason, code):
    error = refused(parts)
    assert reason in error.reason and error.code == code


@pytest.mark.parametrize('body, frames, reason', [
    ({'code': 404}, [], "missing required key 'reason'"),
    ({'code': 404, 'reason': 'x', 'extra': 1}, [], "unknown key 'extra'"),
    ({'code': None, 'reason': 'x'}, [], 'code: expected integer, got nil'),
    ({'code': 4.0, 'reason': 'x'}, [], 'code: expected integer, got unsupported type'),
    ({'code': True, 'reason': 'x'}, [], 'code: expected integer, got boolean'),
    ({'code': -1, 'reason': 'x'}, [], 'code: number out of range'),
    ({'code': 1 << 32, 'reason': 'x'}, [], 'code: number out of range'),
    ({'code': 404, 'reason': b'x'}, [], 'reason: expected string, got binary'),
    ({'code': 404, 'reason': 'a\0b'}, [], 'reason: string holds a NUL byte'),
    ({'code': 404, 'reason': 'x' * 4097}, [], 'reason: string of 4097 bytes, over the 4096'),
])
def test_fields_are_checked_exactly(body, frames, reason):
    assert reason in refused(raw('ERROR', body, frames)).reason


def test_repeated_keys_and_non_string_keys_are_refused():
    body = b'\x82\xa4code\xcd\x01\x94\xa4code\xcd\x01\x94'
    assert 'code: key given twice' in refused([codec.header(1, 1), body]).reason
    assert 'expected string, got integer' in refused(raw('PING', {1: 2})).reason


def test_records_are_checked_with_their_path():
    error = refused(raw('DONE', {'tasks': [{'id': 1, 'state': 5}, {'id': 2, 'state': 'x'}]},
                        [b'', b'']))
    assert error.reason == 'tasks[1].state: expected integer, got string'
    error = refused(raw('SUBMIT', {'tasks': [{'name': 'a\nb'}]}, [b'']))
    assert error.reason == ('tasks[0].name: control character 0x0a at byte 2 '
                            '(names are printable UTF-8)')
    assert 'i32' not in refused(raw('CREDIT', {'credit': 1 << 31})).reason
    assert refused(raw('CREDIT', {'credit': 1 << 31})).reason == 'credit: number out of range'
    assert decode(raw('CREDIT', {'credit': -(1 << 31)})).body['credit'] == -(1 << 31)


def test_frames_are_matched_to_records_and_limited():
    assert 'tasks[1]: its frame is missing' in refused(
        raw('DONE', {'tasks': [{'id': 1, 'state': 5}, {'id': 2, 'state': 5}]}, [b''])).reason
    error = refused(raw('DONE', {'tasks': [{'id': 1, 'state': 5}]}, [b'x' * 11]), max_frame=10)
    assert error.code == 413 and 'frame of 11 bytes, over the 10-byte limit' in error.reason
    error = refused(raw('STATS_REPLY', {'queues': [{'name': 'q', 'counts': [0] * 11}]}))
    assert error.code == 413 and 'queues[0].counts: 11 elements, over the limit of 10' \
        in error.reason


def test_a_count_larger_than_the_bytes_is_refused_without_allocating():
    body = b'\x81\xa5tasks\xdd' + struct.pack('>I', 1 << 30)
    assert refused([codec.header(12, 0), body]).code == 400


def test_encode_refuses_what_the_broker_would():
    def refuse(body, kind=MsgType.SUBMIT):
        with pytest.raises(arbiter.BrokerError) as e:
            encode(Message(kind, 1, body))
        assert e.value.local
        return e.value
    error = refuse({'tasks': [{'name': 'ok', 'queue': 'a\x85b'}]})
    assert isinstance(error, BadRequest) and error.reason == (
        'tasks[0].queue: control character U+0085 at byte 2 (names are printable UTF-8)')
    error = refuse({'tasks': [{'name': 'x' * 201}]})
    assert isinstance(error, TooLarge) and error.code == 413
    assert refuse({'tasks': [{'name': 'a', 'retries': -1}]}).reason == \
        'tasks[0].retries: number out of range'
    assert refuse({'tasks': [{'name': 'a', 'bogus': 1}]}).reason == "tasks[0]: unknown key 'bogus'"
    assert refuse({'tasks': [{'name': 'a', 'payload': 'text'}]}).reason == \
        'tasks[0].payload: expected binary, got string'
    assert refuse({'ids': [1, 'x']}, MsgType.STATUS).reason == 'ids[1]: expected integer, got string'
    assert refuse({'ids': [1], 'with_payload': 1}, MsgType.STATUS).reason == \
        'with_payload: expected boolean, got integer'
    with pytest.raises(TooLarge):
        encode(Message(MsgType.SUBMIT, 1, {'tasks': [{'name': 'a', 'payload': b'xx'}]}),
               max_frame=1)


def test_names_are_printable_utf8_in_the_brokers_words():
    assert codec.check_name('fine name ü') is None
    assert codec.check_name('abc\n') == 'control character 0x0a at byte 4'
    assert codec.check_name('é\x7f') == 'control character 0x7f at byte 3'
    assert codec.check_name('\ud800') == 'invalid UTF-8 at byte 1'
    assert codec.clean_text('a\0b' + 'é' * 3000)[:3] == 'a.b'
    assert len(codec.clean_text('é' * 3000).encode()) == 4096


@pytest.mark.parametrize('options, reason', [
    ({'retries': 1001}, 'retries: expected a whole number from 0 to 1000, not 1001'),
    ({'backoff': 'exp:1,60'}, 'backoff: it delays retries, and there are none'),
    ({'retries': 1, 'backoff': 'exp:5,1'}, 'exp: CAP (1 s) is below BASE (5 s)'),
    ({'retries': 1, 'backoff': 'sometimes'}, 'expected fixed:SECONDS or exp:BASE,CAP'),
    ({'no_jitter': True}, 'no_jitter: only an exp: backoff is jittered'),
    ({'timeout': 5, 'soft_timeout': 5}, 'soft_timeout: must be below timeout'),
    ({'timeout': 31 * 86400}, 'timeout: 2678400 s is over the limit of 30 days'),
    ({'delay': -1}, 'delay: must be 0 or more seconds'),
    ({'delay': 1, 'at': 2}, 'delay and at both say when; give one'),
    ({'at': '2026-13-01T00:00:00Z'}, 'at: not a valid RFC 3339 time'),
    ({'endpoints': ['a'], 'broadcast': True}, 'endpoints and broadcast both say where'),
    ({'endpoint_timeout': 5}, 'go with endpoints or broadcast'),
    ({'endpoints': ['a', 'a']}, "endpoints[1]: 'a' is given twice"),
    ({'queue': 'x@y'}, "queue: '@' is reserved"),
    ({'priority': 1 << 31}, 'priority: expected a whole number'),
    ({'args': object()}, 'args: expected bytes, str or a JSON value, not object'),
])
def test_task_options_are_checked_as_the_cli_checks_them(options, reason):
    with pytest.raises(Invalid) as e:
        task_spec('t', b'', what='tasks[0]', **options)
    assert reason in e.value.reason and e.value.local


def test_task_options_become_the_wire_fields():
    import datetime
    tomorrow = int(time.time()) // 86400 * 86400 + 86400
    at = datetime.datetime.fromtimestamp(tomorrow, datetime.timezone.utc).strftime(
        '%Y-%m-%dT01:00:00+01:00')
    spec = task_spec('t', 'é', queue='q', key='k', priority=-3, retries=2,
                     backoff='exp:0.5,60', no_jitter=True, at=at,
                     timeout=1.5, soft_timeout=0.25, retention=3600, expires=1e9,
                     headers=b'h', endpoints=['w'], allow_unknown_endpoints=True,
                     endpoint_timeout=5, args='{"a":1}')
    assert spec['payload'] == 'é'.encode() and spec['backoff'] == 2
    assert (spec['backoff_ms'], spec['backoff_cap_ms']) == (500, 60000)
    assert spec['at_ms'] == tomorrow * 1000 and spec['timeout_ms'] == 1500
    assert spec['soft_timeout_ms'] == 250 and spec['retention_ms'] == 3600000
    assert spec['expires_ms'] == 1000000000000 and spec['endpoint_timeout_ms'] == 5000
    assert spec['allow_unknown'] and spec['args'] == b'{"a":1}'
    encode(Message(MsgType.SUBMIT, 1, {'tasks': [spec]}))
    # other JSON values go as their compact JSON text, as in a flow file
    spec = task_spec('t', {'k': ['é', 1]}, args=[1, 2])
    assert spec['payload'] == '{"k":["é",1]}'.encode() and spec['args'] == b'[1,2]'


@pytest.mark.parametrize('kind, doc, reason', [
    ('dag', {'tasks': [{'name': 'a'}, {'name': 'b'}, {'name': 'c', 'after': [
        {'task': 'a', 'when': 'sometimes'}]}]},
     "dag.json: tasks[2] ('c').after[0]: 'when' must be on_success, on_failure or always"),
    ('dag', {'tasks': [{'name': 'a'}, {'name': 'b', 'after': ['a', 'nope']}]},
     "dag.json: tasks[1] ('b').after[1]: no task named 'nope' in this file "
     "(an existing task is {\"id\": N})"),
    ('dag', {'tasks': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}, {'name': 'a'}]},
     "dag.json: tasks[3] ('a').name: 'a' is also the name of tasks[0]"),
    ('dag', {'tasks': [{'name': 'fetch', 'retries': 1001}]},
     "dag.json: tasks[0] ('fetch').retries: 1001 is over the limit of 1000"),
    ('dag', {'tasks': [{'name': 'a', 'after': ['a']}]},
     "dag.json: tasks[0] ('a').after[0]: 'a' cannot wait for itself"),
    ('dag', {'tasks': [{'name': 'a', 'colour': 'red'}]},
     "dag.json: tasks[0] ('a'): unknown field 'colour'"),
    ('dag', {'tasks': []}, 'dag.json: tasks: must be a list of one or more task objects'),
    ('dag', {'task': []}, "dag.json: unknown field 'task' (a DAG file has: name tasks)"),
    ('group', {'tasks': [{'task': 'x', 'after': []}]},
     "group.json: tasks[0] ('member1'): 'after' has no place in a group's member"),
    ('group', {'tasks': [{'name': 'callback', 'task': 'x'}]},
     "group.json: tasks[0] ('callback').name: 'callback' is the name of the group's callback"),
    ('pipe', {'steps': [{'task': 'x', 'payload': 'p'}]},
     "pipe.json: steps[0] ('step1'): 'payload' has no place in a pipe's step"),
    ('dag', {'tasks': [{'name': 'a', 'input': 'parent'}]},
     "dag.json: tasks[0] ('a').input: \"parent\" needs exactly one dependency, on_success"),
])
def test_workflow_file_mistakes_are_named(kind, doc, reason, tmp_path):
    import json
    path = tmp_path / ('%s.json' % kind)
    path.write_text(json.dumps(doc))
    with pytest.raises(Invalid) as e:
        flows.load(str(path), kind)
    assert e.value.reason.startswith(reason.replace('%s.json' % kind, str(path)))


def test_workflow_files_become_specs_with_their_edges():
    flow = flows.parse('{"name": "thumbs", "tasks": [{"task": "resize", "payload": "a"},'
                       ' {"name": "cover", "task": "resize", "payload": {"w": 2}}],'
                       ' "callback": {"task": "zip"}, "finalizer": {"task": "cleanup"}}',
                       'group')
    assert flow.names == ['member1', 'cover', 'callback', 'finalizer']
    assert flow.tasks[1]['payload'] == b'{"w":2}'
    assert flow.tasks[2]['after'] == [{'ref': 'member1', 'when': 0}, {'ref': 'cover', 'when': 0}]
    assert [d['ref'] for d in flow.tasks[3]['after']] == ['member1', 'cover', 'callback']
    assert {d['when'] for d in flow.tasks[3]['after']} == {2}
    pipe = flows.pipe(['add', {'task': 'add', 'args': 5}], input=0, args='1')
    assert pipe.tasks[0]['payload'] == b'0' and pipe.tasks[0]['args'] == b'1'
    assert pipe.tasks[1]['args'] == b'5' and pipe.tasks[1]['input'] == 1
    assert pipe.tasks[1]['after'] == [{'ref': 'step1'}]
    with pytest.raises(Invalid) as e:
        flows.parse('{"tasks": [1,]}', 'dag', 'x.json')
    assert e.value.reason.startswith('x.json:1:')
    with pytest.raises(Invalid) as e:
        flows.parse('{"tasks": [], "tasks": []}', 'dag', 'x.json')
    assert "duplicate object key 'tasks'" in e.value.reason


# ---------------------------------------------------------------------
# The Python codec speaks the C codec's schemas, field for field: a field
# the broker adds and the Python codec does not know makes it refuse the
# broker's replies (a strict decoder refuses unknown keys).

C_CODEC = os.path.join(os.path.dirname(__file__), '..', '..', 'proto', 'arb_schema.c')


def c_schemas():
    """The schemas of proto/arb_schema.c: {'s_NAME_schema': [(key, kind, required, sub)]}."""
    src = open(C_CODEC).read()
    macros = {}
    for m in re.finditer(r'#define (\w+)\s*\\\n((?:.*\\\n)*.*\n)', src):
        body = m.group(2).replace('\\\n', ' ')
        if 'FLD' in body or 'LST' in body:
            macros[m.group(1)] = body
    arrays = {}
    for m in re.finditer(r'static const arb_field_t (\w+)\[\] = \{(.*?)\};', src, re.S):
        text = m.group(2)
        for name, body in macros.items():
            text = re.sub(r'\b%s\b' % name, body, text)
        fields = []
        for f in re.finditer(r'\b(FLD|LST)\s*\(([^()]*)\)', text):
            args = [a.strip() for a in f.group(2).split(',')]
            if f.group(1) == 'FLD':
                fields.append((args[1], args[2].replace('ARB_F_', ''), args[3] == 'true', None))
            else:
                fields.append((args[1], 'LIST', args[2] == 'true', args[4]))
        arrays[m.group(1)] = fields
    schemas = {}
    kinds = r'SCHEMA|FRAMED_SCHEMA|FRAMES_IN_SCHEMA|EMPTY_SCHEMA'
    for m in re.finditer(r'\b(?:%s)\s*\(\s*(\w+),\s*\w+(?:,\s*(\w+))?(?:,\s*\w+)*\)' % kinds, src):
        schemas[m.group(1)] = arrays.get(m.group(2), []) if m.group(2) else []
    return schemas


def test_schemas_match_the_c_codec():
    c = c_schemas()
    seen = set()

    def compare(schema, c_name):
        if c_name in seen:
            return
        seen.add(c_name)
        assert c_name in c, 'the C codec has no %s (Python schema %s)' % (c_name, schema.name)
        c_fields = c[c_name]
        py = [(f.key, f.kind.name, f.required) for f in schema.fields]
        assert py == [(k, kind, req) for k, kind, req, _ in c_fields], \
            'schema %s differs from the C codec' % schema.name
        for f, (_, _, _, sub) in zip(schema.fields, c_fields):
            if f.kind is codec.Kind.LIST:
                compare(f.sub, sub)

    for schema in codec.BODIES.values():
        compare(schema, 's_%s_schema' % schema.name)
    assert len(codec.BODIES) == len([t for t in MsgType])
