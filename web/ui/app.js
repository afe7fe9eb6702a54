// The Arca web UI: a client of the REST API only (/api/v1, the same the
// CLI uses). Pages are ES modules under pages/, loaded on first use;
// the URL's hash is the page (#/sources/3), so a reload or a new sign-in
// comes back to the same place. See docs/web-ui.md.

import { h, replace, errorBox, field, uid } from './lib/dom.js';
import * as api from './lib/api.js';
import { session, can, isGlobalAdmin, seesAdministration } from './lib/session.js';

/**
 * The pages: hash pattern, module under pages/, nav label (null: not in
 * the menu), and who may see it. Keep in step with docs/web-ui.md.
 */
export const ROUTES = [
  { path: '/', module: 'dashboard', nav: 'Dashboard', show: seesAdministration },
  { path: '/restore-points', module: 'restore_points', nav: 'Restore points', show: () => can('read') },
  { path: '/restore-points/:id', module: 'browse', nav: null, show: () => can('read') },
  { path: '/search', module: 'search', nav: 'Search files', show: () => can('read') },
  { path: '/mounts', module: 'mounts', nav: 'Mounts', show: () => can('read') },
  { path: '/tasks', module: 'tasks', nav: 'Tasks', show: () => can('read') },
  { path: '/tasks/:id', module: 'task', nav: null, show: () => can('read') },
  { path: '/sources', module: 'sources', nav: 'Sources', show: seesAdministration },
  { path: '/sources/:id', module: 'source', nav: null, show: seesAdministration },
  { path: '/hypervisors', module: 'hypervisors', nav: 'Hypervisors', show: seesAdministration },
  { path: '/policies', module: 'policies', nav: 'Policies', show: seesAdministration },
  { path: '/policies/:id', module: 'policy', nav: null, show: seesAdministration },
  { path: '/datastores', module: 'datastores', nav: 'Datastores', show: seesAdministration },
  { path: '/nodes', module: 'nodes', nav: 'Nodes', show: seesAdministration },
  { path: '/reports', module: 'reports', nav: 'Reports', show: seesAdministration },
  { path: '/audit', module: 'audit', nav: 'Audit log', show: () => can('audit') },
  { path: '/users', module: 'users', nav: 'Users', show: isGlobalAdmin },
  { path: '/account', module: 'account', nav: 'My account', show: () => true },
];

const root = document.getElementById('app');
let main = null;
let cleanups = [];
let renderSeq = 0;

