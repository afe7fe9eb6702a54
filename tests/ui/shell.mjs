// The frame of the UI: sign-in (wrong password, then right), every page
// of the menu at 1280x800 and at 390 px wide (screenshot, accessibility,
// nothing wider than the window, no script error), the security headers,
// CSRF refusal, an expired session that comes back to the same page,
// the password change with its inline errors, and signing out.

import {
  assert, env, launch, newPage, signIn, shot, checkA11y, checkFits, checkClean, apiCall, adminToken, until,
} from './lib.mjs';

const browser = await launch();
try {
  // Headers of the page and of the API.
  const r = await fetch(`${env.url}/`);
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const gz = await fetch(`${env.url}/ui/app.js`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(gz.status, 200);
  assert.match(gz.headers.get('content-type'), /text\/javascript/);
  const etag = gz.headers.get('etag');
  assert.ok(etag, 'assets have an ETag');
  const again = await fetch(`${env.url}/ui/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${env.url}/ui/nope.js`)).status, 404);

  const page = await newPage(browser);
  // Sign-in: a wrong password says so inline.
  await page.goto(`${env.url}/#/tasks`);
  await page.getByLabel('User name').fill(env.user);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong user name or password' }).waitFor();
  await shot(page, 'sign-in-refused');
  await checkA11y(page, 'the sign-in page');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the sign-in page at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });
  // The right one lands on the page asked for (#/tasks).
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Tasks' }).waitFor();
  assert.equal(new URL(page.url()).hash, '#/tasks');

  // The session is a cookie the page's scripts cannot read.
  const cookies = await page.context().cookies();
  const c = cookies.find((x) => x.name === 'arca_session');
  assert.ok(c, 'a session cookie');
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '');
  // A change without the CSRF header is refused even with the cookie.
  const forged = await page.evaluate(async () => (await fetch('/api/v1/auth/logout', { method: 'POST' })).status);
  assert.equal(forged, 403);

  // Every page of the menu, wide and narrow.
  const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').all();
  const pages = [];
  for (const l of links) pages.push({ name: await l.textContent(), href: await l.getAttribute('href') });
  assert.ok(pages.length >= 10, `the admin's menu: ${JSON.stringify(pages)}`);
  for (const p of pages) {
    await page.goto(`${env.url}/${p.href}`);
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    await page.waitForFunction(() => !document.querySelector('main .loading'));
    const h1 = await page.getByRole('heading', { level: 1 }).first().textContent();
    assert.notEqual(h1, 'This page failed', `${p.name}: ${await page.locator('main').textContent()}`);
    assert.notEqual(h1, 'Not allowed', p.name);
    await shot(page, `page-${p.name}`);
    await checkA11y(page, p.name);
    await checkFits(page, p.name);
    await page.setViewportSize({ width: 390, height: 800 });
    await checkFits(page, `${p.name} at 390 px`);
    await shot(page, `page-${p.name}-narrow`);
    await checkA11y(page, `${p.name} at 390 px`);
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  // The narrow menu opens from its button.
  await page.setViewportSize({ width: 390, height: 800 });
  await page.getByRole('button', { name: 'Menu' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tasks' }).click();
  await page.getByRole('heading', { level: 1, name: 'Tasks' }).waitFor();
  await page.setViewportSize({ width: 1280, height: 800 });

  // An unknown page says so.
  await page.goto(`${env.url}/#/no-such-page`);
  await page.getByRole('heading', { level: 1, name: 'Not found' }).waitFor();

  // An expired session returns to sign-in and then to the same page.
  await page.goto(`${env.url}/#/account`);
  await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
  const tokenId = await page.evaluate(async () => (await (await fetch('/api/v1/me')).json()).token_id);
  const admin = await adminToken();
  const revoked = await apiCall('DELETE', `/tokens/${tokenId}`, undefined, admin);
  assert.ok(revoked.status < 300, JSON.stringify(revoked));
  await page.getByLabel('Current password').fill('x');
  await page.getByLabel('New password', { exact: true }).fill('y'.repeat(12));
  await page.getByLabel('New password again').fill('y'.repeat(12));
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Your session has ended').waitFor();
  assert.equal(new URL(page.url()).hash, '#/account');
  await shot(page, 'session-ended');
  await page.getByLabel('User name').fill(env.user);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();

  // Password change: inline errors, then a real change.
  const newPw = 'a new password for the UI test';
  await page.getByLabel('Current password').fill('wrong current password');
  await page.getByLabel('New password', { exact: true }).fill('short');
  await page.getByLabel('New password again').fill('other');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('The new password needs at least 10 characters').waitFor();
  await page.getByText('The two new passwords differ').waitFor();
  await page.getByLabel('New password', { exact: true }).fill(newPw);
  await page.getByLabel('New password again').fill(newPw);
  await page.getByRole('button', { name: 'Change password' }).click();
  await until('the refusal of a wrong current password', 10, async () => (await page.locator('[aria-invalid="true"]').count()) > 0);
  assert.equal(await page.getByLabel('Current password').getAttribute('aria-invalid'), 'true');
  await shot(page, 'password-refused');
  await page.getByLabel('Current password').fill(env.password);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Your password was changed').waitFor();
  await shot(page, 'password-changed');

  // Sign out, and in with the new password.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out').waitFor();
  const after = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(after, 401);
  await signIn(page, env.user, newPw);
  checkClean(page, 'the UI frame');
  console.log(`ok: ${pages.length} pages of the menu, wide and narrow`);
} finally {
  await browser.close();
}
