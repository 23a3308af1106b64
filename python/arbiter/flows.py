"""Workflows: a DAG, a group or a pipe, from a JSON file as ``arbiter dag
submit`` reads it (docs/workflows.md), or from the same structure built in
Python, into the task specs of one SUBMIT (``Client.submit_flow``).

    DAG    {"name": N, "tasks": [TASK...]}
    group  {"name": N, "tasks": [TASK...], "callback": TASK, "finalizer": TASK}
    pipe   {"name": N, "input": V, "args": V, "steps": [TASK...]}

A TASK is {"name", "task", "queue", "payload", "args", "after", "input",
"key", "priority", "retries", "backoff", "no_jitter", "timeout",
"soft_timeout", "delay", "at", "retention", "endpoints", "broadcast",
"allow_unknown_endpoints", "endpoint_timeout"}, each allowed where it makes
sense. A payload (or args) that is a string is its bytes, any other JSON
value its compact JSON text; from Python, ``bytes`` are taken as they are.
What this module adds: a group's callback waits on_success for every
member, its finalizer always for every member and the callback; a pipe's
step k + 1 waits on_success for step k and takes its result as input, the
first step takes the pipe's input, and each step gets the pipe's args
unless it has its own.

Every mistake is refused before anything is sent (``Invalid``, local), in
one line naming the file, the task and the field, as the CLI words it:

    dag.json: tasks[2] ('c').after[0]: 'when' must be on_success, on_failure or always

What needs the broker (a cycle, an unknown task id, an endpoint not
connected) the broker refuses, naming the tasks.

    flow = flows.load("nightly.json", "dag")
    submitted = client.submit_flow(flow)
    result = client.wait_flow(submitted.flow)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

from . import codec
from .errors import Invalid, TooLarge
from .spec import (BACKOFF_EXP, BACKOFF_NONE, INPUT_PARENT, WHENS, Data, check_name,
                   data_bytes, parse_backoff, seconds_ms, time_ms)

CALLBACK, FINALIZER, MEMBER, STEP = 'callback', 'finalizer', 'member', 'step'
KINDS = ('dag', 'group', 'pipe')

NODE, MEMBER_ROLE, HOOK, STEP_ROLE = 1, 2, 4, 8
ALL = NODE | MEMBER_ROLE | HOOK | STEP_ROLE
ROLE_NAMES = {
    NODE: "a DAG's task",
    MEMBER_ROLE: "a group's member (members wait for nothing)",
    HOOK: "a group's callback or finalizer",
    STEP_ROLE: "a pipe's step (the pipe gives its input and dependency)",
}


@dataclass
class Flow:
    """A flow read and checked, ready to submit: its kind ("dag", "group",
    "pipe"), name (None: none; a group's is what ``cancel(group=...)``
    finds it by) and task specs in submit order (a group's callback and
    finalizer last), each with its name in the flow as ``ref``."""

    kind: str
    name: Optional[str]
    tasks: List[Dict[str, Any]]

    def specs(self, max_payload: int = codec.PAYLOAD_DEFAULT_MAX) -> List[Dict[str, Any]]:
        for i, spec in enumerate(self.tasks):
            if len(spec['payload']) > max_payload:
                raise TooLarge('tasks[%d].payload: %d bytes, over the %d-byte limit'
                               % (i, len(spec['payload']), max_payload), local=True)
        return self.tasks

    @property
    def names(self) -> List[str]:
        """The tasks' names in the flow, in order."""
        return [t['ref'] for t in self.tasks]