/** The current hash as {path, query}. */
function location() {
  const raw = decodeURIComponent(window.location.hash.replace(/^#/, '')) || '/';
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const query = new URLSearchParams(i < 0 ? '' : window.location.hash.slice(window.location.hash.indexOf('?') + 1));
  return { path: path || '/', query };
}

/** Go to a page: navigate('/sources/3', {tab: 'x'}). */
export function navigate(path, query) {
  const q = query ? api.qs(query) : '';
  const target = `#${path}${q}`;
  if (window.location.hash === target) route(); else window.location.hash = target;
}

/** A link to a page of the UI. */
export function link(path, text, attrs = {}) {
  return h('a', { href: `#${path}`, ...attrs }, text);
}

function match(pattern, path) {
  const p = pattern.split('/');
  const a = path.split('/');
  if (p.length !== a.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i += 1) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = a[i];
    else if (p[i] !== a[i]) return null;
  }
  return params;
}

function runCleanups() {
  for (const f of cleanups) { try { f(); } catch { /* ignore */ } }
  cleanups = [];
}

/** Show the page of the current hash. */
async function route() {
  if (!session.me || !main) return;
  runCleanups();
  const seq = ++renderSeq;
  const { path, query } = location();
  let found = null;
  for (const r of ROUTES) {
    const params = match(r.path, path);
    if (params) { found = { r, params }; break; }
  }
  for (const a of root.querySelectorAll('nav.side a')) {
    const here = a.getAttribute('href') === `#${path}` || (a.getAttribute('href') !== '#/' && path.startsWith(a.getAttribute('href').slice(1)));
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  root.classList.remove('menu-open');
  if (!found) {
    replace(main, h('h1', 'Not found'), h('p', `There is no page ${path}.`), link('/', 'Back to the start'));
    document.title = 'Not found · Arca';
    return;
  }
  if (!found.r.show()) {
    replace(main, h('h1', 'Not allowed'), h('p.not-allowed', 'Your role does not let you see this page.'), link(firstPage(), 'Back to the start'));
    document.title = 'Not allowed · Arca';
    return;
  }
  replace(main, h('p.loading', { role: 'status' }, 'Loading…'));
  delete main.dataset.ready;
  try {
    const mod = await import(`./pages/${found.r.module}.js`);
    if (seq !== renderSeq) return;
    const ctx = {
      main,
      params: found.params,
      query,
      navigate,
      link,
      setTitle: (t) => { document.title = `${t} · Arca`; },
      /** Is this page still the one shown? (after awaits) */
      live: () => seq === renderSeq,
      /** Run fn now and every ms while the page is shown and visible. */
      every(ms, fn) {
        let timer = null;
        let stopped = false;
        const tick = async () => {
          if (stopped) return;
          if (!document.hidden) {
            try { await fn(); } catch (e) { if (e.status === 401) return; }
          }
          if (!stopped) timer = setTimeout(tick, ms);
        };
        timer = setTimeout(tick, ms);
        cleanups.push(() => { stopped = true; clearTimeout(timer); });
      },
      /** Run fn when the page is left. */
      onLeave(fn) { cleanups.push(fn); },
    };
    ctx.setTitle(found.r.nav || found.r.module);
    await mod.render(ctx);
    if (seq === renderSeq) {
      const h1 = main.querySelector('h1');
      if (h1) document.title = `${h1.textContent} · Arca`;
      // The page has its data: for tests and the time-to-interactive
      // benchmark (benches/ui.sh).
      main.dataset.ready = String(seq);
      window.arcaReadyAt = performance.now();
    }
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e.status === 401) return;
    replace(main, h('h1', 'This page failed'), errorBox(e.message || String(e)),
      h('p', h('button', { type: 'button', onclick: route }, 'Try again')));
  }
}

function firstPage() {
  const r = ROUTES.find((x) => x.nav && x.show());
  return r ? r.path : '/account';
}

function layout() {
  main = h('main', { id: 'main', tabindex: '-1' });
  const nav = h('nav.side', { 'aria-label': 'Main' },
    h('ul', ROUTES.filter((r) => r.nav && r.show()).map((r) => h('li', link(r.path, r.nav)))));
  const menuId = uid('menu');
  nav.id = menuId;
  const header = h('header.top',
    h('button.menu-toggle', {
      type: 'button', 'aria-controls': menuId, 'aria-expanded': 'false', 'aria-label': 'Menu',
      onclick: (e) => {
        const open = root.classList.toggle('menu-open');
        e.currentTarget.setAttribute('aria-expanded', String(open));
      },
    }, '☰'),
    h('a.brand', { href: `#${firstPage()}` }, 'Arca'),
    h('div.user',
      h('span.user-name', { title: 'Signed in as' }, session.me.user.name),
      h('a', { href: '#/account' }, 'Account'),
      h('button.secondary', { type: 'button', onclick: signOut }, 'Sign out')));
  replace(root, h('a.skip', { href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    header, h('div.body', nav, main));
}

async function signOut() {
  try { await api.post('/auth/logout'); } catch { /* signed out anyway */ }
  session.me = null;
  api.setCsrf(null);
  showSignIn('You are signed out.');
}

function showSignIn(message) {
  runCleanups();
  // A dialog open when the session ended goes with the page under it
  // (its own handler may still be waiting for the refused request).
  for (const d of document.querySelectorAll('dialog')) { if (d.open) d.close(); d.remove(); }
  main = null;
  session.me = null;
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form.signin', {
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      replace(err);
      try {
        const s = await api.post('/auth/login', { username: user.value, password: pass.value, cookie: true });
        api.setCsrf(s.csrf);
        await start();
      } catch (x) {
        replace(err, errorBox(x.status === 401 ? 'Wrong user name or password.' : x.message));
        submit.disabled = false;
        pass.select();
      }
    },
  },
  h('h1', 'Sign in to Arca'),
  message ? h('p.notice', { role: 'status' }, message) : null,
  field('User name', user),
  field('Password', pass),
  err,
  submit);
  replace(root, h('main.signin-page', { id: 'main' }, form));
  document.title = 'Sign in · Arca';
  user.focus();
}

/** Load who is signed in and show the page of the hash. */
async function start() {
  try {
    session.me = await api.get('/me');
  } catch (e) {
    if (e.status === 401 || e.status === 403) { showSignIn(); return; }
    replace(root, h('main', h('h1', 'Arca cannot be reached'), errorBox(e.message),
      h('button', { type: 'button', onclick: start }, 'Try again')));
    return;
  }
  api.setCsrf(session.me.csrf);
  layout();
  const { path } = location();
  if (path === '/' && !ROUTES[0].show()) { navigate(firstPage()); return; }
  await route();
}

window.addEventListener('hashchange', route);
window.addEventListener('arca:signed-out', () => {
  if (session.me) showSignIn('Your session has ended. Sign in again to go on where you were.');
});
start();
