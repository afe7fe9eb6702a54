// Users (admins of all projects): add one with roles per project or in
// every project, edit the roles, disable or enable, reset the password
// (the generated one is shown once), delete.

import {
  h, replace, field, errorBox, badge, timeEl, pageHeader, toast, confirm, copyButton, uid,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { session } from '../lib/session.js';
import { showError, clearErrors, table } from '../lib/forms.js';

const ROLES = ['admin', 'operator', 'restore-only', 'auditor'];

function roleText(b, projects) {
  if (b.project_id === null || b.project_id === undefined) return `${b.role} (all projects)`;
  const p = projects.find((x) => x.id === b.project_id);
  return `${b.role} in ${p ? p.name : `project ${b.project_id}`}`;
}

/** An editor of role bindings: rows of (role, project) with add and remove. */
function roleEditor(initial, projects) {
  const rows = h('div.role-rows');
  const add = (b) => {
    const role = h('select', { name: 'role' }, ROLES.map((r) => h('option', { value: r, selected: b && b.role === r }, r)));
    const proj = h('select', { name: 'project' },
      h('option', { value: '', selected: b && (b.project_id === null || b.project_id === undefined) }, 'All projects'),
      projects.map((p) => h('option', { value: String(p.id), selected: b && b.project_id === p.id }, p.name)));
    const n = rows.childElementCount + 1;
    const rid = uid('role');
    const pid = uid('proj');
    role.id = rid;
    proj.id = pid;
    const row = h('div.role-row',
      h('div.field', h('label', { for: rid }, `Role ${n}`), role),
      h('div.field', h('label', { for: pid }, `Project of role ${n}`), proj),
      h('button.secondary', { type: 'button', 'aria-label': `Remove role ${n}`, onclick: () => row.remove() }, 'Remove'));
    rows.append(row);
  };
  for (const b of initial) add(b);
  const el = h('fieldset.roles', { dataset: { field: 'roles' } }, h('legend', 'Roles'), rows,
    h('button.secondary', { type: 'button', onclick: () => add(null) }, 'Add a role'),
    h('small.field-error', { hidden: true, role: 'alert' }));
  el.value = () => [...rows.querySelectorAll('.role-row')].map((r) => {
    const p = r.querySelector('select[name="project"]').value;
    return { role: r.querySelector('select[name="role"]').value, project: p === '' ? null : Number(p) };
  });
  return el;
}

const NAME_RE = /^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$/;

function addForm(projects, onAdded) {
  const name = h('input', { name: 'name', required: true, maxlength: 128, autocomplete: 'off' });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: 10 });
  const roles = roleEditor([{ role: 'restore-only', project_id: projects.length ? projects[0].id : null }], projects);
  const box = h('div', { 'aria-live': 'polite' });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, 'aria-labelledby': 'add-user-h' },
    h('h2', { id: 'add-user-h' }, 'Add a user'),
    field('User name', name, { help: 'Letters, digits, ".", "_", "-" or "@", not starting with "." or "-".' }),
    field('Password', pw, { help: 'At least 10 characters. Leave empty to have one generated (shown once).' }),
    roles, box, h('button', { type: 'submit' }, 'Add user'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, ['name', 'password', 'roles']);
    replace(out);
    let bad = false;
    if (!NAME_RE.test(name.value)) {
      showError(form, box, { status: 422, message: `user name "${name.value}" must be 1-128 letters, digits, '.', '_', '-' or '@', not starting with '.' or '-'` }, { name: ['name'] });
      bad = true;
    }
    if (pw.value && pw.value.length < 10) {
      showError(form, box, { status: 422, message: 'The password needs at least 10 characters.' }, { password: ['password'] });
      bad = true;
    }
    if (bad) return;
    try {
      const body = { name: name.value, roles: roles.value() };
      if (pw.value) body.password = pw.value;
      const r = await api.post('/users', body);
      replace(out, h('div.secret', { role: 'status' },
        `User ${r.user.name} added.`,
        r.password ? [' Their password, shown only now: ', h('code.generated-password', r.password), copyButton(r.password, 'Copy password')] : null));
      form.reset();
      onAdded();
    } catch (x) {
      showError(form, box, x, { name: ['name'], password: ['password'], roles: ['role', 'project'] });
    }
  });
  return form;
}

