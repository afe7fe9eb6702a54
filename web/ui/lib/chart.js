// Charts as inline SVG, built element by element with createElementNS
// (no library, no markup parsed from strings). Each chart is a <figure>
// whose <svg role="img"> has a <title> and a <desc>, and every chart is
// shown with a table of the same numbers under it (the caller adds it):
// the chart is for the eye, the table for screen readers and copying.
// Colours come from classes in style.css (no style attributes: CSP).

import { h, uid } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

/** An SVG element: s('line', {x1: 0, ...}, ...children). */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const W = 720;
const H = 260;
const PAD = { left: 64, right: 16, top: 14, bottom: 34 };

/** Round a maximum up to a "nice" number for the axis. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function frame(title, desc, cls) {
  const tid = uid('ct');
  const did = uid('cd');
  const svg = s('svg', {
    class: `chart ${cls}`, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${tid} ${did}`,
    preserveAspectRatio: 'xMidYMid meet',
  }, s('title', { id: tid }, title), s('desc', { id: did }, desc));
  return svg;
}

function yAxis(svg, max, fmt) {
  const x0 = PAD.left;
  const x1 = W - PAD.right;
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    const y = H - PAD.bottom - ((H - PAD.top - PAD.bottom) * i) / 4;
    svg.append(s('line', { class: i === 0 ? 'axis' : 'grid', x1: x0, x2: x1, y1: y, y2: y }));
    svg.append(s('text', { x: x0 - 6, y: y + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  svg.append(s('line', { class: 'axis', x1: x0, x2: x0, y1: PAD.top, y2: H - PAD.bottom }));
}

/** A short date and time for an axis label. */
export function shortTime(t) {
  const d = new Date(t * 1000);
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * A line chart over time. series: [{label, points: [{x: unix seconds,
 * y: number}]}]; every point is a <circle class="point"> (with a
 * <title> of its value), joined by a polyline. opts: yFormat(v),
 * xFormat(t), yMax (fixed top of the axis, e.g. 100 for percent).
 */
export function lineChart(title, desc, series, opts = {}) {
  const yFormat = opts.yFormat || String;
  const xFormat = opts.xFormat || shortTime;
  const svg = frame(title, desc, 'line-chart');
  const all = series.flatMap((se) => se.points);
  const xs = all.map((p) => p.x);
  let xMin = Math.min(...xs);
  let xMax = Math.max(...xs);
  if (!all.length) { xMin = 0; xMax = 1; }
  if (xMin === xMax) { xMin -= 1800; xMax += 1800; }
  const yMax = opts.yMax || niceMax(Math.max(0, ...all.map((p) => p.y)));
  yAxis(svg, yMax, yFormat);
  const px = (x) => PAD.left + ((W - PAD.left - PAD.right) * (x - xMin)) / (xMax - xMin);
  const py = (y) => H - PAD.bottom - ((H - PAD.top - PAD.bottom) * y) / yMax;
  for (const t of [xMin, (xMin + xMax) / 2, xMax]) {
    svg.append(s('text', { x: px(t), y: H - PAD.bottom + 18, 'text-anchor': t === xMin ? 'start' : t === xMax ? 'end' : 'middle' }, xFormat(Math.round(t))));
  }
  series.forEach((se, i) => {
    const g = s('g', { class: `series series-${i % 3}`, 'data-series': se.label });
    if (se.points.length > 1) {
      g.append(s('polyline', { points: se.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ') }));
    }
    for (const p of se.points) {
      g.append(s('circle', { class: 'point', cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: 3 },
        s('title', {}, `${se.label}, ${xFormat(p.x)}: ${yFormat(p.y)}`)));
    }
    svg.append(g);
  });
  const legend = series.length > 1 || opts.legend
    ? h('div.legend', series.map((se, i) => h('span', h(`span.swatch.swatch-${i % 3}`, { 'aria-hidden': 'true' }), se.label)))
    : null;
  return h('figure.chart-figure', svg, legend, all.length ? null : h('figcaption.empty', 'No data in this period.'));
}

/**
 * A bar chart. bars: [{label, value, bad?}]; every bar is a
 * <rect class="bar"> with a <title> of its label and value. opts:
 * yFormat(v), yMax.
 */
export function barChart(title, desc, bars, opts = {}) {
  const yFormat = opts.yFormat || String;
  const svg = frame(title, desc, 'bar-chart');
  const yMax = opts.yMax || niceMax(Math.max(0, ...bars.map((b) => b.value || 0)));
  yAxis(svg, yMax, yFormat);
  const inner = W - PAD.left - PAD.right;
  const slot = bars.length ? inner / bars.length : inner;
  const bw = Math.max(1, Math.min(48, slot * 0.7));
  const labelEvery = Math.max(1, Math.ceil(bars.length / 12));
  bars.forEach((b, i) => {
    const v = Math.max(0, b.value || 0);
    const hgt = ((H - PAD.top - PAD.bottom) * v) / yMax;
    const x = PAD.left + slot * i + (slot - bw) / 2;
    svg.append(s('rect', {
      class: b.bad ? 'bar bar-bad' : 'bar', x: x.toFixed(1), y: (H - PAD.bottom - hgt).toFixed(1), width: bw.toFixed(1), height: Math.max(0, hgt).toFixed(1),
    }, s('title', {}, `${b.label}: ${b.value === null || b.value === undefined ? 'none' : yFormat(b.value)}`)));
    if (i % labelEvery === 0) {
      const label = b.label.length > 14 ? `${b.label.slice(0, 13)}…` : b.label;
      svg.append(s('text', { x: (x + bw / 2).toFixed(1), y: H - PAD.bottom + 16, 'text-anchor': 'middle' }, label));
    }
  });
  return h('figure.chart-figure', svg, bars.length ? null : h('figcaption.empty', 'No data in this period.'));
}
