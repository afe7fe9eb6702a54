// One source (#/sources/3): its facts, Back up now, edit, delete (keep
// or remove its restore points), its restore points and recent tasks.
// #/sources/new is the form that adds one.
import {
  h, replace, table, pageHeader, timeEl, field, fieldError, errorBox, confirm, toast, bytes, progress, uid,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import {
  lookups, byId, parseTags, NAME_RE, NAME_RULE, showError, clearErrors, select, stateBadge, speedText,
} from '../lib/ops.js';

// Which field a 422 message of POST/PATCH /sources is about.
const FIELDS = [
  [/tag/i, 'tags'],
  [/source name|name "/i, 'name'],
  [/path|root/i, 'path'],
  [/policy/i, 'policy'],
  [/node/i, 'node'],
  [/project/i, 'project'],
  [/kind/i, 'kind'],
];
const NAMES = ['name', 'kind', 'node', 'path', 'tags', 'project', 'policy'];

/** The add/edit form. src: the source to edit, or null to add one. */
function sourceForm(ctx, src, names, onDone) {
  const managed = names.projects.filter((p) => can('manage', p.id));
  const name = h('input', { name: 'name', autocomplete: 'off', value: src ? src.name : '', required: true, maxlength: 128 });
  const kinds = [['files', 'Files (a directory tree)'], ['image', 'Image (a disk image file or block device)']];
  // libvirt sources come from a hypervisor's sync, never from this form.
  if (src && src.kind === 'libvirt') kinds.push(['libvirt', 'libvirt VM (from its hypervisor)']);
  const kind = select('kind', kinds, src ? src.kind : 'files');
  const node = select('node', names.nodes.map((n) => [n.name, `${n.name}${n.embedded ? ' (this server)' : ''}`]),
    src ? (names.nodes.find((n) => n.id === src.node_id) || {}).name : (names.nodes.find((n) => n.embedded) || names.nodes[0] || {}).name);
  const path = h('input', { name: 'path', autocomplete: 'off', value: src ? src.path : '', required: true, spellcheck: 'false' });
  const tags = h('input', { name: 'tags', autocomplete: 'off', value: src ? src.tags.join(', ') : '' });
  const project = select('project', (src ? names.projects : managed).map((p) => [p.id, p.name]), src ? src.project_id : (managed[0] || {}).id);
  const policyOptions = () => {
    const pid = Number(project.value);
    return [['', 'By the policies\' match rules'], ...names.policies.filter((p) => p.project_id === pid).map((p) => [p.name, p.name])];
  };
  const current = src && src.assigned_by === 'explicit' ? (names.policies.find((p) => p.id === src.policy_id) || {}).name : '';
  let policy = select('policy', policyOptions(), current);
  project.addEventListener('change', () => {
    const next = select('policy', policyOptions(), '');
    next.id = policy.id;
    next.setAttribute('aria-describedby', policy.getAttribute('aria-describedby'));
    policy.replaceWith(next);
    policy = next;
  });
  if (src) { kind.disabled = true; node.disabled = true; project.disabled = true; }
  const box = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, src ? 'Save' : 'Add source');
  const form = h('form', { novalidate: true, 'aria-label': src ? 'Edit the source' : 'Add a source' },
    field('Name', name, { help: NAME_RULE }),
    field('Kind', kind, { help: src ? 'The kind of a source cannot change.' : null }),
    field('Node', node, { help: src ? 'The node of a source cannot change.' : 'The machine the source is on.' }),
    field('Path', path, { help: 'An absolute path on the node, under its source roots.' }),
    field('Tags', tags, { help: 'Separated by commas or spaces; policies can take sources by tag.' }),
    field('Project', project),
    field('Policy', policy, { help: 'Name one, or let the match rules of the policies choose.' }),
    box,
    h('div.actions', submit, src ? h('button.secondary', { type: 'button', onclick: () => onDone(null) }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, NAMES);
    const tagList = parseTags(tags.value);
    let bad = null;
    const fail = (n, m) => { if (!bad) bad = n; fieldError(form, n, m); };
    if (!name.value.trim()) fail('name', 'Enter a name.');
    else if (!NAME_RE.test(name.value.trim())) fail('name', `The name must be ${NAME_RULE}`);
    if (!path.value.trim()) fail('path', 'Enter the path to back up.');
    else if (!path.value.trim().startsWith('/')) fail('path', 'The path must be absolute: it starts with "/".');
    const badTag = tagList.find((t) => !NAME_RE.test(t));
    if (badTag) fail('tags', `The tag "${badTag}" must be ${NAME_RULE}`);
    if (!src && !project.value) fail('project', 'You may not add sources to any project.');
    if (bad) { form.querySelector(`[name="${bad}"]`).focus(); return; }
    submit.disabled = true;
    try {
      let out;
      if (src) {
        const change = {};
        if (name.value.trim() !== src.name) change.name = name.value.trim();
        if (path.value.trim() !== src.path) change.path = path.value.trim();
        if (tagList.join(',') !== src.tags.join(',')) change.tags = tagList;
        if (policy.value !== current) change.policy = policy.value || null;
        out = await api.patch(`/sources/${src.id}`, change);
        toast('Source saved');
      } else {
        const body = { name: name.value.trim(), kind: kind.value, path: path.value.trim(), node: node.value || undefined, project: Number(project.value), tags: tagList };
        if (policy.value) body.policy = policy.value;
        out = await api.post('/sources', body);
        toast(`Source ${out.name} added`);
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
  const names = await lookups('nodes', 'projects', 'policies');
  if (!ctx.live()) return;
  if (!can('manage')) {
    replace(ctx.main, h('h1', 'Not allowed'), h('p.not-allowed', 'Your role does not let you add sources.'), ctx.link('/sources', 'Back to the sources'));
    return;
  }
  replace(ctx.main,
    pageHeader('Add a source'),
    h('section.panel', sourceForm(ctx, null, names, (s) => ctx.navigate(`/sources/${s.id}`))));
  ctx.main.querySelector('input[name="name"]').focus();
}

/** Argv arrays as the lines of a textarea (one JSON array a line). */
function argvLines(list) {
  return (list || []).map((a) => JSON.stringify(a)).join('\n');
}

/**
 * The lines of a textarea as argv arrays, or throws {line, message}:
 * each non-empty line a JSON array of strings.
 */
function parseArgvLines(text) {
  const out = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (!l) return;
    let v;
    try { v = JSON.parse(l); } catch { v = null; }
    if (!Array.isArray(v) || !v.length || v.some((x) => typeof x !== 'string')) {
      throw new Error(`Line ${i + 1} is not a command: write it as a JSON array of strings, e.g. ["virsh", "domfsfreeze", "web1"].`);
    }
    out.push(v);
  });
  return out;
}

/**
 * A libvirt source's pre/post commands (settings.hooks): shown, and
 * edited by managers (PATCH /sources/{id} {hooks}). docs/vm-ingest.md,
 * "Pre and post commands, consistency".
 */
function hooksPanel(ctx, src, manage) {
  const hooks = (src.settings && src.settings.hooks) || null;
  const list = (l) => (l && l.length ? h('ol.plain', l.map((a) => h('li', h('code', a.join(' '))))) : h('span.muted', 'none'));
  const shown = h('dl.facts',
    h('dt', 'Before the backup'), h('dd', list(hooks && hooks.pre)),
    h('dt', 'After the backup'), h('dd', list(hooks && hooks.post)),
    h('dt', 'If a pre command fails'), h('dd', hooks && hooks.on_pre_failure === 'crash_consistent'
      ? 'the backup goes on, crash-consistent (a warning in its log)' : 'the backup fails (the post commands still run)'));
  const section = h('section.panel.hooks', { 'aria-labelledby': 'hooks-h' },
    h('h2', { id: 'hooks-h' }, 'Pre and post commands'),
    h('p.help', 'Run on the host around the backup of a running domain, without a shell (e.g. virsh domfsfreeze before, virsh domfsthaw after). When all pre commands succeed the restore point is application-consistent. An agent runs them only when started with --allow-hooks.'),
    shown);
  if (!manage) return section;
  const pre = h('textarea', { name: 'pre', rows: 3, spellcheck: 'false' }, argvLines(hooks && hooks.pre));
  const post = h('textarea', { name: 'post', rows: 3, spellcheck: 'false' }, argvLines(hooks && hooks.post));
  const warn = h('input', { type: 'checkbox', name: 'pre_failure_is_warning', id: uid('pfw'), checked: !!hooks && hooks.on_pre_failure === 'crash_consistent' });
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, 'aria-label': 'Pre and post commands' },
    field('Pre commands', pre, { help: 'One command a line, as a JSON array: ["virsh", "domfsfreeze", "web1"].' }),
    field('Post commands', post, { help: 'Run after the backup job started, also when a pre command failed.' }),
    h('div.check', warn, h('label', { for: warn.id }, 'A failing pre command only warns (the restore point is crash-consistent)')),
    box,
    h('div.actions', h('button', { type: 'submit' }, 'Save commands')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, ['pre', 'post']);
    let body;
    try {
      const p = parseArgvLines(pre.value);
      let q;
      try { q = parseArgvLines(post.value); } catch (x) { fieldError(form, 'post', x.message); return; }
      body = p.length || q.length
        ? { hooks: { pre: p, post: q, on_pre_failure: warn.checked ? 'crash_consistent' : 'fail' } }
        : { hooks: null };
    } catch (x) {
      fieldError(form, 'pre', x.message);
      return;
    }
    try {
      await api.patch(`/sources/${src.id}`, body);
      toast(body.hooks ? 'Commands saved' : 'Commands removed');
      ctx.navigate(`/sources/${src.id}`);
    } catch (x) {
      if (x.status === 401) return;
      showError(form, box, x, [[/hooks\.pre/, 'pre'], [/hooks\.post/, 'post']]);
    }
  });
  section.append(form);
  return section;
}

