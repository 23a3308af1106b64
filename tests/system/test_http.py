"""arbiter-gateway's HTTP server with real HTTP clients (python3-requests,
curl): tasker's API, the admin API, /metrics (read back with
python3-prometheus-client's parser), the static files, the token, and every
kind of bad input."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import arbiter_proto
from conftest import SANITIZED, Broker, Gateway, binary, free_port, wait_until
from helpers import read_to_end, start_exec_worker, status, submit_many
from scripted import ScriptedBroker

TOKEN = 'sesame-1234'
AUTH = {'Authorization': 'Bearer ' + TOKEN}


def write_config(tmp_path, text):
    path = tmp_path / 'gateway.conf'
    path.write_text(text)
    return str(path)


def metrics(gateway):
    reply = requests.get(gateway.url + '/metrics', timeout=10)
    assert reply.status_code == 200
    assert reply.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def error_of(reply, status_code):
    assert reply.status_code == status_code, reply.text
    assert reply.headers['Content-Type'] == 'application/json'
    body = reply.json()
    assert body['status'] == status_code and body['error']
    return body['error']


# ---------------------------------------------------------------------------
# tasker


def test_tasker_post_get_with_endpoints_complete_and_incomplete(broker, gateway_factory,
                                                                processes, tmp_path):
    config = write_config(tmp_path, '[type.deploy]\nwait-for-endpoints-timeout = 1.5\n'
                                    'retries = 2\n')
    gateway = gateway_factory(broker, '--config', config)
    start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'deploy',
                      '--name', 'lb-1')
    wait_until(lambda: any(w['name'] == 'lb-1' for w in requests.get(
        gateway.url + '/api/v1/workers', timeout=5).json()['workers']), what='worker lb-1')

    body = {'identifier': 'e7bd91d0', 'payload': {'foo': 'bar'}, 'endpoints': ['lb-1']}
    created = requests.post(gateway.url + '/deploy', json=body, timeout=10)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task['identifier'] == 'e7bd91d0' and task['type'] == 'deploy'
    assert task['payload'] == {'foo': 'bar'} and task['endpoints'] == ['lb-1']
    assert task['existing'] is False

    # the same identifier again is the same task (a safe retry)
    again = requests.post(gateway.url + '/deploy', json=body, timeout=10)
    assert again.status_code == 200 and again.json()['id'] == task['id']
    assert again.json()['existing'] is True
    # as docs/http.md shows it: the stored task's endpoints, status, start
    # (its created time, GET's; the 201's is the gateway's clock, not before)
    assert again.json()['endpoints'] == ['lb-1'] and again.json()['status'] in ('SENT', 'DONE')
    stored = requests.get('%s/deploy/%d' % (gateway.url, task['id']), timeout=5).json()
    assert again.json()['start_time'] == stored['task']['start_time'] <= task['start_time']

    url = '%s/deploy/%d' % (gateway.url, task['id'])
    done = wait_until(lambda: (lambda t: t if t['state'] == 'succeeded' else None)(
        requests.get(url, timeout=5).json()), what='fan-out task succeeded')
    assert done['status'] == 'complete' and done['identifier'] == 'e7bd91d0'
    assert done['endpoints'] == ['lb-1']
    [response] = done['responses']
    assert response['endpoint'] == 'lb-1' and response['state'] == 'succeeded'
    assert response['received'] is True
    assert response['result'] == '{"FOO":"BAR"}'
    # and as tasker answered it: {"task", "taskResponseList"}
    assert done['task']['status'] == 'DONE' and done['task']['identifier'] == 'e7bd91d0'
    assert done['task']['endpoints'] == ['lb-1'] and done['task']['start_time']
    [tasker_response] = done['taskResponseList']
    assert tasker_response['endpoint'] == 'lb-1' and tasker_response['status'] == 1
    assert tasker_response['payload'] == {'FOO': 'BAR'} and tasker_response['errnr'] == 0
    assert task['status'] == 'SENT' and again.json()['status'] in ('SENT', 'DONE')

    # lb-2 never connects: its copy is missing after the type's timeout
    body = {'identifier': 'second', 'payload': [1, 2], 'endpoints': ['lb-1', 'lb-2']}
    task = requests.post(gateway.url + '/deploy', json=body, timeout=10).json()
    url = '%s/deploy/%d' % (gateway.url, task['id'])
    first = requests.get(url, timeout=5).json()
    assert first['status'] in ('pending', 'incomplete')
    done = wait_until(lambda: (lambda t: t if t['status'] == 'incomplete' else None)(
        requests.get(url, timeout=5).json()), timeout=15, what='task incomplete')
    by_endpoint = {r['endpoint']: r for r in done['responses']}
    assert by_endpoint['lb-2']['received'] is False
    assert done['task']['status'] == 'INCOMPLETE'
    assert by_endpoint['lb-2']['state'] == 'cancelled'
    final = wait_until(lambda: (lambda t: t if t['state'] == 'dead' else None)(
        requests.get(url, timeout=5).json()), timeout=15, what='task dead')
    assert 'incomplete' in final['error'] and 'lb-2' in final['error']
    assert by_endpoint['lb-1']['state'] in ('ready', 'running', 'succeeded')

    # a task without endpoints: complete once a worker received it
    task = requests.post(gateway.url + '/deploy', json={'identifier': 'plain'},
                         timeout=10).json()
    assert task['payload'] is None and task['endpoints'] == []


def test_tasker_responses_are_those_of_the_endpoints_that_received_it(broker, gateway_factory,
                                                                      processes, tmp_path):
    """tasker's endpoints made their task-response when they received the
    task (its seed: "On receiving the task, the endpoints create a
    task-response"), so its GET listed those that had it, status 0 while
    they worked on it: an endpoint that never got its copy is in no
    taskResponseList, before its timeout or after."""
    config = write_config(tmp_path, '[type.deploy]\nwait-for-endpoints-timeout = 4\n')
    gateway = gateway_factory(broker, '--config', config)
    start_exec_worker(broker, processes, tmp_path, 'sleep 2; echo done', '--queue', 'deploy',
                      '--name', 'lb-1')
    wait_until(lambda: any(w['name'] == 'lb-1' for w in requests.get(
        gateway.url + '/api/v1/workers', timeout=5).json()['workers']), what='worker lb-1')

    body = {'identifier': 'received', 'endpoints': ['lb-1', 'lb-2']}
    task = requests.post(gateway.url + '/deploy', json=body, timeout=10).json()
    url = '%s/deploy/%d' % (gateway.url, task['id'])

    def running(t):
        by_endpoint = {r['endpoint']: r for r in t['responses']}
        return t if by_endpoint['lb-1']['state'] == 'running' else None
    first = wait_until(lambda: running(requests.get(url, timeout=5).json()),
                       what="lb-1 running its copy")
    assert first['status'] == 'pending' and first['task']['status'] == 'SENT'
    [working] = first['taskResponseList']  # lb-2 has nothing yet
    assert working['endpoint'] == 'lb-1' and working['status'] == 0

    def ended(t):
        by_endpoint = {r['endpoint']: r for r in t['responses']}
        return t if t['state'] == 'dead' and by_endpoint['lb-1']['state'] == 'succeeded' else None
    done = wait_until(lambda: ended(requests.get(url, timeout=5).json()), timeout=15,
                      what='task dead, lb-1 done')
    assert done['task']['status'] == 'INCOMPLETE'
    [finished] = done['taskResponseList']
    assert finished['endpoint'] == 'lb-1' and finished['status'] == 1
    assert finished['errnr'] == 0 and finished['payload'] is None  # 'done\n' is not JSON


def test_tasker_a_task_taken_then_cancelled_stays_complete(broker, gateway_factory, processes,
                                                           tmp_path):
    """docs/http.md: a task without endpoints is complete once a worker
    took it, incomplete if it was cancelled before any worker took it; a
    receipt is not undone, so one cancelled while it runs stays complete
    (tasker's DONE), its worker listed."""
    gateway = gateway_factory(broker)
    start_exec_worker(broker, processes, tmp_path, 'sleep 30', '--queue', 'slow', '--name', 'w-1')
    task = requests.post(gateway.url + '/slow', json={'identifier': 'taken'}, timeout=10).json()
    url = '%s/slow/%d' % (gateway.url, task['id'])
    running = wait_until(lambda: (lambda t: t if t['state'] == 'running' else None)(
        requests.get(url, timeout=5).json()), what='w-1 running it')
    assert running['status'] == 'complete' and running['task']['status'] == 'DONE'
    cancel = requests.delete('%s/api/v1/tasks/%d' % (gateway.url, task['id']), timeout=10)
    assert cancel.status_code == 200, cancel.text
    cancelled = requests.get(url, timeout=5).json()
    assert cancelled['state'] == 'cancelled'
    assert cancelled['status'] == 'complete' and cancelled['task']['status'] == 'DONE'
    [response] = cancelled['taskResponseList']
    assert response['endpoint'] == 'w-1'

    # cancelled before any worker took it: incomplete, no response
    task = requests.post(gateway.url + '/idle', json={'identifier': 'untaken'},
                         timeout=10).json()
    requests.delete('%s/api/v1/tasks/%d' % (gateway.url, task['id']), timeout=10)
    untaken = requests.get('%s/idle/%d' % (gateway.url, task['id']), timeout=5).json()
    assert untaken['status'] == 'incomplete' and untaken['task']['status'] == 'INCOMPLETE'
    assert untaken['taskResponseList'] == []


def test_tasker_post_that_waits_for_its_endpoints(broker, gateway_factory, processes, tmp_path):
    """wait-for-endpoints = yes: a POST is answered as tasker's was, once
    every endpoint has received its copy (DONE) or one is missing after the
    type's window (INCOMPLETE); a type without it answers at once (SENT)."""
    config = write_config(tmp_path, '[type.deploy]\nwait-for-endpoints = yes\n'
                                    'wait-for-endpoints-timeout = 1.5\n[type.quick]\n')
    gateway = gateway_factory(broker, '--config', config)
    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'deploy', '--name', 'lb-1')
    wait_until(lambda: any(w['name'] == 'lb-1' for w in requests.get(
        gateway.url + '/api/v1/workers', timeout=5).json()['workers']), what='worker lb-1')

    def post(type_, identifier, endpoints):
        started = time.monotonic()
        reply = requests.post('%s/%s' % (gateway.url, type_), timeout=20,
                              json={'identifier': identifier, 'endpoints': endpoints})
        assert reply.status_code == 201, reply.text
        return reply.json(), time.monotonic() - started

    task, _ = post('deploy', 'one', ['lb-1'])
    assert task['status'] == 'DONE' and task['existing'] is False, task
    assert task['state'] in ('waiting', 'succeeded'), task  # its state once the wait ended
    task, took = post('deploy', 'two', ['lb-1', 'lb-2'])  # lb-2 never connects
    assert task['status'] == 'INCOMPLETE' and took >= 1.4, (task, took)
    assert task['state'] == 'dead', task
    # the GET says the same
    got = requests.get('%s/deploy/%d' % (gateway.url, task['id']), timeout=5).json()
    assert got['task']['status'] == 'INCOMPLETE'
    task, took = post('quick', 'three', ['lb-2'])
    assert task['status'] == 'SENT' and took < 1.4, (task, took)

def test_tasker_broadcast_reaches_every_worker_on_the_type(broker, gateway_factory, processes,
                                                           tmp_path):
    # tasker's publish/subscribe: with broadcast = yes a POST without
    # endpoints goes to every worker connected on the type's queue
    config = write_config(tmp_path, '[type.deploy]\nbroadcast = yes\n[type.plain]\n')
    gateway = gateway_factory(broker, '--config', config)
    refused = requests.post(gateway.url + '/deploy', json={'identifier': 'early'}, timeout=10)
    assert "no worker serving queue 'deploy'" in error_of(refused, 422)
    for name in ('lb-1', 'lb-2'):
        start_exec_worker(broker, processes, tmp_path, 'tr a-z A-Z', '--queue', 'deploy',
                          '--name', name)
    # registered, and their credit on the queue in (a broadcast goes to the
    # workers subscribed to it: one registered a moment before its CREDIT
    # was left out once, on a loaded machine)
    wait_until(lambda: {w['name'] for w in requests.get(
        gateway.url + '/api/v1/workers', timeout=5).json()['workers']
        if 'deploy' in w['queues']} >= {'lb-1', 'lb-2'}, what='both workers on deploy')
    task = requests.post(gateway.url + '/deploy', json={'identifier': 'all', 'payload': 'up'},
                         timeout=10).json()
    # the 201 names the endpoints the broker chose, as a GET does
    assert sorted(task['endpoints']) == ['lb-1', 'lb-2'], task
    url = '%s/deploy/%d' % (gateway.url, task['id'])
    done = wait_until(lambda: (lambda t: t if t['state'] == 'succeeded' else None)(
        requests.get(url, timeout=5).json()), what='the broadcast succeeded')
    assert done['status'] == 'complete' and sorted(done['endpoints']) == ['lb-1', 'lb-2']
    assert [r['result'] for r in done['responses']] == ['"UP"', '"UP"']
    # the POST's own "broadcast" says otherwise, for that task
    one = requests.post(gateway.url + '/deploy', json={'identifier': 'one', 'broadcast': False},
                        timeout=10).json()
    assert one['state'] == 'ready' and one['endpoints'] == []
    done = wait_until(lambda: (lambda t: t if t['state'] == 'succeeded' else None)(
        requests.get('%s/deploy/%d' % (gateway.url, one['id']), timeout=5).json()),
        what='the one-worker task succeeded')
    assert done['responses'] == [] and done['status'] == 'complete'
    both = requests.post(gateway.url + '/deploy', timeout=10, json={
        'identifier': 'x', 'broadcast': True, 'endpoints': ['lb-1']})
    assert 'endpoints and broadcast both say where' in error_of(both, 400)
    bad = requests.post(gateway.url + '/deploy', json={'identifier': 'x', 'broadcast': 1},
                        timeout=10)
    assert error_of(bad, 400) == 'broadcast: expected true or false'


def test_tasker_types_come_from_the_config(broker, gateway_factory, tmp_path):
    config = write_config(tmp_path, '[type.deploy]\n[type.backup]\npriority = 5\n'
                                    '[queue.other]\nretries = 1\n')
    gateway = gateway_factory(broker, '--config', config)
    reply = requests.post(gateway.url + '/backup', json={'identifier': 'b1'}, timeout=10)
    assert reply.status_code == 201
    task = requests.get(gateway.url + '/api/v1/tasks/%d' % reply.json()['id'], timeout=5).json()
    assert task['priority'] == 5 and task['queue'] == 'backup' and task['key'] == 'backup@b1'
    assert 'not a task type' in error_of(
        requests.post(gateway.url + '/other', json={'identifier': 'x'}, timeout=10), 404)
    assert 'not a task type' in error_of(
        requests.get(gateway.url + '/other/1', timeout=10), 404)
    # [type.deploy], without keys, declares a type with the defaults
    assert requests.post(gateway.url + '/deploy', json={'identifier': 'd1'},
                         timeout=10).status_code == 201
    # a 405 offers only a method that serves the path: POST /backup, not
    # POST /metric, which is no type here
    assert requests.get(gateway.url + '/backup', timeout=10).headers['Allow'] == 'POST'
    for method, path in (('GET', '/metric'), ('GET', '/other'), ('DELETE', '/other/1')):
        assert 'no such path' in error_of(
            requests.request(method, gateway.url + path, timeout=10), 404), path


def test_tasker_any_type_without_config_but_reserved_names(broker, gateway_factory):
    gateway = gateway_factory(broker)
    reply = requests.post(gateway.url + '/anything', json={'identifier': 'a'}, timeout=10)
    assert reply.status_code == 201
    for name in ('api', 'static', 'metrics', 'index.html'):
        refused = requests.post(gateway.url + '/' + name, json={'identifier': 'a'}, timeout=10)
        assert refused.status_code in (404, 405), refused.text
        assert 'task type' not in refused.text
    # the server's own names are not tasker's: a path under one that no
    # route serves is not found, not a 405 whose method fails after
    for path in ('/api', '/api/v1', '/api/v1/queues/a/b', '/static', '/static/', '/metrics/1',
                 '/api/1'):
        assert ("no such path '%s'" % path) in error_of(
            requests.get(gateway.url + path, timeout=10), 404)
    error_of(requests.post(gateway.url + '/api/v1/queues/a/b', timeout=10), 404)
    assert requests.get(gateway.url + '/api/v1/queues/a/pause',
                        timeout=10).headers['Allow'] == 'POST'
    index = requests.get(gateway.url + '/index.html', timeout=10)
    assert index.status_code == 200 and '<title>arbiter</title>' in index.text
    # without types any name is one: GET /anything offers POST, which serves it
    assert requests.get(gateway.url + '/anything', timeout=10).headers['Allow'] == 'POST'
    # another type's task is not found under this one
    error_of(requests.get(gateway.url + '/other/%d' % reply.json()['id'], timeout=10), 404)
    error_of(requests.get(gateway.url + '/anything/999999', timeout=10), 404)
    error_of(requests.get(gateway.url + '/anything/abc', timeout=10), 404)


def test_ids_have_one_spelling(broker, gateway_factory, tmp_path):
    """An id in a path is canonical decimal: '0012' is not task 12 (404),
    on every route that takes one, and nothing is changed through it."""
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    task = requests.post(gateway.url + '/jobs', json={'identifier': 'z'}, timeout=10).json()
    plain, padded = str(task['id']), '00' + str(task['id'])
    assert requests.get(api + '/tasks/' + plain, timeout=10).status_code == 200
    assert requests.get(gateway.url + '/jobs/' + plain, timeout=10).status_code == 200
    for url in (api + '/tasks/' + padded, gateway.url + '/jobs/' + padded, api + '/tasks/0'):
        assert 'is not a task id' in error_of(requests.get(url, timeout=10), 404), url
    for url in (api + '/dags/' + padded, api + '/groups/0', api + '/dags/0', api + '/pipes/0'):
        assert 'is not a flow id' in error_of(requests.get(url, timeout=10), 404), url
    error_of(requests.delete(api + '/tasks/' + padded, timeout=10), 404)
    error_of(requests.post(api + '/tasks/%s/retry' % padded, timeout=10), 404)
    assert requests.get(api + '/tasks/' + plain, timeout=10).json()['state'] == 'ready'
    # and so in a listing's query (400, a bad argument): after=01 was task 1
    for query, why in (('after=0' + plain, "after: '0%s' is not a task id" % plain),
                       ('before=' + padded, "before: '%s' is not a task id" % padded),
                       ('flow=01', "flow: '01' is not a flow id"),
                       ('flow=0', "flow: '0' is not a flow id"),
                       ('after=-1', "after: '-1' is not a task id")):
        assert error_of(requests.get(api + '/tasks?' + query, timeout=10), 400) == why, query
    # 0 is no task, but after=0 and before=0 are the bounds of every id
    assert [t['id'] for t in requests.get(api + '/tasks?after=0', timeout=10).json()['tasks']] \
        == [task['id']]


def test_limit_out_of_range_gets_one_message(broker, gateway_factory):
    gateway = gateway_factory(broker)
    errors = [error_of(requests.get(gateway.url + '/api/v1/tasks?limit=' + limit, timeout=10),
                       400) for limit in ('0', '1001', '-1', 'x')]
    for limit, error in zip(('0', '1001', '-1', 'x'), errors):
        assert error == "limit: expected a number from 1 to 1000, not '%s'" % limit
    for limit in ('1', '1000'):
        assert requests.get(gateway.url + '/api/v1/tasks?limit=' + limit,
                            timeout=10).status_code == 200
    # an argument without a value, or given twice, is refused naming it;
    # flow=0 names no flow
    tasks = gateway.url + '/api/v1/tasks?'
    for query, why in (('limit', "'limit' has no value"), ('state=dead&state=ready',
                       "'state' is repeated"), ('limit=5&queue=a&limit=5', "'limit' is repeated"),
                       ('flow=0', "flow: '0' is not a flow id")):
        assert why in error_of(requests.get(tasks + query, timeout=10), 400), query
    # before=0: no id is smaller, as every id is greater than after=0
    requests.post(gateway.url + '/jobs', json={'identifier': 'b0'}, timeout=10)
    assert requests.get(tasks + 'before=0', timeout=10).json() == {
        'tasks': [], 'more': False, 'next': None}
    assert len(requests.get(tasks + 'after=0', timeout=10).json()['tasks']) == 1


def test_head_metrics_as_get_without_a_body(broker, gateway_factory):
    gateway = gateway_factory(broker)
    head = requests.head(gateway.url + '/metrics', timeout=10)
    assert head.status_code == 200, head.text
    assert head.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    assert int(head.headers['Content-Length']) > 0
    # on the wire: the headers, no body
    answer = raw_request(gateway, b'HEAD /metrics HTTP/1.1\r\nHost: x\r\n'
                                  b'Connection: close\r\n\r\n')
    assert answer.startswith(b'HTTP/1.1 200') and answer.endswith(b'\r\n\r\n'), answer
    assert requests.put(gateway.url + '/metrics', timeout=10).headers['Allow'] == 'GET, HEAD'
    # every GET route answers HEAD alike: the admin API, tasker's, the files
    for path in ('/api/v1/queues', '/api/v1/stats', '/', '/static/style.css'):
        head = requests.head(gateway.url + path, timeout=10)
        assert head.status_code == 200 and head.content == b'', path
    assert requests.head(gateway.url + '/api/v1/tasks/999999', timeout=10).status_code == 404
    answer = raw_request(gateway, b'HEAD /api/v1/workers HTTP/1.1\r\nHost: x\r\n'
                                  b'Connection: close\r\n\r\n')
    assert answer.startswith(b'HTTP/1.1 200') and answer.endswith(b'\r\n\r\n'), answer


def test_unknown_query_arguments_are_refused(broker, gateway_factory):
    """A query argument a route does not take is answered 400 naming it,
    and changes nothing; /metrics and the static files take any."""
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    created = requests.post(gateway.url + '/jobs', json={'identifier': 'a'}, timeout=10).json()
    reply = requests.get(api + '/tasks?queue=jobs&limt=5', timeout=10)
    assert "'limt' is not a query argument" in error_of(reply, 400)
    assert 'state queue flow after before order limit' in reply.json()['error']
    assert "'foo'" in error_of(requests.get(api + '/queues?foo=1', timeout=10), 400)
    assert "'x'" in error_of(requests.get('%s/tasks/%d?x' % (api, created['id']), timeout=10), 400)
    assert "'x'" in error_of(requests.get('%s/jobs/%d?x=1' % (gateway.url, created['id']),
                                          timeout=10), 400)
    # nothing changed: not paused, not cancelled, no task made
    error_of(requests.post(api + '/queues/jobs/pause?force=1', timeout=10), 400)
    error_of(requests.delete('%s/tasks/%d?really=yes' % (api, created['id']), timeout=10), 400)
    error_of(requests.post(gateway.url + '/jobs?dry_run=1', json={'identifier': 'b'},
                           timeout=10), 400)
    assert requests.get(api + '/queues/jobs', timeout=10).json()['paused'] is False
    assert requests.get('%s/tasks/%d' % (api, created['id']), timeout=10).json()['state'] == \
        'ready'
    assert metrics(gateway)[('arbiter_tasks_submitted_total', ())] == 1
    # the arguments a route takes still work; the others' pages take any
    assert requests.get(api + '/tasks?state=ready&queue=jobs&order=newest&limit=5',
                        timeout=10).json()['tasks'][0]['id'] == created['id']
    assert requests.get(gateway.url + '/metrics?name=x', timeout=10).status_code == 200
    assert requests.get(gateway.url + '/static/style.css?v=2', timeout=10).status_code == 200


def test_tasker_repeat_post_answers_the_stored_task(broker, gateway_factory):
    """A POST with an identifier already taken answers the task as stored
    (its state, endpoints and payload), not the repeat's fields."""
    gateway = gateway_factory(broker)
    first = requests.post(gateway.url + '/deploy', json={
        'identifier': 'r1', 'payload': {'v': 1}, 'endpoints': ['lb-x']}, timeout=10)
    assert first.status_code == 201, first.text
    stored = first.json()
    assert stored['state'] == 'waiting' and stored['payload'] == {'v': 1}
    again = requests.post(gateway.url + '/deploy', json={
        'identifier': 'r1', 'payload': {'v': 2}, 'endpoints': ['lb-y', 'lb-z']}, timeout=10)
    assert again.status_code == 200, again.text
    repeat = again.json()
    assert repeat['id'] == stored['id'] and repeat['existing'] is True
    assert repeat['endpoints'] == ['lb-x'] and repeat['state'] == 'waiting'
    assert repeat['identifier'] == 'r1' and repeat['type'] == 'deploy'
    assert repeat['payload'] == {'v': 1}, repeat
    # the state is the stored task's now: cancelled, a repeat says so
    cancelled = requests.delete('%s/api/v1/tasks/%d' % (gateway.url, stored['id']), timeout=10)
    assert cancelled.status_code == 200, cancelled.text
    repeat = requests.post(gateway.url + '/deploy', json={'identifier': 'r1'}, timeout=10).json()
    assert repeat['state'] == 'cancelled' and repeat['endpoints'] == ['lb-x']


def test_tasker_get_shows_the_posted_payload(tmp_path, processes, gateway_factory):
    """GET /TYPE/ID shows the payload a POST stored as task.payload (its
    JSON value), as tasker did, and so does a repeated POST: before the
    task ran (the broker's payload cache), after it ran, and after the
    broker was killed and started again (its journal). A payload that is
    not JSON (a task another client submitted) and no payload show null.
    It showed null always: the broker's STATUS did not carry it."""
    broker = Broker(tmp_path)
    processes.append(broker)
    gateway = gateway_factory(broker)
    payload = {'text': 'é', 'list': [1, 2.5, None, True], 'nested': {'a': {}}}

    def get(kind, task_id):
        reply = requests.get('%s/%s/%d' % (gateway.url, kind, task_id), timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def repeat(kind, identifier):
        reply = requests.post(gateway.url + '/' + kind,
                              json={'identifier': identifier, 'payload': 'another'}, timeout=10)
        assert reply.status_code == 200 and reply.json()['existing'] is True, reply.text
        return reply.json()

    created = requests.post(gateway.url + '/echo', json={'identifier': 'p1', 'payload': payload},
                            timeout=10)
    assert created.status_code == 201, created.text
    echo = created.json()['id']
    # waiting for a worker: before it ran
    assert get('echo', echo)['state'] == 'ready'
    assert get('echo', echo)['task']['payload'] == payload
    assert repeat('echo', 'p1')['payload'] == payload
    later = requests.post(gateway.url + '/later', json={'identifier': 'p2', 'payload': 'plain'},
                          timeout=10).json()['id']
    empty = requests.post(gateway.url + '/later', json={'identifier': 'p3'}, timeout=10).json()
    assert empty['payload'] is None
    peer = arbiter_proto.Peer(broker.endpoint)
    try:
        [foreign] = submit_many(peer, [{'queue': 'later', 'name': 'later',
                                        'payload': b'not json {'}])
    finally:
        peer.close()

    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'echo')
    ran = wait_until(lambda: (lambda t: t if t['state'] == 'succeeded' else None)(
        get('echo', echo)), what='the echo task succeeded')
    assert ran['task']['payload'] == payload
    assert ran['taskResponseList'][0]['payload'] == payload  # cat's result: the same JSON
    assert repeat('echo', 'p1')['payload'] == payload

    def shown():
        assert get('echo', echo)['task']['payload'] == payload
        assert get('later', later)['task']['payload'] == 'plain'
        assert get('later', empty['id'])['task']['payload'] is None
        assert get('later', foreign)['task']['payload'] is None
        assert repeat('later', 'p2')['payload'] == 'plain'
        assert repeat('later', 'p3')['payload'] is None
    shown()

    broker.kill9()
    restarted = broker.restart()
    processes.append(restarted)
    wait_until(lambda: requests.get('%s/echo/%d' % (gateway.url, echo),
                                    timeout=10).status_code == 200, timeout=30,
               what='gateway back')
    # the payloads are read from the journal now
    shown()
    assert repeat('echo', 'p1')['payload'] == payload


def test_tasker_get_asks_an_older_broker_again_without_the_payload(tmp_path, processes):
    """A broker older than STATUS' with_payload refuses it as its strict
    decoder refuses any key it does not know (400 "unknown key
    'with_payload'", proto/arb_proto_decode.c; PROTOCOL.md, Versioning):
    the gateway asks again without it and shows the task, its payload
    null. Another 400 is the answer, not asked again. A scripted broker
    plays the old one."""
    broker = ScriptedBroker(free_port())
    asked = []  # the STATUS bodies, in order
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if not broker.router.poll(50):
                continue
            peer, *parts = broker.router.recv_multipart()
            kind, reqid, body, _ = arbiter_proto.decode(parts)
            if kind == 'REGISTER':
                broker.answer(peer, 'WELCOME', reqid, broker.WELCOME)
            elif kind == 'STATUS':
                asked.append(body)
                if body['ids'] == [7]:
                    broker.answer(peer, 'ERROR', reqid, {'code': 400, 'reason': 'no such thing'})
                elif body.get('with_payload'):
                    broker.answer(peer, 'ERROR', reqid,
                                  {'code': 400, 'reason': "unknown key 'with_payload'"})
                else:
                    broker.answer(peer, 'STATUS_REPLY', reqid, {'tasks': [{
                        'id': body['ids'][0], 'found': True, 'queue': 'deploy',
                        'name': 'deploy', 'key': 'deploy@old', 'state': 3,
                        'created_ms': 1700000000000}]})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        gateway = Gateway(tmp_path, broker, ['--kestrel', 'off', '--amqp', 'off'])
        processes.append(gateway)
        wait_until(gateway.ready, timeout=20, what='gateway up')
        reply = requests.get(gateway.url + '/deploy/5', timeout=10)
        assert reply.status_code == 200, reply.text
        assert reply.json()['task']['payload'] is None and reply.json()['state'] == 'ready'
        assert [b.get('with_payload') for b in asked] == [True, None], asked
        del asked[:]
        reply = requests.get(gateway.url + '/deploy/7', timeout=10)
        assert reply.status_code == 400 and 'no such thing' in reply.text, reply.text
        assert len(asked) == 1, asked
    finally:
        stop.set()
        thread.join(timeout=10)
        broker.close()


def test_tasker_identifier_is_per_type(broker, gateway_factory):
    """An identifier names a task within its type (tasker's tasks are each
    of one type): the same identifier under another type is another task,
    not the first type's told 'existing'."""
    gateway = gateway_factory(broker)
    alpha = requests.post(gateway.url + '/alpha', json={'identifier': 'shared'}, timeout=10)
    beta = requests.post(gateway.url + '/beta', json={'identifier': 'shared'}, timeout=10)
    assert alpha.status_code == 201 and beta.status_code == 201, (alpha.text, beta.text)
    assert beta.json()['existing'] is False and beta.json()['id'] != alpha.json()['id']
    # each type's repeat finds its own
    assert requests.post(gateway.url + '/beta', json={'identifier': 'shared'},
                         timeout=10).json()['id'] == beta.json()['id']
    assert requests.post(gateway.url + '/alpha', json={'identifier': 'shared'},
                         timeout=10).json()['id'] == alpha.json()['id']
    for kind, reply in (('alpha', alpha), ('beta', beta)):
        task = requests.get('%s/%s/%d' % (gateway.url, kind, reply.json()['id']),
                            timeout=10).json()
        assert task['identifier'] == 'shared' and task['type'] == kind
        # the client key the broker keeps: TYPE@IDENTIFIER
        assert task['key'] == kind + '@shared'
    # that key is 200 bytes at most: the identifier gets what the type leaves
    fits = requests.post(gateway.url + '/beta', json={'identifier': 'i' * 195}, timeout=10)
    assert fits.status_code == 201, fits.text
    reply = requests.post(gateway.url + '/beta', json={'identifier': 'i' * 196}, timeout=10)
    assert 'identifier: 196 bytes, over the 195' in error_of(reply, 400)
    # a type of 199 bytes leaves no room at all, and is told so (not "over the 0")
    assert requests.post(gateway.url + '/' + 't' * 198, json={'identifier': 'i'},
                         timeout=10).status_code == 201
    reply = requests.post(gateway.url + '/' + 't' * 199, json={'identifier': 'i'}, timeout=10)
    error = error_of(reply, 400)
    assert 'is 199 bytes: it leaves no room for an identifier' in error, error
    assert '198 bytes at most' in error, error


def test_tasker_payload_may_hold_a_nul(broker, gateway_factory, processes, tmp_path):
    """A string with \\u0000 is JSON (RFC 8259), so a payload holding one is
    taken, and reaches the worker as the same JSON text; a result that is
    such JSON is read as JSON. An identifier or endpoint with one is
    refused naming the field, not as a body that is not JSON (it was:
    'the body is not JSON: \\u0000 is not allowed without JSON_ALLOW_NUL')."""
    gateway = gateway_factory(broker)
    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'echo')
    body = '{"identifier": "n1", "payload": {"text": "a\\u0000b"}}'
    reply = requests.post(gateway.url + '/echo', data=body, timeout=10)
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created['payload'] == {'text': 'a\x00b'}
    url = '%s/echo/%d' % (gateway.url, created['id'])
    task = wait_until(lambda: (lambda t: t if t['state'] == 'succeeded' else None)(
        requests.get(url, timeout=5).json()), what='the echo task succeeded')
    assert task['result'] == '{"text":"a\\u0000b"}'  # the payload's JSON text, compact
    assert task['taskResponseList'][0]['payload'] == {'text': 'a\x00b'}
    assert requests.get('%s/@amqp-tasks/%d' % (gateway.url, created['id']),
                        timeout=5).json()['result'] == {'text': 'a\x00b'}
    for bad, why in (('{"identifier": "a\\u0000b"}', 'identifier: cannot hold a NUL'),
                     ('{"identifier": "n2", "endpoints": ["lb\\u0000"]}',
                      'endpoints[0]: a worker name cannot hold a NUL')):
        error = error_of(requests.post(gateway.url + '/echo', data=bad, timeout=10), 400)
        assert why in error and 'not JSON' not in error, error
    assert [t['id'] for t in requests.get(gateway.url + '/api/v1/tasks',
                                          timeout=10).json()['tasks']] == [created['id']]


