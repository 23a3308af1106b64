// app.js — the arbiter dashboard: one page over the gateway's admin API.
//
// Views (the URL's hash): the overview (#/), a task (#/task/ID) and a
// flow (#/flow/dag|group|pipe/ID). The page polls the API every
// POLL_MS (more slowly while hidden; while the broker is unreachable or
// a token is missing, one request every RETRY_MS until that is over) and
// patches each section only when its content changed, so that focus and
// selection survive a refresh.
// Actions (cancel, retry, pause, resume, purge, delete) report in toasts and
// refresh at once. A 401 or 403 opens the token panel; a 503 (the broker
// is unreachable) or no answer shows a banner while the page keeps trying.

import {api, setToken, token} from './api.js';
import {FINAL, STATES, ago, badge, brokerNow, emptyRow, flowLabel, fmtDuration,
  fmtNumber, h, patch, refreshAges, setBrokerNow, taskLink, taskName} from './dom.js';
import {Rates, HISTORY_S, sparkline} from './spark.js';
import {drawDag} from './dag.js';

const POLL_MS = 1500;
const HIDDEN_POLL_MS = 10000;
const RETRY_MS = 3000;  // while the broker is down or a token is missing
const LIST = {running: 50, failures: 10, recent: 15};

const $ = (id) => document.getElementById(id);

const app = {
  route: null,     // what the hash asks for
  conn: 'connecting',
  rates: new Rates(),
  busy: new Set(),  // actions in flight, by key
  timer: null,
  ticking: false,
  again: false,
  ticks: 0,
};

// ---------------------------------------------------------------------
// Routes

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'task' && /^\d+$/.test(parts[1])) return {view: 'task', id: Number(parts[1])};
  if (parts[0] === 'flow' && ['dag', 'group', 'pipe'].includes(parts[1]) && /^\d+$/.test(parts[2]))
    return {view: 'flow', kind: parts[1], id: Number(parts[2])};
  return {view: 'overview'};
}

function section(id, title, extra) {
  return h('section.card', {'aria-labelledby': `h-${id}`},
    h('div.card-head', h('h2', {id: `h-${id}`}, title), extra),
    h('div.scroll', {id}, h('p.muted', 'Loading…')));
}

function onRoute() {
  app.route = parseRoute();
  const view = $('view');
  $('nav-overview').toggleAttribute('aria-current', app.route.view === 'overview');
  if (app.route.view === 'overview') {
    document.title = 'arbiter';
    view.replaceChildren(
      h('h1.sr-only', 'Overview'),
      h('section#summary.tiles', {'aria-label': 'Summary'}),
      section('queues', 'Queues', h('span.hint', `finished per 10 s, last ${HISTORY_S / 60} minutes`)),
      h('div.cols', section('workers', 'Workers'), section('running', 'Running tasks')),
      section('failures', 'Dead tasks, newest id first'), section('recent', 'Recent tasks'));
  } else if (app.route.view === 'task') {
    document.title = `task ${app.route.id} · arbiter`;
    view.replaceChildren(h('div#task.detail', h('p.muted', 'Loading…')));
  } else {
    document.title = `${app.route.kind} ${app.route.id} · arbiter`;
    view.replaceChildren(h('div#flow.detail', h('p.muted', 'Loading…')));
  }
  refresh();
}

// ---------------------------------------------------------------------
// The loop

async function refresh() {
  if (app.ticking) {
    app.again = true;
    return;
  }
  app.ticking = true;
  clearTimeout(app.timer);
  try {
    await tick();
  } finally {
    app.ticking = false;
    const wait = document.hidden ? HIDDEN_POLL_MS : app.conn === 'ok' ? POLL_MS : RETRY_MS;
    app.timer = setTimeout(refresh, wait);
    if (app.again) {
      app.again = false;
      refresh();
    }
  }
}

