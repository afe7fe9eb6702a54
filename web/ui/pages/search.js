// Search files by name across restore points (GET /restore-points/search,
// newest first). The search is in the hash (#/search?pattern=*.pdf), so
// the back button returns to the results; each match opens the browser
// at its path.
import { h, replace, table, field, fieldError, errorBox, pageHeader, bytes, time, timeEl, uid } from '../lib/dom.js';
import * as api from '../lib/api.js';
import { browsePath } from './browse.js';
import { suggest, sourceNames } from './restore_points.js';

const LIMIT = 200;

export async function render(ctx) {
  const q = ctx.query;
  const pattern = h('input', {
    name: 'pattern', value: q.get('pattern') || '', required: true, autocomplete: 'off', spellcheck: 'false', type: 'search',
  });
  const source = h('input', { name: 'source', value: q.get('source') || '', autocomplete: 'off', spellcheck: 'false' });
  const icase = h('input', { name: 'ignore_case', type: 'checkbox', id: uid('ic'), checked: q.get('ignore_case') !== 'false' });
  const images = h('input', { name: 'images', type: 'checkbox', id: uid('im'), checked: q.get('images') === 'true' });
  const form = h('form.toolbar', { role: 'search', 'aria-label': 'Search files', novalidate: true },
    field('File name', pattern, { help: 'A name or a glob: report*.pdf; with a /, the path: home/**/*.pdf' }),
    field('Source', source, { help: 'Optional' }),
    h('div.check', icase, h('label', { for: icase.id }, 'Ignore case')),
    h('div.check', images, h('label', { for: images.id }, 'Inside disk images too (slower)')),
    h('div.actions', h('button', { type: 'submit' }, 'Search')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    fieldError(form, 'pattern', '');
    if (!pattern.value.trim()) { fieldError(form, 'pattern', 'Enter a file name or a pattern.'); pattern.focus(); return; }
    ctx.navigate('/search', {
      pattern: pattern.value.trim(),
      source: source.value.trim(),
      ignore_case: icase.checked ? null : 'false',
      images: images.checked ? 'true' : null,
    });
  });
  const out = h('div', { 'aria-live': 'polite' });
  replace(ctx.main, pageHeader('Search files'), form, out);
  suggest(source, sourceNames);
  if (!q.get('pattern')) {
    replace(out, h('p.muted', 'Search the file names of every restore point you may read, newest first.'));
    pattern.focus();
    return;
  }
  // A bare name finds that name anywhere: wrap it in * unless it is a glob.
  const raw = q.get('pattern');
  const glob = /[*?[\]/]/.test(raw) ? raw : `*${raw}*`;
  replace(out, h('p.loading', { role: 'status' }, 'Searching…'));
  let r;
  try {
    r = await api.get('/restore-points/search', {
      pattern: glob,
      source: q.get('source'),
      ignore_case: q.get('ignore_case') === 'false' ? null : 'true',
      images: q.get('images') === 'true' ? 'true' : null,
      limit: LIMIT,
    });
  } catch (e) {
    if (!ctx.live()) return;
    if (e.status === 400 || e.status === 422) {
      fieldError(form, 'pattern', e.message);
      replace(out);
      return;
    }
    replace(out, errorBox(e.message));
    return;
  }
  if (!ctx.live()) return;
  const n = r.matches.length;
  replace(out,
    h('p.summary', { role: 'status' },
      n === 0 ? 'Nothing found' : `${n}${r.truncated ? '+' : ''} match${n === 1 ? '' : 'es'}`,
      ` in ${r.searched} restore point${r.searched === 1 ? '' : 's'}`,
      r.truncated ? ` (the first ${LIMIT} are shown: narrow the search)` : '',
      r.skipped.length ? `; ${r.skipped.length} could not be searched` : '',
      '.'),
    table([
      { label: 'Path', class: 'name', cell: (m) => ctx.link(browsePath(m.restore_point, m.path), `/${m.path}`, { class: 'entry-link' }) },
      { label: 'Size', class: 'num', cell: (m) => (m.kind === 'dir' ? 'folder' : bytes(m.size)) },
      { label: 'Modified', class: 'hide-narrow', cell: (m) => timeEl(m.mtime) },
      { label: 'Source', class: 'name', cell: (m) => m.source },
      { label: 'Restore point', cell: (m) => ctx.link(browsePath(m.restore_point, ''), timeEl(m.time), { 'aria-label': `The restore point of ${m.source} taken ${time(m.time)}` }) },
    ], r.matches, { caption: 'Matches, newest restore point first', empty: 'No file matches.' }),
    r.skipped.length ? h('details.skipped', h('summary', 'Restore points not searched'),
      h('ul', r.skipped.map((s) => h('li', h('code', s.restore_point.slice(0, 12)), ` ${s.reason}`)))) : null);
}
