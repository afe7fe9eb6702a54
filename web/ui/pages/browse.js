// One restore point as a file manager: its facts, the folder of the
// hash's ?path= (breadcrumbs, a page of GET /restore-points/{id}/tree at
// a time: a 100k-entry folder lists its first entries at once and
// "Show more" fetches the next page), downloads (a plain link to
// /files: the session cookie goes with it), restore to a node path,
// protect/note, delete, and a mount (NBD, iSCSI or NFS export).
// Every name is untrusted: it only ever becomes text or an attribute.
import {
  h, replace, field, fieldError, errorBox, pageHeader, bytes, time, timeEl, badge, copyButton, toast, confirm, downloadLink, uid,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can, isGlobalAdmin } from '../lib/session.js';
import { shortId, stateBadge } from './restore_points.js';

/** Entries fetched per page of a folder. */
const TREE_PAGE = 200;

/** 'a//b/' -> 'a/b' (the tree API's form: no leading or trailing '/'). */
function norm(p) {
  return (p || '').split('/').filter((c) => c !== '' && c !== '.').join('/');
}

/** The hash of the browser at path p of restore point id. */
export function browsePath(id, p) {
  return `/restore-points/${id}${api.qs({ path: norm(p) })}`;
}

/** The download URL of a file, or of a folder as format (zip, tar). */
export function fileUrl(id, p, format) {
  return api.url(`/restore-points/${id}/files`, { path: norm(p) || null, format });
}

/** Octal permission bits with the kind's letter, as ls. */
function modeText(kind, mode) {
  const k = { dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b', socket: 's' }[kind] || '-';
  const bits = ['r', 'w', 'x'];
  let s = '';
  for (let i = 8; i >= 0; i -= 1) s += (mode & (1 << i)) ? bits[(8 - i) % 3] : '-';
  return k + s;
}

/**
 * A modal form: title, fields (nodes), the submit label; onSubmit(form,
 * {error, close, body}) runs on submit (throwing shows the message).
 * Returns the dialog. Escape or Cancel closes it.
 */
export function formDialog(title, fields, submitLabel, onSubmit, opts = {}) {
  const hid = uid('dlg');
  const err = h('div', { 'aria-live': 'assertive' });
  const submit = h(`button${opts.danger ? '.danger' : ''}`, { type: 'submit' }, submitLabel);
  const cancel = h('button.secondary', { type: 'button' }, 'Cancel');
  const body = h('div.dialog-body', fields);
  const form = h('form', { novalidate: true }, h('h2', { id: hid }, title), body, err, h('div.actions', cancel, submit));
  const d = h('dialog.form-dialog', { 'aria-labelledby': hid }, form);
  const close = () => { if (d.open) d.close(); };
  cancel.addEventListener('click', close);
  // Not left over a sign-in page (the session ended) or another page
  // (the back button): the dialog is not inside the page's element.
  window.addEventListener('arca:signed-out', close);
  window.addEventListener('hashchange', close);
  d.addEventListener('close', () => {
    window.removeEventListener('arca:signed-out', close);
    window.removeEventListener('hashchange', close);
    d.remove();
  });
  const helpers = {
    error: (msg) => replace(err, msg ? errorBox(msg) : null),
    close,
    body,
    actions: (...nodes) => replace(form.querySelector('.actions'), nodes),
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    helpers.error('');
    for (const f of form.querySelectorAll('[data-field]')) fieldError(form, f.dataset.field, '');
    submit.disabled = true;
    try {
      await onSubmit(form, helpers);
    } catch (x) {
      helpers.error(x.message || String(x));
    } finally {
      submit.disabled = false;
    }
  });
  document.body.append(d);
  d.showModal();
  const first = form.querySelector('input:not([type=hidden]):not([type=checkbox]), select, textarea');
  if (first) first.focus();
  return d;
}

/**
 * Restore as import: recreate a libvirt VM on a hypervisor of the
 * restore point's project (its disks written to a folder there, its
 * domain defined from the saved XML, optionally under a new name), as a
 * restore task (POST /restore-points/{id}/import).
 */
