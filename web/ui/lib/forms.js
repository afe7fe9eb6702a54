// Small helpers of the administration forms: an API error shown next to
// the field it names (422 messages start with or name the field, e.g.
// "gc_schedule: ..." or "user name \"x\" must be ..."), else in the
// form's error box; the period of the reports.

import { replace, errorBox, fieldError, table as domTable } from './dom.js';

/**
 * Show err (an ApiError) on form: under the field whose name (or one of
 * its aliases) the message mentions, else in box. fields: {name:
 * [words...]}. Returns the field shown on, or null.
 */
export function showError(form, box, err, fields = {}) {
  const msg = err.message || String(err);
  if (err.status === 422 || err.status === 400) {
    const lower = msg.toLowerCase();
    // The longest name first: "verify_max_age_days" before "verify".
    const names = Object.entries(fields)
      .flatMap(([name, words]) => [name, ...(words || [])].map((w) => [name, w.toLowerCase()]))
      .sort((a, b) => b[1].length - a[1].length);
    for (const [name, w] of names) {
      if (lower.includes(w) && fieldError(form, name, msg)) return name;
    }
  }
  replace(box, errorBox(msg));
  return null;
}

/** Clear the field errors of names and the box. */
export function clearErrors(form, box, names) {
  for (const n of names) fieldError(form, n, '');
  replace(box);
}

/** A date input's value (YYYY-MM-DD, local) as Unix seconds, or null. */
export function dateToUnix(v, endOfDay = false) {
  if (!v) return null;
  const d = new Date(`${v}T${endOfDay ? '23:59:59' : '00:00:00'}`);
  return Number.isNaN(d.getTime()) ? NaN : Math.floor(d.getTime() / 1000);
}

/** Unix seconds as a date input's value (YYYY-MM-DD, local). */
export function unixToDate(t) {
  const d = new Date(t * 1000);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** A ratio (logical / used) as "3.2×", or "–". */
export function ratio(r) {
  return r === null || r === undefined || !Number.isFinite(r) ? '–' : `${r.toFixed(r < 10 ? 2 : 1)}×`;
}

/** A fraction 0..1 as "99.5 %", or "–". */
export function percent(f) {
  return f === null || f === undefined ? '–' : `${(f * 100).toFixed(f >= 0.9995 || f === 0 ? 0 : 1)} %`;
}

/**
 * dom.js's table(), whose wrapper (it scrolls sideways on narrow
 * screens) can be reached with the keyboard: a focusable region named by
 * the caption (axe: scrollable-region-focusable).
 */
export function table(columns, rows, opts = {}) {
  const wrap = domTable(columns, rows, opts);
  wrap.setAttribute('tabindex', '0');
  wrap.setAttribute('role', 'region');
  wrap.setAttribute('aria-label', opts.caption || 'Table');
  return wrap;
}
