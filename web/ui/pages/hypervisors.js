// Hypervisors: the libvirt hosts whose domains are backed up (issue 17,
// docs/vm-ingest.md). The list says how each is reached (SSH from a node,
// or an agent on the host), its pinned host key, when its inventory was
// last synced or why the sync failed, and how many sources (domains) it
// has. Managers sync one (the report: domains added, removed, seen, the
// host key pinned), remove one (refused while it has sources), and add
// one: over SSH with its private key (sealed on the server, never shown
// again) or reached by its agent (the command to run on the host is
// shown). Every error stays on this page, next to what caused it.

import {
  h, replace, field, fieldError, badge, ago, pageHeader, toast, copyButton, confirm, errorBox,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import { showError, clearErrors, table } from '../lib/forms.js';
import { lookups, byId } from '../lib/ops.js';

/** The command that runs the agent of hypervisor name on its host. */
export function agentCommand(name) {
  return `arca --server ${window.location.origin} --token TOKEN agent run --hypervisor ${name} --every 60`;
}

/** Where h is reached: user@address over SSH, or its agent. */
function reach(x) {
  return x.access === 'agent' ? h('span', 'its agent') : h('code', `${x.user}@${x.address}`);
}

/** Last sync: when, or the failure (bad badge with the reason). */
function syncCell(x) {
  if (x.sync_error) {
    return h('span.sync-error', badge('sync failed', 'bad'), ' ', h('span.name', x.sync_error));
  }
  if (!x.synced_at) return h('span.muted', 'never');
  return h('span', { title: new Date(x.synced_at * 1000).toLocaleString() }, ago(x.synced_at));
}

const ADD_FIELDS = {
  name: ['name'],
  address: ['address'],
  user: ['user'],
  private_key: ['private_key', 'key'],
  host_key: ['host_key', 'host key'],
  node: ['node'],
};

function addForm(nodes, onAdded) {
  const name = h('input', { name: 'name', required: true, maxlength: 64, autocomplete: 'off', spellcheck: 'false' });
  const access = h('select', { name: 'access' },
    h('option', { value: 'ssh' }, 'SSH from a node (this server connects)'),
    h('option', { value: 'agent' }, 'Its agent (the host connects to this server)'));
  const address = h('input', { name: 'address', autocomplete: 'off', spellcheck: 'false', placeholder: 'kvm1.example.com:22' });
  const user = h('input', { name: 'user', value: 'root', autocomplete: 'off', spellcheck: 'false' });
  user.defaultValue = 'root';
  const key = h('textarea', { name: 'private_key', rows: 4, spellcheck: 'false', autocomplete: 'off', placeholder: '-----BEGIN OPENSSH PRIVATE KEY-----' });
  const keyFile = h('input', { type: 'file', name: 'key_file', 'aria-label': 'Read the private key from a file' });
  keyFile.addEventListener('change', async () => {
    const f = keyFile.files && keyFile.files[0];
    if (f) key.value = await f.text();
  });
  const hostKey = h('input', { name: 'host_key', autocomplete: 'off', spellcheck: 'false', placeholder: 'SHA256:…' });
  const node = h('select', { name: 'node' },
    nodes.map((n) => h('option', { value: n.name, selected: n.embedded }, n.embedded ? `${n.name} (built in)` : n.name)));
  const sshOnly = h('div.ssh-only',
    field('Address', address, { help: 'host or host:port of its SSH server.' }),
    field('SSH user', user, { help: 'Runs virsh and reads the disks: root, or a user in the libvirt group.' }),
    field('Private key', key, { help: 'OpenSSH or PEM, unencrypted. Stored sealed on the server and never shown again.' }),
    keyFile,
    field('Host key', hostKey, { help: 'Optional: its SHA256 fingerprint (ssh-keygen -lf). Empty: pinned at the first sync.' }),
    field('Node', node, { help: 'The node that connects to it and runs its backups.' }));
  access.addEventListener('change', () => { sshOnly.hidden = access.value !== 'ssh'; });
  const box = h('div', { 'aria-live': 'polite' });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, 'aria-labelledby': 'add-hv-h' },
    h('h2', { id: 'add-hv-h' }, 'Add a hypervisor'),
    field('Name', name, { help: 'Its sources are named NAME.DOMAIN.' }),
    field('Reached by', access),
    sshOnly,
    box, h('button', { type: 'submit' }, 'Add hypervisor'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, box, Object.keys(ADD_FIELDS));
    replace(out);
    const n = name.value.trim();
    if (!n) { fieldError(form, 'name', 'Enter a name for the hypervisor.'); name.focus(); return; }
    const body = { name: n, access: access.value };
    if (access.value === 'ssh') {
      if (!address.value.trim()) { fieldError(form, 'address', 'Enter the host\'s address.'); address.focus(); return; }
      if (!key.value.trim()) { fieldError(form, 'private_key', 'Paste the SSH private key, or read it from a file.'); key.focus(); return; }
      Object.assign(body, {
        address: address.value.trim(),
        user: user.value.trim(),
        private_key: key.value,
        host_key: hostKey.value.trim() || null,
        node: node.value || null,
      });
    }
    try {
      const x = await api.post('/hypervisors', body);
      form.reset();
      key.value = '';
      sshOnly.hidden = false;
      if (x.access === 'agent') {
        const cmd = agentCommand(x.name);
        replace(out, h('div.secret', { role: 'status' },
          h('p', `Hypervisor ${x.name} added. On the host, run its agent with an API token that may back up its project:`),
          h('code.agent-command', cmd), copyButton(cmd, 'Copy command')));
      } else {
        toast(`Hypervisor ${x.name} added: sync it to list its domains`);
      }
      onAdded();
    } catch (x) {
      showError(form, box, x, ADD_FIELDS);
    }
  });
  return form;
}