def test_bad_input_gets_json_errors_and_changes_nothing(broker, gateway_factory, tmp_path):
    gateway = gateway_factory(broker, '--http-max-body', '4K')
    url = gateway.url + '/jobs'
    cases = [
        ('{"identifier": ', 'not JSON'),
        ('[1, 2]', 'JSON object'),
        ('{"payload": 1}', 'identifier: required'),
        ('{"identifier": 5}', 'identifier: expected a string'),
        ('{"identifier": ""}', 'identifier: expected a string'),
        ('{"identifier": "%s"}' % ('k' * 201), 'identifier: expected a string'),
        ('{"identifier": "a", "endpoints": "lb"}', 'endpoints: expected a list'),
        ('{"identifier": "a", "endpoints": [1]}', 'endpoints[0]'),
        ('{"identifier": "a", "endpoints": ["x", "x"]}', 'named twice'),
        ('{"identifier": "a", "extra": 1}', "'extra' is not a field"),
        # worker names the broker refuses: 400 as the other fields, not its 422
        ('{"identifier": "a", "endpoints": ["lb@1"]}', "endpoints[0]: 'lb@1' is not a worker"),
        ('{"identifier": "a", "endpoints": ["ok", "lb\\u0001"]}', 'endpoints[1]'),
        ('{"identifier": "a", "identifier": "b"}', 'not JSON'),
        ('', 'not JSON'),
    ]
    for body, why in cases:
        reply = requests.post(url, data=body, headers={'Content-Type': 'application/json'},
                              timeout=10)
        assert why in error_of(reply, 400), (body, reply.text)
    # over the body limit: declared, and chunked without a length
    assert 'limit' in error_of(requests.post(url, data='x' * 5000, timeout=10), 413)

    def chunks():
        for _ in range(10):
            yield b'y' * 1000
    assert 'limit' in error_of(requests.post(url, data=chunks(), timeout=10), 413)
    # curl as another real client: its bad JSON is refused alike
    out = subprocess.run(['curl', '-s', '-w', '\n%{http_code}', '-X', 'POST', '-d', '{oops',
                          url], capture_output=True, text=True, timeout=20).stdout
    text, code = out.rsplit('\n', 1)
    assert code == '400' and 'not JSON' in json.loads(text)['error']
    # wrong method, unknown path, unknown task
    assert 'not allowed' in error_of(requests.delete(url + '/1', timeout=10), 405)
    assert requests.put(gateway.url + '/metrics', timeout=10).headers['Allow'] == 'GET, HEAD'
    error_of(requests.get(gateway.url + '/api/v1/nothing', timeout=10), 404)
    error_of(requests.get(gateway.url + '/api/v1/tasks/999999', timeout=10), 404)
    error_of(requests.get(gateway.url + '/api/v1/tasks/-1', timeout=10), 404)
    error_of(requests.get(gateway.url + '/api/v1/tasks?state=bogus', timeout=10), 400)
    error_of(requests.get(gateway.url + '/api/v1/tasks?limit=5000', timeout=10), 400)
    error_of(requests.get(gateway.url + '/api/v1/tasks?after=x', timeout=10), 400)
    error_of(requests.post(gateway.url + '/api/v1/queues/q/explode', timeout=10), 404)
    # bytes that are not HTTP at all: the connection is closed, the server goes on
    with socket.create_connection(('127.0.0.1', gateway.http_port), timeout=10) as s:
        s.sendall(b'GARBAGE\r\n\r\n')
        assert s.recv(100) in (b'', ) or s.recv(100).startswith(b'HTTP/1.1 400')
    # nothing was submitted by any of it
    samples = metrics(gateway)
    assert samples[('arbiter_tasks_submitted_total', ())] == 0
    assert requests.get(gateway.url + '/api/v1/tasks', timeout=10).json()['tasks'] == []