/** Delete: ask what becomes of the restore points. */
async function deleteSource(ctx, src) {
  const group = uid('rp');
  const keep = h('input', { type: 'radio', name: group, value: 'keep', id: `${group}-keep`, checked: true });
  const remove = h('input', { type: 'radio', name: group, value: 'remove', id: `${group}-remove` });
  const body = h('fieldset.choices',
    h('legend', 'Its restore points'),
    h('div.check', keep, h('label', { for: keep.id }, 'Keep them (listed under the name, restorable)')),
    h('div.check', remove, h('label', { for: remove.id }, 'Remove them from the datastores')));
  const ok = await confirm(`Delete source ${src.name}?`, 'Its backups stop. This cannot be undone.', { confirm: 'Delete', danger: true, body });
  if (!ok) return;
  try {
    const r = await api.del(`/sources/${src.id}`, { restore_points: remove.checked ? 'remove' : 'keep' });
    toast(Array.isArray(r) && r.length ? `Source deleted; ${r.length} task(s) remove its restore points` : 'Source deleted');
    ctx.navigate('/sources');
  } catch (e) {
    if (e.status !== 401) toast(e.message, 'bad');
  }
}

export async function render(ctx) {
  if (ctx.params.id === 'new') { await renderNew(ctx); return; }
  const id = ctx.params.id;
  const [src, names] = await Promise.all([api.get(`/sources/${encodeURIComponent(id)}`), lookups('nodes', 'projects', 'policies')]);
  if (!ctx.live()) return;
  const nodes = byId(names.nodes);
  const projects = byId(names.projects);
  const policies = byId(names.policies);
  const manage = can('manage', src.project_id);
  const pol = src.policy_id ? policies.get(src.policy_id) : null;
  const hv = src.kind === 'libvirt'
    ? (await api.get('/hypervisors').catch(() => [])).find((x) => src.settings && x.id === src.settings.hypervisor_id)
    : null;
  if (!ctx.live()) return;

  const facts = h('dl.facts',
    h('dt', 'Kind'), h('dd', src.kind),
    h('dt', 'Path'), h('dd', h('code', src.path)),
    h('dt', 'Node'), h('dd', (nodes.get(src.node_id) || {}).name || `#${src.node_id}`),
    h('dt', 'Project'), h('dd', (projects.get(src.project_id) || {}).name || `#${src.project_id}`),
    h('dt', 'Tags'), h('dd.tags', src.tags.join(', ') || '–'),
    h('dt', 'Policy'), h('dd', pol ? [ctx.link(`/policies/${pol.id}`, pol.name), ` (${src.assigned_by === 'rule' ? 'by its match rules' : 'set by hand'})`]
      : src.policy_id ? `#${src.policy_id}` : 'none: backed up only when asked'),
    pol ? [h('dt', 'Next run'), h('dd', pol.next_run ? timeEl(pol.next_run) : '–')] : null,
    h('dt', 'Added'), h('dd', timeEl(src.created_at)),
    src.kind === 'libvirt' ? [
      h('dt', 'Hypervisor'), h('dd', hv ? ctx.link('/hypervisors', hv.name) : '?'),
      h('dt', 'Domain'), h('dd', h('code', src.path)),
      h('dt', 'On the host'), h('dd', src.settings && src.settings.removed
        ? [h('span.badge.badge-warn', 'removed'), ' the domain is gone from the host; its restore points are kept']
        : 'present at the last sync'),
      src.settings && src.settings.agent ? [h('dt', 'Backed up by'), h('dd', 'the agent on its host')] : null,
    ] : null);

  const editArea = h('div');
  const backup = h('button', {
    type: 'button',
    onclick: async () => {
      backup.disabled = true;
      try {
        const t = await api.post(`/sources/${src.id}/backup`);
        toast(`Backup queued: task ${t.id}`);
        ctx.navigate(`/tasks/${t.id}`);
      } catch (e) {
        if (e.status !== 401) toast(e.message, 'bad');
        backup.disabled = false;
      }
    },
  }, 'Back up now');
  const actions = manage ? [
    backup,
    h('button.secondary', {
      type: 'button',
      onclick: () => {
        replace(editArea, h('section.panel', { 'aria-labelledby': 'edit-h' }, h('h2', { id: 'edit-h' }, 'Edit'),
          sourceForm(ctx, src, names, (s) => { if (s) ctx.navigate(`/sources/${s.id}`); else replace(editArea); })));
        editArea.querySelector('input[name="name"]').focus();
      },
    }, 'Edit'),
    h('button.danger', { type: 'button', onclick: () => deleteSource(ctx, src) }, 'Delete'),
  ] : [];

  const rpArea = h('div', h('p.loading', 'Loading…'));
  const taskArea = h('div', h('p.loading', 'Loading…'));
  replace(ctx.main,
    pageHeader(`Source ${src.name}`, ...actions),
    editArea,
    h('section.panel', facts),
    src.kind === 'libvirt' ? hooksPanel(ctx, src, manage) : null,
    h('section', { 'aria-labelledby': 'rp-h' }, h('h2', { id: 'rp-h' }, 'Restore points'), rpArea),
    h('section', { 'aria-labelledby': 'tasks-h' }, h('h2', { id: 'tasks-h' }, 'Recent tasks'), taskArea));
  ctx.setTitle(`Source ${src.name}`);

  const loadRps = async () => {
    const rps = await api.get('/restore-points', { source: src.name, project: src.project_id, limit: 20 });
    if (!ctx.live()) return;
    replace(rpArea, table([
      { label: 'Time', cell: (r) => ctx.link(`/restore-points/${r.id}`, timeEl(r.time)) },
      { label: 'Size', class: 'num', cell: (r) => bytes(r.bytes_total) },
      { label: 'Added', class: 'num hide-narrow', cell: (r) => bytes(r.bytes_added) },
      { label: 'Files', class: 'num hide-narrow', cell: (r) => String(r.files) },
      { label: 'State', cell: (r) => [r.state, r.protected ? ' · protected' : ''] },
    ], rps, { caption: 'Restore points of the source', empty: 'No restore point yet.' }),
    rps.length === 20 ? h('p', ctx.link(`/restore-points${api.qs({ source: src.name, project: src.project_id })}`, 'All its restore points…')) : null);
  };
  const loadTasks = async () => {
    const tasks = await api.get('/tasks', { source: src.id, limit: 10 });
    if (!ctx.live()) return;
    replace(taskArea, table([
      { label: 'Task', cell: (t) => ctx.link(`/tasks/${t.id}`, `#${t.id} ${t.kind}`) },
      { label: 'State', cell: (t) => stateBadge(t.state) },
      { label: 'Progress', class: 'hide-narrow', cell: (t) => (t.state === 'running' ? progress(t.progress, `Progress of task ${t.id}`) : speedText(t)) },
      { label: 'Started', cell: (t) => timeEl(t.started_at) },
    ], tasks, { caption: 'Recent tasks of the source', empty: 'No task yet.' }),
    tasks.length ? h('p', ctx.link(`/tasks?source=${src.id}`, 'All its tasks…')) : null);
  };
  try {
    await Promise.all([loadRps(), loadTasks()]);
  } catch (e) {
    if (e.status === 401) return;
    replace(rpArea, errorBox(e.message));
  }
  // A backup started elsewhere shows up without a reload.
  let lastState = '';
  ctx.every(2000, async () => {
    await loadTasks();
    const state = taskArea.textContent;
    if (state !== lastState) { lastState = state; await loadRps(); }
  });
}
