// Reports over a chosen period: protection (RPO compliance per source
// and per policy), storage (use and ratio over time per datastore), tasks
// (durations and throughput). Each chart is inline SVG with a table of
// the same numbers under it; each report downloads as CSV or JSON (the
// API's own, ?format=csv). The period is in the page's address
// (#/reports?period=7d or ?from=YYYY-MM-DD&to=YYYY-MM-DD).

import {
  h, replace, field, errorBox, bytes, rate, duration, timeEl, pageHeader, downloadLink, badge,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { lineChart, barChart } from '../lib/chart.js';
import { ratio, percent, dateToUnix, unixToDate, showError, clearErrors, table } from '../lib/forms.js';
import { statusBadge } from './dashboard.js';

const DAY = 86400;

/** Seconds for an axis: "0.25 s" below a minute, else as duration(). */
function secs(v) {
  return v < 60 ? `${Number(v.toFixed(2))} s` : duration(v);
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const PERIODS = [['1d', 'Last 24 hours', 1], ['7d', 'Last 7 days', 7], ['30d', 'Last 30 days', 30], ['90d', 'Last 90 days', 90], ['custom', 'Dates…', 0]];

/** {from, to} of the page's query, or an error message. */
function period(query) {
  const now = Math.floor(Date.now() / 1000);
  if (query.get('from') || query.get('to')) {
    const from = dateToUnix(query.get('from'));
    const to = query.get('to') ? dateToUnix(query.get('to'), true) : now;
    if (Number.isNaN(from) || Number.isNaN(to) || from === null) return { error: 'Give both dates as YYYY-MM-DD.' };
    if (from > to) return { error: 'The start of the period is after its end.' };
    return { from, to, key: 'custom' };
  }
  const p = PERIODS.find(([k]) => k === query.get('period')) || PERIODS[1];
  return { from: now - p[2] * DAY, to: now, key: p[0] };
}

function picker(ctx, per) {
  const sel = h('select', { name: 'period' }, PERIODS.map(([k, label]) => h('option', { value: k, selected: k === per.key }, label)));
  const from = h('input', { type: 'date', name: 'from', value: ctx.query.get('from') || (per.from ? unixToDate(per.from) : '') });
  const to = h('input', { type: 'date', name: 'to', value: ctx.query.get('to') || (per.to ? unixToDate(per.to) : '') });
  const dates = h('div.toolbar.dates', field('From', from), field('To', to));
  dates.hidden = per.key !== 'custom';
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form.toolbar.period', { novalidate: true, 'aria-label': 'Report period' },
    field('Period', sel), dates, h('button', { type: 'submit' }, 'Show'), box);
  sel.addEventListener('change', () => {
    dates.hidden = sel.value !== 'custom';
    if (sel.value !== 'custom') ctx.navigate('/reports', { period: sel.value });
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form, box, ['from', 'to']);
    if (sel.value !== 'custom') { ctx.navigate('/reports', { period: sel.value }); return; }
    const f = dateToUnix(from.value);
    const t = dateToUnix(to.value, true);
    if (!from.value || Number.isNaN(f)) { showError(form, box, { status: 422, message: 'from: enter the first day of the period.' }, { from: ['from'] }); return; }
    if (!to.value || Number.isNaN(t)) { showError(form, box, { status: 422, message: 'to: enter the last day of the period.' }, { to: ['to'] }); return; }
    if (f > t) { showError(form, box, { status: 422, message: 'to: the last day is before the first.' }, { to: ['to'] }); return; }
    ctx.navigate('/reports', { from: from.value, to: to.value });
  });
  return form;
}

function downloads(path, per, what) {
  const q = { from: per.from, to: per.to };
  return h('div.actions.downloads',
    downloadLink(api.url(path, { ...q, format: 'csv' }), 'CSV', `Download the ${what} report as CSV`),
    downloadLink(api.url(path, q), 'JSON', `Download the ${what} report as JSON`));
}

