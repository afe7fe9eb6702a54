// Shared by the sources, policies and tasks pages: task state badges,
// throughput and ETA, name lookups, tag lists, and putting the API's 422
// messages next to the field they name.
import { h, badge, bytes, rate, duration, fieldError, errorBox, replace } from './dom.js';
import * as api from './api.js';

/** A task state as a badge. */
export function stateBadge(state) {
  const kind = { succeeded: 'ok', running: 'warn', queued: 'idle', failed: 'bad', cancelled: 'idle' }[state] || 'idle';
  return badge(state, kind);
}

/** Seconds a task ran: until it ended, or until now while it runs. */
export function ranFor(t) {
  if (!t.started_at) return null;
  const end = t.finished_at || Date.now() / 1000;
  return Math.max(0, end - t.started_at);
}

/** Bytes per second so far (null before it started or for 0 s). */
export function throughput(t) {
  const s = ranFor(t);
  if (!s || s < 0.5 || !t.bytes_done) return null;
  return t.bytes_done / s;
}

/** Seconds left at the present rate (null when unknown or ended). */
export function eta(t) {
  if (t.state !== 'running' || !t.bytes_total) return null;
  const r = throughput(t);
  if (!r) return null;
  return Math.max(0, (t.bytes_total - t.bytes_done) / r);
}

/** "1.2 GiB of 4 GiB · 80 MiB/s · 12 s left" for a running or ended task. */
export function speedText(t) {
  const parts = [];
  if (t.bytes_done || t.bytes_total) parts.push(t.bytes_total ? `${bytes(t.bytes_done)} of ${bytes(t.bytes_total)}` : bytes(t.bytes_done));
  const r = throughput(t);
  if (r) parts.push(rate(r));
  const left = eta(t);
  if (left !== null) parts.push(`${duration(left)} left`);
  return parts.join(' · ') || '–';
}

/** Id -> object maps of a list (cached per page render by the caller). */
export function byId(list) {
  const m = new Map();
  for (const x of list || []) m.set(x.id, x);
  return m;
}

/** Lists the pages need for names (nodes, projects, datastores, policies, sources); missing ones are empty. */
export async function lookups(...what) {
  const out = {};
  await Promise.all(what.map(async (w) => {
    try { out[w] = await api.get(`/${w}`); } catch (e) {
      if (e.status === 401) throw e;
      out[w] = [];
    }
  }));
  return out;
}

/** "a, b c" -> ['a', 'b', 'c']. */
export function parseTags(s) {
  return String(s || '').split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

/** The rule names are checked here as the server does (see web/src/routes/mod.rs check_name). */
export const NAME_RE = /^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$/;
export const NAME_RULE = '1–128 letters, digits, ".", "_", "-" or "@", not starting with "." or "-".';

/**
 * Show an API error on the form: a 422 next to the field its message
 * names (fields: [[regexp, name], ...], first match wins), the rest in
 * the form's error box (box: an element to fill).
 */
export function showError(form, box, e, fields) {
  if (e.status === 422 || e.status === 400 || e.status === 409) {
    for (const [re, name] of fields) {
      if (re.test(e.message) && fieldError(form, name, e.message)) {
        const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
        if (input) input.focus();
        return;
      }
    }
  }
  replace(box, errorBox(e.message));
}

/** Clear the inline errors of the named fields and the box. */
export function clearErrors(form, box, names) {
  for (const n of names) fieldError(form, n, '');
  replace(box);
}

/** A <select> of options [[value, text], ...] with the current value. */
export function select(name, options, value) {
  return h('select', { name },
    options.map(([v, t]) => h('option', { value: String(v), selected: String(v) === String(value ?? '') }, t)));
}

/** Retention as text: "last 3, daily 7" ("keep all" when no rule). */
export function retentionText(r) {
  const parts = [];
  for (const k of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly']) {
    const n = r && r[`keep_${k}`];
    if (n) parts.push(`${k} ${n}`);
  }
  return parts.length ? parts.join(', ') : 'keep all';
}

/** Seconds as a short RPO text: 86400 -> "24 h". */
export function rpoText(s) {
  if (!s) return '–';
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

/** "24h", "90 min", "2d", "3600" -> seconds (null: empty; NaN: bad). */
export function parseRpo(s) {
  const v = String(s || '').trim();
  if (!v) return null;
  const m = /^(\d+)\s*(s|m|min|h|d)?$/i.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = (m[2] || 's').toLowerCase();
  return n * ({ s: 1, m: 60, min: 60, h: 3600, d: 86400 }[unit]);
}