class _Reader:
    """One read: where the messages point (the file, the task)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.where = ''
        self.role = NODE
        self.seen: Dict[str, bool] = {}

    def fail(self, field: Optional[str], reason: str) -> Invalid:
        text = self.label + ': ' + self.where
        if self.where and field:
            text += '.'
        text += field or ''
        if self.where or field:
            text += ': '
        return Invalid(text + reason, local=True)

    def at(self, lst: Optional[str], index: int, name: Optional[str]) -> None:
        if lst is None:
            self.where = name or ''
        elif name:
            self.where = "%s[%d] ('%s')" % (lst, index, _quote(name))
        else:
            self.where = '%s[%d]' % (lst, index)

    # -- values --

    def name(self, field: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.fail(field, 'must be a string')
        if '\0' in value:
            raise self.fail(field, 'must not contain NUL')
        try:
            return check_name('', value)
        except (Invalid, TooLarge) as e:
            raise self.fail(field, _why(e)) from None

    def bytes_of(self, field: str, value: object, limit: int) -> bytes:
        try:
            data = data_bytes('', cast(Data, value), sys.maxsize)
        except Invalid as e:
            raise self.fail(field, _why(e)) from None
        if len(data) > limit:
            raise self.fail(field, '%d bytes, over the %d-byte limit' % (len(data), limit))
        return data

    def seconds(self, field: str, value: object, max_ms: int, positive: bool = False) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(field, 'must be a number of seconds, like 30 or 0.25')
        try:
            return seconds_ms('', value, max_ms, positive)
        except Invalid as e:
            raise self.fail(field, _why(e)) from None

    def uint(self, field: str, value: object, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float):
                raise self.fail(field, 'must be a whole number, not %s' % number_text(value))
            raise self.fail(field, 'must be a whole number')
        if not 0 <= value <= high:
            raise self.fail(field, 'expected a whole number from 0 to %d, not %r' % (high, value)
                            if value < 0 else '%d is over the limit of %d' % (value, high))
        return value

    def boolean(self, field: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, 'must be true or false')
        return value

    # -- fields --

    def f_task(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['name'] = self.name(key, value)

    def f_queue(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['queue'] = self.name(key, value)
        if '@' in spec['queue']:
            raise self.fail(key, "'@' is reserved for endpoint queues")

    def f_key(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['key'] = self.name(key, value)

    def f_payload(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        self.seen['payload'] = True
        spec['payload'] = self.bytes_of(key, value, codec.PAYLOAD_DEFAULT_MAX)

    def f_args(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['args'] = self.bytes_of(key, value, codec.ARGS_MAX)

    def f_priority(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, 'must be a whole number')
        if not codec.I32_MIN <= value <= codec.I32_MAX:
            raise self.fail(key, 'expected a whole number from %d to %d, not %d'
                            % (codec.I32_MIN, codec.I32_MAX, value))
        spec['priority'] = value

    def f_retries(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['retries'] = self.uint(key, value, codec.RETRIES_MAX)

    def f_backoff(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        if not isinstance(value, str):
            raise self.fail(key, 'must be a string: "none", "fixed:SECONDS" or "exp:BASE,CAP"')
        try:
            spec['backoff'], spec['backoff_ms'], spec['backoff_cap_ms'] = parse_backoff('', value)
        except Invalid as e:
            raise self.fail(key, _why(e)) from None

    def f_no_jitter(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['no_jitter'] = self.boolean(key, value)

    def f_timeout(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['timeout_ms'] = self.seconds(key, value, codec.TIMEOUT_MAX_MS)

    def f_soft_timeout(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['soft_timeout_ms'] = self.seconds(key, value, codec.TIMEOUT_MAX_MS, positive=True)

    def f_delay(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        self.seen['delay'] = True
        spec['delay_ms'] = self.seconds(key, value, codec.DELAY_MAX_MS)

    def f_at(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, 'must be an RFC 3339 time (a string) or Unix seconds')
        self.seen['at'] = True
        try:
            spec['at_ms'] = time_ms('', value)
        except Invalid as e:
            raise self.fail(key, _why(e)) from None

    def f_retention(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['retention_ms'] = self.seconds(key, value, codec.RETENTION_MAX_MS)

    def f_input(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        if value == 'payload':
            spec['input'] = 0
        elif value == 'parent':
            spec['input'] = INPUT_PARENT
        else:
            raise self.fail(key, 'must be "payload" or "parent"')

    def f_endpoints(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        if not isinstance(value, list) or not value:
            raise self.fail(key, 'must be a list of worker names')
        if len(value) > codec.ENDPOINTS_MAX:
            raise self.fail(key, '%d names, over the limit of %d'
                            % (len(value), codec.ENDPOINTS_MAX))
        names: List[str] = []
        for e, item in enumerate(value):
            field = 'endpoints[%d]' % e
            name = self.name(field, item)
            if '@' in name:
                raise self.fail(field, "'%s' is not a worker name ('@' is reserved)"
                                % _quote(name))
            if name in names:
                raise self.fail(field, "'%s' is named twice" % _quote(name))
            names.append(name)
        spec['endpoints'] = names

    def f_broadcast(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        spec['broadcast'] = self.boolean(key, value)

    def f_allow_unknown(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        self.seen['fan_out_options'] = True
        spec['allow_unknown'] = self.boolean(key, value)

    def f_endpoint_timeout(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        self.seen['fan_out_options'] = True
        spec['endpoint_timeout_ms'] = self.seconds(key, value, codec.TIMEOUT_MAX_MS,
                                                   positive=True)

    def when(self, field: str, value: object) -> int:
        if isinstance(value, str) and value in WHENS:
            return WHENS.index(value)
        raise self.fail(field, "'when' must be on_success, on_failure or always")

    def dep_object(self, field: str, value: Dict[str, Any]) -> Dict[str, Any]:
        dep: Dict[str, Any] = {}
        for key, item in value.items():
            if key == 'task':
                dep['ref'] = self.name(field, item)
            elif key == 'id':
                dep['id'] = self.uint(field, item, codec.U64_MAX)
            elif key == 'when':
                dep['when'] = self.when(field, item)
            else:
                raise self.fail(field, "unknown field '%s' (a dependency has task or id, and "
                                       "when)" % key)
        if ('ref' in dep) == ('id' in value):
            raise self.fail(field, "give 'task' (a task of this file) or 'id' (an existing "
                                   "task)")
        if 'ref' not in dep and not dep['id']:
            raise self.fail(field, "'id' must be a task id, from 1")
        return dep

    def f_after(self, key: str, value: object, spec: Dict[str, Any]) -> None:
        if not isinstance(value, list):
            raise self.fail(key, 'must be a list of task names or {"task", "when"} objects')
        deps = []
        for k, item in enumerate(value):
            field = 'after[%d]' % k
            if isinstance(item, str):
                deps.append({'ref': self.name(field, item)})
            elif isinstance(item, dict):
                deps.append(self.dep_object(field, item))
            else:
                raise self.fail(field, 'must be a task name or an object')
        spec['after'] = deps

    FIELDS: Dict[str, Tuple[Optional[Callable[['_Reader', str, object, Dict[str, Any]], None]],
                            int]] = {
        'name': (None, NODE | MEMBER_ROLE | STEP_ROLE),
        'task': (f_task, ALL),
        'queue': (f_queue, ALL),
        'payload': (f_payload, NODE | MEMBER_ROLE | HOOK),
        'args': (f_args, ALL),
        'after': (f_after, NODE),
        'input': (f_input, NODE),
        'key': (f_key, ALL),
        'priority': (f_priority, ALL),
        'retries': (f_retries, ALL),
        'backoff': (f_backoff, ALL),
        'no_jitter': (f_no_jitter, ALL),
        'timeout': (f_timeout, ALL),
        'soft_timeout': (f_soft_timeout, ALL),
        'delay': (f_delay, ALL),
        'at': (f_at, ALL),
        'retention': (f_retention, ALL),
        'endpoints': (f_endpoints, NODE | MEMBER_ROLE),
        'broadcast': (f_broadcast, NODE | MEMBER_ROLE),
        'allow_unknown_endpoints': (f_allow_unknown, NODE | MEMBER_ROLE),
        'endpoint_timeout': (f_endpoint_timeout, NODE | MEMBER_ROLE),
    }

    # -- a task --

    def check_task(self, spec: Dict[str, Any]) -> None:
        fan_out = bool(spec.get('endpoints')) or spec.get('broadcast', False)
        if 'name' not in spec:
            raise self.fail(None, "give 'task' (the handler's name)")
        if spec.get('endpoints') and spec.get('broadcast'):
            raise self.fail(None, "give 'endpoints' or 'broadcast', not both")
        if self.seen.get('fan_out_options') and not fan_out:
            raise self.fail(None, "allow_unknown_endpoints and endpoint_timeout go with "
                                  "'endpoints' or 'broadcast'")
        if fan_out and spec.get('after'):
            raise self.fail(None, 'a fan-out task (endpoints, broadcast) cannot wait for others')
        if self.seen.get('delay') and self.seen.get('at'):
            raise self.fail(None, "'delay' and 'at' both say when; give one")
        backoff = spec.get('backoff', BACKOFF_NONE)
        if spec.get('no_jitter') and backoff != BACKOFF_EXP:
            raise self.fail('no_jitter', 'only an exp: backoff is jittered')
        soft, hard = spec.get('soft_timeout_ms', 0), spec.get('timeout_ms', 0)
        if soft and hard and soft >= hard:
            raise self.fail('soft_timeout', "must be below 'timeout'")
        if backoff != BACKOFF_NONE and not spec.get('retries'):
            raise self.fail('backoff', "it delays retries, and there are none: give 'retries'")
        after = spec.get('after', [])
        if spec.get('input') == INPUT_PARENT and (len(after) != 1 or after[0].get('when', 0)):
            raise self.fail('input', '"parent" needs exactly one dependency, on_success')
        if spec.get('input') == INPUT_PARENT and self.seen.get('payload'):
            raise self.fail('payload', 'not used when the input is the parent\'s result')

    def task(self, obj: object, lst: Optional[str], index: int,
             name_default: Optional[str]) -> Dict[str, Any]:
        self.seen = {}
        self.at(lst, index, None if lst else name_default)
        if not isinstance(obj, dict):
            raise self.fail(None, 'must be an object')
        spec: Dict[str, Any] = {}
        named = False
        if 'name' in obj and self.role & (NODE | MEMBER_ROLE | STEP_ROLE):
            spec['ref'] = self.name('name', obj['name'])
            named = True
        elif name_default:
            spec['ref'] = name_default
        else:
            raise self.fail(None, "'name' is required (the task's name in the flow)")
        self.at(lst, index, spec['ref'])
        for key, value in obj.items():
            entry = self.FIELDS.get(key)
            if entry is None:
                raise self.fail(None, "unknown field '%s'" % key)
            fn, roles = entry
            if not roles & self.role:
                raise self.fail(None, "'%s' has no place in %s" % (key, ROLE_NAMES[self.role]))
            if fn is not None:
                fn(self, key, value, spec)
        if 'name' not in spec and (named or lst is None):
            spec['name'] = spec['ref']  # the handler is named as the task
        spec.setdefault('payload', b'')
        self.check_task(spec)
        return spec

    def tasks(self, items: List[object], key: str, role: int) -> List[Dict[str, Any]]:
        self.role = role
        prefix = MEMBER if role == MEMBER_ROLE else STEP if role == STEP_ROLE else None
        return [self.task(obj, key, i, '%s%d' % (prefix, i + 1) if prefix else None)
                for i, obj in enumerate(items)]

    # -- the whole flow --

    def check_keys(self, root: Dict[str, Any], known: str, what: str) -> None:
        for key in root:
            if key not in known.split():
                raise self.fail(None, "unknown field '%s' (%s has: %s)" % (key, what, known))

    def task_list(self, root: Dict[str, Any], key: str, extra: int) -> List[object]:
        if key not in root:
            raise self.fail(key, 'is required: the list of tasks')
        items = root[key]
        if not isinstance(items, list) or not items:
            raise self.fail(key, 'must be a list of one or more task objects')
        if len(items) + extra > codec.LIST_MAX:
            raise self.fail(key, '%d tasks, over the limit of %d'
                            % (len(items) + extra, codec.LIST_MAX))
        return items

    def check_flow(self, specs: List[Dict[str, Any]], lst: str) -> None:
        """Names unique, dependencies resolvable, each parent named once.
        Cycles are the broker's to find (it names the tasks, in order)."""
        index: Dict[str, int] = {}
        for i, spec in enumerate(specs):
            ref = spec['ref']
            if ref in index:
                self.at(lst, i, ref)
                raise self.fail('name', "'%s' is also the name of %s[%d]"
                                % (_quote(ref), lst, index[ref]))
            index[ref] = i
        for i, spec in enumerate(specs):
            self.at(lst, i, spec['ref'])
            named: Dict[object, bool] = {}
            for k, dep in enumerate(spec.get('after', [])):
                field = 'after[%d]' % k
                if 'ref' not in dep:
                    if ('id', dep['id']) in named:
                        raise self.fail(field, 'task %d is named twice' % dep['id'])
                    named['id', dep['id']] = True
                    continue
                ref = dep['ref']
                if ref not in index:
                    raise self.fail(field, "no task named '%s' in this file (an existing task "
                                           "is {\"id\": N})" % _quote(ref))
                if index[ref] == i:
                    raise self.fail(field, "'%s' cannot wait for itself" % _quote(ref))
                if ref in named:
                    raise self.fail(field, "'%s' is named twice" % _quote(ref))
                named[ref] = True

    def dag(self, root: Dict[str, Any]) -> List[Dict[str, Any]]:
        self.check_keys(root, 'name tasks', 'a DAG file')
        specs = self.tasks(self.task_list(root, 'tasks', 0), 'tasks', NODE)
        self.check_flow(specs, 'tasks')
        return specs

    def group(self, root: Dict[str, Any]) -> List[Dict[str, Any]]:
        self.check_keys(root, 'name tasks callback finalizer', 'a group file')
        specs = self.tasks(self.task_list(root, 'tasks', 2), 'tasks', MEMBER_ROLE)
        members = len(specs)
        for i, spec in enumerate(specs):
            if spec['ref'] in (CALLBACK, FINALIZER):
                self.at('tasks', i, spec['ref'])
                raise self.fail('name', "'%s' is the name of the group's %s; choose another"
                                % (spec['ref'], spec['ref']))
        self.role = HOOK
        for hook, when in ((CALLBACK, 0), (FINALIZER, 2)):
            if hook not in root:
                continue
            spec = self.task(root[hook], None, 0, hook)
            # the callback runs once all members succeeded; the finalizer
            # once everything else has ended, however it ended
            spec['after'] = [{'ref': s['ref'], 'when': when} for s in specs[:members + (
                hook == FINALIZER and CALLBACK in root)]]
            specs.append(spec)
        self.check_flow(specs, 'tasks')
        return specs

    def pipe(self, root: Dict[str, Any]) -> List[Dict[str, Any]]:
        self.check_keys(root, 'name input args steps', 'a pipe file')
        specs = self.tasks(self.task_list(root, 'steps', 0), 'steps', STEP_ROLE)
        self.where = ''
        if 'input' in root:
            specs[0]['payload'] = self.bytes_of('input', root['input'], codec.PAYLOAD_DEFAULT_MAX)
        if 'args' in root:
            shared = self.bytes_of('args', root['args'], codec.ARGS_MAX)
            for spec in specs:
                spec.setdefault('args', shared)
        _chain(specs)
        self.check_flow(specs, 'steps')
        return specs

    def flow(self, root: object, kind: str) -> Flow:
        if kind not in KINDS:
            raise ValueError('a flow is a dag, a group or a pipe, not %r' % kind)
        if not isinstance(root, dict):
            raise self.fail(None, 'must be a JSON object')
        name = self.name('name', root['name']) if 'name' in root else None
        specs = self.dag(root) if kind == 'dag' else self.group(root) if kind == 'group' \
            else self.pipe(root)
        return Flow(kind, name, specs)


