// Sources: what is backed up where, its policy and how it got it, and its
// newest restore point. The API lists every source at once; the page
// shows PAGE of them and asks for the newest restore point of those only.
import { h, replace, table, pageHeader, timeEl } from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import { lookups, byId } from '../lib/ops.js';

const PAGE = 50;

/** The newest restore point of each source, a few requests at a time. */
async function newest(sources) {
  const out = new Map();
  const queue = [...sources];
  const worker = async () => {
    while (queue.length) {
      const s = queue.shift();
      try {
        const [rp] = await api.get('/restore-points', { source: s.name, project: s.project_id, limit: 1 });
        out.set(s.id, rp || null);
      } catch (e) {
        if (e.status === 401) throw e;
        out.set(s.id, undefined);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

export async function render(ctx) {
  const [sources, names] = await Promise.all([
    api.get('/sources'),
    lookups('nodes', 'projects', 'policies'),
  ]);
  if (!ctx.live()) return;
  const nodes = byId(names.nodes);
  const projects = byId(names.projects);
  const policies = byId(names.policies);
  const filter = (ctx.query.get('q') || '').toLowerCase();
  const shown = sources
    .filter((s) => !filter || s.name.toLowerCase().includes(filter) || s.tags.some((t) => t.toLowerCase().includes(filter)))
    .sort((a, b) => a.name.localeCompare(b.name));
  const offset = Math.max(0, Number(ctx.query.get('offset')) || 0);
  const rows = shown.slice(offset, offset + PAGE);
  const last = await newest(rows);
  if (!ctx.live()) return;

  const search = h('input', { type: 'search', name: 'q', id: 'src-q', value: ctx.query.get('q') || '' });
  const toolbar = h('form.toolbar', {
    role: 'search',
    onsubmit: (e) => { e.preventDefault(); ctx.navigate('/sources', { q: search.value }); },
  },
  h('div.field', h('label', { for: 'src-q' }, 'Name or tag'), search),
  h('button.secondary', { type: 'submit' }, 'Filter'));

  const cols = [
    { label: 'Name', class: 'name', cell: (s) => ctx.link(`/sources/${s.id}`, s.name) },
    { label: 'Kind', cell: (s) => s.kind },
    { label: 'Path', class: 'hide-narrow', cell: (s) => h('code', s.path) },
    { label: 'Node', class: 'hide-narrow', cell: (s) => (nodes.get(s.node_id) || {}).name || `#${s.node_id}` },
    { label: 'Project', class: 'hide-narrow', cell: (s) => (projects.get(s.project_id) || {}).name || `#${s.project_id}` },
    { label: 'Tags', class: 'hide-narrow', cell: (s) => s.tags.join(', ') || '–' },
    {
      label: 'Policy',
      cell: (s) => (s.policy_id
        ? [ctx.link(`/policies/${s.policy_id}`, (policies.get(s.policy_id) || {}).name || `#${s.policy_id}`),
          h('small.help', ` (${s.assigned_by === 'rule' ? 'by rule' : 'set by hand'})`)]
        : h('span.help', 'none')),
    },
    {
      label: 'Last restore point',
      cell: (s) => {
        const rp = last.get(s.id);
        if (rp === undefined) return '?';
        if (rp === null) return h('span.help', 'none yet');
        return ctx.link(`/restore-points/${rp.id}`, timeEl(rp.time));
      },
    },
  ];
  const pager = shown.length > PAGE ? h('nav.pager', { 'aria-label': 'Pages' },
    h('button.secondary', { type: 'button', disabled: offset === 0, onclick: () => ctx.navigate('/sources', { q: ctx.query.get('q'), offset: Math.max(0, offset - PAGE) }) }, 'Previous'),
    h('span', `${offset + 1}–${Math.min(offset + PAGE, shown.length)} of ${shown.length}`),
    h('button.secondary', { type: 'button', disabled: offset + PAGE >= shown.length, onclick: () => ctx.navigate('/sources', { q: ctx.query.get('q'), offset: offset + PAGE }) }, 'Next')) : null;

  replace(ctx.main,
    pageHeader('Sources', can('manage') ? h('a.button', { href: '#/sources/new' }, 'Add a source') : null),
    toolbar,
    table(cols, rows, { caption: 'Sources', empty: filter ? 'No source matches.' : 'No source yet.' }),
    pager);
}
