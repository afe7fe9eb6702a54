// My account: change the password; my API tokens and S3 access keys.
import {
  h, replace, field, fieldError, errorBox, pageHeader, toast, badge, timeEl, copyButton, confirm, uid,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { session } from '../lib/session.js';
import { showError, clearErrors, table } from '../lib/forms.js';

const DAY = 86400;
const NAME_RE = /^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$/;

/** A secret shown once, with a Copy button. */
function secretBox(text, secret, cls) {
  return h('div.secret', { role: 'status' }, text, ' ', h(`code.${cls}`, secret), copyButton(secret, 'Copy'),
    h('span.muted', 'It is shown only now: copy it somewhere safe.'));
}

/** My API tokens: list, create (scope, projects, expiry; the secret shown once), revoke. */
async function tokens(ctx) {
  const list = h('div');
  const out = h('div', { 'aria-live': 'polite' });
  const projects = await api.get('/projects');
  const name = h('input', { name: 'name', required: true, maxlength: 128, autocomplete: 'off' });
  const scope = h('select', { name: 'scope' },
    [['full', 'Full (your rights)'], ['read-only', 'Read-only (GET requests)'], ['metrics', 'Metrics only']].map(([v, l]) => h('option', { value: v }, l)));
  const expiry = h('input', { name: 'expires_in_days', type: 'number', min: 1, max: 3660, value: '30', required: true });
  expiry.defaultValue = '30';
  const checks = projects.map((p) => {
    const id = uid('tp');
    return h('div.check', h('input', { type: 'checkbox', id, name: 'projects', value: String(p.id) }), h('label', { for: id }, p.name));
  });
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, 'aria-labelledby': 'tok-new-h' },
    h('h3', { id: 'tok-new-h' }, 'New API token'),
    field('Token name', name),
    field('Scope', scope),
    field('Expires after (days)', expiry, { help: 'At most the server\'s longest token lifetime.' }),
    projects.length > 1 ? h('fieldset', { dataset: { field: 'projects' } }, h('legend', 'Limit to projects (none checked: all of yours)'), checks,
      h('small.field-error', { hidden: true, role: 'alert' })) : null,
    box, h('button', { type: 'submit' }, 'Create token'));
  const FIELDS = { name: ['name'], expires_in_days: ['expires', 'lifetime'], projects: ['project'], scope: ['scope'] };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, Object.keys(FIELDS));
    replace(out);
    const days = Number(expiry.value);
    let bad = false;
    if (!NAME_RE.test(name.value)) { showError(form, box, { status: 422, message: 'name: 1-128 letters, digits, ".", "_", "-" or "@", not starting with "." or "-".' }, { name: ['name'] }); bad = true; }
    if (!Number.isInteger(days) || days < 1) { showError(form, box, { status: 422, message: 'expires: a whole number of days, at least 1.' }, { expires_in_days: ['expires'] }); bad = true; }
    if (bad) return;
    const picked = [...form.querySelectorAll('input[name="projects"]:checked')].map((c) => Number(c.value));
    try {
      const body = { name: name.value, scope: scope.value, expires_in_s: days * DAY };
      if (picked.length) body.projects = picked;
      const r = await api.post('/tokens', body);
      replace(out, secretBox(`Token ${r.info.name} created. Its secret:`, r.token, 'token-secret'));
      form.reset();
      await draw();
    } catch (x) {
      showError(form, box, x, FIELDS);
    }
  });
  async function draw() {
    const all = (await api.get('/tokens')).filter((t) => t.kind === 'api');
    if (!ctx.live()) return;
    const pname = (id) => (projects.find((p) => p.id === id) || { name: `project ${id}` }).name;
    replace(list, table([
      { label: 'Name', cell: (t) => t.name, class: 'name' },
      { label: 'Scope', cell: (t) => t.scope },
      { label: 'Projects', cell: (t) => (t.projects ? t.projects.map(pname).join(', ') : 'all of yours'), class: 'hide-narrow' },
      { label: 'State', cell: (t) => badge(t.state || (t.revoked_at ? 'revoked' : 'active'), (t.state || 'active') === 'active' ? 'ok' : 'idle') },
      { label: 'Expires', cell: (t) => timeEl(t.expires_at), class: 'hide-narrow' },
      { label: 'Last used', cell: (t) => timeEl(t.last_used_at), class: 'hide-narrow' },
      {
        label: 'Actions',
        cell: (t) => ((t.state || 'active') === 'active' ? h('button.danger', {
          type: 'button', 'aria-label': `Revoke token ${t.name}`,
          onclick: async () => {
            if (!await confirm(`Revoke the token ${t.name}?`, 'Programs using it are refused from now on.', { confirm: 'Revoke', danger: true })) return;
            try { await api.del(`/tokens/${t.id}`); toast(`Token ${t.name} revoked`); replace(out); await draw(); } catch (x) { replace(out, errorBox(x.message)); }
          },
        }, 'Revoke') : ''),
      },
    ], all, { caption: 'My API tokens', empty: 'You have no API token.', rowAttrs: (t) => ({ dataset: { token: t.name } }) }));
  }
  await draw();
  return h('section.panel', { 'aria-labelledby': 'tok-h' }, h('h2', { id: 'tok-h' }, 'My API tokens'), list, out, form);
}