function section(id, title, path, per, what, content) {
  return h('section.panel.report', { 'aria-labelledby': id, dataset: { report: what } },
    h('div.page-header', h('h2', { id }, title), downloads(path, per, what)),
    content);
}

function protection(ctx, r, per) {
  const rows = r.sources;
  const withRpo = rows.filter((s) => s.compliance !== null && s.compliance !== undefined);
  return section('rep-prot', 'Protection', '/reports/protection', per, 'protection', [
    barChart('RPO compliance per source',
      `The share of the period during which each source's newest good restore point was within its RPO. ${withRpo.length} of ${rows.length} sources have an RPO.`,
      rows.map((s) => ({ label: s.source, value: s.compliance === null || s.compliance === undefined ? 0 : s.compliance * 100, bad: s.status !== 'ok' })),
      { yMax: 100, yFormat: (v) => `${Math.round(v)} %` }),
    table([
      { label: 'Source', cell: (s) => ctx.link(`/sources/${s.source_id}`, s.source), class: 'name' },
      { label: 'Project', cell: (s) => s.project, class: 'hide-narrow' },
      { label: 'Policy', cell: (s) => (s.policy ? s.policy.name : '–') },
      { label: 'Status', cell: (s) => statusBadge(s.status) },
      { label: 'RPO', cell: (s) => (s.rpo_seconds ? duration(s.rpo_seconds) : '–'), class: 'num hide-narrow' },
      { label: 'Last good', cell: (s) => (s.last_good ? timeEl(s.last_good.time) : 'none'), class: 'hide-narrow' },
      { label: 'Compliance', cell: (s) => percent(s.compliance), class: 'num' },
    ], rows, { caption: 'RPO compliance per source', empty: 'No source.' }),
    h('h3', 'Per policy'),
    table([
      { label: 'Policy', cell: (p) => ctx.link(`/policies/${p.policy_id}`, p.policy), class: 'name' },
      { label: 'Project', cell: (p) => p.project, class: 'hide-narrow' },
      { label: 'RPO', cell: (p) => (p.rpo_seconds ? duration(p.rpo_seconds) : '–'), class: 'num' },
      { label: 'Sources', cell: (p) => String(p.sources), class: 'num' },
      { label: 'With problems', cell: (p) => (p.problems ? badge(String(p.problems), 'bad') : '0'), class: 'num' },
      { label: 'Compliance', cell: (p) => percent(p.compliance), class: 'num' },
    ], r.policies, { caption: 'RPO compliance per policy', empty: 'No policy.' }),
  ]);
}

function storage(r, per) {
  const ds = r.datastores;
  const rows = ds.flatMap((d) => d.samples.map((s) => ({ ...s, datastore: d.datastore })));
  return section('rep-store', 'Storage', '/reports/storage', per, 'storage', [
    lineChart('Datastore use over time',
      `Bytes used on disk per datastore, ${rows.length} samples. Now: ${ds.map((d) => `${d.datastore} ${bytes(d.bytes_used)} used, ${bytes(d.bytes_logical)} logical, ratio ${ratio(d.ratio)}`).join('; ') || 'no datastore'}.`,
      ds.map((d) => ({ label: d.datastore, points: d.samples.map((s) => ({ x: s.time, y: s.bytes_used })) })),
      { yFormat: bytes, legend: true }),
    table([
      { label: 'Datastore', cell: (d) => d.datastore, class: 'name' },
      { label: 'Used now', cell: (d) => bytes(d.bytes_used), class: 'num' },
      { label: 'Logical now', cell: (d) => bytes(d.bytes_logical), class: 'num' },
      { label: 'Ratio now', cell: (d) => ratio(d.ratio), class: 'num' },
    ], ds, { caption: 'Datastores now' }),
    h('details', h('summary', `The ${plural(rows.length, 'sample', 'samples')}`),
      table([
        { label: 'Time', cell: (s) => timeEl(s.time) },
        { label: 'Datastore', cell: (s) => s.datastore, class: 'name' },
        { label: 'Used', cell: (s) => bytes(s.bytes_used), class: 'num' },
        { label: 'Logical', cell: (s) => bytes(s.bytes_logical), class: 'num' },
        { label: 'Ratio', cell: (s) => ratio(s.ratio), class: 'num' },
      ], rows, { caption: 'Storage samples', empty: 'No sample in this period.' })),
  ]);
}