async function importDialog(ctx, rp) {
  const hvs = (await api.get('/hypervisors')).filter((x) => x.project_id === rp.project_id);
  const ssh = hvs.filter((x) => x.access === 'ssh');
  const hv = h('select', { name: 'hypervisor' }, ssh.map((x) => h('option', { value: x.name }, x.name)));
  const name = h('input', { name: 'name', autocomplete: 'off', spellcheck: 'false', maxlength: 64 });
  const dir = h('input', { name: 'dir', autocomplete: 'off', spellcheck: 'false', placeholder: '/var/lib/libvirt/images' });
  const format = h('select', { name: 'format' }, h('option', { value: 'qcow2' }, 'qcow2'), h('option', { value: 'raw' }, 'raw'));
  const start = h('input', { name: 'start', type: 'checkbox', id: uid('st') });
  const none = ssh.length ? null : h('p.notice', hvs.length
    ? 'The hypervisors of this project are reached by their agents; an import goes over SSH. Add the host with SSH access first.'
    : 'This project has no hypervisor. Add one first.', ' ', h('a', { href: '#/hypervisors' }, 'Hypervisors'));
  formDialog('Import to a hypervisor', [
    h('dl.facts', h('dt', 'VM'), h('dd.name', rp.source_name), h('dt', 'Taken'), h('dd', timeEl(rp.time))),
    none,
    field('Hypervisor', hv),
    field('New name', name, { help: 'Empty: the original name (refused while a domain of that name exists). No uuid or MAC address is kept.' }),
    field('Folder on the host', dir, { help: 'An absolute path on the hypervisor: the disk files are written there.' }),
    field('Disk format', format),
    h('div.check', start, h('label', { for: start.id }, 'Start the VM once it is defined')),
  ], 'Import', async (form, dlg) => {
    if (!ssh.length) { fieldError(form, 'hypervisor', 'There is no hypervisor to import onto.'); return; }
    const d = dir.value.trim();
    if (!d) { fieldError(form, 'dir', 'Enter the folder on the host for the disk files.'); return; }
    if (!d.startsWith('/')) { fieldError(form, 'dir', 'The folder must be an absolute path (starting with /).'); return; }
    let task;
    try {
      task = await api.post(`/restore-points/${rp.id}/import`, {
        hypervisor: hv.value, name: name.value.trim() || null, dir: d, format: format.value, start: start.checked,
      });
    } catch (x) {
      if (x.status === 422 || x.status === 400 || x.status === 409) {
        const f = /hypervisor|node/i.test(x.message) ? 'hypervisor' : /name/i.test(x.message) ? 'name' : /format/i.test(x.message) ? 'format' : 'dir';
        fieldError(form, f, x.message);
        return;
      }
      throw x;
    }
    dlg.close();
    toast(`Import started (task ${task.id})`);
    ctx.navigate(`/tasks/${task.id}`);
  });
}

