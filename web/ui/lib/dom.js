// Building the page. Everything shown goes through text nodes or
// attributes set one by one: no HTML is ever parsed from data (names
// and file contents from backups are untrusted), so there is no way
// for a backed-up file name to become markup. No API that parses HTML
// from a string may appear in the UI (tests/ui.rs lists and checks them).

let ids = 0;
/** A fresh id for label/for and aria-describedby pairs. */
export function uid(prefix = 'id') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * h('tag.class1.class2', {attr: value, onclick: fn, ...}, ...children)
 * Children: strings and numbers (as text), nodes, arrays, null/false
 * (skipped). Attributes: `class`, `style` is not allowed (CSP), `on*`
 * functions become listeners, `true` sets a boolean attribute, `false`,
 * null and undefined leave it out, `value`/`checked` set the property.
 */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = [el.className, v].filter(Boolean).join(' ');
    } else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'indeterminate') {
      el[k] = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** Append children (see h) to el. */
export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace everything inside el with children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// ---- formatting ----

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
/** 1536 -> "1.5 KiB" (binary units, as the CLI). */
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i += 1; }
  const s = i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
  return `${n < 0 ? '-' : ''}${s} ${UNITS[i]}`;
}

/** Bytes per second. */
export function rate(n) {
  return n === null || n === undefined ? '–' : `${bytes(Math.round(n))}/s`;
}

/** Unix seconds -> local date and time "2026-12-04 17:03:12". */
export function time(t) {
  if (t === null || t === undefined) return '–';
  const d = new Date(t * 1000);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A <time> element with the local time and the ISO form as datetime. */
export function timeEl(t) {
  if (t === null || t === undefined) return '–';
  return h('time', { datetime: new Date(t * 1000).toISOString(), title: ago(t) }, time(t));
}

/** Seconds -> "1 h 2 min", "45 s". */
export function duration(s) {
  if (s === null || s === undefined) return '–';
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Unix seconds -> "5 min ago" / "in 2 h". */
export function ago(t) {
  if (t === null || t === undefined) return '–';
  const d = Math.round(Date.now() / 1000 - t);
  return d >= 0 ? `${duration(d)} ago` : `in ${duration(-d)}`;
}

// ---- components ----

/**
 * A table. columns: [{label, cell: row => node|string, class?}], rows:
 * array. Options: caption (for screen readers), empty (text when no
 * rows), rowAttrs(row) -> attributes of the <tr>.
 */
export function table(columns, rows, opts = {}) {
  const body = rows.length
    ? rows.map((r) => h('tr', opts.rowAttrs ? opts.rowAttrs(r) : null,
      columns.map((c) => h('td', { class: c.class }, c.cell(r)))))
    : [h('tr', h('td.empty', { colspan: columns.length }, opts.empty || 'Nothing here yet.'))];
  return h('div.table-wrap',
    h('table',
      opts.caption ? h('caption.sr-only', opts.caption) : null,
      h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', body)));
}

/**
 * A labelled form field: field('Name', input, {help, error}) ->
 * <div class=field><label for=..>Name</label>input<small>help</small></div>.
 * The input gets an id if it has none; help and error are linked by
 * aria-describedby.
 */
export function field(label, input, opts = {}) {
  if (!input.id) input.id = uid('f');
  const help = opts.help ? h('small.help', { id: uid('help') }, opts.help) : null;
  const err = h('small.field-error', { id: uid('err'), role: 'alert', hidden: true });
  input.setAttribute('aria-describedby', [help && help.id, err.id].filter(Boolean).join(' '));
  return h('div.field', { dataset: { field: input.name || '' } },
    h('label', { for: input.id }, label), input, help, err);
}

/** Show msg under the field of the input named name in form (or clear with ''). */
export function fieldError(form, name, msg) {
  const f = form.querySelector(`[data-field="${CSS.escape(name)}"] .field-error`);
  if (!f) return false;
  f.textContent = msg || '';
  f.hidden = !msg;
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (input) input.setAttribute('aria-invalid', msg ? 'true' : 'false');
  return true;
}

/** An error message block (role=alert) for a form or a page. */
export function errorBox(msg) {
  return h('div.error-box', { role: 'alert' }, msg);
}

/** A progress bar with a text label (pct 0..100, or null: unknown). */
export function progress(pct, label) {
  const known = pct !== null && pct !== undefined;
  return h('div.progress',
    h('progress', { max: 100, value: known ? pct : false, 'aria-label': label || 'progress' }),
    h('span.progress-text', known ? `${pct.toFixed(pct < 10 ? 1 : 0)} %` : '…'));
}

/** A status badge: kind is ok, warn, bad or idle. */
export function badge(text, kind = 'idle') {
  return h(`span.badge.badge-${kind}`, text);
}

/** A button that copies text to the clipboard and says so. */
export function copyButton(text, label = 'Copy') {
  const b = h('button.secondary', { type: 'button', 'aria-label': `${label}: ${text}` }, label);
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      toast('Copied to the clipboard');
    } catch {
      // Clipboard access needs a secure context; select the text instead.
      toast('Copy failed: select the text and copy it by hand', 'bad');
    }
  });
  return b;
}

let toastArea = null;
/** A short message at the bottom of the screen (a live region). */
export function toast(msg, kind = 'ok') {
  if (!toastArea) {
    toastArea = h('div.toasts', { role: 'status', 'aria-live': 'polite' });
    document.body.append(toastArea);
  }
  const t = h(`div.toast.toast-${kind}`, msg);
  toastArea.append(t);
  setTimeout(() => t.remove(), 5000);
}

/**
 * Ask before doing something: a modal <dialog>. Resolves true when the
 * user confirms. opts: {confirm: 'Delete', danger: true, body: node}.
 */
export function confirm(title, text, opts = {}) {
  return new Promise((resolve) => {
    const ok = h(`button${opts.danger ? '.danger' : ''}`, { type: 'submit', value: 'ok' }, opts.confirm || 'OK');
    const hid = uid('dlg');
    const d = h('dialog', { 'aria-labelledby': hid },
      h('form', { method: 'dialog' },
        h('h2', { id: hid }, title),
        text ? h('p', text) : null,
        opts.body || null,
        h('div.actions',
          h('button.secondary', { type: 'submit', value: 'cancel' }, 'Cancel'),
          ok)));
    d.addEventListener('close', () => { d.remove(); resolve(d.returnValue === 'ok'); });
    document.body.append(d);
    d.showModal();
    ok.focus();
  });
}

/** A page heading with optional actions on the right. */
export function pageHeader(title, ...actions) {
  return h('div.page-header', h('h1', title), h('div.actions', actions));
}

/** A download link (the browser sends the session cookie). */
export function downloadLink(href, text, label) {
  return h('a.button.secondary', { href, download: '', 'aria-label': label || text }, text);
}
