// Restore points: a page of GET /restore-points at a time (newest
// first, limit/offset), with the API's filters (source, project, kind,
// since). The filters and the page are in the hash (#/restore-points?
// source=web&offset=50), so a reload or a link shows the same list.
// Nothing is ever fetched beyond the page shown: 100k restore points
// list as fast as ten.
import {
  h, replace, table, field, fieldError, errorBox, pageHeader, bytes, time, timeEl, badge, uid,
} from '../lib/dom.js';
import * as api from '../lib/api.js';

export const PAGE = 50;

/** The short form of a restore point's id (as the CLI prints it). */
export function shortId(id) {
  return String(id).slice(0, 12);
}

/** The state of a restore point as a badge: ok, damaged (with what verify found). */
export function stateBadge(rp) {
  if (rp.state === 'damaged') {
    return h('span', badge('damaged', 'bad'), rp.damage ? h('span.damage', ` ${rp.damage}`) : null);
  }
  return badge(rp.state, rp.state === 'ok' ? 'ok' : 'idle');
}

/**
 * Offer names as suggestions for input (a <datalist>), loaded after the
 * page is shown; a failure only leaves the suggestions out.
 */
export function suggest(input, load) {
  const list = h('datalist', { id: uid('dl') });
  input.after(list);
  input.setAttribute('list', list.id);
  load().then((names) => {
    replace(list, [...new Set(names)].sort().map((n) => h('option', { value: n })));
  }, () => {});
}

/** The names of the sources the user may read (the first 1000). */
export const sourceNames = async () => (await api.get('/sources', { limit: 1000 })).map((x) => x.name);

/** "2026-12-04" (local) -> unix seconds at its start; '' -> null; NaN when not a date. */
function dayStart(v) {
  if (!v) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return NaN;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Math.floor(d.getTime() / 1000);
}

export async function render(ctx) {
  const q = ctx.query;
  const offset = Math.max(0, Number.parseInt(q.get('offset') || '0', 10) || 0);
  const filters = {
    source: q.get('source') || '',
    project: q.get('project') || '',
    kind: q.get('kind') || '',
    since: q.get('since') || '',
  };

  const source = h('input', { name: 'source', value: filters.source, autocomplete: 'off', spellcheck: 'false' });
  const project = h('input', { name: 'project', value: filters.project, autocomplete: 'off', size: 10 });
  const kind = h('select', { name: 'kind' },
    h('option', { value: '' }, 'Any'),
    h('option', { value: 'files', selected: filters.kind === 'files' }, 'Files'),
    h('option', { value: 'image', selected: filters.kind === 'image' }, 'Image'),
    h('option', { value: 'libvirt', selected: filters.kind === 'libvirt' }, 'libvirt VM'));
  const since = h('input', { name: 'since', type: 'date', value: filters.since });
  const formErr = h('div', { 'aria-live': 'polite' });
  const form = h('form.toolbar', { role: 'search', 'aria-label': 'Filter restore points' },
    field('Source', source),
    field('Project', project, { help: 'Name or id' }),
    field('Kind', kind),
    field('Since', since),
    h('div.actions', h('button', { type: 'submit' }, 'Filter'),
      h('button.secondary', { type: 'button', onclick: () => ctx.navigate('/restore-points') }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    fieldError(form, 'since', '');
    if (Number.isNaN(dayStart(since.value))) {
      fieldError(form, 'since', 'Enter a date like 2026-12-04.');
      return;
    }
    ctx.navigate('/restore-points', {
      source: source.value.trim(), project: project.value.trim(), kind: kind.value, since: since.value,
    });
  });

  const list = h('div', h('p.loading', { role: 'status' }, 'Loading…'));
  replace(ctx.main, pageHeader('Restore points'), form, formErr, list);
  suggest(source, sourceNames);
  suggest(project, async () => (await api.get('/projects')).map((x) => x.name));

  let page;
  try {
    // One more than shown: is there a next page?
    page = await api.get('/restore-points', {
      source: filters.source,
      project: filters.project,
      kind: filters.kind,
      since: filters.since ? dayStart(filters.since) : null,
      limit: PAGE + 1,
      offset,
    });
  } catch (e) {
    if (!ctx.live()) return;
    if (e.status === 404 && filters.project) {
      fieldError(form, 'project', e.message);
      replace(list);
      return;
    }
    if (e.status === 400 || e.status === 422) {
      replace(list, errorBox(e.message));
      return;
    }
    throw e;
  }
  if (!ctx.live()) return;
  const more = page.length > PAGE;
  const rows = page.slice(0, PAGE);
  const any = filters.source || filters.project || filters.kind || filters.since;
  const go = (o) => ctx.navigate('/restore-points', { ...filters, offset: o || null });
  replace(list,
    table([
      { label: 'Time', cell: (r) => ctx.link(`/restore-points/${r.id}`, timeEl(r.time), { 'aria-label': `Browse the restore point of ${r.source_name} taken ${time(r.time)}` }) },
      { label: 'Source', cell: (r) => h('span.name', r.source_name), class: 'name' },
      { label: 'Kind', cell: (r) => r.kind },
      { label: 'Size', cell: (r) => bytes(r.bytes_total), class: 'num' },
      { label: 'Files', cell: (r) => (r.kind === 'files' ? String(r.files) : '–'), class: 'num hide-narrow' },
      { label: 'Protected', cell: (r) => (r.protected ? badge('protected', 'ok') : h('span.muted', 'no')) },
      { label: 'State', cell: stateBadge },
      { label: 'Note', cell: (r) => r.note || '', class: 'name hide-narrow' },
      { label: 'Id', cell: (r) => h('code', shortId(r.id)), class: 'hide-narrow' },
    ], rows, {
      caption: 'Restore points, newest first',
      empty: any ? 'No restore point matches these filters.' : 'There are no restore points yet.',
    }),
    h('nav.pager', { 'aria-label': 'Pages' },
      h('button.secondary', { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, 'Newer'),
      h('span', rows.length ? `${offset + 1}–${offset + rows.length}` : ''),
      h('button.secondary', { type: 'button', disabled: !more, onclick: () => go(offset + PAGE) }, 'Older')));
}
