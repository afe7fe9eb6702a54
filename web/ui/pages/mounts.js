// Mounts: the NBD, iSCSI and NFS exports of restore points
// (GET /exports), their addresses and credentials with Copy buttons
// (shown by the API only to those who may restore in the project),
// Extend (PATCH ttl) and Stop (DELETE). Mounts are started from a
// restore point's page.
import {
  h, replace, pageHeader, errorBox, timeEl, badge, ago, confirm, toast, uid,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { can } from '../lib/session.js';
import { browsePath, exportDetails } from './browse.js';
import { shortId } from './restore_points.js';

const STATE_KIND = { active: 'ok', starting: 'warn', failed: 'bad', stopped: 'idle', expired: 'idle' };
const TTLS = [['1h', '1 hour'], ['2h', '2 hours'], ['8h', '8 hours'], ['1d', '1 day'], ['7d', '7 days'], ['30d', '30 days']];

function card(ctx, x, refresh) {
  const live = x.state === 'starting' || x.state === 'active';
  const mayAct = live && can('restore', x.project_id);
  const err = h('div', { 'aria-live': 'polite' });
  const ttl = h('select', { name: 'ttl', id: uid('ttl') }, TTLS.map(([v, t]) => h('option', { value: v, selected: v === '2h' }, t)));
  const extend = async () => {
    replace(err);
    try {
      await api.patch(`/exports/${x.id}`, { ttl: ttl.value });
      toast(`Mount ${x.id} now stops ${ttl.selectedOptions[0].textContent} from now`);
      await refresh();
    } catch (e) {
      replace(err, errorBox(e.message));
    }
  };
  const stop = async () => {
    if (!(await confirm(`Stop mount ${x.id}?`, 'Clients using it lose their connection.', { confirm: 'Stop', danger: true }))) return;
    replace(err);
    try {
      await api.del(`/exports/${x.id}`);
      toast(`Mount ${x.id} stopped`);
      await refresh();
    } catch (e) {
      replace(err, errorBox(e.message));
    }
  };
  const hid = uid('mount');
  return h('section.panel.mount', { 'aria-labelledby': hid, dataset: { export: String(x.id) } },
    h('div.page-header.sub-header',
      h('h2', { id: hid }, `Mount ${x.id}: ${x.protocol.toUpperCase()}`),
      badge(x.state, STATE_KIND[x.state] || 'idle'),
      x.writable ? badge('writable', 'warn') : null),
    h('dl.facts',
      h('dt', 'Restore point'), h('dd', ctx.link(browsePath(x.restore_point_id, ''), shortId(x.restore_point_id), { 'aria-label': `Restore point ${shortId(x.restore_point_id)}` })),
      h('dt', live ? 'Stops' : 'Ended'), h('dd', live ? [timeEl(x.expires_at), ` (${ago(x.expires_at)})`] : timeEl(x.stopped_at || x.expires_at)),
      h('dt', 'Started by'), h('dd', x.created_by, ', ', timeEl(x.created_at)),
      x.error ? [h('dt', 'Error'), h('dd', x.error)] : null,
      x.address === undefined ? [h('dt', 'Address'), h('dd.muted', 'Shown to users who may restore in its project.')] : null,
      live && x.address === null ? [h('dt', 'Address'), h('dd.muted', 'Not served yet…')] : null),
    live && x.address ? exportDetails(x) : null,
    mayAct ? h('div.actions.mount-actions',
      h('label', { for: ttl.id }, 'Extend to'), ttl,
      h('button.secondary', { type: 'button', onclick: extend }, 'Extend'),
      h('button.danger', { type: 'button', onclick: stop }, 'Stop')) : null,
    err);
}

export async function render(ctx) {
  const showAll = ctx.query.get('all') === 'true';
  const all = h('input', { type: 'checkbox', id: uid('all'), checked: showAll });
  all.addEventListener('change', () => ctx.navigate('/mounts', { all: all.checked ? 'true' : null }));
  const list = h('div', h('p.loading', { role: 'status' }, 'Loading…'));
  replace(ctx.main,
    pageHeader('Mounts', h('div.check', all, h('label', { for: all.id }, 'Show ended mounts'))),
    h('p.muted', 'Start a mount from a restore point\'s page. Image restore points mount as disks (NBD, iSCSI); any restore point\'s files over NFS.'),
    list);
  let starting = false;
  const refresh = async () => {
    const xs = await api.get('/exports', { all: showAll ? 'true' : null });
    if (!ctx.live()) return;
    xs.sort((a, b) => b.created_at - a.created_at);
    starting = xs.some((x) => x.state === 'starting');
    replace(list, xs.length ? xs.map((x) => card(ctx, x, refresh))
      : h('p.empty', showAll ? 'There have been no mounts.' : 'No mount is running.'));
  };
  try {
    await refresh();
  } catch (e) {
    if (e.status === 401) throw e;
    replace(list, errorBox(e.message));
    return;
  }
  // Follow mounts that are starting until they are served.
  ctx.every(1000, async () => { if (starting) await refresh(); });
}