/** My S3 access keys (the server's S3 gateway): list, create (the secret shown once), revoke. */
async function s3keys(ctx) {
  const list = h('div');
  const out = h('div', { 'aria-live': 'polite' });
  const desc = h('input', { name: 'description', maxlength: 200, autocomplete: 'off' });
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, 'aria-labelledby': 's3-new-h' },
    h('h3', { id: 's3-new-h' }, 'New S3 access key'),
    field('Description', desc, { help: 'What it is for (optional, at most 200 characters).' }),
    box, h('button', { type: 'submit' }, 'Create S3 key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, ['description']);
    replace(out);
    if (desc.value.length > 200) { showError(form, box, { status: 422, message: 'description: at most 200 characters.' }, { description: ['description'] }); return; }
    try {
      const r = await api.post('/s3-keys', { description: desc.value });
      replace(out, h('div.secret', { role: 'status' }, 'Access key id: ', h('code.s3-key-id', r.key.access_key_id), copyButton(r.key.access_key_id, 'Copy id')),
        secretBox('Secret access key:', r.secret_access_key, 's3-secret'));
      form.reset();
      await draw();
    } catch (x) {
      if (x.status === 409) replace(box, errorBox(`This server has no S3 gateway, so S3 keys cannot be made (${x.message}).`));
      else showError(form, box, x, { description: ['description'] });
    }
  });
  async function draw() {
    const all = await api.get('/s3-keys');
    if (!ctx.live()) return;
    replace(list, table([
      { label: 'Access key id', cell: (k) => h('code', k.access_key_id) },
      { label: 'Description', cell: (k) => k.description || '–', class: 'name' },
      { label: 'Created', cell: (k) => timeEl(k.created_at), class: 'hide-narrow' },
      { label: 'Last used', cell: (k) => timeEl(k.last_used_at), class: 'hide-narrow' },
      { label: 'State', cell: (k) => (k.revoked_at ? badge('revoked', 'idle') : badge('active', 'ok')) },
      {
        label: 'Actions',
        cell: (k) => (k.revoked_at ? '' : h('button.danger', {
          type: 'button', 'aria-label': `Revoke S3 key ${k.access_key_id}`,
          onclick: async () => {
            if (!await confirm(`Revoke the S3 key ${k.access_key_id}?`, 'S3 clients using it are refused from now on.', { confirm: 'Revoke', danger: true })) return;
            try { await api.del(`/s3-keys/${k.id}`); toast('S3 key revoked'); await draw(); } catch (x) { replace(out, errorBox(x.message)); }
          },
        }, 'Revoke')),
      },
    ], all, { caption: 'My S3 access keys', empty: 'You have no S3 access key.', rowAttrs: (k) => ({ dataset: { key: k.access_key_id } }) }));
  }
  await draw();
  return h('section.panel', { 'aria-labelledby': 's3-h' }, h('h2', { id: 's3-h' }, 'My S3 access keys'), list, out, form);
}

function passwordForm() {
  const current = h('input', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const again = h('input', { name: 'repeat', type: 'password', autocomplete: 'new-password', required: true });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true },
    field('Current password', current),
    field('New password', next, { help: 'At least 10 characters, not your user name.' }),
    field('New password again', again),
    out,
    h('button', { type: 'submit' }, 'Change password'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const n of ['current_password', 'new_password', 'repeat']) fieldError(form, n, '');
    replace(out);
    let bad = false;
    if (!current.value) { fieldError(form, 'current_password', 'Enter your current password.'); bad = true; }
    if (next.value.length < 10) { fieldError(form, 'new_password', 'The new password needs at least 10 characters.'); bad = true; }
    if (next.value !== again.value) { fieldError(form, 'repeat', 'The two new passwords differ.'); bad = true; }
    if (bad) return;
    try {
      const r = await api.post('/auth/password', { current_password: current.value, new_password: next.value });
      form.reset();
      const n = r.signed_out ? r.signed_out.sessions : 0;
      replace(out, h('p.notice', { role: 'status' },
        `Your password was changed. ${n ? `${n} other session${n === 1 ? ' was' : 's were'} signed out.` : ''}`));
      toast('Password changed');
    } catch (x) {
      if (x.status === 401 || x.status === 403 || /current/i.test(x.message)) {
        fieldError(form, 'current_password', x.message);
      } else if (x.status === 422) {
        fieldError(form, 'new_password', x.message);
      } else {
        replace(out, errorBox(x.message));
      }
    }
  });
  return form;
}

export async function render(ctx) {
  const me = session.me;
  replace(ctx.main,
    pageHeader('My account'),
    h('section.panel',
      h('dl.facts',
        h('dt', 'User'), h('dd', me.user.name),
        h('dt', 'Roles'), h('dd', me.roles.map((r) => `${r.role}${r.project_id === null ? ' (all projects)' : ` (project ${r.project_id})`}`).join(', ') || 'none'))),
    h('section.panel', { 'aria-labelledby': 'pw-h' }, h('h2', { id: 'pw-h' }, 'Change password'), passwordForm()),
    ...await Promise.all([section(ctx, tokens, 'My API tokens'), section(ctx, s3keys, 'My S3 access keys')]));
}

/** A section of the page, or its error (the rest of the page still works). */
async function section(ctx, f, title) {
  try {
    return await f(ctx);
  } catch (e) {
    if (e.status === 401) throw e;
    return h('section.panel', h('h2', title), errorBox(e.message));
  }
}