def test_token_guards_changes_and_admin_api(broker, gateway_factory, tmp_path):
    # an inline comment is not the token's
    config = write_config(tmp_path, 'http-token = %s # the admin token\n' % TOKEN)
    gateway = gateway_factory(broker, '--config', config)
    url = gateway.url
    reply = requests.get(url + '/api/v1/queues', timeout=10)
    assert 'Bearer' in error_of(reply, 401) and 'Bearer' in reply.headers['WWW-Authenticate']
    error_of(requests.get(url + '/api/v1/queues', headers={'Authorization': 'Bearer nope'},
                          timeout=10), 403)
    error_of(requests.post(url + '/jobs', json={'identifier': 'a'}, timeout=10), 401)
    created = requests.post(url + '/jobs', json={'identifier': 'a'}, headers=AUTH, timeout=10)
    assert created.status_code == 201
    # reading a task through tasker's API and the metrics stay open
    assert requests.get('%s/jobs/%d' % (url, created.json()['id']), timeout=10).ok
    assert requests.get(url + '/metrics', timeout=10).ok
    assert requests.get(url + '/api/v1/queues', headers=AUTH, timeout=10).ok
    # whitespace around the value, or after the scheme, is not the token's
    # (RFC 9110); inside it, it is
    for header in (b'Bearer %s ', b'Bearer  %s\t', b'  Bearer %s', b'bearer\t%s'):
        answer = raw_request(gateway, b'GET /api/v1/queues HTTP/1.1\r\nHost: x\r\n'
                             b'Authorization: ' + header % TOKEN.encode() +
                             b'\r\nConnection: close\r\n\r\n')
        assert answer.startswith(b'HTTP/1.1 200'), (header, answer)
    error_of(requests.get(url + '/api/v1/queues', headers={
        'Authorization': 'Bearer ' + TOKEN[:3] + ' ' + TOKEN[3:]}, timeout=10), 403)
    error_of(requests.get(url + '/api/v1/queues', headers={'Authorization': 'Bearer' + TOKEN},
                          timeout=10), 401)
    error_of(requests.delete('%s/api/v1/tasks/%d' % (url, created.json()['id']), timeout=10),
             401)
    error_of(requests.delete(url + '/api/v1/queues/jobs', timeout=10), 401)
    error_of(requests.post(url + '/api/v1/queues/jobs', timeout=10), 401)


