"""The client's calls, written once for the blocking and the asyncio
client: each call is a generator that yields the requests it needs
(``Request``) and is sent back each reply's body, then returns its result.
A driver (``Client._drive``, ``AsyncClient._drive``) sends each request and
waits for its reply in its own way; ERROR replies become exceptions there
and never reach the call. So paging (LIST, STATUS in chunks, DELETE in
bounded steps) and the reading of replies exist in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import (Any, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Tuple,
                    Union)

from . import codec
from .codec import MsgType
from .errors import BrokerError, Invalid, NotFound, ProtocolError
from .records import (Change, FlowSubmitted, Limit, Peeked, Pong, Schedule, State, Stats,
                      Submitted, TaskInfo, outcomes, parents)
from .spec import check_name, parse_backoff, refuse, seconds_ms

LIST_PAGE = 1000  # tasks asked for per LIST
STATUS_PAGE = 256  # ids per STATUS: replies carry results of up to 16 MiB each

Body = Dict[str, Any]


@dataclass
class Request:
    """One request of a call: its type, body, and whether it changes
    something (so that a missing reply leaves its outcome unknown)."""

    type: MsgType
    body: Body
    changes: bool = False


Call = Generator[Request, Body, Any]

FLOW_KINDS = {'dag': 1, 'group': 2, 'pipe': 3}


def ping() -> Generator[Request, Body, Pong]:
    reply = yield Request(MsgType.PING, {})
    return Pong(reply['version'], reply['epoch'], reply['now_ms'])


# The broker names a request's fields as the protocol does; where this
# client's names differ, its refusals are said in this client's.
_PYTHON_WORDS = {'(allow_unknown to send anyway)': '(allow_unknown_endpoints=True to send anyway)'}


def python_words(error: BrokerError) -> None:
    """Rewrites, in place, a broker's refusal in this client's names."""
    for wire, ours in _PYTHON_WORDS.items():
        if wire in error.reason:
            error.reason = error.reason.replace(wire, ours)
            error.args = (error.reason,)


def submit(specs: Sequence[Body], watch: bool, kind: int = 0,
           name: Optional[str] = None) -> Generator[Request, Body, Tuple[List[Submitted], int]]:
    """SUBMIT: every task or none. Returns the tasks and the flow's id."""
    if not 1 <= len(specs) <= codec.LIST_MAX:
        raise refuse('', 'a submit carries 1 to %d tasks, not %d' % (codec.LIST_MAX, len(specs)))
    if name is not None:
        if kind == 0:
            raise refuse('flow name', 'a batch that is no flow has no name')
        check_name('flow name', name)
    body: Body = {'tasks': list(specs), 'watch': watch, 'flow_kind': kind, 'flow_name': name}
    reply = yield Request(MsgType.SUBMIT, body, changes=True)
    tasks = reply['tasks']
    if len(tasks) != len(specs):
        raise ProtocolError('broker acknowledged %d tasks of %d' % (len(tasks), len(specs)))
    return [Submitted(t['id'], t['existing'], t['state'], t['refused']) for t in tasks], \
        reply['flow']


def submit_flow(kind: str, name: Optional[str], specs: Sequence[Body],
                watch: bool) -> Generator[Request, Body, FlowSubmitted]:
    tasks, flow = yield from submit(specs, watch, FLOW_KINDS[kind], name)
    return FlowSubmitted(flow, {spec['ref']: t for spec, t in zip(specs, tasks)})


def watch(ids: Sequence[int]) -> Generator[Request, Body, None]:
    for start in range(0, len(ids), codec.IDS_MAX):
        yield Request(MsgType.WATCH, {'ids': list(ids[start:start + codec.IDS_MAX])})


def status(ids: Sequence[int]) -> Generator[Request, Body, List[TaskInfo]]:
    found: List[TaskInfo] = []
    at = 0
    while at < len(ids):
        asked = list(ids[at:at + STATUS_PAGE])
        reply = yield Request(MsgType.STATUS, {'ids': asked})
        found += [TaskInfo.from_wire(t) for t in reply['tasks']]
        # a reply whose results reach the broker's bound answers the first
        # ids only (more): the rest are asked again
        at += (len(reply['tasks']) if reply.get('more') else 0) or len(asked)
    return found


