// My account: change the password; my API tokens and S3 access keys.
import { h, replace, field, fieldError, errorBox, pageHeader, toast } from '../lib/dom.js';
import * as api from '../lib/api.js';
import { session } from '../lib/session.js';

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
    h('section.panel', { 'aria-labelledby': 'pw-h' }, h('h2', { id: 'pw-h' }, 'Change password'), passwordForm()));
}
