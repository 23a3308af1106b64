"""The carrier arbiter's API over arbiter (python/arbiter/carrier.py): its
README's minion (`from arbiter import Minion`, `@app.task(name=...)`,
`app.run(worker_type=..., workers=...)`) in processes of their own, and its
arbiter (`apply`, `wait_for_tasks`, `status`, `kill`) against a real
arbiterd."""

import os
import sys
import textwrap

import pytest

from python_support import PYTHON, fast_broker  # noqa: F401
from conftest import SANITIZED, Process, wait_until

import arbiter
from arbiter import Arbiter
from arbiter.carrier import TaskNotFound

pytestmark = pytest.mark.skipif(SANITIZED, reason='pure Python: once, with build/, is enough')

MINION = textwrap.dedent('''
    import os
    import sys
    import time

    from arbiter import Minion

    app = Minion(host="127.0.0.1", port=int(os.environ["PORT"]),
                 user='user', password='password')


    @app.task(name="simple_add")
    def adds(x, y):
        return x + y


    @app.task(name="where", task_type="light")
    def where(pid=None):
        return {"pid": os.getpid()}


    @app.task(name="boom", task_type="light")
    def boom(text):
        raise ValueError(text)


    @app.task(name="nap", task_type="light")
    def nap(seconds):
        time.sleep(seconds)


    if __name__ == "__main__":
        app.run(worker_type=sys.argv[1], workers=3)
''')


def start_minion(broker, processes, tmp_path, worker_type):
    (tmp_path / 'minion.py').write_text(MINION)
    env = dict(os.environ, PYTHONPATH=PYTHON, PORT=str(broker.port))
    minion = Process([sys.executable, str(tmp_path / 'minion.py'), worker_type],
                     str(tmp_path / ('minion-%s.log' % worker_type)), env=env)
    processes.append(minion)
    return minion


def test_the_readmes_minion_and_arbiter(fast_broker, processes, tmp_path):  # noqa: F811
    heavy = start_minion(fast_broker, processes, tmp_path, 'heavy')
    light = start_minion(fast_broker, processes, tmp_path, 'light')
    with Arbiter(host='127.0.0.1', port=fast_broker.port, user='user',
                 password='password') as boss:
        task_keys = boss.apply('simple_add', tasks_count=3, task_args=[1, 2])
        assert len(task_keys) == 3
        messages = list(boss.wait_for_tasks(task_keys))
        assert sorted(m['task_key'] for m in messages) == sorted(task_keys)
        for message in messages:
            assert message == {'task_key': message['task_key'], 'task_name': 'simple_add',
                               'task_type': 'heavy', 'state': 'done', 'result': 3}
        assert boss.status(task_keys[0]) == messages[0] | {'task_key': task_keys[0]}
        # heavy tasks run in a process of their own, light ones in the minion
        [pid] = boss.apply('where', task_type='light')
        assert next(boss.wait_for_tasks([pid]))['result'] == {'pid': light.pid}
        [failed] = boss.apply('boom', task_type='light', task_kwargs={'text': 'no'})
        state = next(boss.wait_for_tasks([failed]))
        assert state['state'] == 'done' and state['result'] is None
        assert state['error'] == 'ValueError: no'
        # kill stops a running task (a thread's function runs on to its end, its
        # result not taken)
        [napping] = boss.apply('nap', task_type='light', task_args=[3])
        wait_until(lambda: boss.status(napping)['state'] == 'running', what='the nap running')
        boss.kill(napping)
        assert boss.status(napping)['state'] == 'done'
        with pytest.raises(NameError):
            boss.status(10 ** 9)
        with pytest.raises(TaskNotFound):
            boss.status(10 ** 9)
        with pytest.raises(TypeError, match='task_type'):
            boss.apply('simple_add', task_type='medium')
    # the carrier's queues, under its vhost
    with arbiter.Client(fast_broker.endpoint) as client:
        queues = {q.name for q in client.stats().queues}
    assert {'carrier|arbiterHeavy', 'carrier|arbiterLight'} <= queues, queues
    assert heavy.alive() and light.alive()


def test_waiting_for_an_unknown_key_raises_task_not_found(fast_broker):  # noqa: F811
    """wait_for_tasks yields each task as it ends: a key the broker does not
    know raises TaskNotFound, as status does, not a message that says it
    is 'initiated'."""
    with Arbiter(host='127.0.0.1', port=fast_broker.port) as boss:
        with pytest.raises(TaskNotFound, match=str(10 ** 9)):
            list(boss.wait_for_tasks([10 ** 9]))
