// The audit log (GET /audit), newest first, 50 a page, with the API's
// filters: actor, action (exact, or a prefix ending in "."), result,
// since and until. The filters and the page are in the address
// (#/audit?action=user.add&page=2), so a reload or a shared link shows the same.

import {
  h, replace, field, errorBox, badge, timeEl, pageHeader,
} from '../lib/dom.js';
import * as api from '../lib/api.js';
import { showError, clearErrors, dateToUnix, table } from '../lib/forms.js';

const PAGE = 50;
const ACTIONS = ['user.', 'token.', 'source.', 'policy.', 'datastore.', 'node.', 'restore-point.', 'export.', 'task.', 'login', 's3-key.', 'settings.'];

function filters(ctx) {
  const q = ctx.query;
  const actor = h('input', { name: 'actor', value: q.get('actor') || '', autocomplete: 'off', maxlength: 256 });
  const action = h('input', { name: 'action', value: q.get('action') || '', list: 'audit-actions', autocomplete: 'off', maxlength: 256 });
  const result = h('select', { name: 'result' },
    [['', 'Any'], ['ok', 'ok'], ['denied', 'denied'], ['failed', 'failed']].map(([v, l]) => h('option', { value: v, selected: (q.get('result') || '') === v }, l)));
  const since = h('input', { type: 'date', name: 'since', value: q.get('since') || '' });
  const until = h('input', { type: 'date', name: 'until', value: q.get('until') || '' });
  const box = h('div', { 'aria-live': 'polite' });
  const form = h('form.toolbar.filters', { novalidate: true, 'aria-label': 'Filters' },
    field('User', actor),
    field('Action', action, { help: 'Exact, or a prefix ending in "." (user.)' }),
    h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
    field('Result', result),
    field('Since', since),
    field('Until', until),
    h('div.actions', h('button', { type: 'submit' }, 'Filter'),
      h('button.secondary', { type: 'button', onclick: () => ctx.navigate('/audit') }, 'Clear')),
    box);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form, box, ['since', 'until']);
    if (since.value && until.value && since.value > until.value) {
      showError(form, box, { status: 422, message: 'until: the last day is before the first.' }, { until: ['until'] });
      return;
    }
    ctx.navigate('/audit', {
      actor: actor.value.trim(), action: action.value.trim(), result: result.value, since: since.value, until: until.value,
    });
  });
  return form;
}

export async function render(ctx) {
  const q = ctx.query;
  const page = Math.max(1, Number.parseInt(q.get('page') || '1', 10) || 1);
  const params = {
    actor: q.get('actor'),
    action: q.get('action'),
    result: q.get('result'),
    since: q.get('since') ? dateToUnix(q.get('since')) : null,
    until: q.get('until') ? dateToUnix(q.get('until'), true) : null,
    limit: PAGE + 1,
    offset: (page - 1) * PAGE,
  };
  const head = [pageHeader('Audit log'), filters(ctx)];
  let rows;
  try {
    rows = await api.get('/audit', params);
  } catch (e) {
    if (e.status === 401) throw e;
    replace(ctx.main, ...head, errorBox(e.message));
    return;
  }
  if (!ctx.live()) return;
  const more = rows.length > PAGE;
  rows = rows.slice(0, PAGE);
  const go = (p) => {
    const next = Object.fromEntries(q.entries());
    next.page = String(p);
    ctx.navigate('/audit', next);
  };
  const filtered = ['actor', 'action', 'result', 'since', 'until'].some((k) => q.get(k));
  replace(ctx.main, ...head,
    table([
      { label: 'Time', cell: (e) => timeEl(e.time) },
      { label: 'User', cell: (e) => e.actor, class: 'name' },
      { label: 'Action', cell: (e) => h('code', e.action) },
      { label: 'Target', cell: (e) => e.target, class: 'name hide-narrow' },
      { label: 'Result', cell: (e) => badge(e.result, e.result === 'ok' ? 'ok' : e.result === 'denied' ? 'warn' : 'bad') },
      { label: 'From', cell: (e) => e.remote || '–', class: 'hide-narrow' },
      { label: 'Detail', cell: (e) => e.detail || '', class: 'name hide-narrow' },
    ], rows, {
      caption: 'Audit log entries, newest first',
      empty: filtered ? 'No entry matches these filters.' : 'The audit log is empty.',
      rowAttrs: (e) => ({ dataset: { action: e.action, result: e.result } }),
    }),
    h('nav.pager', { 'aria-label': 'Pages' },
      h('button.secondary', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1) }, 'Newer'),
      h('span', `Page ${page}`),
      h('button.secondary', { type: 'button', disabled: !more, onclick: () => go(page + 1) }, 'Older')));
}
