// spark.js — each queue's finished tasks per second, kept for the last
// minutes, and drawn as a small SVG area chart.
//
// The broker counts a queue's finished tasks per second over the last 60
// seconds (done_per_second in /api/v1/stats); each poll overwrites the
// seconds it covers, so the page holds an exact history from one minute
// before it opened, up to HISTORY_S seconds.

import {svg} from './dom.js';

export const HISTORY_S = 300;
const BIN_S = 10;

export class Rates {
  constructor() {
    this.queues = new Map();  // name -> Map(second -> count)
    this.nowSec = 0;
  }

  // Takes one /api/v1/stats answer.
  update(stats) {
    this.nowSec = Math.floor(stats.now_ms / 1000);
    for (const q of stats.queues) {
      const seconds = q.done_per_second || [];
      let hist = this.queues.get(q.name);
      if (!hist) this.queues.set(q.name, hist = new Map());
      const first = this.nowSec - seconds.length + 1;
      seconds.forEach((count, i) => hist.set(first + i, count));
      for (const sec of hist.keys())
        if (sec <= this.nowSec - HISTORY_S) hist.delete(sec);
    }
  }

  // Finished tasks per BIN_S-second bin, oldest first (null: not known),
  // the bin still filling left out.
  bins(name) {
    const hist = this.queues.get(name) || new Map();
    const end = this.nowSec - (this.nowSec % BIN_S);  // start of the current bin
    const out = [];
    for (let start = end - HISTORY_S; start < end; start += BIN_S) {
      let sum = 0, known = false;
      for (let s = start; s < start + BIN_S; s++)
        if (hist.has(s)) {
          sum += hist.get(s);
          known = true;
        }
      out.push(known ? sum : null);
    }
    return out;
  }
}

// An area chart of values (nulls left blank), width x height pixels.
export function sparkline(values, label, width = 100, height = 26) {
  const max = Math.max(1, ...values.filter((v) => v !== null));
  const step = width / Math.max(1, values.length - 1);
  const y = (v) => (height - 2 - (v / max) * (height - 4)).toFixed(1);
  let line = '', area = '', run = [];
  const flush = () => {
    if (!run.length) return;
    const pts = run.map(([x, v]) => `${x.toFixed(1)},${y(v)}`);
    line += 'M' + pts.join('L');
    area += `M${run[0][0].toFixed(1)},${height}L` + pts.join('L') +
      `L${run[run.length - 1][0].toFixed(1)},${height}Z`;
    run = [];
  };
  values.forEach((v, i) => (v === null ? flush() : run.push([i * step, v])));
  flush();
  return svg('svg', {class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': label},
  svg('title', {}, label),
  svg('path', {class: 'spark-area', d: area || 'M0,0'}),
  svg('path', {class: 'spark-line', d: line || 'M0,0'}));
}