async function tick() {
  const route = app.route;
  app.ticks++;
  if (app.conn !== 'ok' && app.conn !== 'connecting') {
    // one request to learn whether it is over, rather than a page of refusals
    const probe = await api.stats();
    if (route !== app.route) return;
    if (!probe.ok) {
      connection([probe]);
      return;
    }
  }
  let answers;
  if (route.view === 'overview') {
    answers = await Promise.all([
      api.stats(),
      api.tasks({state: 'running', limit: LIST.running}),
      api.tasks({state: 'dead', order: 'newest', limit: LIST.failures}),
      api.tasks({order: 'newest', limit: LIST.recent}),
    ]);
  } else if (route.view === 'task') {
    answers = [await api.task(route.id)];
  } else {
    answers = [await api.flow(route.kind, route.id)];
  }
  if (route !== app.route) return;  // the view changed meanwhile
  connection(answers);
  if (route.view === 'overview') {
    const [stats, running, failures, recent] = answers;
    if (stats.ok) {
      setBrokerNow(stats.data.now_ms);
      app.rates.update(stats.data);
      renderSummary(stats.data);
      renderQueues(stats.data);
      renderWorkers(stats.data);
    }
    if (running.ok) renderRunning(running.data);
    if (failures.ok) renderFailures(failures.data);
    if (recent.ok) renderRecent(recent.data);
  } else if (route.view === 'task') {
    renderTask(route.id, answers[0]);
  } else {
    renderFlow(route, answers[0]);
  }
  refreshAges();
}

// The connection's state from a tick's answers: the banner, the live
// indicator, and the token panel.
function connection(answers) {
  const failed = answers.find((a) => !a.ok && [0, 401, 403, 502, 503].includes(a.status));
  const status = failed ? failed.status : 200;
  const banner = $('banner');
  if (status === 401 || status === 403) {
    app.conn = 'auth';
    openToken(status === 401
      ? 'This gateway needs a bearer token for its admin API (http-token in its config file).'
      : 'The gateway refused this token: it is not the one in its config file.');
    banner.hidden = true;
  } else if (status === 503 || status === 502) {
    app.conn = 'unreachable';
    banner.replaceChildren(h('strong', 'The broker is unreachable. '),
      `${failed.error}. The page shows what it last knew and keeps trying.`);
    banner.hidden = false;
  } else if (status === 0) {
    app.conn = 'down';
    banner.replaceChildren(h('strong', 'The gateway does not answer. '),
      'The page keeps trying.');
    banner.hidden = false;
  } else {
    if (app.conn === 'auth') closeToken();
    app.conn = 'ok';
    banner.hidden = true;
  }
  const live = $('live');
  live.dataset.conn = app.conn;
  const text = {ok: `live · ${new Date().toLocaleTimeString('en-GB')}`, auth: 'token needed',
    unreachable: 'broker unreachable', down: 'gateway down'}[app.conn];
  if ($('live-text').textContent !== text) $('live-text').textContent = text;
}

// ---------------------------------------------------------------------
// Actions

