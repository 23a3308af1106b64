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


class ScriptedBroker:
    """A broker played by the test: a ROUTER on a loopback port, for
    workers and links whose side of a talk the broker of this tree would
    not take (one from before a field, say). close() at the end."""

    WELCOME = {'heartbeat_ms': 200, 'liveness_ms': 5000, 'epoch': 1, 'max_payload': 1 << 20}

    def __init__(self, port):
        import zmq
        self.endpoint = 'tcp://127.0.0.1:%d' % port
        self.router = zmq.Context.instance().socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.endpoint)

    def next_of(self, kind, timeout=10.0):
        """(peer's routing id, reqid, body) of the next message of kind
        (others are dropped)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.router.poll(int((deadline - time.time()) * 1000) + 1):
                parts = self.router.recv_multipart()
                got, reqid, body, _ = arbiter_proto.decode(parts[1:])
                if got == kind:
                    return parts[0], reqid, body
        raise TimeoutError('no %s within %.1f s' % (kind, timeout))

    def answer(self, peer, kind, reqid, body):
        self.router.send_multipart([peer] + arbiter_proto.encode(kind, reqid, body))

    def close(self):
        self.router.close()
