// Nodes: online or offline, last seen, version; where sources may live,
// where restores may write and whether they may write onto block devices
// (admins edit: PATCH /nodes/{id}, errors inline); add a node (its token
// is shown once, with the command that starts it).

import {
  h, replace, field, badge, timeEl, ago, pageHeader, toast, copyButton,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { isGlobalAdmin } from '../lib/session.js';
import { showError, clearErrors, table } from '../lib/forms.js';

const EDIT_FIELDS = {
  source_roots: ['source root'],
  restore_roots: ['restore root'],
  allow_block_devices: ['block device'],
};

function lines(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean);
}

function editForm(n, done) {
  const src = h('textarea', { name: 'source_roots', rows: 3 }, n.source_roots.join('\n'));
  const rst = h('textarea', { name: 'restore_roots', rows: 3 }, n.restore_roots.join('\n'));
  const blk = h('input', { type: 'checkbox', name: 'allow_block_devices', checked: n.allow_block_devices, id: `blk-${n.id}` });
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form.panel', { novalidate: true, 'aria-label': `Settings of node ${n.name}` },
    h('h2', `Settings of ${n.name}`),
    field('Source roots', src, { help: 'One absolute directory per line: sources on this node must be below one. None: no source may be added.' }),
    field('Restore roots', rst, { help: `One absolute directory per line: restores write only below one. None: ${n.data_dir || '<data dir>'}/restores.` }),
    h('div.check', { dataset: { field: 'allow_block_devices' } }, blk, h('label', { for: blk.id }, 'Restores may write onto block devices'),
      h('small.field-error', { hidden: true, role: 'alert' })),
    box,
    h('div.actions', h('button', { type: 'submit' }, 'Save'), h('button.secondary', { type: 'button', onclick: () => done(false) }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, Object.keys(EDIT_FIELDS));
    const bad = [...lines(src.value).map((p) => ['source_roots', p]), ...lines(rst.value).map((p) => ['restore_roots', p])]
      .find(([, p]) => !p.startsWith('/'));
    if (bad) {
      showError(form, box, { status: 422, message: `${bad[0] === 'source_roots' ? 'source root' : 'restore root'} ${JSON.stringify(bad[1])} is not an absolute path` }, EDIT_FIELDS);
      return;
    }
    try {
      await api.patch(`/nodes/${n.id}`, {
        source_roots: lines(src.value), restore_roots: lines(rst.value), allow_block_devices: blk.checked,
      });
      toast(`Node ${n.name} saved`);
      done(true);
    } catch (x) {
      showError(form, box, x, EDIT_FIELDS);
    }
  });
  return form;
}

function addForm(onAdded) {
  const name = h('input', { name: 'name', required: true, maxlength: 128, autocomplete: 'off' });
  const max = h('input', { name: 'max_tasks', type: 'number', min: 1, max: 64, value: '2', required: true });
  max.defaultValue = '2';
  const box = h('div', { 'aria-live': 'polite' });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, 'aria-labelledby': 'add-node-h' },
    h('h2', { id: 'add-node-h' }, 'Add a node'),
    field('Name', name, { help: 'Letters, digits, ".", "_", "-" or "@".' }),
    field('Tasks at once', max),
    box, h('button', { type: 'submit' }, 'Add node'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, ['name', 'max_tasks']);
    replace(out);
    if (!name.value.trim()) { showError(form, box, { status: 422, message: 'Enter a name for the node.' }, { name: [] }); return; }
    try {
      const r = await api.post('/nodes', { name: name.value.trim(), max_tasks: Number(max.value) });
      const cmd = `arca --server ${window.location.origin} --token ${r.token} node --data-dir ./arca-node`;
      replace(out, h('div.secret', { role: 'status' },
        h('p', `Node ${r.node.name} added. Its token is shown only now: start the node with`),
        h('code.node-command', cmd), copyButton(cmd, 'Copy command')));
      form.reset();
      onAdded();
    } catch (x) {
      showError(form, box, x, { name: ['name'], max_tasks: ['max_tasks'] });
    }
  });
  return form;
}

export async function render(ctx) {
  const admin = isGlobalAdmin();
  const list = h('div');
  const editArea = h('div');
  replace(ctx.main, pageHeader('Nodes'), list, editArea, admin ? h('section.panel', addForm(() => draw())) : null);
  async function draw() {
    const nodes = await api.get('/nodes');
    if (!ctx.live()) return;
    replace(list, table([
      { label: 'Node', cell: (n) => h('span', n.name, n.embedded ? h('span.muted', ' (built in)') : null), class: 'name' },
      { label: 'State', cell: (n) => badge(n.state, n.state === 'online' ? 'ok' : 'bad') },
      { label: 'Last seen', cell: (n) => (n.last_heartbeat ? h('span', { title: new Date(n.last_heartbeat * 1000).toLocaleString() }, ago(n.last_heartbeat)) : 'never') },
      { label: 'Version', cell: (n) => n.version || '–', class: 'hide-narrow' },
      { label: 'Source roots', cell: (n) => (n.source_roots.length ? h('ul.plain', n.source_roots.map((p) => h('li.mono', p))) : h('span.muted', 'none')), class: 'hide-narrow' },
      { label: 'Restore roots', cell: (n) => {
        const roots = n.effective_restore_roots || n.restore_roots;
        return roots.length ? h('ul.plain', roots.map((p) => h('li.mono', p))) : h('span.muted', '<data dir>/restores');
      }, class: 'hide-narrow' },
      { label: 'Block devices', cell: (n) => (n.allow_block_devices ? 'allowed' : 'no'), class: 'hide-narrow' },
      { label: 'Added', cell: (n) => timeEl(n.created_at), class: 'hide-narrow' },
      admin ? {
        label: 'Actions',
        cell: (n) => h('button.secondary', {
          type: 'button', 'aria-label': `Edit node ${n.name}`,
          onclick: () => {
            replace(editArea, editForm(n, async (saved) => { replace(editArea); if (saved) await draw(); }));
            editArea.querySelector('textarea').focus();
          },
        }, 'Edit'),
      } : null,
    ].filter(Boolean), nodes, { caption: 'Nodes', rowAttrs: (n) => ({ dataset: { node: n.name } }) }));
  }
  await draw();
  ctx.every(10000, async () => { if (!editArea.childElementCount) await draw(); });
}