def test_no_token_means_loopback_only(broker, tmp_path):
    """Refused before anything listens: the Kestrel and AMQP servers, on
    their default ports here, are not bound first (they were, and a
    default port in use failed the start for that reason instead)."""
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    try:
        args = [binary('gateway', 'arbiter-gateway'), '--config', os.devnull,
                '--broker', broker.endpoint, '--http', '0.0.0.0:0',
                '--kestrel', '127.0.0.1:%d' % taken.getsockname()[1]]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=20)
    finally:
        taken.close()
    assert proc.returncode == 2
    assert 'loopback only' in proc.stderr
    assert 'cannot listen' not in proc.stderr, proc.stderr


def test_gateway_started_without_token_says_so(broker, gateway_factory):
    gateway = gateway_factory(broker)
    assert 'no http-token configured' in gateway.output()


# ---------------------------------------------------------------------------
# admin API


def test_admin_tasks_list_get_cancel_retry(broker, gateway_factory, processes, tmp_path):
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    ids = [requests.post(gateway.url + '/work', json={'identifier': 'k%d' % i, 'payload': i},
                         timeout=10).json()['id'] for i in range(5)]
    page = requests.get(api + '/tasks?queue=work&limit=2', timeout=10).json()
    assert [t['id'] for t in page['tasks']] == ids[:2] and page['more'] is True
    page = requests.get(api + '/tasks?queue=work&limit=2&after=%d' % page['next'],
                        timeout=10).json()
    assert [t['id'] for t in page['tasks']] == ids[2:4]
    assert requests.get(api + '/tasks?state=ready', timeout=10).json()['tasks'][0]['id'] == ids[0]
    assert requests.get(api + '/tasks?queue=none', timeout=10).json() == {
        'tasks': [], 'more': False, 'next': None}

    cancelled = requests.delete('%s/tasks/%d' % (api, ids[0]), timeout=10)
    assert cancelled.json() == {'id': ids[0], 'code': 0, 'state': 'cancelled'}
    assert 'cancelled' in error_of(requests.delete('%s/tasks/%d' % (api, ids[0]), timeout=10),
                                   409)
    error_of(requests.delete('%s/tasks/999999' % api, timeout=10), 404)

    # a failing worker makes the others dead; one is retried by hand
    start_exec_worker(broker, processes, tmp_path, 'echo broken >&2; exit 3', '--queue', 'work',
                      '--name', 'w-broken')
    listed = wait_until(lambda: requests.get(api + '/tasks?state=dead', timeout=5).json()['tasks'],
                        what='a dead task')
    assert listed[0]['worker'] == 'w-broken', listed[0]  # the last worker, in a list too
    dead = requests.get('%s/tasks/%d' % (api, ids[1]), timeout=10)
    dead = wait_until(lambda: (lambda t: t if t['state'] == 'dead' else None)(
        requests.get('%s/tasks/%d' % (api, ids[1]), timeout=5).json()), what='task dead')
    assert dead['history'][0]['outcome'] == 'failed' and 'broken' in dead['history'][0]['error']
    assert dead['worker'] == 'w-broken', dead
    assert dead['result'] is None and dead['responses'] == []
    assert 'takes no body' in error_of(requests.post(
        '%s/tasks/%d/retry' % (api, ids[1]), json={'x': 1}, timeout=10), 400)
    assert 'takes no body' in error_of(requests.delete(
        '%s/tasks/%d' % (api, ids[1]), data='now', timeout=10), 400)
    assert requests.get('%s/tasks/%d' % (api, ids[1]), timeout=10).json()['state'] == 'dead'
    retried = requests.post('%s/tasks/%d/retry' % (api, ids[1]), timeout=10)
    assert retried.status_code == 200 and retried.json()['code'] == 0
    error_of(requests.post('%s/tasks/%d/retry' % (api, ids[0]), timeout=10), 409)