/** The restore dialog for path (null: all of the restore point). */
function restoreDialog(ctx, rp, path) {
  const target = h('input', { name: 'target', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: '/srv/restore/here' });
  const node = h('input', { name: 'node', autocomplete: 'off', spellcheck: 'false' });
  const overwrite = h('input', { name: 'overwrite', type: 'checkbox', id: uid('ow') });
  const special = h('input', { name: 'special_files', type: 'checkbox', id: uid('sp') });
  const what = path ? `/${path}` : 'Everything in the restore point';
  // A whole image is restored as one disk: to a file or device, not a folder.
  const wholeImage = rp.kind === 'image' && !path;
  formDialog('Restore', [
    h('dl.facts', h('dt', 'What'), h('dd.name', what), h('dt', 'From'), h('dd', `${rp.source_name}, `, timeEl(rp.time))),
    wholeImage
      ? field('Target file or device on the node', target, { help: 'An absolute path under the node\'s restore roots: the disk is written there (a new file, unless you allow overwriting).' })
      : field('Target folder on the node', target, { help: 'An absolute path under the node\'s restore roots. A new or empty folder, unless you allow overwriting.' }),
    field('Node', node, { help: 'Optional: the node that owns the datastore is the default.' }),
    h('div.check-field', { dataset: { field: 'overwrite' } },
      h('div.check', overwrite, h('label', { for: overwrite.id }, 'Overwrite: write into a folder that holds data, replacing entries of the same name')),
      h('small.field-error', { role: 'alert', hidden: true })),
    isGlobalAdmin() ? h('div.check', special, h('label', { for: special.id }, 'Restore special files (device nodes, setuid/setgid bits)')) : null,
  ], 'Restore', async (form, dlg) => {
    const t = target.value.trim();
    if (!t) { fieldError(form, 'target', wholeImage ? 'Enter the file or device to write the disk to.' : 'Enter the folder to restore into.'); return; }
    if (!t.startsWith('/')) { fieldError(form, 'target', 'The target must be an absolute path (starting with /).'); return; }
    let task;
    try {
      task = await api.post(`/restore-points/${rp.id}/restore`, {
        target: t,
        path: path || null,
        node: node.value.trim() || null,
        overwrite: overwrite.checked,
        special_files: special.checked,
      });
    } catch (x) {
      if (x.status === 422 || x.status === 400) {
        fieldError(form, /node/i.test(x.message) && !/target/i.test(x.message) ? 'node' : 'target', x.message);
        return;
      }
      if (x.status === 409) { fieldError(form, 'target', x.message); return; }
      throw x;
    }
    // A target that holds data is refused by the node when the task
    // starts: wait a moment so that the refusal shows here, inline.
    const end = Date.now() + 4000;
    while (Date.now() < end && (task.state === 'queued' || task.state === 'running')) {
      await new Promise((r) => setTimeout(r, 300));
      task = await api.get(`/tasks/${task.id}`);
    }
    if (task.state === 'failed') {
      const msg = (task.error || 'The restore failed.').replace(/^invalid input: /, '');
      fieldError(form, 'target', msg);
      if (/not empty/.test(msg)) fieldError(form, 'overwrite', 'Tick this to restore into a folder that holds data.');
      return;
    }
    dlg.close();
    toast(task.state === 'succeeded' ? `Restored to ${t}` : `Restore started (task ${task.id})`);
    ctx.navigate(`/tasks/${task.id}`);
  });
}

/** Protect (with a note) or unprotect, and edit the note. */
function protectDialog(ctx, rp) {
  const prot = h('input', { name: 'protected', type: 'checkbox', id: uid('pr'), checked: true });
  const note = h('textarea', { name: 'note', rows: 3, maxlength: 1024 });
  note.value = rp.note || '';
  formDialog(rp.protected ? 'Protection and note' : 'Protect the restore point', [
    h('div.check', prot, h('label', { for: prot.id }, 'Protected: retention never removes it')),
    field('Note', note, { help: 'Why it is kept, say (at most 1024 characters).' }),
  ], 'Save', async (form, dlg) => {
    if ([...note.value].length > 1024) { fieldError(form, 'note', 'At most 1024 characters.'); return; }
    try {
      await api.patch(`/restore-points/${rp.id}`, { protected: prot.checked, note: note.value });
    } catch (x) {
      if (x.status === 422 || x.status === 400) { fieldError(form, 'note', x.message); return; }
      throw x;
    }
    dlg.close();
    toast(prot.checked ? 'The restore point is protected' : 'The restore point is not protected any more');
    ctx.navigate(browsePath(rp.id, ctx.query.get('path')));
  });
}

/** Export protocols a restore point can be served by. */
function protocols(rp) {
  return rp.kind === 'image'
    ? [['nbd', 'NBD (a disk)'], ['iscsi', 'iSCSI (a disk)'], ['nfs', 'NFS (the files, read-only)']]
    : [['nfs', 'NFS (the files, read-only)']];
}

/** The address and credentials of an export, each with a Copy button. */
export function exportDetails(x) {
  const row = (label, value, copyLabel) => [h('dt', label), h('dd.copy-row', h('code', value), copyButton(value, copyLabel))];
  const out = h('dl.facts.export-details');
  if (x.address) out.append(...row('Address', x.address, 'Copy the address'));
  if (x.chap_user) out.append(...row('CHAP user', x.chap_user, 'Copy the CHAP user'));
  if (x.secret) out.append(...row(x.protocol === 'iscsi' ? 'CHAP secret' : 'Secret', x.secret, 'Copy the secret'));
  if (x.allow && x.allow.length) out.append(h('dt', 'Allowed clients'), h('dd', h('code', x.allow.join(', '))));
  for (const [i, c] of (x.commands || []).entries()) out.append(...row(i === 0 ? 'Commands' : '', c, 'Copy the command'));
  return out;
}