def _chain(specs: List[Dict[str, Any]]) -> None:
    """Step k + 1 waits on_success for step k and takes its result as input."""
    for k in range(1, len(specs)):
        specs[k]['after'] = [{'ref': specs[k - 1]['ref']}]
        specs[k]['input'] = INPUT_PARENT


def _why(error: Exception) -> str:
    """A reason from spec.py's checks, without the empty field name."""
    reason = str(error)
    return reason[2:] if reason.startswith(': ') else reason


def _quote(text: str) -> str:
    shown = ''.join(c if c.isprintable() else '.' for c in text[:64])
    return shown + '...' if len(text) > 64 else shown


def number_text(value: float) -> str:
    """A number as the messages and specs write it: no trailing zeros."""
    return ('%.6f' % value).rstrip('0').rstrip('.')


def _object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    obj: Dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate object key '%s'" % key)
        obj[key] = value
    return obj


def parse(text: Union[str, bytes], kind: str, label: str = '<flow>') -> Flow:
    """A flow of the given kind ("dag", "group", "pipe") from JSON text;
    label names it in messages."""
    try:
        root = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise Invalid('%s:%d:%d: %s' % (label, e.lineno, e.colno, e.msg), local=True) from None
    except ValueError as e:
        raise Invalid('%s: %s' % (label, e), local=True) from None
    except RecursionError:
        raise Invalid('%s: nested too deeply' % label, local=True) from None
    try:
        return _Reader(label).flow(root, kind)
    except UnicodeEncodeError as e:
        # a lone surrogate ("\ud800") is not text a payload can carry
        raise Invalid('%s: a string that is not valid Unicode (%s)' % (label, e.reason),
                      local=True) from None