def test_guillotina_amqp_task_routes(broker, gateway_factory, processes, tmp_path, peer_factory):
    """GET /@amqp-tasks, GET and DELETE /@amqp-tasks/ID in guillotina_amqp's
    words: the ids of the tasks kept (just added ones too, as its state
    manager listed them), a task's status and result (its JSON value),
    cancel (true, or false for a task that had ended), 404 with its
    reason; under a container's path too, where guillotina served them."""
    gateway = gateway_factory(broker)
    url = gateway.url + '/@amqp-tasks'
    peer = peer_factory(broker.endpoint)
    waiting = submit_many(peer, [{'name': 'later', 'queue': 'nobody'}] * 2)
    assert requests.get(url, timeout=5).json() == waiting[::-1]  # newest first
    assert requests.get(gateway.url + '/db/guillotina/@amqp-tasks',
                        timeout=5).json() == waiting[::-1]
    assert requests.get('%s/db/guillotina/@amqp-tasks/%d' % (gateway.url, waiting[0]),
                        timeout=5).json()['status'] == 'scheduled'
    start_exec_worker(broker, processes, tmp_path,
                      'case "$ARBITER_TASK_NAME" in slow) exec sleep 30 ;; '
                      'json) printf \'{"sum": 5}\' ;; text) printf plain ;; *) exit 3 ;; esac',
                      '--queue', 'g', '--slots', '4', '--drain-ms', '1000')
    slow, summed, text, failed = submit_many(
        peer, [{'name': name, 'queue': 'g'} for name in ('slow', 'json', 'text', 'fail')])

    def state(task):
        return requests.get('%s/%d' % (url, task), timeout=5).json()

    wait_until(lambda: state(slow)['status'] == 'running', what='slow running')

    assert state(slow) == {'task_id': slow, 'name': 'slow', 'queue': 'g', 'status': 'running',
                           'attempts': 1}
    assert wait_until(lambda: state(summed)['status'] == 'finished', what='json finished')
    assert state(summed)['result'] == {'sum': 5}
    assert wait_until(lambda: state(text).get('result'), what='text finished') == 'plain'
    errored = wait_until(lambda: (lambda t: t if t['status'] == 'errored' else None)(
        state(failed)), what='fail errored')
    assert errored['error'] == 'exit status 3', errored
    assert requests.delete('%s/db/guillotina/@amqp-tasks/%d' % (gateway.url, slow),
                           timeout=5).json() is True
    assert state(slow)['status'] == 'canceled'
    assert requests.get(url, timeout=5).json() == [failed, text, summed, slow] + waiting[::-1]
    assert requests.delete('%s/%d' % (url, slow), timeout=5).json() is True  # cancelled before
    assert requests.delete('%s/%d' % (url, summed), timeout=5).json() is False  # had ended
    for reply in (requests.get(url + '/999999', timeout=5), requests.get(url + '/x', timeout=5),
                  requests.delete(url + '/999999', timeout=5)):
        assert reply.status_code == 404 and reply.json() == {'reason': 'Task not found'}

