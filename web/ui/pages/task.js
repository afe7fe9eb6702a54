// One task (#/tasks/12): its facts, live progress with throughput and
// ETA, its log (new lines appended as they come), what it did, Cancel
// and Retry. Polled every second until it ends.
import {
  h, replace, pageHeader, timeEl, progress, duration, errorBox, confirm, toast, bytes,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import { stateBadge, speedText, ranFor, lookups, byId } from '../lib/ops.js';

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** What a finished task did, as facts (kind-specific JSON: known keys get units). */
function resultView(ctx, t) {
  const r = t.result;
  if (!r || typeof r !== 'object') return null;
  const rows = [];
  for (const [k, v] of Object.entries(r)) {
    let shown;
    if (k === 'snapshot' || k === 'restore_point') shown = ctx.link(`/restore-points/${v}`, String(v));
    else if (/^bytes/.test(k) && typeof v === 'number') shown = bytes(v);
    else if (/duration_s$/.test(k) && typeof v === 'number') shown = duration(v);
    else if (v === null || typeof v !== 'object') shown = String(v);
    else if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) shown = v.length ? v.join(', ') : '–';
    else shown = h('code', JSON.stringify(v));
    rows.push(h('dt', k.replace(/_s$/, '').replace(/_/g, ' ')), h('dd', shown));
  }
  return h('dl.facts.result-list', rows);
}

export async function render(ctx) {
  const id = ctx.params.id;
  let t = await api.get(`/tasks/${encodeURIComponent(id)}`);
  const names = await lookups('sources', 'policies', 'datastores', 'nodes');
  if (!ctx.live()) return;
  const sources = byId(names.sources);
  const policies = byId(names.policies);
  const datastores = byId(names.datastores);
  const nodes = byId(names.nodes);

  const header = h('div');
  const live = h('section.panel.task-live', { 'aria-label': 'Progress' });
  const facts = h('section.panel');
  const outcome = h('section', { 'aria-labelledby': 'res-h' });
  const log = h('pre.log', { tabindex: '0', 'aria-label': 'Task log' });
  const logEmpty = h('p.help', 'No log line yet.');
  replace(ctx.main, header, live, facts, outcome,
    h('section', { 'aria-labelledby': 'log-h' }, h('h2', { id: 'log-h' }, 'Log'), logEmpty, log));
  log.hidden = true;
  let lastSeq = -Infinity;
  let busy = false;

  const act = async (what, f) => {
    if (busy) return;
    busy = true;
    try { await f(); } catch (e) { if (e.status !== 401) toast(`${what}: ${e.message}`, 'bad'); }
    busy = false;
    await refresh();
  };
  const cancel = () => act('Cancel', async () => {
    const ok = await confirm(`Cancel task ${t.id}?`, t.state === 'running' ? 'The node stops it; what it did so far is dropped.' : 'It will not run.', { confirm: 'Cancel the task', danger: true });
    if (!ok) return;
    const r = await api.post(`/tasks/${t.id}/cancel`);
    toast(r.state === 'cancelled' ? 'Task cancelled' : 'Cancelling: the node stops it');
  });
  const retry = () => act('Retry', async () => {
    const r = await api.post(`/tasks/${t.id}/retry`);
    toast('Task queued again');
    if (r && r.id && String(r.id) !== String(t.id)) ctx.navigate(`/tasks/${r.id}`);
  });

  const draw = () => {
    const may = can(t.kind === 'restore' ? 'restore' : 'manage', t.project_id);
    const actions = [];
    if (may && !FINAL.has(t.state)) {
      actions.push(h('button.danger', { type: 'button', disabled: t.cancel_requested, onclick: cancel }, t.cancel_requested ? 'Cancelling…' : 'Cancel'));
    }
    // A retry is a new task: manage in the project, whatever the kind.
    if (can('manage', t.project_id) && (t.state === 'failed' || t.state === 'cancelled')) {
      actions.push(h('button', { type: 'button', onclick: retry }, 'Retry'));
    }
    if (t.source_id && sources.get(t.source_id)) actions.push(ctx.link(`/sources/${t.source_id}`, 'Its source', { class: 'button secondary' }));
    replace(header, pageHeader(`Task ${t.id}: ${t.kind}`, ...actions));
    replace(live,
      h('div', h('span.sr-only', 'State: '), h('span.task-state', stateBadge(t.state)),
        t.cancel_requested && !FINAL.has(t.state) ? h('span.help', ' cancel requested') : null,
        t.attempt > 1 ? h('span.help', ` attempt ${t.attempt} of ${t.max_attempts}`) : null),
      t.state === 'running' || t.state === 'succeeded'
        ? progress(t.state === 'succeeded' ? 100 : t.progress, `Progress of task ${t.id}`) : null,
      speedText(t) === '–' ? null : h('div.help', speedText(t)),
      t.error ? errorBox(t.error) : null);
    const name = (m, i) => (i ? (m.get(i) || {}).name || `#${i}` : '–');
    replace(facts, h('dl.facts',
      h('dt', 'Source'), h('dd', t.source_id ? (sources.get(t.source_id) ? ctx.link(`/sources/${t.source_id}`, name(sources, t.source_id)) : `#${t.source_id} (deleted)`) : '–'),
      h('dt', 'Policy'), h('dd', t.policy_id ? ctx.link(`/policies/${t.policy_id}`, name(policies, t.policy_id)) : '–'),
      h('dt', 'Datastore'), h('dd', name(datastores, t.datastore_id)),
      h('dt', 'Node'), h('dd', name(nodes, t.node_id)),
      h('dt', 'Queued by'), h('dd', t.created_by),
      h('dt', 'Queued'), h('dd', timeEl(t.created_at)),
      h('dt', 'Started'), h('dd', timeEl(t.started_at)),
      h('dt', 'Finished'), h('dd', timeEl(t.finished_at)),
      h('dt', 'Ran'), h('dd', duration(ranFor(t))),
      h('dt', 'Priority'), h('dd', String(t.priority))));
    const res = FINAL.has(t.state) ? resultView(ctx, t) : null;
    replace(outcome, res ? [h('h2', { id: 'res-h' }, 'Result'), res] : null);
  };

  const refresh = async () => {
    const [nt, lines] = await Promise.all([api.get(`/tasks/${t.id}`), api.get(`/tasks/${t.id}/logs`)]);
    if (!ctx.live()) return;
    t = nt;
    const fresh = lines.filter((l) => l.seq > lastSeq);
    if (fresh.length) {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      for (const l of fresh) {
        log.append(h(`span.log-line.log-${l.level}`, `${new Date(l.time * 1000).toLocaleTimeString()} ${l.level.padEnd(5)} ${l.message}\n`));
        lastSeq = Math.max(lastSeq, l.seq);
      }
      log.hidden = false;
      logEmpty.hidden = true;
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
    draw();
  };
  await refresh();
  ctx.setTitle(`Task ${t.id}`);
  // Until it ends (and once more after, for the last log lines).
  let after = 0;
  ctx.every(1000, async () => {
    if (FINAL.has(t.state)) { after += 1; if (after > 2) return; }
    else after = 0;
    await refresh();
  });
}
