// Shared by the UI scenarios (tests/ui/*.mjs): the browser (Debian's
// chromium, headless, driven by playwright-core), signing in, a
// screenshot of every page as a test artifact, the accessibility check
// (axe-core: no serious or critical violation) and small assertions.
// tests/ui.rs starts `arca server` and runs each scenario with:
//   ARCA_URL, ARCA_USER, ARCA_PASSWORD   the server and its admin
//   ARCA_WORK                            a directory for files to back up
//                                        and restore (below the server's
//                                        source and restore roots)
//   ARTIFACTS                            where screenshots go

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
export const env = {
  url: process.env.ARCA_URL,
  user: process.env.ARCA_USER || 'admin',
  password: process.env.ARCA_PASSWORD,
  work: process.env.ARCA_WORK,
  artifacts: process.env.ARTIFACTS || 'artifacts',
};
for (const k of ['url', 'password', 'work']) {
  if (!env[k]) throw new Error(`${k} is not set (run through cargo test --test ui)`);
}
fs.mkdirSync(env.artifacts, { recursive: true });

/** The system's headless Chromium (see ../shared/TESTBED.md). */
export async function launch() {
  const exe = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launch({
    executablePath: exe,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A page in a fresh browser context (its own cookies) at width x height.
 * Every console error and page error is collected in page.errors, and
 * every request to another host fails the test (the UI makes none).
 */
export async function newPage(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`page error: ${e.message}`));
  // Error answers of the API (401 after a session ends, 4xx of bad
  // input) are logged by Chromium as "Failed to load resource": expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => { page.errors.push(`a JavaScript dialog opened: ${d.message()}`); d.dismiss(); });
  const origin = new URL(env.url).origin;
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:')) return route.continue();
    page.errors.push(`request to another host: ${u}`);
    return route.abort();
  });
  page.setDefaultTimeout(20000);
  return page;
}

/** Sign in through the sign-in form and wait for the menu. */
export async function signIn(page, user = env.user, password = env.password, hash = '') {
  await page.goto(`${env.url}/${hash}`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** Go to a page of the UI (#/path) and wait until it has its heading. */
export async function open(page, hash, heading) {
  await page.goto(`${env.url}/#${hash}`);
  if (heading) await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await page.waitForFunction(() => !document.querySelector('main .loading'));
}

let shots = 0;
/** A full-page screenshot, ARTIFACTS/NN-name.png. */
export async function shot(page, name) {
  shots += 1;
  const file = path.join(env.artifacts, `${String(shots).padStart(2, '0')}-${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
/** axe-core on the page as it is: no serious or critical violation. */
export async function checkA11y(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    // Evaluated through the DevTools protocol: the page's CSP does not apply.
    await page.evaluate(AXE);
  }
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')})`), [],
    `accessibility violations on ${what}`);
  return r.violations.length;
}

/** Nothing wider than the viewport (usable at 390 px). */
export async function checkFits(page, what) {
  const over = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    return document.documentElement.scrollWidth - w;
  });
  assert.ok(over <= 1, `${what} is ${over} px wider than the window`);
}

/** No page error, console error, dialog or outside request so far. */
export function checkClean(page, what) {
  assert.deepEqual(page.errors, [], `errors on ${what}`);
}

/** Call the API as the admin (for set-up and checks): {status, body}. */
export async function apiCall(method, p, body, token) {
  const r = await fetch(`${env.url}/api/v1${p}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: r.status, body: json };
}

/** A bearer token for the admin (API set-up from the test). */
export async function adminToken(user = env.user, password = env.password) {
  const r = await apiCall('POST', '/auth/login', { username: user, password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.token;
}

/** Wait until f() is truthy (polls every 200 ms, up to secs). */
export async function until(what, secs, f) {
  const end = Date.now() + secs * 1000;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export { assert };