def load(path: str, kind: str) -> Flow:
    """A flow of the given kind from a workflow file ("-": stdin)."""
    if path == '-':
        return parse(sys.stdin.read(), kind, '<stdin>')
    try:
        with open(path, 'rb') as f:
            text = f.read()
    except OSError as e:
        raise Invalid('%s: cannot read: %s' % (path, e.strerror), local=True) from None
    return parse(text, kind, path)


def dag(tasks: Sequence[Dict[str, Any]], *, name: Optional[str] = None) -> Flow:
    """A DAG from task dicts as a DAG file has them:
    ``dag([{"name": "a", "task": "fetch"}, {"name": "b", "after": ["a"]}])``."""
    root: Dict[str, Any] = {'tasks': list(tasks)}
    if name is not None:
        root['name'] = name
    return _Reader('dag').flow(root, 'dag')


def group(members: Sequence[Dict[str, Any]], *, callback: Optional[Dict[str, Any]] = None,
          finalizer: Optional[Dict[str, Any]] = None, name: Optional[str] = None) -> Flow:
    """A group: members that run independently, a callback once all of them
    succeeded (with their results), a finalizer at the very end."""
    root: Dict[str, Any] = {'tasks': list(members)}
    for key, value in (('callback', callback), ('finalizer', finalizer), ('name', name)):
        if value is not None:
            root[key] = value
    return _Reader('group').flow(root, 'group')


def pipe(steps: Sequence[Union[str, Dict[str, Any]]], *, input: Optional[Data] = None,
         args: Optional[Data] = None, queue: Optional[str] = None,
         name: Optional[str] = None) -> Flow:
    """A pipe: steps run one after the other, each fed the result of the one
    before; the first gets ``input``. A step is a handler's name, or a dict
    as a pipe file's steps (with its own args, queue, ...); queue applies
    to steps given by name."""
    items = [{'task': s, **({'queue': queue} if queue else {})} if isinstance(s, str) else s
             for s in steps]
    root: Dict[str, Any] = {'steps': items}
    for key, value in (('input', input), ('args', args), ('name', name)):
        if value is not None:
            root[key] = value
    return _Reader('pipe').flow(root, 'pipe')


__all__ = ['Flow', 'parse', 'load', 'dag', 'group', 'pipe', 'data_bytes']
