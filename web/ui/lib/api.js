// The REST API client of the UI: the same /api/v1 the CLI uses. The
// session is an HttpOnly cookie (the UI never sees its secret); requests
// that change something carry the session's CSRF value in X-Arca-CSRF.
// A 401 means the session ended: listeners of 'arca:signed-out' on
// window show the sign-in page and come back to where the user was.

const BASE = '/api/v1';
let csrf = null;

/** Set the CSRF value (from sign-in or GET /me). */
export function setCsrf(v) { csrf = v || null; }

/** An error answer of the API: status, code (e.g. "invalid") and message. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** A query string from an object, leaving out null/undefined/''. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The URL of an API path (for links: downloads, CSV reports). */
export function url(path, params) {
  return `${BASE}${path}${qs(params)}`;
}

/**
 * Call the API. Returns the parsed JSON (or null for 204), throws
 * ApiError for error answers and for network failures (status 0).
 */
export async function call(method, path, body, params) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-Arca-CSRF'] = csrf;
  let resp;
  try {
    resp = await fetch(url(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `The server cannot be reached (${e.message}).`);
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const msg = (data && data.message) || `${resp.status} ${resp.statusText}`;
    const err = new ApiError(resp.status, (data && data.error) || 'error', msg, data);
    if (resp.status === 401 && !path.startsWith('/auth/login')) {
      window.dispatchEvent(new CustomEvent('arca:signed-out', { detail: msg }));
    }
    throw err;
  }
  return data;
}

export const get = (path, params) => call('GET', path, undefined, params);
export const post = (path, body, params) => call('POST', path, body === undefined ? {} : body, params);
export const patch = (path, body) => call('PATCH', path, body);
export const del = (path, params) => call('DELETE', path, undefined, params);

/**
 * All items of a paged list (GET path?limit=&offset=...). Stops at max
 * items. The API's lists answer arrays.
 */
export async function all(path, params = {}, max = 10000) {
  const out = [];
  const limit = Math.min(1000, max);
  for (let offset = 0; out.length < max; offset += limit) {
    const page = await get(path, { ...params, limit, offset });
    out.push(...page);
    if (page.length < limit) break;
  }
  return out;
}