function editForm(u, projects, done) {
  const roles = roleEditor(u.roles, projects);
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form.panel', { novalidate: true, 'aria-labelledby': 'edit-user-h' },
    h('h2', { id: 'edit-user-h' }, `Roles of ${u.name}`),
    roles, box,
    h('div.actions', h('button', { type: 'submit' }, 'Save roles'), h('button.secondary', { type: 'button', onclick: () => done(false) }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, ['roles']);
    try {
      await api.patch(`/users/${u.id}`, { roles: roles.value() });
      toast(`Roles of ${u.name} saved`);
      done(true);
    } catch (x) {
      showError(form, box, x, { roles: ['role', 'project'] });
    }
  });
  return form;
}

export async function render(ctx) {
  const list = h('div');
  const area = h('div', { 'aria-live': 'polite' });
  const projects = await api.get('/projects');
  replace(ctx.main, pageHeader('Users'), list, area, h('section.panel', addForm(projects, () => draw())));

  async function act(f) {
    replace(area);
    try { await f(); } catch (x) { if (x.status === 401) throw x; replace(area, errorBox(x.message)); }
  }

  async function draw() {
    const users = await api.get('/users');
    if (!ctx.live()) return;
    const me = session.me.user.id;
    replace(list, table([
      { label: 'User', cell: (u) => u.name, class: 'name' },
      { label: 'Roles', cell: (u) => (u.roles.length ? h('ul.plain', u.roles.map((b) => h('li', roleText(b, projects)))) : h('span.muted', 'none')) },
      { label: 'State', cell: (u) => (u.disabled ? badge('disabled', 'warn') : badge('active', 'ok')) },
      { label: 'Added', cell: (u) => timeEl(u.created_at), class: 'hide-narrow' },
      {
        label: 'Actions',
        cell: (u) => h('div.actions',
          h('button.secondary', {
            type: 'button', 'aria-label': `Edit roles of ${u.name}`,
            onclick: () => replace(area, editForm(u, projects, async (saved) => { replace(area); if (saved) await draw(); })),
          }, 'Roles'),
          u.id === me ? null : h('button.secondary', {
            type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.name}`,
            onclick: () => act(async () => {
              await api.patch(`/users/${u.id}`, { disabled: !u.disabled });
              toast(`${u.name} ${u.disabled ? 'enabled' : 'disabled'}`);
              await draw();
            }),
          }, u.disabled ? 'Enable' : 'Disable'),
          h('button.secondary', {
            type: 'button', 'aria-label': `Reset password of ${u.name}`,
            onclick: () => act(async () => {
              if (!await confirm(`Reset the password of ${u.name}?`, 'A new password is generated and shown once; their sessions are signed out.', { confirm: 'Reset password' })) return;
              const r = await api.post(`/users/${u.id}/password`, {});
              replace(area, h('div.secret', { role: 'status' }, `New password of ${u.name}, shown only now: `,
                h('code.generated-password', r.password), copyButton(r.password, 'Copy password')));
            }),
          }, 'Reset password'),
          u.id === me ? null : h('button.danger', {
            type: 'button', 'aria-label': `Delete ${u.name}`,
            onclick: () => act(async () => {
              if (!await confirm(`Delete ${u.name}?`, 'Their sessions, API tokens and S3 keys stop working.', { confirm: 'Delete', danger: true })) return;
              await api.del(`/users/${u.id}`);
              toast(`${u.name} deleted`);
              await draw();
            }),
          }, 'Delete')),
      },
    ], users, { caption: 'Users', rowAttrs: (u) => ({ dataset: { user: u.name } }) }));
  }
  await draw();
}
