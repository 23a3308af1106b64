"""The asyncio client against a real arbiterd: the calls as coroutines,
several coroutines on one client at once, and a wait that outlives a
broker kill -9 with each task reported once."""

import asyncio

import pytest

from python_support import FAST, arbiter, fast_broker, start_py_worker  # noqa: F401
from arbiter import State, WaitTimeout
from arbiter.aio import AsyncClient
from conftest import Broker, free_port


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_calls_as_coroutines(fast_broker, processes, tmp_path):
    start_py_worker(fast_broker, processes, tmp_path, '--slots', '4')

    async def main():
        async with AsyncClient(fast_broker.endpoint) as c:
            assert (await c.ping()).epoch == fast_broker.epoch
            t = await c.submit('upper', b'cat.png', retries=3)
            assert (await c.wait(t)).result == b'CAT.PNG'
            again = await c.submit('upper', 'x', key='k')
            assert (await c.submit('upper', 'y', key='k')).existing
            # coroutines share the client: each gets its own replies and reports
            ids = await c.submit_many([{'name': 'sleep', 'payload': '0.%d' % (i % 3)}
                                       for i in range(8)])
            dones = await asyncio.gather(*(c.wait(i, timeout=30) for i in ids),
                                         c.status(t), c.stats())
            assert [d.result for d in dones[:8]] == [b'slept'] * 8
            assert dones[8].state is State.SUCCEEDED and dones[9].queue('default')
            assert (await c.wait(again)).result == b'X'
            parked = await c.submit('upper', queue='idle')
            with pytest.raises(WaitTimeout):
                await c.wait(parked, timeout=0.3)
            assert (await c.cancel(parked)).outcomes[0].ok
            assert (await c.next_done(timeout=10)).state is State.CANCELLED
            assert [t.id for t in await c.list(state='cancelled')] == [parked]
            with pytest.raises(arbiter.Invalid, match='^state: no task rests in failed') as e:
                await c.list(state='failed')
            assert e.value.local
            with pytest.raises(arbiter.NotFound):
                await c.status(999999)
            flow = arbiter.flows.pipe(['upper', 'upper'], input='go')
            result = await c.wait_flow((await c.submit_flow(flow)).flow, timeout=30)
            assert result.ok and result.result == b'GO'
            assert [t.name for t in result] == [t.name for t in result.tasks] and len(result) == 2
    run(main())


def test_a_wait_outlives_a_broker_kill(fast_broker, processes, tmp_path):
    async def main():
        c = AsyncClient(fast_broker.endpoint, timeout=10, rewatch=0.2)
        ids = await c.submit_many([{'name': 'upper', 'payload': 'a%d' % i} for i in range(10)],
                                  watch=True)
        fast_broker.kill9()
        again = Broker(fast_broker.tmp_path, port=fast_broker.port, db=fast_broker.db,
                       extra=FAST)
        processes.append(again)
        start_py_worker(again, processes, tmp_path)
        dones = await c.wait_all(ids, timeout=30)
        assert [d.result for d in dones] == [b'A%d' % i for i in range(10)]
        await asyncio.sleep(0.5)  # re-WATCHes went out: no duplicate comes out
        with pytest.raises(arbiter.ArbiterError):
            await c.next_done(timeout=0.5)
        await c.close()
    run(main())


def test_a_submit_that_reached_no_broker(processes, tmp_path):
    # as the blocking client: "cannot reach", not an outcome unknown, and
    # nothing of it reaches a broker started there later
    port = free_port()

    async def main():
        c = AsyncClient('tcp://127.0.0.1:%d' % port, timeout=0.3)
        with pytest.raises(arbiter.Unreachable) as e:
            await c.submit('job')
        assert not isinstance(e.value, arbiter.Timeout)
        assert 'cannot reach the broker at tcp://127.0.0.1:%d' % port in str(e.value)
        broker = Broker(tmp_path, port=port)
        processes.append(broker)
        broker.wait_ready()
        c.timeout = 10.0
        assert await c.list() == []
        await c.close()
    run(main())