def test_admin_limits_every_page(broker, gateway_factory, peer_factory):
    # GET /api/v1/limits reads every page of LIMITS (1,000 names a page),
    # as `arbiter limit` does
    gateway = gateway_factory(broker)
    assert requests.get(gateway.url + '/api/v1/limits', timeout=10).json() == {'limits': []}
    peer = peer_factory(broker.endpoint)
    names = ['n%04d' % i for i in range(1003)]
    for i, name in enumerate(names):
        kind, _, body, _ = peer.request('LIMIT', {'name': name, 'max_running': i + 1})
        assert kind == 'OK', body
    limits = requests.get(gateway.url + '/api/v1/limits', timeout=30).json()['limits']
    assert [x['name'] for x in limits] == names
    assert limits[7] == {'name': 'n0007', 'max_running': 8, 'rate_per_sec': 0, 'running': 0}
    proc = subprocess.run([binary('client', 'arbiter'), '--broker', broker.endpoint, '--json',
                           'limit'], capture_output=True, timeout=30)
    assert [json.loads(line)['name'] for line in proc.stdout.splitlines()] == names


def test_admin_queues_workers_and_flows(broker, gateway_factory, processes, tmp_path):
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    for i in range(3):
        requests.post(gateway.url + '/imgs', json={'identifier': str(i)}, timeout=10)
    queue = requests.get(api + '/queues/imgs', timeout=10).json()
    assert queue['counts']['ready'] == 3 and queue['paused'] is False
    assert queue['consumers'] == 0
    assert requests.post(api + '/queues/imgs/pause', timeout=10).json() == {
        'queue': 'imgs', 'op': 'pause', 'count': 0}
    assert requests.get(api + '/queues/imgs', timeout=10).json()['paused'] is True
    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'imgs', '--name', 'w-imgs')
    wait_until(lambda: requests.get(api + '/queues/imgs', timeout=5).json()['consumers'] == 1,
               what='a consumer')
    assert requests.post(api + '/queues/imgs/purge', timeout=10).json()['count'] == 3
    requests.post(api + '/queues/imgs/resume', timeout=10)
    assert requests.get(api + '/queues/imgs', timeout=10).json()['paused'] is False
    # a body where the route takes none is refused, and nothing is done
    for method, path, body in (('POST', '/queues/imgs/pause', 'garbage'),
                               ('POST', '/queues/fresh', '{"x": 1}'),
                               ('DELETE', '/queues/imgs', '[]'), ('GET', '/queues/imgs', 'x')):
        assert 'takes no body' in error_of(
            requests.request(method, api + path, data=body, timeout=10), 400), path
    assert requests.get(api + '/queues/imgs', timeout=10).json()['paused'] is False
    # an empty JSON object says nothing: clients send it for no parameters
    for op, paused in (('pause', True), ('resume', False)):
        done = requests.post('%s/queues/imgs/%s' % (api, op), data=' { } ', timeout=10)
        assert done.status_code == 200, done.text
        assert requests.get(api + '/queues/imgs', timeout=10).json()['paused'] is paused
    error_of(requests.get(api + '/queues/fresh', timeout=10), 404)
    names = [q['name'] for q in requests.get(api + '/queues', timeout=10).json()['queues']]
    assert 'imgs' in names
    workers = requests.get(api + '/workers', timeout=10).json()['workers']
    assert any(w['name'] == 'w-imgs' and w['queues'] == ['imgs'] for w in workers)
    stats = requests.get(api + '/stats', timeout=10).json()
    assert {'now', 'uptime_ms', 'queues', 'workers'} <= set(stats)
    error_of(requests.get(api + '/queues/nothing', timeout=10), 404)

    # a DAG and a group, submitted with the CLI, seen with their tasks
    dag = tmp_path / 'dag.json'
    dag.write_text(json.dumps({'name': 'nightly', 'tasks': [
        {'name': 'a', 'task': 't', 'queue': 'flows'},
        {'name': 'b', 'task': 't', 'queue': 'flows', 'after': ['a']}]}))
    group = tmp_path / 'group.json'
    group.write_text(json.dumps({'name': 'thumbs', 'tasks': [
        {'task': 'resize', 'queue': 'flows'}, {'task': 'resize', 'queue': 'flows'}]}))
    cli = binary('client', 'arbiter')
    dag_id = json.loads(subprocess.run([cli, '--broker', broker.endpoint, 'dag', 'submit',
                                        '--json', str(dag)], capture_output=True, text=True,
                                       timeout=20).stdout)['flow']
    group_id = json.loads(subprocess.run([cli, '--broker', broker.endpoint, 'group', 'submit',
                                          '--json', str(group)], capture_output=True, text=True,
                                         timeout=20).stdout)['flow']
    seen = requests.get('%s/dags/%d' % (api, dag_id), timeout=10).json()
    assert seen['kind'] == 'dag' and seen['name'] == 'nightly' and seen['total'] == 2
    assert [t['ref'] for t in seen['tasks']] == ['a', 'b']
    assert seen['counts'] == {'ready': 1, 'waiting': 1}
    seen = requests.get('%s/groups/%d' % (api, group_id), timeout=10).json()
    assert seen['kind'] == 'group' and seen['total'] == 2
    assert 'not a dag' in error_of(requests.get('%s/dags/%d' % (api, group_id), timeout=10),
                                   404)
    error_of(requests.get('%s/groups/999999' % api, timeout=10), 404)


def test_busy_workers_are_consumers(broker, gateway_factory, processes, tmp_path):
    """A queue's consumers count its workers busy or idle: one whose only
    slot runs a task is still consuming the queue (RabbitMQ's count too)."""
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    start_exec_worker(broker, processes, tmp_path, 'sleep 30', '--queue', 'busy',
                      '--slots', '1', '--name', 'w-busy')
    wait_until(lambda: requests.get(api + '/queues/busy', timeout=5).json().get('consumers') == 1,
               what='the idle worker counted')
    task_id = requests.post(gateway.url + '/busy', json={'identifier': 'one'},
                            timeout=10).json()['id']
    wait_until(lambda: requests.get(api + '/queues/busy', timeout=5).json()['counts']['running'] == 1,
               what='the task running')
    queue = requests.get(api + '/queues/busy', timeout=10).json()
    assert queue['consumers'] == 1, queue
    workers = requests.get(api + '/workers', timeout=10).json()['workers']
    assert [w['credit'] for w in workers if w['name'] == 'w-busy'] == [0], workers
    cancelled = requests.delete('%s/tasks/%d' % (api, task_id), timeout=10).json()
    assert cancelled['state'] == 'cancelled', cancelled  # and its sleep stopped with it


def test_admin_queue_declare_and_delete(broker, gateway_factory, peer_factory):
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    created = requests.post(api + '/queues/hq', timeout=10)
    assert created.status_code == 201
    assert created.json() == {'queue': 'hq', 'op': 'declare', 'count': 1}
    again = requests.post(api + '/queues/hq', timeout=10)
    assert again.status_code == 200 and again.json()['count'] == 0
    # listed while empty
    queue = requests.get(api + '/queues/hq', timeout=10).json()
    assert queue['declared'] is True and queue['counts']['ready'] == 0
    assert 'hq' in [q['name'] for q in requests.get(api + '/queues', timeout=10).json()['queues']]
    # a delete cancels its tasks, running ones too, and forgets the queue
    peer = peer_factory(broker.endpoint)
    submit_many(peer, [{'name': 't', 'queue': 'hq'} for _ in range(3)])
    kind, _, body, _ = peer.request('QUEUE', {'queue': 'hq', 'op': 'set', 'max_running': 5})
    assert kind == 'OK', body
    # (with a setting, which goes too: a queue with settings would be listed)
    deleted = requests.delete(api + '/queues/hq', timeout=10)
    assert deleted.status_code == 200
    assert deleted.json() == {'queue': 'hq', 'op': 'delete', 'count': 3}
    error_of(requests.get(api + '/queues/hq', timeout=10), 404)
    assert 'hq' not in [q['name'] for q in requests.get(api + '/queues', timeout=10).json()['queues']]
    assert requests.get(api + '/tasks?queue=hq', timeout=10).json()['tasks'] == []
    # a queue nobody knows: nothing to do
    assert requests.delete(api + '/queues/never', timeout=10).json()['count'] == 0
    # the broker's own names are not queues to declare or delete
    assert '@' in error_of(requests.post(api + '/queues/a@b', timeout=10), 422)
    assert '@' in error_of(requests.delete(api + '/queues/a@b', timeout=10), 422)
    for method in ('GET', 'POST', 'DELETE'):
        assert 'a name of 1 to 200 bytes' in error_of(
            requests.request(method, api + '/queues/' + 'q' * 201, timeout=10), 400)
    assert requests.put(api + '/queues/hq', timeout=10).headers['Allow'] == \
        'GET, HEAD, POST, DELETE'
    # an empty segment is not skipped: no queue named 'pause' or 'purge'
    requests.post(api + '/queues/purge', timeout=10)
    for method, path in (('POST', '/queues//pause'), ('DELETE', '/queues//purge'),
                         ('POST', '/queues/'), ('GET', '/tasks/'), ('POST', '//queues/x')):
        error_of(requests.request(method, api + path, timeout=10), 404)
    names = [q['name'] for q in requests.get(api + '/queues', timeout=10).json()['queues']]
    assert 'pause' not in names and 'purge' in names


