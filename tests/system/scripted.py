"""A worker driven by a Python function, speaking the protocol directly, for
broker-level tests (the C runtime has its own tests). It runs in the test's
thread: call pump() to serve whatever the broker sent."""

import time

import arbiter_proto


class ScriptedWorker:
    def __init__(self, endpoint, handler, queues=('default',), name='scripted', credit=10,
                 handles=()):
        self.peer = arbiter_proto.Peer(endpoint)
        self.handler = handler  # handler(task dict, payload bytes, worker) -> result | Exception
        self.name = name
        register = {'name': name, 'slots': credit}
        if handles:  # the task names it runs; none: every name
            register['handles'] = list(handles)
        kind, _, body, _ = self.peer.request('REGISTER', register)
        assert kind == 'WELCOME', body
        self.peer.send('CREDIT', {'queues': list(queues), 'credit': credit})
        self.seen = []  # (task dict, payload) of every dispatch
        self.last_beat = time.time()

    def emit(self, task, queue, data):
        self.peer.send('EMIT', {'items': [{'id': task['id'], 'lease': task['lease'],
                                           'queue': queue}]}, [data])

    def pump(self, timeout=0.2):
        """Serves the DISPATCH messages that arrive within timeout."""
        served = 0
        deadline = time.time() + timeout
        while True:
            if time.time() - self.last_beat > 0.5:
                self.peer.send('HEARTBEAT', {})
                self.last_beat = time.time()
            left = deadline - time.time()
            if left <= 0:
                return served
            try:
                kind, _, body, frames = self.peer.recv(timeout=left)
            except TimeoutError:
                return served
            if kind != 'DISPATCH':
                continue
            for task, payload in zip(body.get('tasks', []), frames):
                self.seen.append((task, payload))
                item = {'id': task['id'], 'lease': task['lease']}
                try:
                    result = self.handler(task, payload, self)
                    frame = result if isinstance(result, bytes) else b''
                except Exception as e:  # the handler failed: outcome 1
                    item.update(outcome=1, error=str(e))
                    frame = b''
                self.peer.send('RESULT', {'results': [item]}, [frame])
                self.peer.send('CREDIT', {'credit': 1})
                served += 1

    def close(self):
        self.peer.close()


def run_until(workers, done, timeout=10.0):
    """Pumps the workers until done() is true."""
    deadline = time.time() + timeout
    while not done():
        if time.time() > deadline:
            raise TimeoutError('not done within %.1f s' % timeout)
        for w in workers:
            w.pump(0.02)