/** Start an export of the restore point; then show its address. */
function mountDialog(ctx, rp) {
  const protocol = h('select', { name: 'protocol' }, protocols(rp).map(([v, t]) => h('option', { value: v }, t)));
  const ttl = h('input', { name: 'ttl', value: '2h', size: 8, autocomplete: 'off' });
  const allow = h('input', { name: 'allow', autocomplete: 'off', spellcheck: 'false', placeholder: '10.0.0.0/24, 192.0.2.7' });
  const allowField = field('Allowed NFS clients', allow, { help: 'Address blocks, separated by commas. Empty: your own address.' });
  const sync = () => { allowField.hidden = protocol.value !== 'nfs'; };
  protocol.addEventListener('change', sync);
  sync();
  formDialog('Mount the restore point', [
    field('Protocol', protocol),
    field('Stops after', ttl, { help: 'Like 30m, 2h or 7d (at most 30d).' }),
    allowField,
  ], 'Start', async (form, dlg) => {
    if (!/^\s*\d{1,7}\s*[smhd]?\s*$/.test(ttl.value)) { fieldError(form, 'ttl', 'Enter a time like 90s, 30m, 2h or 7d (at most 30d).'); return; }
    const list = protocol.value === 'nfs' ? allow.value.split(/[\s,]+/).filter(Boolean) : [];
    let x;
    try {
      x = await api.post('/exports', { restore_point: rp.id, protocol: protocol.value, ttl: ttl.value.replace(/\s+/g, ''), allow: list });
    } catch (e) {
      if (e.status === 422 || e.status === 400) {
        fieldError(form, /^allow/.test(e.message) ? 'allow' : /ttl/.test(e.message) ? 'ttl' : 'protocol', e.message);
        return;
      }
      throw e;
    }
    const status = h('p', { role: 'status' }, 'Starting the export…');
    replace(dlg.body, status);
    dlg.actions(h('a.button.secondary', { href: '#/mounts', onclick: () => dlg.close() }, 'All mounts'),
      h('button', { type: 'button', onclick: () => dlg.close() }, 'Close'));
    for (let i = 0; i < 100 && x.state === 'starting' && !x.address; i += 1) {
      await new Promise((r) => setTimeout(r, 300));
      x = await api.get(`/exports/${x.id}`);
    }
    if (x.state === 'failed' || x.error) {
      replace(dlg.body, errorBox(`The export failed: ${x.error || x.state}`));
      return;
    }
    replace(dlg.body,
      h('p', { role: 'status' }, x.address ? `Mount ${x.id} is ${x.state} until ` : `Mount ${x.id} is ${x.state}; its address comes once it is served. It stops `, timeEl(x.expires_at), '.'),
      exportDetails(x));
  });
}

async function deleteRp(ctx, rp, alerts) {
  const ok = await confirm('Delete the restore point?',
    `The restore point of ${rp.source_name} taken ${time(rp.time)} is removed for good (its data is freed by the datastore's next garbage collection).`,
    { confirm: 'Delete', danger: true });
  if (!ok) return;
  try {
    const t = await api.del(`/restore-points/${rp.id}`);
    toast(`Deleting the restore point (task ${t.id})`);
    ctx.navigate('/restore-points');
  } catch (x) {
    replace(alerts, errorBox(x.status === 409 ? `It cannot be deleted: ${x.message}.` : x.message));
  }
}