def _state_number(state: Union[State, int, str, None]) -> int:
    if state is None:
        return 0
    try:
        return int(State.parse(state))
    except ValueError as e:
        raise Invalid('state: %s' % e, local=True) from None


def _resting_state_number(state: Union[State, int, str, None]) -> int:
    """LIST's state: one a task rests in, refused before sending as
    `arbiter list --state` refuses it (the broker would say only "state: 6
    is not a state a task rests in")."""
    if state is None:
        return 0
    resting = ', '.join(str(s) for s in State if s.is_resting)
    try:
        parsed: Optional[State] = State.parse(state)
    except ValueError:
        parsed = None
    if parsed is State.FAILED:
        raise Invalid('state: no task rests in failed (a failed attempt leaves its task '
                      'scheduled for a retry, or dead); give one of %s' % resting, local=True)
    if parsed is None or not parsed.is_resting:
        shown = str(state) if isinstance(state, State) else state  # 'unknown', not <State...>
        raise Invalid('state: %r is not one of %s' % (shown, resting), local=True)
    return int(parsed)


def list_tasks(state: Union[State, int, str, None], queue: Optional[str], flow: int,
               limit: int, newest: bool) -> Generator[Request, Body, Tuple[List[TaskInfo], bool]]:
    """LIST page by page: at most limit tasks (0: every one). Returns the
    tasks and whether more match."""
    body: Body = {'state': _resting_state_number(state), 'queue': queue, 'flow': flow,
                  'newest': newest}
    if queue is not None:
        check_name('queue', queue)
    tasks: List[TaskInfo] = []
    while True:
        want = LIST_PAGE if not limit else min(LIST_PAGE, limit - len(tasks))
        reply = yield Request(MsgType.LIST, dict(body, limit=want))
        page = [TaskInfo.from_wire(t) for t in reply['tasks']]
        tasks += page
        # a page without tasks cannot move the bound on: stop rather than spin
        more = reply['more'] and bool(page)
        if not more or (limit and len(tasks) >= limit):
            return tasks, more
        if newest:
            body['before_id'] = page[-1].id
        else:
            body['after_id'] = page[-1].id


def flow_tasks(flow: int) -> Generator[Request, Body, List[TaskInfo]]:
    """Every task of a flow in id order, with STATUS's detail (LIST tells
    the ref of final tasks only). The copies of its fan-out tasks and the
    tasks its tasks emitted are among them (origin set, or no ref)."""
    listed, _ = yield from list_tasks(None, None, flow, 0, False)
    infos = yield from status([t.id for t in listed])
    return [t for t in infos if t.found]


def _change(type_: MsgType, body: Body, asked: int) -> Generator[Request, Body, Change]:
    reply = yield Request(type_, body, changes=True)
    if len(reply['tasks']) != asked:
        raise ProtocolError('broker answered for %d of %d tasks' % (len(reply['tasks']), asked))
    return Change(reply['count'], outcomes(reply['tasks']))


def task_id(value: Any) -> int:
    """A task id as the caller gave it (an int, or text of one), or
    Invalid: every mistake of the caller's is an ArbiterError."""
    # an int (not a bool, not a float, which int() would cut: 1.9 is not
    # task 1), or the text of one
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (str, bytes)):
        try:
            return int(value)
        except ValueError:
            pass
    raise refuse('task id', 'expected a whole number, not %r' % (value,))


def task_ids(values: Iterable[Any]) -> List[int]:
    # a string is not a list of ids ("12" is not tasks 1 and 2)
    if isinstance(values, (str, bytes)):
        raise refuse('task ids', 'expected a list of ids, not %r' % (values,))
    try:
        return [task_id(v) for v in values]
    except TypeError:
        raise refuse('task ids', 'expected ids, not %r' % (values,)) from None


def _ids(ids: Union[int, Iterable[int], None]) -> List[int]:
    if ids is None:
        return []
    if isinstance(ids, int):
        return [ids]
    return task_ids(ids)


def cancel(ids: Union[int, Iterable[int], None], queue: Optional[str], group: Optional[str],
           flow: int) -> Generator[Request, Body, Change]:
    ids = _ids(ids)
    if sum((bool(ids), queue is not None, group is not None, bool(flow))) != 1:
        raise refuse('cancel', 'give ids, queue, group or flow (one of them)')
    return (yield from _change(MsgType.CANCEL, {'ids': ids, 'queue': queue, 'group': group,
                                                'flow': flow}, len(ids)))


