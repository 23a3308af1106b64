// dag.js — a DAG's tasks drawn as a graph in SVG: layers from left to
// right (a task one column right of its deepest parent), the order within
// a column settled by a few barycenter sweeps so that edges cross less
// (with a dummy node where a long edge passes a column),
// nodes coloured by state (style.css), edges styled by kind (on_success,
// on_failure, always). A parent outside the flow (a dependency on an
// existing task) is drawn as a dashed node of its own.

import {svg} from './dom.js';

const W = 168, H = 46, DUMMY_H = 8, GAP_X = 64, GAP_Y = 18, PAD = 12;

// {nodes, edges: [{from, to, when, via: [dummy nodes]}], width, height, byId}.
// An edge that spans several columns passes through a dummy node in each
// column between (Sugiyama's method), so that it bends around the nodes
// there instead of crossing them.
export function layout(tasks) {
  const nodes = new Map();
  const make = (id, task, ref) => ({id, task, ref, up: [], down: [], dummy: false});
  for (const t of tasks) nodes.set(t.id, make(t.id, t));
  const edges = [];
  for (const t of tasks)
    for (const p of t.parents || []) {
      if (!nodes.has(p.id)) nodes.set(p.id, make(p.id, null, p.ref));
      edges.push({from: p.id, to: t.id, when: p.when, via: []});
      nodes.get(t.id).up.push(p.id);
      nodes.get(p.id).down.push(t.id);
    }

  // rank: longest path from a root (Kahn's order; a cycle cannot be submitted)
  const pending = new Map([...nodes.values()].map((n) => [n.id, n.up.length]));
  const queue = [...nodes.values()].filter((n) => n.up.length === 0).map((n) => n.id);
  for (const n of nodes.values()) n.rank = 0;
  while (queue.length) {
    const n = nodes.get(queue.shift());
    for (const c of n.down) {
      const child = nodes.get(c);
      child.rank = Math.max(child.rank, n.rank + 1);
      pending.set(c, pending.get(c) - 1);
      if (pending.get(c) === 0) queue.push(c);
    }
  }
  const real = [...nodes.values()].sort((a, b) => a.id - b.id);

  // the layered graph: real nodes and dummies, each edge one column long
  const layered = new Map(real.map((n) => [n.id, {...n, up: [], down: []}]));
  let dummyId = -1;
  for (const e of edges) {
    let prev = layered.get(e.from);
    const last = layered.get(e.to);
    for (let r = prev.rank + 1; r < last.rank; r++) {
      const d = {id: dummyId--, task: null, up: [], down: [], dummy: true, rank: r};
      layered.set(d.id, d);
      e.via.push(d);
      prev.down.push(d.id);
      d.up.push(prev.id);
      prev = d;
    }
    prev.down.push(last.id);
    last.up.push(prev.id);
  }

  const columns = [];
  for (const n of layered.values()) (columns[n.rank] ||= []).push(n);
  columns.forEach((col) => col.forEach((n, i) => (n.order = i)));
  const center = (ids) => ids.length
    ? ids.reduce((sum, id) => sum + layered.get(id).order, 0) / ids.length : null;
  for (let sweep = 0; sweep < 6; sweep++) {
    const down = sweep % 2 === 0;
    const ranks = down ? [...columns.keys()] : [...columns.keys()].reverse();
    for (const r of ranks) {
      const col = columns[r];
      const key = new Map(col.map((n) => [n.id, center(down ? n.up : n.down) ?? n.order]));
      col.sort((a, b) => key.get(a.id) - key.get(b.id) || a.order - b.order);
      col.forEach((n, i) => (n.order = i));
    }
  }

  const size = (n) => (n.dummy ? DUMMY_H : H);
  const columnHeight = (col) => col.reduce((sum, n) => sum + size(n), 0) + (col.length - 1) * GAP_Y;
  const height = PAD * 2 + Math.max(...columns.map(columnHeight));
  columns.forEach((col, r) => {
    let y = PAD + (height - PAD * 2 - columnHeight(col)) / 2;
    for (const n of col) {
      n.x = PAD + r * (W + GAP_X);
      n.y = y;
      n.mid = y + size(n) / 2;
      y += size(n) + GAP_Y;
    }
  });
  const width = PAD * 2 + columns.length * W + (columns.length - 1) * GAP_X;
  const out = [...layered.values()].filter((n) => !n.dummy).sort((a, b) => a.id - b.id);
  return {nodes: out, edges, width, height, byId: layered};
}

// An edge's path: out of its parent's right side, through its dummies,
// into its child's left side, a curve between each two columns.
function edgePath(g, e) {
  const a = g.byId.get(e.from), b = g.byId.get(e.to);
  const points = [[a.x + W, a.mid], ...e.via.flatMap((d) => [[d.x, d.mid], [d.x + W, d.mid]]),
    [b.x - 2, b.mid]];
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1], [x1, y1] = points[i];
    if (i % 2 === 0) d += `L${x1},${y1}`;  // straight through a dummy's column
    else {
      const mid = (x0 + x1) / 2;
      d += `C${mid},${y0} ${mid},${y1} ${x1},${y1}`;
    }
  }
  return d;
}

function clip(text, max) {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

// The graph as an <svg>; open(id) is called when a node is chosen.
export function drawDag(tasks, open) {
  const g = layout(tasks);
  const defs = svg('defs', {}, ['on_success', 'on_failure', 'always'].map((kind) =>
    svg('marker', {id: `arrow-${kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
    svg('path', {d: 'M0,0L10,5L0,10z', class: `arrowhead e-${kind}`}))));
  const edges = g.edges.map((e) => {
    const a = g.byId.get(e.from), b = g.byId.get(e.to);
    return svg('path', {class: `edge e-${e.when}`, 'marker-end': `url(#arrow-${e.when})`,
      d: edgePath(g, e)},
    svg('title', {}, `${label(a)} → ${label(b)} (${e.when.replace('_', ' ')})`));
  });
  const nodes = g.nodes.map((n) => {
    const t = n.task;
    const state = t ? t.state : 'outside';
    const title = t
      ? `${label(n)}: task ${t.id}, ${t.name}, ${t.state}` +
        (t.attempts ? `, attempt ${t.attempts} of ${t.max_attempts}` : '') +
        (t.error ? `\n${t.error}` : '')
      : `task ${n.id}, outside this flow`;
    return svg('g', {class: `node s-${state}`, transform: `translate(${n.x},${n.y})`,
      tabindex: 0, role: 'link', 'aria-label': title, 'data-id': n.id,
      onclick: () => open(n.id),
      onkeydown: (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          open(n.id);
        }
      }},
    svg('title', {}, title),
    svg('rect', {width: W, height: H, rx: 7}),
    svg('text', {x: 10, y: 19, class: 'node-ref'}, clip(label(n), 22)),
    svg('text', {x: 10, y: 36, class: 'node-sub'},
      t ? clip(`${t.state} · ${t.name}`, 26) : `#${n.id} (outside)`));
  });
  return svg('svg', {class: 'dag', width: g.width, height: g.height,
    viewBox: `0 0 ${g.width} ${g.height}`, role: 'group',
    'aria-label': `graph of ${tasks.length} tasks; the table below lists them`},
  defs, svg('g', {class: 'edges'}, edges), svg('g', {class: 'nodes'}, nodes));
}

function label(n) {
  if (n.task) return n.task.ref || n.task.name || `#${n.id}`;
  return n.ref || `#${n.id}`;
}