function facts(ctx, rp) {
  return h('section.panel', { 'aria-label': 'About this restore point' },
    h('dl.facts',
      h('dt', 'Source'), h('dd', rp.source_name),
      h('dt', 'Taken'), h('dd', timeEl(rp.time)),
      h('dt', 'Kind'), h('dd', rp.kind),
      h('dt', 'Size'), h('dd', `${bytes(rp.bytes_total)} read, ${bytes(rp.bytes_added)} added to the datastore`),
      rp.kind === 'files' ? [h('dt', 'Files'), h('dd', String(rp.files))] : null,
      h('dt', 'State'), h('dd', stateBadge(rp), rp.verified_at ? h('span.muted', ' verified ', timeEl(rp.verified_at)) : null),
      h('dt', 'Protected'), h('dd', rp.protected ? badge('protected', 'ok') : 'no'),
      rp.note ? [h('dt', 'Note'), h('dd.name', rp.note)] : null,
      h('dt', 'Host'), h('dd', rp.hostname),
      h('dt', 'Id'), h('dd.copy-row', h('code', rp.id), copyButton(rp.id, 'Copy the id')),
      rp.task_id ? [h('dt', 'Made by'), h('dd', ctx.link(`/tasks/${rp.task_id}`, `task ${rp.task_id}`))] : null));
}

function breadcrumbs(ctx, rp, path) {
  const parts = path ? path.split('/') : [];
  const items = [h('li', parts.length ? ctx.link(browsePath(rp.id, ''), rp.source_name) : h('span', { 'aria-current': 'location' }, rp.source_name))];
  parts.forEach((name, i) => {
    const p = parts.slice(0, i + 1).join('/');
    items.push(h('li', i === parts.length - 1 ? h('span.name', { 'aria-current': 'location' }, name) : ctx.link(browsePath(rp.id, p), name, { class: 'name' })));
  });
  return h('nav', { 'aria-label': 'Folder' }, h('ol.breadcrumbs', items));
}