def test_admin_listings_read_every_stats_page(broker, gateway_factory, processes, tmp_path,
                                              peer_factory):
    """Over 1,000 queues take more than one STATS page: the listings, one
    queue, the stats and the metrics see them all; consumers are the
    broker's."""
    gateway = gateway_factory(broker)
    api = gateway.url + '/api/v1'
    peer = peer_factory(broker.endpoint)
    submit_many(peer, [{'name': 't', 'queue': 'pg%04d' % i} for i in range(1100)], batch=1100)
    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'zz-consumed',
                      '--name', 'w-zz')
    queues = wait_until(lambda: (lambda qs: qs if qs.get('zz-consumed', {}).get('consumers')
                                 else None)({q['name']: q for q in requests.get(
                                     api + '/queues', timeout=10).json()['queues']}),
                        what='the consumer of zz-consumed')
    assert all(queues['pg%04d' % i]['counts']['ready'] == 1 for i in range(1100))
    assert queues['zz-consumed']['consumers'] == 1  # its one worker
    assert queues['zz-consumed']['declared'] is False
    stats = requests.get(api + '/stats', timeout=10).json()
    assert len(stats['queues']) == len(queues)
    assert any(w['name'] == 'w-zz' for w in stats['workers'])
    assert requests.get(api + '/queues/pg1099', timeout=10).json()['counts']['ready'] == 1
    samples = metrics(gateway)
    assert samples[('arbiter_tasks', (('queue', 'pg1099'), ('state', 'ready')))] == 1
    assert samples[('arbiter_queue_consumers', (('queue', 'zz-consumed'),))] == 1


def memory_peak(pid):
    """A process's peak resident memory (VmHWM), bytes."""
    with open('/proc/%d/status' % pid) as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmHWM'))


@pytest.mark.skipif(SANITIZED, reason="the sanitizer's allocator keeps what is freed")
def test_a_listing_takes_memory_in_proportion_to_its_text(broker, gateway_factory, peer_factory):
    """The listings are written a queue at a time: 10,000 queues (4 MB of
    JSON) took 18 times their text in the gateway's memory while a tree of
    them was built (jansson; 40,000 queues took ten seconds, 1.4 now); now
    about 4 times (the STATS pages and the text)."""
    gateway = gateway_factory(broker, '--kestrel', 'off', '--amqp', 'off')
    peer = peer_factory(broker.endpoint)
    submit_many(peer, [{'name': 't', 'queue': 'a-queue-of-a-long-list-%05d' % i}
                       for i in range(10000)], batch=2000)
    before = memory_peak(gateway.pid)
    text = requests.get(gateway.url + '/api/v1/queues', timeout=60).content
    grew = memory_peak(gateway.pid) - before
    assert len(json.loads(text)['queues']) == 10000
    assert grew < 8 * len(text), (grew, len(text))


# ---------------------------------------------------------------------------
# metrics, static files


def test_metrics_parse_as_prometheus_text(broker, gateway_factory, processes, tmp_path):
    gateway = gateway_factory(broker)
    start_exec_worker(broker, processes, tmp_path, 'cat', '--queue', 'm', '--slots', '2')
    ids = [requests.post(gateway.url + '/m', json={'identifier': str(i)}, timeout=10).json()['id']
           for i in range(4)]
    wait_until(lambda: metrics(gateway).get(
        ('arbiter_tasks_finished_total', (('state', 'succeeded'),))) == 4, what='4 finished')
    samples = metrics(gateway)
    assert samples[('arbiter_tasks_submitted_total', ())] == 4
    assert samples[('arbiter_tasks_dispatched_total', ())] == 4
    assert samples[('arbiter_tasks', (('queue', 'm'), ('state', 'succeeded')))] == 4
    assert samples[('arbiter_workers', ())] >= 2  # the exec worker and the gateway itself
    assert samples[('arbiter_worker_slots', ())] >= 2
    count = samples[('arbiter_journal_commit_seconds_count', ())]
    assert count >= 1
    assert samples[('arbiter_journal_commit_seconds_bucket', (('le', '+Inf'),))] == count
    assert samples[('arbiter_journal_commit_seconds_sum', ())] > 0
    assert samples[('arbiter_gateway_broker_up', ())] == 1
    assert samples[('arbiter_gateway_connections', (('protocol', 'http'),))] >= 1
    assert samples[('arbiter_gateway_connections', (('protocol', 'kestrel'),))] == 0
    assert len(ids) == 4


def test_static_files(broker, gateway_factory):
    gateway = gateway_factory(broker)
    index = requests.get(gateway.url + '/', timeout=10)
    assert index.status_code == 200 and index.headers['Content-Type'].startswith('text/html')
    assert '<title>arbiter</title>' in index.text
    css = requests.get(gateway.url + '/static/style.css', timeout=10)
    assert css.ok and css.headers['Content-Type'].startswith('text/css')
    error_of(requests.get(gateway.url + '/static/nothing.js', timeout=10), 404)
    # the files are in the binary: a path out of the folder finds nothing
    out = subprocess.run(['curl', '-s', '--path-as-is', '-w', '\n%{http_code}',
                          gateway.url + '/static/../../gateway/arb_http.c'],
                         capture_output=True, text=True, timeout=20).stdout
    assert out.endswith('\n404')


# ---------------------------------------------------------------------------
# the broker goes away, and comes back


def test_broker_down_gives_503_then_created_tasks_survive(tmp_path, processes, gateway_factory):
    broker = Broker(tmp_path)
    processes.append(broker)
    gateway = gateway_factory(broker, '--rpc-timeout', '1')
    ids = [requests.post(gateway.url + '/durable', json={'identifier': 'd%d' % i},
                         timeout=10).json()['id'] for i in range(20)]
    broker.kill9()
    # until the gateway notices, a request fails after the rpc timeout;
    # then at once: 503 either way, and a metrics page that says so
    error_of(requests.post(gateway.url + '/durable', json={'identifier': 'late'}, timeout=20),
             503)
    wait_until(lambda: metrics(gateway)[('arbiter_gateway_broker_up', ())] == 0, timeout=20,
               what='gateway sees the broker down')
    error_of(requests.get(gateway.url + '/api/v1/queues', timeout=10), 503)
    restarted = broker.restart()
    processes.append(restarted)
    wait_until(lambda: requests.post(gateway.url + '/durable', json={'identifier': 'again'},
                                     timeout=10).status_code == 201, timeout=30,
               what='gateway back')
    peer = arbiter_proto.Peer(restarted.endpoint)
    try:
        found = status(peer, ids)
        assert all(found[i]['found'] for i in ids)
    finally:
        peer.close()


def test_reads_ask_the_broker_sixteen_at_a_time(tmp_path, processes, gateway_factory):
    """At most 16 reads wait for the broker at once, the others take their
    turn (an answer is built in the gateway's loop: hundreds of clients
    asking at once for pages of tasks held it for seconds, past the link's
    liveness window). With the broker stopped, 40 reads at once time out
    in turns: the first 16 after the rpc timeout, the others later; a
    submit does not wait its turn."""
    broker = Broker(tmp_path)
    processes.append(broker)
    gateway = gateway_factory(broker, '--rpc-timeout', '2')
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        started, ended = time.monotonic(), []

        def read(i):
            # /metrics asks the broker too (every queue's counts): it takes
            # its turn (its page is the gateway's part alone when the
            # broker does not answer: 200)
            path = '/metrics' if i % 2 else '/api/v1/tasks?limit=5'
            reply = requests.get(gateway.url + path, timeout=30)
            ok = 200 if i % 2 else 503
            ended.append((time.monotonic() - started, reply.status_code == ok))
        readers = [threading.Thread(target=read, args=(i,)) for i in range(40)]
        for t in readers:
            t.start()
        time.sleep(0.3)  # the reads are in; a change goes at once all the same
        posted = []
        poster = threading.Thread(target=lambda: posted.append(
            (requests.post(gateway.url + '/x', json={'identifier': 'p'}, timeout=30),
             time.monotonic() - started)))
        poster.start()
        for t in readers + [poster]:
            t.join(60)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    assert len(ended) == 40 and all(ok for _, ok in ended), ended
    # a read's timeout runs from its question: the second turn's cannot end
    # before twice the rpc timeout
    first = [t for t, _ in ended if t < 3.5]
    assert 1 <= len(first) <= 16, sorted(ended)
    assert max(t for t, _ in ended) >= 4, sorted(ended)
    reply, took = posted[0]
    assert reply.status_code == 503 and took < 3.5, (reply.text, took)


def test_a_stop_answers_the_reads_waiting_their_turn(tmp_path, processes, gateway_factory):
    """A stop answers every suspended read (503), those waiting their turn
    too, and handles none of them: a read waiting its turn whose record
    was made before an asker's (its URI came first) was handled again as
    that asker was answered, and the gateway aborted."""
    broker = Broker(tmp_path)
    processes.append(broker)
    gateway = gateway_factory(broker)
    addr = ('127.0.0.1', gateway.http_port)
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        first = socket.create_connection(addr, timeout=10)
        # its record is made first, and its handler answers at once (a bad id)
        first.sendall(b'GET /api/v1/tasks/x HTTP/1.1\r\n')
        time.sleep(0.2)
        askers = []
        for _ in range(16):  # the 16 that ask the broker
            s = socket.create_connection(addr, timeout=10)
            s.sendall(b'GET /api/v1/tasks/1 HTTP/1.1\r\nHost: x\r\n\r\n')
            askers.append(s)
        time.sleep(0.3)
        first.sendall(b'Host: x\r\n\r\n')  # the 17th: it waits its turn
        time.sleep(0.3)
        assert gateway.stop() == 0, gateway.output()
        for s in askers:
            assert read_to_end(s).startswith(b'HTTP/1.1 503'), s
            s.close()
        # answered by the stop (503) or, before, by its handler (4xx)
        assert read_to_end(first).startswith(b'HTTP/1.1 503')
        first.close()
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    assert 'Assertion' not in gateway.output()