def retry(ids: Union[int, Iterable[int], None], queue: Optional[str], flow: int,
          group: Optional[str]) -> Generator[Request, Body, Change]:
    ids = _ids(ids)
    if sum((bool(ids), queue is not None, group is not None, bool(flow))) != 1:
        raise refuse('retry', 'give ids, queue (every dead task of it), flow or group')
    body: Body = {'ids': ids, 'queue': queue, 'all': queue is not None, 'flow': flow,
                  'group': group}
    return (yield from _change(MsgType.RETRY, body, len(ids)))


def delete(ids: Union[int, Iterable[int], None], state: Union[State, int, str, None],
           queue: Optional[str],
           older_than: Optional[float]) -> Generator[Request, Body, Change]:
    """DELETE by ids (in chunks of 1000), or in bounded steps over every
    finished task that matches the filter, until no more match."""
    ids = _ids(ids)
    filtered = state is not None or queue is not None or older_than is not None
    if bool(ids) == filtered:
        raise refuse('delete', 'give ids, or a filter (state, queue, older_than), not both')
    if ids:
        count, answers = 0, []
        for start in range(0, len(ids), codec.DELETE_MAX):
            chunk = ids[start:start + codec.DELETE_MAX]
            change = yield from _change(MsgType.DELETE, {'ids': chunk}, len(chunk))
            count += change.count
            answers += change.outcomes
        return Change(count, answers)
    body: Body = {'state': _state_number(state), 'queue': queue}
    if older_than is not None:
        body['older_than_ms'] = seconds_ms('older_than', older_than, codec.RETENTION_MAX_MS)
    count = 0
    while True:
        reply = yield Request(MsgType.DELETE, body, changes=True)
        count += reply['count']
        if not reply['more']:
            return Change(count, [])
        body['after_id'] = reply['last_id']


STATS_PAGES_MAX = 1000  # pages of 1,000 queues and workers each: bounds a runaway loop


def stats() -> Generator[Request, Body, Stats]:
    """Every page of STATS, until the broker has no more queues or
    workers to show."""
    pages: List[Body] = []
    body: Body = {}
    while len(pages) < STATS_PAGES_MAX:
        reply = yield Request(MsgType.STATS, dict(body))
        pages.append(reply)
        if reply['queues']:
            body['after'] = reply['queues'][-1]['name']
        if reply['workers']:
            body['after_worker'] = reply['workers'][-1]['identity']
        if not (reply['more'] or reply['more_workers']):
            break
    return Stats.from_wire(pages)


def peek(queue: str, max: int) -> Generator[Request, Body, List[Peeked]]:
    reply = yield Request(MsgType.PEEK, {'queue': check_name('queue', queue), 'max': max})
    return [Peeked(t['id'], t['attempt'], t['delivered'], t['queue'], t['name'],
                   t['timeout_ms'],
                   t['soft_timeout_ms'], t['created_ms'], t['headers'], parents(t['parents']),
                   t['args'], t['payload']) for t in reply['tasks']]


ON_FAILURE = ('retry', 'head', 'dead')
OVERFLOW = ('drop-head', 'reject')