export async function render(ctx) {
  const id = ctx.params.id;
  const path = norm(ctx.query.get('path'));
  // The restore point and the first page of the folder, at once.
  const firstP = api.get(`/restore-points/${encodeURIComponent(id)}/tree`, { path: path || null, limit: TREE_PAGE, offset: 0 })
    .then((page) => ({ page }), (error) => ({ error }));
  let rp;
  try {
    rp = await api.get(`/restore-points/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status === 404 || e.status === 400) {
      replace(ctx.main, pageHeader('Restore point not found'), errorBox(e.message), h('p', ctx.link('/restore-points', 'All restore points')));
      return;
    }
    throw e;
  }
  if (!ctx.live()) return;
  const mayRestore = can('restore', rp.project_id);
  const mayManage = can('manage', rp.project_id);
  const alerts = h('div', { 'aria-live': 'polite' });
  const listing = h('section', { 'aria-labelledby': 'files-h' }, h('p.loading', { role: 'status' }, 'Loading…'));
  const title = `${rp.source_name} · ${time(rp.time)}`;
  replace(ctx.main,
    h('p.back', ctx.link('/restore-points', '← Restore points')),
    pageHeader(title,
      mayRestore ? h('button', { type: 'button', onclick: () => restoreDialog(ctx, rp, null) }, 'Restore…') : null,
      mayRestore && rp.kind === 'libvirt' ? h('button', {
        type: 'button',
        onclick: () => importDialog(ctx, rp).catch((e) => { if (e.status !== 401) toast(e.message, 'bad'); }),
      }, 'Import to a hypervisor…') : null,
      mayRestore ? h('button.secondary', { type: 'button', onclick: () => mountDialog(ctx, rp) }, 'Mount…') : null,
      mayManage ? h('button.secondary', { type: 'button', onclick: () => protectDialog(ctx, rp) }, rp.protected ? 'Protection and note…' : 'Protect…') : null,
      mayManage ? h('button.danger', { type: 'button', onclick: () => deleteRp(ctx, rp, alerts) }, 'Delete…') : null),
    alerts,
    facts(ctx, rp),
    listing);
  ctx.setTitle(title);

  const { page: first, error: e } = await firstP;
  if (e) {
    if (!ctx.live()) return;
    if (e.status === 401) throw e;
    replace(listing, h('h2', { id: 'files-h' }, 'Files'), breadcrumbs(ctx, rp, path),
      errorBox(e.status === 404 ? `${e.message}. It is not in this restore point.` : e.message));
    return;
  }
  if (!ctx.live()) return;
  // A path that names a file lists that file alone.
  const isFile = path !== '' && first.entries.length === 1 && first.entries[0].path === path && first.entries[0].kind !== 'dir';
  const folderLabel = path ? `/${path}` : 'the whole restore point';

  const columns = [
    {
      label: 'Name',
      class: 'name',
      cell: (e) => (e.kind === 'dir'
        ? ctx.link(browsePath(rp.id, e.path), [h('span.kind-icon', { 'aria-hidden': 'true' }, '▸ '), e.name], { class: 'entry-dir' })
        : h('span.entry', e.name, e.kind === 'symlink' && e.link_target !== null ? h('span.muted', ` → ${e.link_target}`) : null)),
    },
    { label: 'Kind', cell: (e) => e.kind, class: 'hide-narrow' },
    { label: 'Size', cell: (e) => (e.kind === 'dir' ? '' : bytes(e.size)), class: 'num' },
    { label: 'Modified', cell: (e) => timeEl(e.mtime), class: 'hide-narrow' },
    { label: 'Mode', cell: (e) => h('code', modeText(e.kind, e.mode)), class: 'hide-narrow' },
    {
      label: 'Actions',
      cell: (e) => h('div.row-actions',
        e.kind === 'file' ? downloadLink(fileUrl(rp.id, e.path), 'Download', `Download ${e.name}`) : null,
        e.kind === 'dir' ? [downloadLink(fileUrl(rp.id, e.path, 'zip'), 'Zip', `Download ${e.name} as zip`),
          downloadLink(fileUrl(rp.id, e.path, 'tar'), 'Tar', `Download ${e.name} as tar`)] : null,
        mayRestore && (e.kind === 'file' || e.kind === 'dir' || e.kind === 'symlink')
          ? h('button.secondary', { type: 'button', 'aria-label': `Restore ${e.name}`, onclick: () => restoreDialog(ctx, rp, e.path) }, 'Restore…')
          : null),
    },
  ];
  const rowEl = (e) => h('tr', { dataset: { path: e.path } }, columns.map((c) => h('td', { class: c.class }, c.cell(e))));
  const tbody = h('tbody', first.entries.length ? first.entries.map(rowEl) : h('tr', h('td.empty', { colspan: columns.length }, 'This folder is empty.')));
  const count = h('span.count', { role: 'status' });
  const moreBtn = h('button.secondary', { type: 'button' }, 'Show more');
  let next = first.next_offset;
  let shown = first.entries.length;
  const sync = () => {
    count.textContent = next === null || next === undefined ? `${shown} ${shown === 1 ? 'entry' : 'entries'}` : `${shown} entries shown, more below`;
    moreBtn.hidden = next === null || next === undefined;
  };
  moreBtn.addEventListener('click', async () => {
    moreBtn.disabled = true;
    try {
      const pg = await api.get(`/restore-points/${rp.id}/tree`, { path: path || null, limit: TREE_PAGE, offset: next });
      tbody.append(...pg.entries.map(rowEl));
      shown += pg.entries.length;
      next = pg.next_offset;
      sync();
    } catch (e) {
      toast(e.message, 'bad');
    } finally {
      moreBtn.disabled = false;
    }
  });
  sync();
  replace(listing,
    h('div.page-header.sub-header', h('h2', { id: 'files-h' }, isFile ? 'File' : 'Files'),
      h('div.actions',
        !isFile ? downloadLink(fileUrl(rp.id, path, 'zip'), 'Download as zip', `Download as zip: ${folderLabel}`) : null,
        !isFile ? downloadLink(fileUrl(rp.id, path, 'tar'), 'Download as tar', `Download as tar: ${folderLabel}`) : null,
        mayRestore && path ? h('button.secondary', { type: 'button', onclick: () => restoreDialog(ctx, rp, path) }, isFile ? 'Restore this file…' : 'Restore this folder…') : null)),
    breadcrumbs(ctx, rp, path),
    h('div.table-wrap', h('table.files',
      h('caption.sr-only', isFile ? `The file /${path}` : `Entries of ${folderLabel}`),
      h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      tbody)),
    h('div.pager', count, moreBtn));
}
