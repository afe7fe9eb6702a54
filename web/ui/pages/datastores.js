// Datastores: use, logical size, dedup + compression ratio; the gc and
// verify schedules and the verify max age (admins edit them: PATCH
// /datastores/{id}, errors inline); gc and verify now (a 409 says a task
// of that kind is already queued or running); the newest verify's
// results with the damaged restore points named.

import {
  h, replace, field, errorBox, badge, bytes, timeEl, ago, pageHeader, toast,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { isGlobalAdmin } from '../lib/session.js';
import { showError, clearErrors, ratio, table } from '../lib/forms.js';

const FIELDS = {
  gc_schedule: ['gc schedule', 'gc_schedule'],
  verify_max_age_days: ['max age', 'verify_max_age_days'],
  verify_schedule: ['verify schedule', 'verify_schedule'],
};

function scheduleForm(ds, onSaved) {
  const gc = h('input', { name: 'gc_schedule', value: ds.gc_schedule, required: true, maxlength: 256 });
  const vs = h('input', { name: 'verify_schedule', value: ds.verify_schedule, required: true, maxlength: 256 });
  const age = h('input', { name: 'verify_max_age_days', type: 'number', min: 0, max: 3650, value: String(ds.verify_max_age_days), required: true });
  const box = h('div', { 'aria-live': 'polite' });
  const save = h('button', { type: 'submit' }, 'Save schedules');
  const form = h('form.schedules', { novalidate: true, 'aria-label': `Schedules of ${ds.name}` },
    field('Garbage collection schedule', gc, { help: 'daily, weekly, every 6h, Sun 03:00 (UTC), or never.' }),
    field('Verify schedule', vs, { help: 'A schedule expression, or never.' }),
    field('Verify max age (days)', age, { help: 'Verify re-reads a restore point when its last verification is older.' }),
    box, save);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, Object.keys(FIELDS));
    const days = Number(age.value);
    if (age.value.trim() === '' || !Number.isInteger(days) || days < 0 || days > 3650) {
      showError(form, box, { status: 422, message: 'verify_max_age_days must be a whole number of days between 0 and 3650' }, FIELDS);
      return;
    }
    const body = {};
    if (gc.value.trim() !== ds.gc_schedule) body.gc_schedule = gc.value.trim();
    if (vs.value.trim() !== ds.verify_schedule) body.verify_schedule = vs.value.trim();
    if (days !== ds.verify_max_age_days) body.verify_max_age_days = days;
    save.disabled = true;
    try {
      const updated = await api.patch(`/datastores/${ds.id}`, body);
      toast(`Schedules of ${ds.name} saved`);
      replace(box, h('p.notice', { role: 'status' }, 'Saved.'));
      onSaved(updated);
    } catch (x) {
      showError(form, box, x, FIELDS);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

function runButtons(ctx, ds, out) {
  const run = async (kind, btn) => {
    btn.disabled = true;
    replace(out);
    try {
      const t = await api.post(`/datastores/${ds.id}/${kind}`, {});
      replace(out, h('p.notice', { role: 'status' }, `${kind === 'gc' ? 'Garbage collection' : 'Verify'} queued: `,
        ctx.link(`/tasks/${t.id}`, `task ${t.id}`), '.'));
    } catch (x) {
      const msg = x.status === 409
        ? `A ${kind} task of ${ds.name} is already queued or running (${x.message}). See the tasks page.`
        : x.message;
      replace(out, errorBox(msg), x.status === 409 ? ctx.link('/tasks', 'Tasks') : null);
    } finally {
      btn.disabled = false;
    }
  };
  const gcBtn = h('button.secondary', { type: 'button', onclick: () => run('gc', gcBtn) }, 'Run gc now');
  const vBtn = h('button.secondary', { type: 'button', onclick: () => run('verify', vBtn) }, 'Verify now');
  return h('div.actions', gcBtn, vBtn);
}

function verifyResults(ctx, ds, tasks) {
  const mine = tasks.filter((t) => t.kind === 'verify' && t.datastore_id === ds.id);
  const last = mine.find((t) => t.state === 'succeeded' || t.state === 'failed');
  if (!last) return h('p.muted', 'No verify has finished yet.');
  const r = last.result || {};
  const bad = [
    ...(r.affected_snapshots || []).map((a) => ({ id: a.id, source: a.source, time: a.time, why: `${a.damaged_refs} damaged reference${a.damaged_refs === 1 ? '' : 's'}` })),
    ...(r.unreadable_snapshots || []).map((id) => ({ id, source: null, time: null, why: 'unreadable' })),
  ];
  return h('div.verify-result',
    h('p', 'Newest verify: ', ctx.link(`/tasks/${last.id}`, `task ${last.id}`), ' ',
      badge(last.state, last.state === 'succeeded' && !bad.length ? 'ok' : 'bad'), ' ',
      last.finished_at ? h('span', 'finished ', timeEl(last.finished_at)) : '',
      r.snapshots_checked !== undefined ? ` — ${r.snapshots_checked} restore points checked, ${r.packs_read} of ${r.packs_total} packs read (${bytes(r.bytes_read)})` : '',
      last.error ? ` — ${last.error}` : ''),
    bad.length
      ? table([
        { label: 'Damaged restore point', cell: (b) => ctx.link(`/restore-points/${b.id}`, b.id.slice(0, 16)), class: 'mono' },
        { label: 'Source', cell: (b) => b.source || '–', class: 'name' },
        { label: 'Taken', cell: (b) => (b.time ? new Date(b.time * 1000).toLocaleString() : '–') },
        { label: 'Found', cell: (b) => b.why },
      ], bad, { caption: `Damaged restore points of ${ds.name}` })
      : h('p', badge('No damage', 'ok'), ' Every restore point checked was whole.'));
}

function card(ctx, ds, tasks, admin, reload) {
  const out = h('div', { 'aria-live': 'polite' });
  const used = ds.bytes_used;
  return h('section.panel.datastore', { 'aria-labelledby': `ds-${ds.id}`, dataset: { datastore: ds.name } },
    h('div.page-header', h('h2', { id: `ds-${ds.id}` }, ds.name), admin ? runButtons(ctx, ds, out) : null),
    out,
    h('div.cards',
      h('div.card', h('div.value', bytes(used)), h('div.label', 'Used on disk')),
      h('div.card', h('div.value', bytes(ds.bytes_logical)), h('div.label', 'Logical (as backed up)')),
      h('div.card', h('div.value.ratio', ratio(used ? ds.bytes_logical / used : null)), h('div.label', 'Dedup + compression ratio'))),
    h('dl.facts',
      h('dt', 'Path'), h('dd.mono', ds.path),
      h('dt', 'Created'), h('dd', timeEl(ds.created_at)),
      admin ? null : [h('dt', 'Garbage collection'), h('dd', ds.gc_schedule), h('dt', 'Verify'), h('dd', `${ds.verify_schedule}, max age ${ds.verify_max_age_days} days`)]),
    admin ? h('details', h('summary', 'Schedules: ', `gc ${ds.gc_schedule}, verify ${ds.verify_schedule}, max age ${ds.verify_max_age_days} d`),
      scheduleForm(ds, reload)) : null,
    h('h3', 'Verify results'),
    h('div.verify-box', { dataset: { id: String(ds.id) } }, verifyResults(ctx, ds, tasks)));
}

export async function render(ctx) {
  const admin = isGlobalAdmin();
  const body = h('div');
  replace(ctx.main, pageHeader('Datastores'), body);
  const draw = async () => {
    const [stores, tasks] = await Promise.all([api.get('/datastores'), api.get('/tasks', { kind: 'verify', limit: 200 })]);
    if (!ctx.live()) return;
    replace(body, stores.length
      ? stores.map((ds) => card(ctx, ds, tasks, admin, draw))
      : h('p.empty', 'No datastore yet (arca datastore init, then arca server).'));
  };
  await draw();
  // Keep the verify results current (the forms are left as they are).
  ctx.every(5000, async () => {
    const [stores, tasks] = await Promise.all([api.get('/datastores'), api.get('/tasks', { kind: 'verify', limit: 200 })]);
    if (!ctx.live()) return;
    for (const ds of stores) {
      const box = body.querySelector(`.verify-box[data-id="${ds.id}"]`);
      if (box) replace(box, verifyResults(ctx, ds, tasks));
    }
  });
}
