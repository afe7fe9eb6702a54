// Policies: when sources are backed up, where to, what is kept, which
// sources they take (pattern and tags), and when each runs next.
import { h, replace, table, pageHeader, timeEl, badge } from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import { lookups, byId, retentionText, rpoText } from '../lib/ops.js';

export async function render(ctx) {
  const [policies, names] = await Promise.all([api.get('/policies'), lookups('datastores', 'projects', 'sources')]);
  if (!ctx.live()) return;
  const datastores = byId(names.datastores);
  const projects = byId(names.projects);
  const count = new Map();
  for (const s of names.sources) if (s.policy_id) count.set(s.policy_id, (count.get(s.policy_id) || 0) + 1);
  const rows = [...policies].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  const match = (p) => {
    const parts = [];
    if (p.match_pattern) parts.push(h('code', p.match_pattern));
    if (p.match_tags.length) parts.push(`tags: ${p.match_tags.join(', ')}`);
    return parts.length ? parts.flatMap((x, i) => (i ? [' · ', x] : [x])) : h('span.help', 'by name only');
  };
  replace(ctx.main,
    pageHeader('Policies', can('manage') ? h('a.button', { href: '#/policies/new' }, 'Add a policy') : null),
    table([
      { label: 'Name', class: 'name', cell: (p) => ctx.link(`/policies/${p.id}`, p.name) },
      { label: 'Schedule', cell: (p) => [h('code', p.schedule), p.backup_window ? h('small.help', ` in ${p.backup_window}`) : null] },
      { label: 'Next run', cell: (p) => (p.enabled ? timeEl(p.next_run) : badge('disabled', 'warn')) },
      { label: 'Keeps', class: 'hide-narrow', cell: (p) => retentionText(p.retention) },
      { label: 'Datastore', class: 'hide-narrow', cell: (p) => (datastores.get(p.datastore_id) || {}).name || `#${p.datastore_id}` },
      { label: 'Takes', class: 'hide-narrow', cell: match },
      { label: 'Sources', class: 'num', cell: (p) => String(count.get(p.id) || 0) },
      { label: 'RPO', class: 'hide-narrow', cell: (p) => rpoText(p.rpo_seconds) },
      { label: 'Priority', class: 'num hide-narrow', cell: (p) => String(p.priority) },
      { label: 'Project', class: 'hide-narrow', cell: (p) => (projects.get(p.project_id) || {}).name || `#${p.project_id}` },
    ], rows, { caption: 'Policies', empty: 'No policy yet: sources are backed up only when asked.' }));
}