/** The outcome of a sync, as a sentence and lists. */
function syncReport(x, r) {
  const names = (l) => (l.length ? h('ul.plain', l.map((s) => h('li.name', s))) : h('span.muted', 'none'));
  return h('div.notice.sync-report', { role: 'status', dataset: { hypervisor: x.name } },
    h('p', `${x.name}: ${r.domains} domain${r.domains === 1 ? '' : 's'} listed.`),
    h('dl.facts',
      h('dt', 'Added'), h('dd', names(r.added)),
      h('dt', 'Removed from the host'), h('dd', names(r.removed)),
      r.pinned_host_key ? [h('dt', 'Host key pinned'), h('dd', h('code', r.pinned_host_key))] : null));
}

export async function render(ctx) {
  const list = h('div');
  const alerts = h('div', { 'aria-live': 'polite' });
  const [names, nodeList] = await Promise.all([lookups('nodes', 'projects'), api.get('/nodes').catch(() => [])]);
  if (!ctx.live()) return;
  const nodes = byId(names.nodes);
  const projects = byId(names.projects);
  const mayAdd = can('manage');
  replace(ctx.main, pageHeader('Hypervisors'),
    h('p.help', 'libvirt hosts whose VMs are backed up. A sync lists the host\'s domains as sources (NAME.DOMAIN); policies then back them up like any source.'),
    alerts, list,
    mayAdd ? h('section.panel', addForm(nodeList, () => draw())) : null);

  async function sync(x, button) {
    replace(alerts);
    button.disabled = true;
    try {
      const r = await api.post(`/hypervisors/${x.id}/sync`);
      replace(alerts, syncReport(x, r));
    } catch (e) {
      if (e.status === 401) throw e;
      replace(alerts, errorBox(`Sync of ${x.name} failed: ${e.message}`));
    } finally {
      button.disabled = false;
    }
    await draw();
  }

  async function remove(x) {
    replace(alerts);
    const ok = await confirm(`Remove hypervisor ${x.name}?`,
      'Its sealed key and host key are removed. A hypervisor that still has sources is not removed: remove its sources first (keeping or deleting their restore points).',
      { confirm: 'Remove', danger: true });
    if (!ok) return;
    try {
      await api.del(`/hypervisors/${x.id}`);
      toast(`Hypervisor ${x.name} removed`);
    } catch (e) {
      if (e.status === 401) throw e;
      replace(alerts, errorBox(`${x.name} was not removed: ${e.message}`));
    }
    await draw();
  }

  async function draw() {
    const [hvs, sources] = await Promise.all([api.get('/hypervisors'), api.get('/sources').catch(() => [])]);
    if (!ctx.live()) return;
    const count = new Map();
    for (const s of sources) {
      const id = s.kind === 'libvirt' && s.settings ? s.settings.hypervisor_id : undefined;
      if (id !== undefined) count.set(id, (count.get(id) || 0) + 1);
    }
    replace(list, table([
      { label: 'Hypervisor', class: 'name', cell: (x) => x.name },
      { label: 'Reached by', cell: reach },
      { label: 'Node', class: 'hide-narrow', cell: (x) => (x.access === 'agent' ? '–' : (nodes.get(x.node_id) || {}).name || `#${x.node_id}`) },
      { label: 'Project', class: 'hide-narrow', cell: (x) => (projects.get(x.project_id) || {}).name || `#${x.project_id}` },
      { label: 'Host key', class: 'hide-narrow', cell: (x) => (x.host_key ? h('code', x.host_key) : h('span.muted', 'pinned at the first sync')) },
      { label: 'Last sync', cell: syncCell },
      {
        label: 'Sources',
        cell: (x) => {
          const n = count.get(x.id) || 0;
          return n ? h('a', { href: `#/sources${api.qs({ q: `${x.name}.` })}`, 'aria-label': `${n} sources of ${x.name}` }, String(n)) : '0';
        },
      },
      {
        label: 'Actions',
        cell: (x) => {
          if (!can('manage', x.project_id)) return null;
          const syncButton = x.access === 'agent'
            ? copyButton(agentCommand(x.name), 'Copy agent command')
            : h('button.secondary', { type: 'button', 'aria-label': `Sync ${x.name}` }, 'Sync');
          if (x.access !== 'agent') syncButton.addEventListener('click', () => sync(x, syncButton));
          return h('span.row-actions', syncButton,
            h('button.danger', { type: 'button', 'aria-label': `Remove ${x.name}`, onclick: () => remove(x) }, 'Remove'));
        },
      },
    ], hvs, {
      caption: 'Hypervisors',
      empty: 'No hypervisor yet.',
      rowAttrs: (x) => ({ dataset: { hypervisor: x.name } }),
    }));
  }
  await draw();
}
