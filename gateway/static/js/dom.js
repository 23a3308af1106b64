// dom.js — building elements and formatting values for the dashboard.

// h('tag#id.class', {attr: value, onclick: fn}, child, ...): an element.
// Children may be strings, numbers, nodes, arrays, or null/false (skipped).
export function h(spec, attrs, ...children) {
  const [head, ...classes] = spec.split('.');
  const [tag, id] = head.split('#');
  const el = document.createElement(tag || 'div');
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(' ');
  if (attrs === null || attrs === undefined || typeof attrs !== 'object' || attrs instanceof Node ||
      Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className += (el.className ? ' ' : '') + value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

// An SVG element with attributes and children.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Replaces the children of el with those of fresh when they differ, and
// gives the focus back to the element with the same data-key, so that a
// refresh does not take a button from under the keyboard.
export function patch(el, fresh) {
  if (el.innerHTML === fresh.innerHTML) return false;
  const focused = el.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  el.replaceChildren(...fresh.childNodes);
  if (focused) {
    const again = el.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  return true;
}

// ---------------------------------------------------------------------
// Formatting

export const FINAL = new Set(['succeeded', 'dead', 'cancelled', 'skipped']);
export const STATES = ['waiting', 'scheduled', 'ready', 'running', 'succeeded', 'dead',
  'cancelled', 'skipped'];

export function badge(state) {
  return h('span.badge', {class: 's-' + state}, state);
}

export function fmtNumber(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en');
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// The broker's clock minus ours, so that ages are right on a skewed browser.
let skewMs = 0;
export function setBrokerNow(ms) {
  if (ms) skewMs = ms - Date.now();
}
export function brokerNow() {
  return Date.now() + skewMs;
}

// How long ago, coarser as it gets older: "4.2 s ago", "3 min ago".
export function fmtAgo(ms) {
  if (!ms) return '–';
  const s = (brokerNow() - ms) / 1000;
  if (s < 1.5) return 'just now';
  if (s < 60) return fmtDuration(s * 1000) + ' ago';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// A <time> that says how long ago ms was; refreshAges() keeps it current.
export function ago(ms) {
  if (!ms) return h('span.muted', '–');
  const iso = new Date(ms).toISOString();
  return h('time', {datetime: iso, title: iso, dataset: {ago: ms}}, fmtAgo(ms));
}

export function refreshAges(root = document) {
  for (const el of root.querySelectorAll('time[data-ago]')) {
    const text = fmtAgo(Number(el.dataset.ago));
    if (el.textContent !== text) el.textContent = text;
  }
}

export function taskLink(id, label) {
  return h('a', {href: `#/task/${id}`}, label ?? `#${id}`);
}

export function flowLink(kind, id, label) {
  return h('a', {href: `#/flow/${kind}/${id}`}, label ?? `${kind} #${id}`);
}

export function flowLabel(task) {
  if (!task.flow) return null;
  const kind = task.flow_kind || 'dag';
  const link = flowLink(kind, task.flow, task.flow_name ? `${kind} ${task.flow_name}` : `${kind} #${task.flow}`);
  link.title = `${kind} ${task.flow}` + (task.flow_name ? ` “${task.flow_name}”` : '');
  return link;
}

// A task's name: its name in its flow and its handler, or its handler.
export function taskName(task) {
  return task.ref && task.ref !== task.name
    ? h('span.name', task.ref, h('span.muted', ` · ${task.name}`)) : h('span.name', task.name);
}

export function emptyRow(columns, text) {
  return h('tr.empty', h('td', {colspan: columns}, text));
}
