// The dashboard: problems first (sources whose RPO is missed or that were
// never backed up, tasks that failed in the last 24 h, offline nodes,
// damaged restore points found by the latest verify of each datastore),
// then protection per source, the tasks of the last 24 h, datastore use
// with its ratio over the last 7 days, and the nodes. Refreshes itself
// every 5 s while shown.

import {
  h, replace, badge, progress, bytes, timeEl, ago, duration, pageHeader, errorBox,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { lineChart } from '../lib/chart.js';
import { ratio, percent, table } from '../lib/forms.js';

const DAY = 86400;

const STATUS = {
  rpo_missed: ['RPO missed', 'bad'],
  never_backed_up: ['Never backed up', 'bad'],
  no_policy: ['No policy', 'warn'],
  ok: ['OK', 'ok'],
};

export function statusBadge(s) {
  const [text, kind] = STATUS[s] || [s, 'idle'];
  return badge(text, kind);
}

export function taskBadge(state) {
  const kind = { succeeded: 'ok', failed: 'bad', cancelled: 'warn', running: 'idle', queued: 'idle' }[state] || 'idle';
  return badge(state, kind);
}

/** Things that may fail without failing the page (a missing report). */
async function maybe(p) {
  try { return { ok: await p }; } catch (e) { if (e.status === 401) throw e; return { err: e }; }
}

async function load() {
  const now = Math.floor(Date.now() / 1000);
  const [prot, tasks, failedTasks, verifies, nodes, stores, storage] = await Promise.all([
    maybe(api.get('/reports/protection')),
    api.get('/tasks', { limit: 500 }),
    api.get('/tasks', { state: 'failed', limit: 200 }),
    api.get('/tasks', { kind: 'verify', limit: 100 }),
    maybe(api.get('/nodes')),
    maybe(api.get('/datastores')),
    maybe(api.get('/reports/storage', { from: now - 7 * DAY, to: now })),
  ]);
  return {
    now, prot, tasks, failedTasks, verifies, nodes, stores, storage,
  };
}

/** The damaged restore points the newest finished verify of each datastore found. */
function damaged(tasks) {
  const seen = new Set();
  const out = [];
  for (const t of tasks) {
    if (t.kind !== 'verify' || t.state !== 'succeeded' || seen.has(t.datastore_id)) continue;
    seen.add(t.datastore_id);
    const r = t.result || {};
    for (const a of r.affected_snapshots || []) out.push({ id: a.id, source: a.source, time: a.time, task: t.id });
    for (const id of r.unreadable_snapshots || []) out.push({ id, source: null, time: null, task: t.id });
  }
  return out;
}

function problems(ctx, d) {
  const items = [];
  const sources = d.prot.ok ? d.prot.ok.sources : [];
  for (const s of sources.filter((x) => x.status === 'rpo_missed' || x.status === 'never_backed_up')) {
    items.push(h('li.problem', statusBadge(s.status), ' ',
      ctx.link(`/sources/${s.source_id}`, s.source, { class: 'name' }),
      s.last_good ? ` — last good restore point ${ago(s.last_good.time)}` : ' — no good restore point',
      s.rpo_seconds ? ` (RPO ${duration(s.rpo_seconds)})` : ''));
  }
  const failed = d.failedTasks.filter((t) => (t.finished_at || t.created_at) >= d.now - DAY);
  for (const t of failed) {
    items.push(h('li.problem', badge('Task failed', 'bad'), ' ',
      ctx.link(`/tasks/${t.id}`, `${t.kind} task ${t.id}`), t.error ? ` — ${t.error}` : '', ' ', h('span.muted', ago(t.finished_at))));
  }
  for (const n of (d.nodes.ok || []).filter((x) => x.state !== 'online')) {
    items.push(h('li.problem', badge('Node offline', 'bad'), ' ', h('span.name', n.name),
      ` — last seen ${n.last_heartbeat ? ago(n.last_heartbeat) : 'never'}`));
  }
  for (const r of damaged(d.verifies)) {
    items.push(h('li.problem', badge('Damaged', 'bad'), ' ', 'restore point ',
      ctx.link(`/restore-points/${r.id}`, `${r.source || ''} ${r.id.slice(0, 12)}`.trim(), { class: 'name' }),
      r.time ? ` of ${new Date(r.time * 1000).toLocaleString()}` : '', ' (', ctx.link(`/tasks/${r.task}`, 'verify'), ')'));
  }
  return h('section.panel', { 'aria-labelledby': 'dash-problems' },
    h('h2', { id: 'dash-problems' }, items.length ? `Problems (${items.length})` : 'Problems'),
    d.prot.err ? errorBox(`The protection report is not available: ${d.prot.err.message}`) : null,
    items.length ? h('ul.problems', items) : h('p.all-good', badge('All good', 'ok'), ' No problem found.'));
}

function protection(ctx, d) {
  if (!d.prot.ok) return null;
  return h('section', { 'aria-labelledby': 'dash-prot' },
    h('h2', { id: 'dash-prot' }, 'Protection'),
    table([
      { label: 'Source', cell: (s) => ctx.link(`/sources/${s.source_id}`, s.source), class: 'name' },
      { label: 'Status', cell: (s) => statusBadge(s.status) },
      { label: 'Policy', cell: (s) => (s.policy ? ctx.link(`/policies/${s.policy.id}`, s.policy.name) : '–'), class: 'hide-narrow' },
      { label: 'Last good restore point', cell: (s) => (s.last_good ? h('span', timeEl(s.last_good.time), ' ', h('span.muted', `(${ago(s.last_good.time)})`)) : 'none') },
      { label: 'Next run', cell: (s) => (s.next_run ? timeEl(s.next_run) : '–'), class: 'hide-narrow' },
      { label: 'RPO compliance (7 d)', cell: (s) => percent(s.compliance), class: 'num hide-narrow' },
    ], d.prot.ok.sources, { caption: 'Protection status per source, problems first', empty: 'No source yet.', rowAttrs: (s) => ({ dataset: { status: s.status, source: s.source } }) }));
}

function tasks24(ctx, d) {
  const recent = d.tasks.filter((t) => (t.finished_at || t.started_at || t.created_at) >= d.now - DAY || t.state === 'running' || t.state === 'queued');
  const counts = {};
  for (const t of recent) counts[t.state] = (counts[t.state] || 0) + 1;
  const running = recent.filter((t) => t.state === 'running');
  return h('section', { 'aria-labelledby': 'dash-tasks' },
    h('h2', { id: 'dash-tasks' }, 'Tasks of the last 24 hours'),
    h('div.cards', ['running', 'queued', 'succeeded', 'failed', 'cancelled'].map((st) => h('div.card', { dataset: { state: st } },
      h('div.value', String(counts[st] || 0)), h('div.label', st)))),
    running.length ? table([
      { label: 'Task', cell: (t) => ctx.link(`/tasks/${t.id}`, `${t.kind} ${t.id}`) },
      { label: 'Progress', cell: (t) => progress(t.progress, `task ${t.id} progress`) },
      { label: 'Done', cell: (t) => `${bytes(t.bytes_done)}${t.bytes_total ? ` of ${bytes(t.bytes_total)}` : ''}`, class: 'num hide-narrow' },
      { label: 'Started', cell: (t) => ago(t.started_at), class: 'hide-narrow' },
    ], running, { caption: 'Running tasks' }) : null,
    h('p', ctx.link('/tasks', 'All tasks')));
}

function storage(d) {
  const stores = d.stores.ok || [];
  const hist = d.storage.ok ? d.storage.ok.datastores : [];
  return h('section', { 'aria-labelledby': 'dash-store' },
    h('h2', { id: 'dash-store' }, 'Datastores'),
    table([
      { label: 'Datastore', cell: (s) => s.name, class: 'name' },
      { label: 'Used', cell: (s) => bytes(s.bytes_used), class: 'num' },
      { label: 'Logical', cell: (s) => bytes(s.bytes_logical), class: 'num' },
      { label: 'Dedup + compression', cell: (s) => ratio(s.bytes_used ? s.bytes_logical / s.bytes_used : null), class: 'num' },
    ], stores, { caption: 'Datastore use', empty: 'No datastore.' }),
    hist.some((x) => x.samples.length) ? lineChart('Datastore use, last 7 days',
      `Bytes used on disk per datastore: ${hist.map((x) => `${x.datastore} ${bytes(x.bytes_used)} now`).join('; ')}.`,
      hist.map((x) => ({ label: x.datastore, points: x.samples.map((p) => ({ x: p.time, y: p.bytes_used })) })),
      { yFormat: bytes, legend: true }) : null);
}

function nodes(d) {
  if (!d.nodes.ok) return null;
  return h('section', { 'aria-labelledby': 'dash-nodes' },
    h('h2', { id: 'dash-nodes' }, 'Nodes'),
    table([
      { label: 'Node', cell: (n) => n.name, class: 'name' },
      { label: 'State', cell: (n) => badge(n.state, n.state === 'online' ? 'ok' : 'bad') },
      { label: 'Last seen', cell: (n) => (n.last_heartbeat ? ago(n.last_heartbeat) : 'never') },
      { label: 'Version', cell: (n) => n.version || '–', class: 'hide-narrow' },
    ], d.nodes.ok, { caption: 'Node status' }));
}

export async function render(ctx) {
  const body = h('div.dashboard', { 'aria-live': 'off' });
  const stamp = h('span.muted', { role: 'status' });
  replace(ctx.main, pageHeader('Dashboard', stamp), body);
  const draw = async () => {
    const d = await load();
    if (!ctx.live()) return;
    replace(body, problems(ctx, d), protection(ctx, d), tasks24(ctx, d), storage(d), nodes(d));
    stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  await draw();
  ctx.every(5000, draw);
}