def queue_op(queue: str, op: str, max_running: Optional[int] = None,
             rate_per_sec: Optional[int] = None, retention: Optional[float] = None,
             on_failure: Optional[str] = None, max_ready: Optional[int] = None,
             max_ready_bytes: Optional[int] = None,
             overflow: Optional[str] = None) -> Generator[Request, Body, int]:
    """QUEUE: pause, resume, purge, or set (the settings given; 0 puts
    one back to its default). Returns the count the broker answers."""
    body: Body = {'queue': check_name('queue', queue), 'op': op}
    clear: List[str] = []
    for key, value, top in (('max_running', max_running, codec.U32_MAX),
                            ('rate_per_sec', rate_per_sec, codec.U32_MAX),
                            ('max_ready', max_ready, codec.U64_MAX),
                            ('max_ready_bytes', max_ready_bytes, codec.U64_MAX)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise refuse(key, 'expected a whole number from 0 to %d, not %r' % (top, value))
        if value:
            body[key] = value
        else:
            clear.append(key)
    if retention is not None:
        ms = seconds_ms('retention', retention, codec.RETENTION_MAX_MS)
        if ms:
            body['retention_ms'] = ms
        else:
            clear.append('retention_ms')
    if on_failure is not None:
        if on_failure not in ON_FAILURE:
            raise refuse('on_failure', 'must be retry, head or dead, not %r' % on_failure)
        body['on_failure'] = on_failure
    if overflow is not None:
        if overflow not in OVERFLOW:
            raise refuse('overflow', 'must be drop-head or reject, not %r' % overflow)
        body['overflow'] = overflow
    body['clear'] = clear
    reply = yield Request(MsgType.QUEUE, body, changes=True)
    return int(reply['count'])


def limit(name: str, max_running: Optional[int],
          rate_per_sec: Optional[int]) -> Generator[Request, Body, None]:
    body: Body = {'name': check_name('name', name)}
    clear: List[str] = []
    for key, value in (('max_running', max_running), ('rate_per_sec', rate_per_sec)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= codec.U32_MAX:
            raise refuse(key, 'expected a whole number from 0 to %d, not %r'
                         % (codec.U32_MAX, value))
        if value:
            body[key] = value
        else:
            clear.append(key)
    body['clear'] = clear
    yield Request(MsgType.LIMIT, body, changes=True)


def limits(name: Optional[str]) -> Generator[Request, Body, List[Limit]]:
    """LIMITS: every name with a limit, by name, page after page (or the
    one named, if it has a limit)."""
    body: Body = {}
    if name is not None:
        body['name'] = check_name('name', name)
    found: List[Limit] = []
    while True:
        reply = yield Request(MsgType.LIMITS, dict(body))
        found += [Limit(**d) for d in reply['limits']]
        if name is not None or not reply['more'] or not reply['limits']:
            return found
        body['after'] = reply['limits'][-1]['name']


CATCH_UP = ('none', 'one', 'all')


def _schedule(d: Mapping[str, Any]) -> Schedule:
    return Schedule(**{k: v for k, v in d.items()})


def schedule(op: str, name: Optional[str],
             template: Optional[Body] = None) -> Generator[Request, Body, List[Schedule]]:
    body: Body = {'op': op, 'name': name}
    if template:
        body.update(template)
    reply = yield Request(MsgType.SCHEDULE, body, changes=op != 'list')
    return [_schedule(s) for s in reply['schedules']]


def schedule_template(name: str, cron: str, task: Optional[str], payload: Optional[bytes],
                      zone: Optional[str], catch_up: Optional[str], queue: Optional[str],
                      priority: int, retries: int, backoff: Optional[str], no_jitter: bool,
                      timeout: Optional[float], soft_timeout: Optional[float],
                      retention: Optional[float]) -> Body:
    """The fields of SCHEDULE add, checked as ``arbiter schedule add``
    checks them (the broker checks the expression and the zone)."""
    from .spec import task_spec  # the template takes the options of a task

    if not isinstance(name, str) or not name or len(name.encode('utf-8', 'surrogatepass')) \
            > codec.SCHEDULE_NAME_MAX:
        raise refuse('name', 'a schedule is named by 1 to %d bytes' % codec.SCHEDULE_NAME_MAX)
    check_name('name', name)
    if catch_up is not None and catch_up not in CATCH_UP:
        raise refuse('catch_up', 'must be none, one or all, not %r' % catch_up)
    spec = task_spec(task or name, payload, queue=queue, priority=priority, retries=retries,
                     backoff=backoff, no_jitter=no_jitter, timeout=timeout,
                     soft_timeout=soft_timeout, retention=retention)
    body: Body = {'cron': cron, 'zone': zone, 'catch_up': catch_up, 'task': spec['name'],
                  'payload': spec['payload']}
    for key in ('queue', 'priority', 'retries', 'backoff', 'backoff_ms', 'backoff_cap_ms',
                'no_jitter', 'timeout_ms', 'soft_timeout_ms', 'retention_ms'):
        if key in spec:
            body[key] = spec[key]
    return body


def not_found(ids: Sequence[int]) -> NotFound:
    """The broker's word that it does not know the tasks (not local: it
    was asked)."""
    return NotFound('no such task: %s' % ', '.join(str(i) for i in ids))


__all__ = ['Request', 'parse_backoff']