def test_a_request_must_arrive_within_its_deadline(broker, gateway_factory):
    """A byte now and then renews libmicrohttpd's idle timeout: such a
    client held its connection for ever (and enough of them the server).
    A request's header and body must arrive within --http-request-timeout
    of its first byte; a keep-alive connection idle between requests is
    held to the idle timeout only, and a connection held past its
    deadline frees its slot for others."""
    gateway = gateway_factory(broker, '--http-request-timeout', '2', '--http-connections', '2')
    addr = ('127.0.0.1', gateway.http_port)
    idle = socket.create_connection(addr, timeout=10)
    idle.sendall(b'GET /api/v1/limits HTTP/1.1\r\nHost: x\r\n\r\n')
    assert idle.recv(65536).startswith(b'HTTP/1.1 200')
    slow = socket.create_connection(addr, timeout=10)
    started, closed = time.monotonic(), None
    for byte in b'GET /api/v1/limits HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'y' * 100:
        try:
            slow.sendall(bytes([byte]))
            slow.settimeout(0.4)
            if slow.recv(100) == b'':
                closed = time.monotonic() - started
                break
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed = time.monotonic() - started
            break
    slow.close()
    assert closed is not None and closed >= 1.5, closed  # at the deadline, not before
    # the idle one, without a byte for longer than the request deadline,
    # still serves
    time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
    idle.sendall(b'GET /api/v1/limits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert read_to_end(idle).startswith(b'HTTP/1.1 200')
    idle.close()
    assert 'not in within 2000 ms of its first byte' in gateway.output()


def test_an_answer_must_be_read_within_its_time(broker, gateway_factory):
    """A client that reads a big answer a byte at a time (or not at all)
    held the answer's memory and its connection slot for as long as it
    liked. An answer must be read within --http-request-timeout of its
    queueing, a second more for each MiB; past it the connection is
    closed. One read as it comes is whole."""
    gateway = gateway_factory(broker, '--http-request-timeout', '2', '--http-max-body', '12000000')
    # past what the kernel's buffers take on loopback (the sender's 4 MiB
    # at most, net.ipv4.tcp_wmem, and the little the reader's take)
    body = json.dumps({'identifier': 'big', 'payload': {'blob': 'x' * 7000000}}).encode()
    request = (b'POST /work HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
               b'Content-Length: %d\r\n\r\n' % len(body)) + body
    deaf = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little room in the kernel
    deaf.connect(('127.0.0.1', gateway.http_port))
    sent = time.monotonic()
    deaf.sendall(request)
    # 2 s, and 6 more for its 7 MB (checked once a second)
    wait_until(lambda: 'not read in its time' in gateway.output(), timeout=30, interval=0.2,
               what='the unread answer given up')
    assert time.monotonic() - sent >= 7, 'closed before its 2 s and a second a MiB'
    deaf.settimeout(5)
    got, ended = 0, False
    try:
        while True:
            chunk = deaf.recv(65536)
            if not chunk:
                ended = True
                break
            got += len(chunk)
    except ConnectionResetError:
        ended = True
    except socket.timeout:
        pass
    deaf.close()
    assert ended and got < len(body), (ended, got)
    # read as it comes: whole (a second task, the same size)
    answer = requests.post(gateway.url + '/work', data=body.replace(b'"big"', b'"big2"'),
                           headers={'Content-Type': 'application/json'}, timeout=10)
    assert answer.status_code == 201 and len(answer.content) > 7000000


# ---------------------------------------------------------------------------
# the connection limit


def test_connection_limit_frees_when_connections_close(broker, gateway_factory):
    gateway = gateway_factory(broker, '--http-connections', '5')
    addr = ('127.0.0.1', gateway.http_port)
    # at the limit, then all closed: the listener accepts again
    idle = [socket.create_connection(addr, timeout=5) for _ in range(5)]
    wait_until(lambda: metrics_or_none(gateway) is None, timeout=3, what='the limit reached')
    for s in idle:
        s.close()
    assert requests.get(gateway.url + '/metrics', timeout=5).status_code == 200
    # at the limit, a sixth waits or is refused; one closed, it or a new one is served
    idle = [socket.create_connection(addr, timeout=5) for _ in range(5)]
    try:
        sixth = socket.create_connection(addr, timeout=5)
        sixth.sendall(b'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        idle.pop().close()
        try:
            answer = sixth.recv(100)
        except OSError:
            answer = b''
        sixth.close()
        if not answer.startswith(b'HTTP/1.1 200'):
            assert answer == b''
            assert requests.get(gateway.url + '/metrics', timeout=5).status_code == 200
    finally:
        for s in idle:
            s.close()
    assert requests.get(gateway.url + '/metrics', timeout=5).status_code == 200


def metrics_or_none(gateway):
    try:
        return requests.get(gateway.url + '/metrics', timeout=0.5)
    except requests.RequestException:
        return None


# ---------------------------------------------------------------------------
# escapes routing must not be fooled by


def raw_request(gateway, request):
    with socket.create_connection(('127.0.0.1', gateway.http_port), timeout=10) as s:
        s.sendall(request)
        answer = b''
        while b'\r\n\r\n' not in answer:
            data = s.recv(4096)
            if not data:
                break
            answer += data
        return answer


def test_nul_bytes_and_encoded_slashes_are_refused_before_routing(broker, gateway_factory):
    gateway = gateway_factory(broker)
    for target, what in [('/api/v1/queues/work%00/purge', 'NUL'), ('/wo%00rk', 'NUL'),
                         ('/api/v1/tasks?queue=wo%00rk', 'NUL'),
                         ('/api/v1/tasks?state=ready&queue=w%00', 'NUL'),
                         ('/api%2Fv1%2Fqueues', 'encoded slash'),
                         ('/api%2fv1/queues', 'encoded slash')]:
        method = 'GET' if 'tasks' in target or '%2' in target else 'POST'
        answer = raw_request(gateway, ('%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n'
                                       'Connection: close\r\n\r\n{}'
                                       % (method, target)).encode())
        assert answer.startswith(b'HTTP/1.1 400'), (target, answer)
    reply = requests.post(gateway.url + '/wo%00rk', json={'identifier': 'a'}, timeout=10)
    assert 'NUL byte' in error_of(reply, 400)
    # nothing changed: no task, no queue 'work' or 'wo'
    samples = metrics(gateway)
    assert samples[('arbiter_tasks_submitted_total', ())] == 0
    queues = requests.get(gateway.url + '/api/v1/queues', timeout=10).json()['queues']
    assert not [q for q in queues if q['name'] in ('work', 'wo')]
    # the plain forms still route
    assert requests.get(gateway.url + '/api/v1/queues', timeout=10).status_code == 200
    assert requests.get(gateway.url + '/api/v1/tasks?queue=work', timeout=10).status_code == 200


def test_content_length_with_chunked_is_refused_and_closed(broker, gateway_factory):
    gateway = gateway_factory(broker)
    with socket.create_connection(('127.0.0.1', gateway.http_port), timeout=10) as s:
        s.sendall(b'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n'
                  b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
        answer = read_to_end(s)
    assert answer.startswith(b'HTTP/1.1 400'), answer
    assert b'Transfer-Encoding' in answer.split(b'\r\n\r\n', 1)[1]
    assert metrics(gateway)[('arbiter_tasks_submitted_total', ())] == 0


def test_a_request_libmicrohttpd_gives_up_is_freed(broker, gateway_factory):
    """A query of 800 arguments overflows libmicrohttpd's memory for the
    request, which it gives up after the URI callback made the request's
    record, without the completion callback: the connection's close frees
    it (the sanitized run's leak check at the gateway's stop sees the
    rest), and the gateway goes on serving."""
    gateway = gateway_factory(broker)
    query = b'&'.join(b'x%d=1' % i for i in range(800))
    for _ in range(3):
        with socket.create_connection(('127.0.0.1', gateway.http_port), timeout=10) as s:
            s.sendall(b'GET /api/v1/tasks?' + query + b' HTTP/1.1\r\nHost: x\r\n\r\n')
            s.settimeout(0.5)
            try:
                s.recv(100)
            except socket.timeout:
                pass
    assert requests.get(gateway.url + '/api/v1/limits', timeout=10).status_code == 200
    assert 'Not enough memory' in gateway.output()
    assert gateway.stop() == 0


def test_a_request_whose_end_is_in_doubt_is_refused_and_closed(broker, gateway_factory):
    """Framing a proxy in front may read otherwise (RFC 9112 5.1, 6.1, 6.3):
    the body would run here as a request of its own, smuggled past it.
    Each is answered and its connection closed; what follows never runs."""
    gateway = gateway_factory(broker)
    hidden = b'POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\n' \
             b'{"identifier":"s1"}'
    for head, code, why in (
            (b'Content-Length: 0\r\nContent-Length: %d' % len(hidden), b'400',
             b'Content-Length given more than once'),
            (b'Content-Length : %d' % len(hidden), b'400', b'a space or a tab'),
            (b'Transfer-Encoding: gzip', b'501', b'other than chunked'),
            (b'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', b'400',
             b'Transfer-Encoding given more than once')):
        with socket.create_connection(('127.0.0.1', gateway.http_port), timeout=10) as s:
            s.sendall(b'GET /api/v1/limits HTTP/1.1\r\nHost: x\r\n' + head + b'\r\n\r\n'
                      + hidden)
            answer = read_to_end(s)
        assert answer.startswith(b'HTTP/1.1 ' + code), (head, answer)
        assert why in answer and answer.count(b'HTTP/1.1') == 1, (head, answer)
    assert metrics(gateway)[('arbiter_tasks_submitted_total', ())] == 0
    # the same request, framed once, is served
    with socket.create_connection(('127.0.0.1', gateway.http_port), timeout=10) as s:
        s.sendall(b'GET /api/v1/limits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        assert read_to_end(s).startswith(b'HTTP/1.1 200')