function toast(text, kind = 'ok') {
  const close = h('button.ghost.small', {type: 'button', 'aria-label': 'Dismiss'}, '×');
  const el = h('div.toast', {class: kind, role: kind === 'error' ? 'alert' : 'status'},
    h('span', text), close);
  close.addEventListener('click', () => el.remove());
  $('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 12000 : 5000);
}

async function act(key, what, request) {
  if (app.busy.has(key)) return;
  app.busy.add(key);
  for (const b of document.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) b.disabled = true;
  const res = await request();
  app.busy.delete(key);
  if (res.ok) toast(what.done(res.data));
  else {
    toast(`${what.failed}: ${res.error}`, 'error');
    if (res.status === 401 || res.status === 403) connection([res]);
  }
  await refresh();
  for (const b of document.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) b.disabled = false;
}

function cancelButton(task) {
  if (FINAL.has(task.state)) return null;
  const key = `cancel-${task.id}`;
  return h('button.small.danger', {type: 'button', dataset: {key, action: 'cancel'},
    'aria-label': `Cancel task ${task.id}`, onclick: () => act(key,
      {done: (d) => `Task ${task.id} ${d.state}.`, failed: `Cancel task ${task.id}`},
      () => api.cancel(task.id))}, 'Cancel');
}

// A fan-out task is never retried (409): the broker's error of a dead one
// says "incomplete: ..." (its endpoints), and a full task lists them.
function isFanOut(task) {
  return (task.responses || []).length > 0 ||
    (task.attempts === 0 && (task.error || '').startsWith('incomplete: '));
}

function retryButton(task) {
  if (task.state !== 'dead' || isFanOut(task)) return null;
  const key = `retry-${task.id}`;
  return h('button.small', {type: 'button', dataset: {key, action: 'retry'},
    'aria-label': `Retry task ${task.id}`, onclick: () => act(key,
      {done: (d) => `Task ${task.id} is ${d.state} again.`, failed: `Retry task ${task.id}`},
      () => api.retry(task.id))}, 'Retry');
}

function taskActions(task) {
  return h('td.actions', cancelButton(task), retryButton(task));
}

function queueButtons(q) {
  const op = q.paused ? 'resume' : 'pause';
  const key = `${op}-${q.name}`;
  const purgeKey = `purge-${q.name}`;
  const deleteKey = `delete-${q.name}`;
  return h('td.actions',
    h('button.small', {type: 'button', dataset: {key, action: op},
      'aria-label': `${op === 'pause' ? 'Pause' : 'Resume'} queue ${q.name}`,
      onclick: () => act(key, {done: () => `Queue ${q.name} ${op}d.`, failed: `${op} ${q.name}`},
        () => api.queueOp(q.name, op))}, op === 'pause' ? 'Pause' : 'Resume'),
    h('button.small.danger', {type: 'button', dataset: {key: purgeKey, action: 'purge'},
      'aria-label': `Purge queue ${q.name}`,
      onclick: () => {
        if (!confirm(`Purge queue “${q.name}”? Its ready tasks are removed for good.`)) return;
        act(purgeKey, {done: (d) => `Queue ${q.name}: ${d.count} tasks purged.`,
          failed: `Purge ${q.name}`}, () => api.queueOp(q.name, 'purge'));
      }}, 'Purge'),
    // a fan-out's endpoint queue (TYPE@WORKER) is the broker's: never deleted (422)
    q.name.includes('@') ? null : h('button.small.danger', {type: 'button',
      dataset: {key: deleteKey, action: 'delete'},
      'aria-label': `Delete queue ${q.name}`,
      onclick: () => {
        if (!confirm(`Delete queue “${q.name}”? Its tasks are cancelled, running ones too, ` +
          'and removed with their history, and its settings go.')) return;
        act(deleteKey, {done: (d) => `Queue ${q.name} deleted: ${d.count} tasks cancelled.`,
          failed: `Delete ${q.name}`}, () => api.deleteQueue(q.name));
      }}, 'Delete'));
}

// ---------------------------------------------------------------------
// Overview

function renderSummary(stats) {
  const total = Object.fromEntries(STATES.map((s) => [s, 0]));
  let perMin = 0;
  for (const q of stats.queues) {
    for (const s of STATES) total[s] += q.counts[s] || 0;
    perMin += q.done_last_minute;
  }
  const slots = stats.workers.reduce((n, w) => n + w.slots, 0);
  const busy = stats.workers.reduce((n, w) => n + w.busy, 0);
  const workers = stats.workers.filter((w) => w.slots > 0).length;
  const tile = (label, value, note, cls) => h('div.tile', {class: cls},
    h('div.tile-value', value), h('div.tile-label', label), note && h('div.tile-note', note));
  patch($('summary'), h('div',
    tile('running', fmtNumber(total.running), `${fmtNumber(busy)} of ${fmtNumber(slots)} slots busy`, 's-running'),
    tile('ready', fmtNumber(total.ready), null, 's-ready'),
    tile('waiting', fmtNumber(total.waiting + total.scheduled),
      `${fmtNumber(total.scheduled)} scheduled`, 's-waiting'),
    tile('finished / min', fmtNumber(perMin), null, 's-succeeded'),
    tile('dead', fmtNumber(total.dead), null, 's-dead'),
    tile('workers', fmtNumber(workers), `up ${fmtDuration(stats.uptime_ms)}`, 'neutral')));
}

function renderQueues(stats) {
  const shown = ['waiting', 'scheduled', 'ready', 'running', 'succeeded', 'dead', 'cancelled', 'skipped'];
  const rows = stats.queues.slice().sort((a, b) => a.name.localeCompare(b.name)).map((q) => {
    const bins = app.rates.bins(q.name);
    return h('tr', {dataset: {queue: q.name}},
      h('th', {scope: 'row'}, q.name, q.paused && h('span.badge.paused', 'paused'),
        q.declared && h('span.badge.declared', {title: 'declared: listed while empty'},
          'declared')),
      shown.map((s) => h('td.num', {class: q.counts[s] ? `count s-${s}` : 'zero'},
        fmtNumber(q.counts[s]))),
      h('td.num', q.counts.ready ? fmtDuration(q.oldest_ready_age_ms) : '–'),
      h('td.num', fmtNumber(q.consumers)),
      h('td', h('div.rate', sparkline(bins, `${q.name}: ${q.done_last_minute} finished in the last minute`),
        h('span.num', `${fmtNumber(q.done_last_minute)}/min`))),
      queueButtons(q));
  });
  patch($('queues'), h('div', h('table.queues',
    h('thead', h('tr', h('th', {scope: 'col'}, 'Queue'),
      shown.map((s) => h('th.num', {scope: 'col'}, s)),
      h('th.num', {scope: 'col', title: 'age of the oldest ready task'}, 'oldest ready'),
      h('th.num', {scope: 'col'}, 'consumers'), h('th', {scope: 'col'}, 'finished'),
      h('th', {scope: 'col'}, h('span.sr-only', 'actions')))),
    h('tbody', rows.length ? rows : emptyRow(14, 'No queue yet.')))));
}

function renderWorkers(stats) {
  const rows = stats.workers.slice().sort((a, b) => a.name.localeCompare(b.name)).map((w) =>
    h('tr', {dataset: {worker: w.name}},
      h('th', {scope: 'row'}, w.name),
      h('td', w.queues.length ? w.queues.join(', ') : h('span.muted', 'none (client only)')),
      h('td', w.slots
        ? h('div.meter', {role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': w.slots,
          'aria-valuenow': w.busy, 'aria-label': `${w.busy} of ${w.slots} slots busy`},
        h('div.meter-bar', {style: `width:${Math.min(100, (100 * w.busy) / w.slots)}%`}),
        h('span', `${w.busy} / ${w.slots}`))
        : h('span.muted', '–')),
      h('td.num', fmtNumber(w.credit)),
      h('td.num', w.last_seen_age_ms < 1500 ? 'now' : fmtDuration(w.last_seen_age_ms) + ' ago')));
  patch($('workers'), h('div', h('table',
    h('thead', h('tr', ['Worker', 'Queues', 'Busy / slots', 'Credit', 'Last seen'].map((c, i) =>
      h('th', {scope: 'col', class: i >= 3 ? 'num' : null}, c)))),
    h('tbody', rows.length ? rows : emptyRow(5, 'No worker is connected.')))));
}

function moreNote(page) {
  return page.more ? h('p.hint', 'More are not shown.') : null;
}

function renderRunning(page) {
  const rows = page.tasks.map((t) => h('tr', {dataset: {taskId: t.id, state: t.state}},
    h('td', taskLink(t.id)), h('td', taskName(t)), h('td', t.queue),
    h('td', t.worker || '–'), h('td', ago(t.started_ms)),
    h('td.num', `${t.attempts} / ${t.max_attempts}`), taskActions(t)));
  patch($('running'), h('div', h('table',
    h('thead', h('tr', ['Task', 'Name', 'Queue', 'Worker', 'Started', 'Attempt', ''].map((c, i) =>
      h('th', {scope: 'col', class: i === 5 ? 'num' : null}, c || h('span.sr-only', 'actions'))))),
    h('tbody', rows.length ? rows : emptyRow(7, 'Nothing is running.'))), moreNote(page)));
}

function renderFailures(page) {
  const rows = page.tasks.map((t) => h('tr', {dataset: {taskId: t.id, state: t.state}},
    h('td', taskLink(t.id)), h('td', taskName(t)), h('td', t.queue),
    h('td', ago(t.finished_ms)),
    h('td.error', t.error ? h('span', {title: t.error}, t.error) : h('span.muted', 'no error text')),
    taskActions(t)));
  patch($('failures'), h('div', h('table',
    h('thead', h('tr', ['Task', 'Name', 'Queue', 'Ended', 'Error', ''].map((c) =>
      h('th', {scope: 'col'}, c || h('span.sr-only', 'actions'))))),
    h('tbody', rows.length ? rows : emptyRow(6, 'No dead task. All is well.')))));
}

function renderRecent(page) {
  const rows = page.tasks.map((t) => h('tr', {dataset: {taskId: t.id, state: t.state}},
    h('td', taskLink(t.id)), h('td', taskName(t)), h('td', t.queue),
    h('td', badge(t.state)), h('td', ago(t.created_ms)),
    h('td.num', t.finished_ms && t.started_ms ? fmtDuration(t.finished_ms - t.started_ms) : '–'),
    h('td', flowLabel(t) || h('span.muted', '–')), taskActions(t)));
  patch($('recent'), h('div', h('table',
    h('thead', h('tr', ['Task', 'Name', 'Queue', 'State', 'Created', 'Took', 'Flow', ''].map((c, i) =>
      h('th', {scope: 'col', class: i === 5 ? 'num' : null}, c || h('span.sr-only', 'actions'))))),
    h('tbody', rows.length ? rows : emptyRow(8, 'No task yet.')))));
}

// ---------------------------------------------------------------------
// A task

function field(label, value) {
  return [h('dt', label), h('dd', value ?? h('span.muted', '–'))];
}

function timeField(label, ms) {
  return field(label, ms ? [new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC'),
    ' (', ago(ms), ')'] : null);
}

function bytesBlock(title, obj, key) {
  if (obj[key] !== null && obj[key] !== undefined)
    return h('section.block', h('h2', title), h('pre.output', obj[key] === '' ? h('span.muted', '(empty)') : obj[key]));
  if (obj[key + '_base64'] !== undefined)
    return h('section.block', h('h2', `${title} (binary, base64)`), h('pre.output', obj[key + '_base64']));
  return null;
}

function parentList(parents) {
  if (!parents || !parents.length) return null;
  return h('ul.inline', parents.map((p) => h('li', taskLink(p.id, p.ref ? `${p.ref} (#${p.id})` : `#${p.id}`),
    h('span.muted', ` ${p.when.replace('_', ' ')}`))));
}

function renderTask(id, res) {
  const el = $('task');
  if (!res.ok) {
    if (res.status === 404)
      patch(el, h('div', h('p.back', h('a', {href: '#/'}, '← Overview')),
        h('h1', `Task ${id}`), h('p', `No task ${id}: it never existed, or it was removed after its retention.`)));
    return;
  }
  const t = res.data;
  const history = t.history.map((a) => h('tr', {class: `o-${a.outcome.replace(' ', '-')}`},
    h('td.num', a.attempt), h('td', ago(a.started_ms)),
    h('td.num', a.ended_ms && a.started_ms ? fmtDuration(a.ended_ms - a.started_ms)
      : a.outcome === 'running' ? fmtDuration(brokerNow() - a.started_ms) : '–'),
    h('td', a.worker || '–'), h('td', h('span.outcome', a.outcome)),
    h('td.error', a.error || h('span.muted', '–'))));
  const responses = t.responses.map((r) => h('tr',
    h('th', {scope: 'row'}, r.endpoint), h('td', taskLink(r.id)), h('td', badge(r.state)),
    h('td', ago(r.finished_ms)),
    h('td', r.result !== null && r.result !== undefined ? h('code', r.result)
      : r.error ? h('span.error', r.error) : h('span.muted', '–'))));
  patch(el, h('div',
    h('p.back', h('a', {href: '#/'}, '← Overview')),
    h('div.title-row',
      h('h1', `Task ${t.id}`, h('span.subtitle', t.ref ? ` ${t.ref} · ${t.name}` : ` ${t.name}`)),
      badge(t.state),
      h('div.actions', cancelButton(t), retryButton(t))),
    h('dl.fields',
      field('Queue', t.queue), field('Handler', t.name), field('Key', t.key),
      field('Priority', t.priority), field('Attempts', `${t.attempts} of ${t.max_attempts}`),
      field('Leases lost', t.lost), field('Worker', t.worker),
      field('Timeout', t.timeout_ms ? fmtDuration(t.timeout_ms) : 'none'),
      timeField('Created', t.created_ms), timeField('Not before', t.not_before_ms),
      timeField('Started', t.started_ms), timeField('Finished', t.finished_ms),
      field('Flow', t.flow ? [flowLabel(t), t.ref ? ` as “${t.ref}”` : ''] : null),
      field('After', parentList(t.parents)),
      t.origin ? field('Copy of', [taskLink(t.origin), ` for endpoint ${t.endpoint}`]) : null),
    t.error ? h('section.block', h('h2', 'Error'), h('pre.output.error', t.error)) : null,
    bytesBlock('Result', t, 'result'),
    h('section.block', h('h2', 'Attempts'), h('div.scroll', h('table',
      h('thead', h('tr', ['#', 'Started', 'Took', 'Worker', 'Outcome', 'Error'].map((c) =>
        h('th', {scope: 'col'}, c)))),
      h('tbody', history.length ? history : emptyRow(6, 'Not started yet.'))))),
    responses.length ? h('section.block', h('h2', 'Endpoints (fan-out)'), h('div.scroll', h('table',
      h('thead', h('tr', ['Endpoint', 'Copy', 'State', 'Finished', 'Result or error'].map((c) =>
        h('th', {scope: 'col'}, c)))),
      h('tbody', responses)))) : null));
}

// ---------------------------------------------------------------------
// A flow

function renderFlow(route, res) {
  const el = $('flow');
  const back = h('p.back', h('a', {href: '#/'}, '← Overview'));
  if (!res.ok) {
    if (res.status === 404)
      patch(el, h('div', back, h('h1', `${route.kind} ${route.id}`), h('p', res.error)));
    return;
  }
  const f = res.data;
  const tasks = f.tasks.slice().sort((a, b) => a.id - b.id);
  const chips = STATES.filter((s) => f.counts[s]).map((s) =>
    h('li', h('span.badge', {class: `s-${s}`}, `${f.counts[s]} ${s}`)));
  const open = (id) => { location.hash = `#/task/${id}`; };
  const rows = tasks.map((t, i) => h('tr', {dataset: {taskId: t.id, state: t.state}},
    h('td.num', i + 1), h('th', {scope: 'row'}, taskLink(t.id, t.ref || `#${t.id}`)), h('td', t.name),
    h('td', badge(t.state)), h('td', parentList(t.parents) || h('span.muted', '–')),
    h('td.num', `${t.attempts} / ${t.max_attempts}`), h('td', ago(t.finished_ms)),
    h('td.error', t.error || h('span.muted', '–')), taskActions(t)));
  const words = {dag: 'DAG', group: 'Group', pipe: 'Pipe'};
  patch(el, h('div',
    back,
    h('div.title-row',
      h('h1', `${words[f.kind]} ${f.flow}`, f.name ? h('span.subtitle', ` “${f.name}”`) : null),
      h('ul.chips', {'aria-label': 'tasks by state'}, chips)),
    f.kind === 'dag' ? h('section.block', h('h2', 'Graph'),
      h('div.legend', {'aria-hidden': 'true'},
        ['on_success', 'on_failure', 'always'].map((k) => h('span', {class: `leg e-${k}`}, k.replace('_', ' ')))),
      h('div.graph', drawDag(tasks, open))) : null,
    h('section.block', h('h2', f.kind === 'pipe' ? 'Steps' : f.kind === 'group' ? 'Members' : 'Tasks'),
      h('div.scroll', h('table',
        h('thead', h('tr', ['#', 'Name', 'Handler', 'State', 'After', 'Attempts', 'Ended', 'Error', ''].map((c) =>
          h('th', {scope: 'col'}, c || h('span.sr-only', 'actions'))))),
        h('tbody', rows))))));
}

// ---------------------------------------------------------------------
// Token

function openToken(why) {
  const panel = $('token-panel');
  if (why) $('token-why').textContent = why;
  if (panel.hidden) {
    panel.hidden = false;
    $('token-input').value = token();
    $('token-input').focus();
  }
}

function closeToken() {
  $('token-panel').hidden = true;
}

function setup() {
  $('token-open').addEventListener('click', () =>
    openToken('The admin API\'s bearer token (http-token in the gateway\'s config file), kept in this browser only.'));
  $('token-close').addEventListener('click', closeToken);
  $('token-clear').addEventListener('click', () => {
    setToken('');
    $('token-input').value = '';
    toast('Token forgotten.');
    refresh();
  });
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token-input').value.trim());
    closeToken();
    toast('Token saved.');
    refresh();
  });
  $('find').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('find-id').value.trim();
    if (/^\d+$/.test(id)) location.hash = `#/task/${id}`;
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  window.addEventListener('hashchange', onRoute);
  setInterval(refreshAges, 1000);
  onRoute();
}

setup();