function tasks(ctx, r, per) {
  const rows = r.tasks;
  const shown = rows.slice(0, 500);
  return section('rep-tasks', 'Tasks', '/reports/tasks', per, 'tasks', [
    barChart('Task durations',
      `How long each of the ${shown.length} tasks that ended in the period ran, newest first; failed ones are marked.`,
      shown.map((t) => ({ label: `${t.kind} ${t.id}`, value: t.duration_s || 0, bad: t.state !== 'succeeded' })),
      { yFormat: secs }),
    rows.length > shown.length ? h('p.muted', `The chart shows the newest 500 of ${rows.length} tasks; the downloads have all.`) : null,
    h('h3', 'Per kind'),
    table([
      { label: 'Kind', cell: (k) => k.kind },
      { label: 'Tasks', cell: (k) => String(k.count), class: 'num' },
      { label: 'Succeeded', cell: (k) => String(k.succeeded), class: 'num' },
      { label: 'Failed', cell: (k) => String(k.failed), class: 'num' },
      { label: 'Cancelled', cell: (k) => String(k.cancelled), class: 'num hide-narrow' },
      { label: 'Median duration', cell: (k) => duration(k.median_duration_s), class: 'num' },
      { label: '95th percentile', cell: (k) => duration(k.p95_duration_s), class: 'num hide-narrow' },
      { label: 'Mean throughput', cell: (k) => rate(k.mean_throughput), class: 'num' },
    ], r.kinds, { caption: 'Tasks per kind', empty: 'No task ended in this period.' }),
    h('details', h('summary', `The ${plural(rows.length, 'task', 'tasks')}`),
      table([
        { label: 'Task', cell: (t) => ctx.link(`/tasks/${t.id}`, String(t.id)) },
        { label: 'Kind', cell: (t) => t.kind },
        { label: 'State', cell: (t) => t.state },
        { label: 'Source', cell: (t) => t.source || '–', class: 'name hide-narrow' },
        { label: 'Ended', cell: (t) => timeEl(t.finished_at), class: 'hide-narrow' },
        { label: 'Duration', cell: (t) => duration(t.duration_s), class: 'num' },
        { label: 'Bytes', cell: (t) => bytes(t.bytes_done), class: 'num hide-narrow' },
        { label: 'Throughput', cell: (t) => rate(t.throughput), class: 'num' },
      ], shown, { caption: 'Tasks that ended in the period' })),
  ]);
}

export async function render(ctx) {
  const per = period(ctx.query);
  const head = [pageHeader('Reports'), picker(ctx, per)];
  if (per.error) {
    replace(ctx.main, ...head, errorBox(per.error));
    return;
  }
  const q = { from: per.from, to: per.to };
  const get = (p) => api.get(p, q).then((ok) => ({ ok }), (err) => { if (err.status === 401) throw err; return { err }; });
  const [p, s, t] = await Promise.all([get('/reports/protection'), get('/reports/storage'), get('/reports/tasks')]);
  if (!ctx.live()) return;
  const or = (res, title, f) => (res.ok ? f(res.ok) : h('section.panel', h('h2', title), errorBox(`The ${title.toLowerCase()} report failed: ${res.err.message}`)));
  replace(ctx.main, ...head,
    h('p.muted', 'From ', timeEl(per.from), ' to ', timeEl(per.to), '.'),
    or(p, 'Protection', (r) => protection(ctx, r, per)),
    or(s, 'Storage', (r) => storage(r, per)),
    or(t, 'Tasks', (r) => tasks(ctx, r, per)));
}
