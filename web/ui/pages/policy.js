// One policy (#/policies/3): its settings, edit, delete, Prune now, its
// sources and the retention preview (which restore points each rule
// keeps and why, which go). #/policies/new is the form that adds one.
import {
  h, replace, table, pageHeader, timeEl, field, fieldError, errorBox, confirm, toast, badge,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import {
  lookups, byId, parseTags, NAME_RE, NAME_RULE, showError, clearErrors, select, retentionText, rpoText, parseRpo,
} from '../lib/ops.js';

const KEEP = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const KEEP_LABEL = {
  last: 'Last (restore points)', hourly: 'Hourly (hours)', daily: 'Daily (days)', weekly: 'Weekly (weeks)', monthly: 'Monthly (months)', yearly: 'Yearly (years)',
};
const FIELDS = [
  [/backup window|\bwindow\b/i, 'window'],
  [/schedule|calendar expression|interval/i, 'schedule'],
  [/tag/i, 'match_tags'],
  [/match_pattern|pattern/i, 'match_pattern'],
  [/priority/i, 'priority'],
  [/rpo/i, 'rpo'],
  [/datastore/i, 'datastore'],
  [/policy name|name "/i, 'name'],
  [/project/i, 'project'],
  [/keep/i, 'keep_last'],
];
const NAMES = ['name', 'project', 'schedule', 'window', 'datastore', 'priority', 'match_pattern', 'match_tags', 'rpo', 'enabled',
  ...KEEP.map((k) => `keep_${k}`)];

/** The add/edit form. pol: the policy to edit, or null. */
function policyForm(pol, names, onDone) {
  const managed = names.projects.filter((p) => can('manage', p.id));
  const name = h('input', { name: 'name', autocomplete: 'off', value: pol ? pol.name : '', maxlength: 128 });
  if (pol) name.disabled = true;
  const project = select('project', (pol ? names.projects : managed).map((p) => [p.id, p.name]), pol ? pol.project_id : (managed[0] || {}).id);
  if (pol) project.disabled = true;
  const schedule = h('input', { name: 'schedule', autocomplete: 'off', value: pol ? pol.schedule : 'daily', spellcheck: 'false' });
  const window_ = h('input', { name: 'window', autocomplete: 'off', value: pol ? pol.backup_window || '' : '', spellcheck: 'false' });
  const ds = select('datastore', names.datastores.map((d) => [d.name, d.name]),
    pol ? (names.datastores.find((d) => d.id === pol.datastore_id) || {}).name : (names.datastores[0] || {}).name);
  const priority = h('input', { name: 'priority', type: 'number', min: -1000, max: 1000, step: 1, value: String(pol ? pol.priority : 0) });
  const pattern = h('input', { name: 'match_pattern', autocomplete: 'off', value: pol ? pol.match_pattern || '' : '', spellcheck: 'false' });
  const tags = h('input', { name: 'match_tags', autocomplete: 'off', value: pol ? pol.match_tags.join(', ') : '' });
  const rpo = h('input', { name: 'rpo', autocomplete: 'off', value: pol && pol.rpo_seconds ? rpoText(pol.rpo_seconds).replace(' ', '') : '' });
  const enabled = h('input', { name: 'enabled', type: 'checkbox', id: 'pol-enabled', checked: pol ? pol.enabled : true });
  const keeps = KEEP.map((k) => h('input', {
    name: `keep_${k}`, type: 'number', min: 0, max: 100000, step: 1, inputmode: 'numeric', value: String(pol ? pol.retention[`keep_${k}`] : 0),
  }));
  const box = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, pol ? 'Save' : 'Add policy');
  const form = h('form', { novalidate: true, 'aria-label': pol ? 'Edit the policy' : 'Add a policy' },
    field('Name', name, { help: pol ? 'The name of a policy cannot change.' : NAME_RULE }),
    field('Project', project),
    field('Schedule', schedule, { help: 'When backups run (UTC): every 15m, hourly, daily, Mon..Fri 22:00, *:0/15.' }),
    field('Backup window', window_, { help: 'When backups may start, e.g. 22:00-06:00 (empty: any time).' }),
    field('Datastore', ds),
    h('fieldset.retention',
      h('legend', 'Retention: keep the newest …'),
      h('div.keep-grid', KEEP.map((k, i) => field(KEEP_LABEL[k], keeps[i]))),
      h('small.help', 'All 0: every restore point is kept.')),
    field('Match pattern', pattern, { help: 'A glob over source names (web-*) that takes sources automatically.' }),
    field('Match tags', tags, { help: 'Sources with any of these tags take this policy.' }),
    field('Priority', priority, { help: 'With several matching policies the highest wins; higher runs first.' }),
    field('RPO', rpo, { help: 'Recovery point objective, e.g. 24h, 90min, 2d (empty: none).' }),
    pol ? h('div.check', { dataset: { field: 'enabled' } }, enabled, h('label', { for: enabled.id }, 'Enabled (scheduled backups run)')) : null,
    box,
    h('div.actions', submit, pol ? h('button.secondary', { type: 'button', onclick: () => onDone(null) }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, NAMES);
    let bad = null;
    const fail = (n, m) => { if (!bad) bad = n; fieldError(form, n, m); };
    if (!pol) {
      if (!name.value.trim()) fail('name', 'Enter a name.');
      else if (!NAME_RE.test(name.value.trim())) fail('name', `The name must be ${NAME_RULE}`);
      if (!project.value) fail('project', 'You may not add policies to any project.');
    }
    if (!schedule.value.trim()) fail('schedule', 'Enter a schedule, e.g. daily.');
    const retention = {};
    KEEP.forEach((k, i) => {
      const v = keeps[i].value.trim() === '' ? 0 : Number(keeps[i].value);
      if (!Number.isInteger(v) || v < 0 || v > 100000) fail(`keep_${k}`, 'A whole number from 0 to 100000.');
      retention[`keep_${k}`] = v;
    });
    const prio = priority.value.trim() === '' ? 0 : Number(priority.value);
    if (!Number.isInteger(prio) || prio < -1000 || prio > 1000) fail('priority', 'A whole number from -1000 to 1000.');
    const rpoS = parseRpo(rpo.value);
    if (Number.isNaN(rpoS) || rpoS === 0) fail('rpo', 'Write it as a number and a unit: 24h, 90min, 2d or 3600s.');
    const tagList = parseTags(tags.value);
    const badTag = tagList.find((t) => !NAME_RE.test(t));
    if (badTag) fail('match_tags', `The tag "${badTag}" must be ${NAME_RULE}`);
    if (bad) { form.querySelector(`[name="${bad}"]`).focus(); return; }
    submit.disabled = true;
    try {
      let out;
      if (pol) {
        out = await api.patch(`/policies/${pol.id}`, {
          schedule: schedule.value.trim(),
          window: window_.value.trim() || null,
          retention,
          datastore: ds.value || undefined,
          priority: prio,
          match_pattern: pattern.value.trim() || null,
          match_tags: tagList,
          rpo_s: rpoS,
          enabled: enabled.checked,
        });
        toast('Policy saved');
      } else {
        const body = {
          name: name.value.trim(),
          project: Number(project.value),
          schedule: schedule.value.trim(),
          retention,
          priority: prio,
          match_tags: tagList,
        };
        if (window_.value.trim()) body.window = window_.value.trim();
        if (ds.value) body.datastore = ds.value;
        if (pattern.value.trim()) body.match_pattern = pattern.value.trim();
        if (rpoS) body.rpo_s = rpoS;
        out = await api.post('/policies', body);
        toast(`Policy ${out.name} added`);
      }
      onDone(out);
    } catch (x) {
      if (x.status === 401) return;
      showError(form, box, x, FIELDS);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

async function renderNew(ctx) {
  if (!can('manage')) {
    replace(ctx.main, h('h1', 'Not allowed'), h('p.not-allowed', 'Your role does not let you add policies.'), ctx.link('/policies', 'Back to the policies'));
    return;
  }
  const names = await lookups('datastores', 'projects');
  if (!ctx.live()) return;
  replace(ctx.main,
    pageHeader('Add a policy'),
    h('section.panel', policyForm(null, names, (p) => ctx.navigate(`/policies/${p.id}`))));
  ctx.main.querySelector('input[name="name"]').focus();
}

/** The retention preview: per source, each restore point kept (and why) or going. */
function previewView(ctx, pv) {
  if (!pv.sources.length) return h('p.help', 'The policy applies to no source yet.');
  return pv.sources.map((s) => h('section.preview', { 'aria-label': `Retention of ${s.source_name}` },
    h('h3', ctx.link(`/sources/${s.source_id}`, s.source_name), ` — ${s.kept} kept, ${s.removed} go`),
    table([
      { label: 'Restore point', cell: (r) => ctx.link(`/restore-points/${r.id}`, timeEl(r.time)) },
      { label: 'Fate', cell: (r) => (r.keep ? badge('kept', 'ok') : badge('goes', 'bad')) },
      { label: 'Why', cell: (r) => (r.keep ? r.reasons.join(', ') : h('span.help', 'no rule keeps it')) },
    ], s.restore_points, { caption: `Restore points of ${s.source_name}`, empty: 'No restore point yet.' })));
}

export async function render(ctx) {
  if (ctx.params.id === 'new') { await renderNew(ctx); return; }
  const [pol, names] = await Promise.all([
    api.get(`/policies/${encodeURIComponent(ctx.params.id)}`),
    lookups('datastores', 'projects', 'sources'),
  ]);
  if (!ctx.live()) return;
  const manage = can('manage', pol.project_id);
  const datastores = byId(names.datastores);
  const projects = byId(names.projects);
  const sources = names.sources.filter((s) => s.policy_id === pol.id);
  const editArea = h('div');
  const previewArea = h('div', h('p.loading', 'Loading…'));
  const loadPreview = async () => {
    try {
      const pv = await api.get(`/policies/${pol.id}/preview`);
      if (ctx.live()) replace(previewArea, h('p.help', 'As of ', timeEl(pv.time), `; rules: ${retentionText(pv.retention)}.`), previewView(ctx, pv));
    } catch (e) {
      if (e.status !== 401) replace(previewArea, errorBox(e.message));
    }
  };
  const prune = h('button.secondary', {
    type: 'button',
    onclick: async () => {
      const ok = await confirm(`Prune now with ${pol.name}?`, 'The restore points the preview marks as going are removed from the datastore.', { confirm: 'Prune', danger: true });
      if (!ok) return;
      try {
        const tasks = await api.post(`/policies/${pol.id}/prune`);
        if (tasks.length === 1) { ctx.navigate(`/tasks/${tasks[0].id}`); return; }
        toast(tasks.length ? `${tasks.length} prune tasks queued` : 'Nothing to prune: the policy applies to no source');
        if (tasks.length) ctx.navigate('/tasks', { kind: 'prune' });
      } catch (e) {
        if (e.status !== 401) toast(e.message, 'bad');
      }
    },
  }, 'Prune now');
  const actions = manage ? [
    h('button', {
      type: 'button',
      onclick: () => {
        replace(editArea, h('section.panel', { 'aria-labelledby': 'edit-h' }, h('h2', { id: 'edit-h' }, 'Edit'),
          policyForm(pol, names, (p) => { if (p) ctx.navigate(`/policies/${p.id}`, { saved: Date.now() }); else replace(editArea); })));
        editArea.querySelector('input[name="schedule"]').focus();
      },
    }, 'Edit'),
    prune,
    h('button.danger', {
      type: 'button',
      onclick: async () => {
        const ok = await confirm(`Delete policy ${pol.name}?`, `Its ${sources.length} source(s) lose it and may take another by the match rules. Restore points stay.`, { confirm: 'Delete', danger: true });
        if (!ok) return;
        try {
          await api.del(`/policies/${pol.id}`);
          toast('Policy deleted');
          ctx.navigate('/policies');
        } catch (e) {
          if (e.status !== 401) toast(e.message, 'bad');
        }
      },
    }, 'Delete'),
  ] : [];
  replace(ctx.main,
    pageHeader(`Policy ${pol.name}`, ...actions),
    editArea,
    h('section.panel', h('dl.facts',
      h('dt', 'State'), h('dd', pol.enabled ? badge('enabled', 'ok') : badge('disabled', 'warn')),
      h('dt', 'Schedule'), h('dd', h('code', pol.schedule), ' (UTC)'),
      h('dt', 'Backup window'), h('dd', pol.backup_window || 'any time'),
      h('dt', 'Next run'), h('dd', pol.enabled ? timeEl(pol.next_run) : '–'),
      h('dt', 'Keeps'), h('dd', retentionText(pol.retention)),
      h('dt', 'Datastore'), h('dd', (datastores.get(pol.datastore_id) || {}).name || `#${pol.datastore_id}`),
      h('dt', 'Match pattern'), h('dd', pol.match_pattern ? h('code', pol.match_pattern) : '–'),
      h('dt', 'Match tags'), h('dd', pol.match_tags.join(', ') || '–'),
      h('dt', 'Priority'), h('dd', String(pol.priority)),
      h('dt', 'RPO'), h('dd', rpoText(pol.rpo_seconds)),
      h('dt', 'Project'), h('dd', (projects.get(pol.project_id) || {}).name || `#${pol.project_id}`))),
    h('section', { 'aria-labelledby': 'src-h' }, h('h2', { id: 'src-h' }, 'Sources'),
      table([
        { label: 'Name', class: 'name', cell: (s) => ctx.link(`/sources/${s.id}`, s.name) },
        { label: 'Assigned', cell: (s) => (s.assigned_by === 'rule' ? 'by its rules' : 'by hand') },
        { label: 'Path', class: 'hide-narrow', cell: (s) => h('code', s.path) },
      ], sources, { caption: 'Sources of the policy', empty: 'No source has this policy.' })),
    h('section', { 'aria-labelledby': 'pv-h' }, h('h2', { id: 'pv-h' }, 'Retention preview'), previewArea));
  ctx.setTitle(`Policy ${pol.name}`);
  await loadPreview();
}
