// Tasks: a live list (polled every 1.5 s while shown) with state badges,
// progress bars, throughput and ETA; filters by state, kind and source
// (the API's own filters), paged by the API (limit/offset).
import { h, replace, table, pageHeader, timeEl, progress, rate, duration, field } from '../lib/dom.js';
import * as api from '../lib/api.js';
import { stateBadge, throughput, eta, ranFor, lookups, byId, select } from '../lib/ops.js';

const PAGE = 50;
const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const KINDS = ['backup', 'restore', 'verify', 'prune', 'gc', 'forget', 'commit-export'];

export async function render(ctx) {
  const q = {
    state: ctx.query.get('state') || '',
    kind: ctx.query.get('kind') || '',
    source: ctx.query.get('source') || '',
    offset: Math.max(0, Number(ctx.query.get('offset')) || 0),
  };
  const names = await lookups('sources');
  if (!ctx.live()) return;
  const sources = byId(names.sources);

  const state = select('state', [['', 'Any state'], ...STATES.map((s) => [s, s])], q.state);
  const kind = select('kind', [['', 'Any kind'], ...KINDS.map((k) => [k, k])], q.kind);
  const srcOptions = [['', 'Any source'], ...[...names.sources].sort((a, b) => a.name.localeCompare(b.name)).map((s) => [s.id, s.name])];
  if (q.source && !sources.has(Number(q.source))) srcOptions.push([q.source, `#${q.source} (deleted)`]);
  const source = select('source', srcOptions, q.source);
  const apply = () => ctx.navigate('/tasks', { state: state.value, kind: kind.value, source: source.value });
  for (const s of [state, kind, source]) s.addEventListener('change', apply);
  const filters = h('form.toolbar', { 'aria-label': 'Filter the tasks', onsubmit: (e) => { e.preventDefault(); apply(); } },
    field('State', state), field('Kind', kind), field('Source', source));

  const listArea = h('div', { 'aria-live': 'off' });
  const pager = h('nav.pager', { 'aria-label': 'Pages' });
  replace(ctx.main, pageHeader('Tasks'), filters, listArea, pager);

  const cols = [
    { label: 'Task', cell: (t) => ctx.link(`/tasks/${t.id}`, `#${t.id}`) },
    { label: 'Kind', cell: (t) => t.kind },
    { label: 'Source', class: 'name', cell: (t) => (t.source_id ? ctx.link(`/sources/${t.source_id}`, (sources.get(t.source_id) || {}).name || `#${t.source_id}`) : '–') },
    { label: 'State', cell: (t) => [stateBadge(t.state), t.cancel_requested && t.state === 'running' ? h('small.help', ' cancelling…') : null] },
    {
      label: 'Progress',
      cell: (t) => (t.state === 'running' ? progress(t.progress, `Progress of task ${t.id}`)
        : t.state === 'succeeded' ? progress(100, `Progress of task ${t.id}`) : '–'),
    },
    { label: 'Throughput', class: 'num hide-narrow', cell: (t) => { const r = throughput(t); return r ? rate(r) : '–'; } },
    { label: 'ETA', class: 'num hide-narrow', cell: (t) => { const e = eta(t); return e === null ? '–' : duration(e); } },
    { label: 'Started', class: 'hide-narrow', cell: (t) => timeEl(t.started_at) },
    { label: 'Ran', class: 'num hide-narrow', cell: (t) => duration(ranFor(t)) },
    { label: 'By', class: 'hide-narrow', cell: (t) => t.created_by },
  ];
  const load = async () => {
    const rows = await api.get('/tasks', {
      state: q.state, kind: q.kind, source: q.source, limit: PAGE + 1, offset: q.offset,
    });
    if (!ctx.live()) return;
    const more = rows.length > PAGE;
    const shown = rows.slice(0, PAGE);
    replace(listArea, table(cols, shown, {
      caption: 'Tasks, newest first',
      empty: q.state || q.kind || q.source ? 'No task matches the filters.' : 'No task yet.',
      rowAttrs: (t) => ({ dataset: { task: String(t.id), state: t.state } }),
    }));
    const go = (offset) => ctx.navigate('/tasks', { state: q.state, kind: q.kind, source: q.source, offset: offset || '' });
    replace(pager,
      h('button.secondary', { type: 'button', disabled: q.offset === 0, onclick: () => go(Math.max(0, q.offset - PAGE)) }, 'Newer'),
      h('span', shown.length ? `${q.offset + 1}–${q.offset + shown.length}` : ''),
      h('button.secondary', { type: 'button', disabled: !more, onclick: () => go(q.offset + PAGE) }, 'Older'));
  };
  await load();
  ctx.every(1500, load);
}
