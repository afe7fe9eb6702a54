// The administration pages: the dashboard puts a source whose RPO is
// missed first; datastore schedules (a bad expression is refused
// inline) and verify now; nodes (add one: its token once); reports
// (each chart has as many points or bars as the API has rows; the CSV
// download is the API's CSV byte for byte); the audit log filtered by
// action; users (a restore-only user made through the form, then signed
// in: no administration pages); API tokens (the secret works, then is
// revoked) and S3 keys. Every page: a screenshot and axe-core.

import fs from 'node:fs';
import path from 'node:path';
import {
  assert, env, launch, newPage, signIn, open, shot, checkA11y, checkFits, checkClean, apiCall, adminToken, until,
} from './lib.mjs';

const admin = await adminToken();
const call = (m, p, b, t = admin) => apiCall(m, p, b, t);
async function ok(m, p, b, t) {
  const r = await call(m, p, b, t);
  assert.ok(r.status >= 200 && r.status < 300, `${m} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
async function finished(id, secs = 60) {
  return until(`task ${id}`, secs, async () => {
    const t = await ok('GET', `/tasks/${id}`);
    return ['succeeded', 'failed', 'cancelled'].includes(t.state) ? t : null;
  });
}

// Two sources: "late" (RPO 1 s, so missed soon after its backup) and
// "fine" (RPO a day). Both backed up once.
for (const n of ['late', 'fine']) {
  fs.mkdirSync(path.join(env.work, n), { recursive: true });
  fs.writeFileSync(path.join(env.work, n, 'a.txt'), `the files of ${n}\n`.repeat(100));
}
await ok('POST', '/policies', { name: 'tight', schedule: 'daily', rpo_s: 1, retention: { keep_last: 5 } });
await ok('POST', '/policies', { name: 'relaxed', schedule: 'daily', rpo_s: 86400, retention: { keep_last: 5 } });
const late = await ok('POST', '/sources', { name: 'late', kind: 'files', path: path.join(env.work, 'late'), policy: 'tight' });
const fine = await ok('POST', '/sources', { name: 'fine', kind: 'files', path: path.join(env.work, 'fine'), policy: 'relaxed' });
for (const s of [late, fine]) {
  const t = await ok('POST', `/sources/${s.id}/backup`, {});
  assert.equal((await finished(t.id)).state, 'succeeded');
}
await until('the RPO of "late" to be missed', 30, async () => {
  const r = await call('GET', '/reports/protection');
  return r.status === 200 && r.body.sources.find((s) => s.source === 'late' && s.status === 'rpo_missed');
});

const browser = await launch();
try {
  const page = await newPage(browser);
  await signIn(page);

  // ---- Dashboard: the missed RPO comes first. ----
  await open(page, '/', 'Dashboard');
  const firstProblem = page.locator('ul.problems li').first();
  await firstProblem.waitFor();
  assert.match(await firstProblem.textContent(), /RPO missed\s*late/);
  const rows = page.locator('tr[data-source]');
  assert.equal(await rows.first().getAttribute('data-source'), 'late');
  assert.equal(await rows.first().getAttribute('data-status'), 'rpo_missed');
  assert.equal(await page.locator('tr[data-source="fine"]').getAttribute('data-status'), 'ok');
  await shot(page, 'dashboard');
  await checkA11y(page, 'the dashboard');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the dashboard at 390 px');
  await checkA11y(page, 'the dashboard at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });
  // It refreshes itself: a failed task appears without a reload.
  fs.mkdirSync(path.join(env.work, 'gone'));
  const gone = await ok('POST', '/sources', { name: 'gone', kind: 'files', path: path.join(env.work, 'gone') });
  fs.rmdirSync(path.join(env.work, 'gone'));
  const gt = await ok('POST', `/sources/${gone.id}/backup`, {});
  assert.equal((await finished(gt.id)).state, 'failed');
  await page.locator('ul.problems li', { hasText: `backup task ${gt.id}` }).waitFor({ timeout: 15000 });

  // ---- Datastores: schedules, verify now. ----
  const [ds] = await ok('GET', '/datastores');
  await open(page, '/datastores', 'Datastores');
  const card = page.locator(`[data-datastore="${ds.name}"]`);
  await card.locator('summary').click();
  await card.getByLabel('Garbage collection schedule').fill('every blue moon');
  await card.getByRole('button', { name: 'Save schedules' }).click();
  await until('the inline error of a bad schedule', 10, async () => (await card.getByLabel('Garbage collection schedule').getAttribute('aria-invalid')) === 'true');
  const gcErr = await card.locator('[data-field="gc_schedule"] .field-error').textContent();
  assert.match(gcErr, /gc_schedule/);
  await shot(page, 'datastore-bad-schedule');
  assert.equal((await ok('GET', '/datastores'))[0].gc_schedule, ds.gc_schedule, 'a refused schedule is not saved');
  await card.getByLabel('Garbage collection schedule').fill('Sun 03:00');
  await card.getByLabel('Verify max age (days)').fill('12');
  await card.getByRole('button', { name: 'Save schedules' }).click();
  await page.getByText(`Schedules of ${ds.name} saved`).waitFor();
  const saved = (await ok('GET', '/datastores'))[0];
  assert.equal(saved.verify_max_age_days, 12);
  assert.notEqual(saved.gc_schedule, ds.gc_schedule);
  await card.getByRole('button', { name: 'Verify now' }).click();
  const queued = card.locator('.notice', { hasText: 'Verify queued' });
  await queued.waitFor();
  const vid = Number((await queued.getByRole('link').textContent()).replace(/\D+/g, ''));
  assert.equal((await finished(vid, 120)).state, 'succeeded');
  await card.locator('.verify-result', { hasText: `task ${vid}` }).waitFor({ timeout: 15000 });
  await card.getByText('No damage').first().waitFor();
  // A second gc while one is queued or running: a clear message (or a task).
  await card.getByRole('button', { name: 'Run gc now' }).click();
  await card.locator('.notice, .error-box').first().waitFor();
  await shot(page, 'datastores');
  await checkA11y(page, 'the datastores page');

  // ---- Nodes: add one, its token shown once. ----
  await open(page, '/nodes', 'Nodes');
  await page.getByLabel('Name', { exact: true }).fill('-bad');
  await page.getByRole('button', { name: 'Add node' }).click();
  await until('the inline error of a bad node name', 10, async () => (await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')) === 'true');
  await page.getByLabel('Name', { exact: true }).fill('second-node');
  await page.getByRole('button', { name: 'Add node' }).click();
  const cmd = await page.locator('code.node-command').textContent();
  const nodes = await ok('GET', '/nodes');
  assert.ok(nodes.some((n) => n.name === 'second-node'), 'the node was added');
  const nodeToken = cmd.match(/--token (\S+)/)[1];
  assert.ok(nodeToken.length >= 20, cmd);
  await page.locator('tr[data-node="second-node"]').waitFor();
  await page.getByRole('button', { name: `Edit node ${nodes.find((n) => n.embedded).name}` }).click();
  await page.getByLabel('Restore roots').fill('not/absolute');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await until('the inline error of a relative root', 10, async () => (await page.getByLabel('Restore roots').getAttribute('aria-invalid')) === 'true');
  await shot(page, 'nodes');
  await checkA11y(page, 'the nodes page');
  await page.getByRole('button', { name: 'Cancel' }).click();

  // ---- Reports: charts against the API, CSV bytes. ----
  // Every task ended (the gc above), so that the page and the API see
  // the same tasks in the period.
  await until('every task to end', 60, async () => {
    const live = [...await ok('GET', '/tasks?state=queued'), ...await ok('GET', '/tasks?state=running')];
    return live.length === 0;
  });
  await new Promise((r) => setTimeout(r, 1100));
  await open(page, '/reports?period=7d', 'Reports');
  const section = (w) => page.locator(`[data-report="${w}"]`);
  await section('tasks').waitFor();
  const hrefOf = async (w, text) => section(w).getByRole('link', { name: new RegExp(`${w} report as ${text}`) }).getAttribute('href');
  const jsonOf = async (w) => ok('GET', (await hrefOf(w, 'JSON')).replace('/api/v1', ''));
  const prot = await jsonOf('protection');
  assert.equal(await section('protection').locator('svg rect.bar').count(), prot.sources.length);
  assert.ok(prot.sources.length >= 3);
  const stor = await jsonOf('storage');
  const samples = stor.datastores.reduce((n, d) => n + d.samples.length, 0);
  assert.equal(await section('storage').locator('svg circle.point').count(), samples);
  const tasks = await jsonOf('tasks');
  assert.ok(tasks.tasks.length >= 4, `tasks in the report: ${tasks.tasks.length}`);
  assert.equal(await section('tasks').locator('svg rect.bar').count(), Math.min(500, tasks.tasks.length));
  for (const w of ['protection', 'storage', 'tasks']) {
    const title = await section(w).locator('svg title').first().textContent();
    assert.ok(title.length > 5, `${w} chart has a title`);
    assert.ok(await section(w).locator('table').count() >= 1, `${w} has a table`);
  }
  await shot(page, 'reports');
  await checkA11y(page, 'the reports page');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the reports page at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const w of ['tasks', 'protection']) {
    const href = await hrefOf(w, 'CSV');
    const [dl] = await Promise.all([page.waitForEvent('download'), section(w).getByRole('link', { name: new RegExp(`${w} report as CSV`) }).click()]);
    const got = fs.readFileSync(await dl.path());
    const want = Buffer.from(await (await fetch(`${env.url}${href}`, { headers: { Authorization: `Bearer ${admin}` } })).arrayBuffer());
    assert.ok(want.length > 20, `${w} CSV: ${want}`);
    assert.ok(got.equals(want), `${w}: the downloaded CSV differs from the API's:\n${got}\n---\n${want}`);
  }
  // A custom period whose end is before its start is refused inline.
  await page.getByLabel('Period', { exact: true }).selectOption('custom');
  await page.getByLabel('From', { exact: true }).fill('2026-03-10');
  await page.getByLabel('To', { exact: true }).fill('2026-03-01');
  await page.getByRole('button', { name: 'Show' }).click();
  await until('the inline error of a bad period', 10, async () => (await page.getByLabel('To', { exact: true }).getAttribute('aria-invalid')) === 'true');

  // ---- Users: a restore-only user through the form. ----
  await open(page, '/users', 'Users');
  await page.getByLabel('User name').fill('bad name!');
  await page.getByRole('button', { name: 'Add user' }).click();
  await until('the inline error of a bad user name', 10, async () => (await page.getByLabel('User name').getAttribute('aria-invalid')) === 'true');
  await shot(page, 'users-bad-name');
  const helpPw = 'help-desk password 1';
  await page.getByLabel('User name').fill('helpdesk');
  await page.getByLabel('Password', { exact: true }).fill(helpPw);
  await page.getByLabel('Role 1', { exact: true }).selectOption('restore-only');
  await page.getByRole('button', { name: 'Add user' }).click();
  await page.getByText('User helpdesk added').waitFor();
  const hd = (await ok('GET', '/users')).find((u) => u.name === 'helpdesk');
  assert.deepEqual(hd.roles.map((r) => r.role), ['restore-only']);
  await page.locator('tr[data-user="helpdesk"]').waitFor();
  await shot(page, 'users');
  await checkA11y(page, 'the users page');

  const ctx2 = await newPage(browser);
  await signIn(ctx2, 'helpdesk', helpPw);
  const menu = await ctx2.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
  for (const no of ['Users', 'Policies', 'Sources', 'Datastores', 'Dashboard', 'Nodes']) assert.ok(!menu.includes(no), `restore-only menu: ${menu}`);
  assert.ok(menu.includes('Restore points'), `restore-only menu: ${menu}`);
  await open(ctx2, '/users', 'Not allowed');
  await open(ctx2, '/datastores', 'Not allowed');
  await open(ctx2, '/restore-points');
  assert.notEqual(await ctx2.getByRole('heading', { level: 1 }).first().textContent(), 'Not allowed');
  await ctx2.locator('main').getByText('late', { exact: true }).first().waitFor();
  const hdToken = (await apiCall('POST', '/auth/login', { username: 'helpdesk', password: helpPw })).body.token;
  const rps = await ok('GET', '/restore-points', undefined, hdToken);
  assert.ok(rps.some((r) => r.source_name === 'late'), 'restore points are visible to the restore-only user');
  await shot(ctx2, 'restore-only-user');
  await checkA11y(ctx2, 'the restore-only user\'s page');
  checkClean(ctx2, 'the restore-only user');
  await ctx2.context().close();

  // Roles, password reset, disable and delete of that user.
  await page.getByRole('button', { name: 'Edit roles of helpdesk' }).click();
  const rolesForm = page.getByRole('form', { name: 'Roles of helpdesk' });
  await rolesForm.getByLabel('Role 1', { exact: true }).selectOption('auditor');
  await rolesForm.getByLabel('Project of role 1').selectOption({ label: 'All projects' });
  await rolesForm.getByRole('button', { name: 'Save roles' }).click();
  await page.getByText('Roles of helpdesk saved').waitFor();
  const hd2 = (await ok('GET', '/users')).find((u) => u.name === 'helpdesk');
  assert.deepEqual(hd2.roles, [{ role: 'auditor', project_id: null }]);
  await page.getByRole('button', { name: 'Reset password of helpdesk' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Reset password' }).click();
  const generated = await page.locator('code.generated-password').textContent();
  assert.equal((await apiCall('POST', '/auth/login', { username: 'helpdesk', password: helpPw })).status, 401, 'the old password is refused');
  assert.equal((await apiCall('POST', '/auth/login', { username: 'helpdesk', password: generated })).status, 200, 'the generated password works');
  await page.getByRole('button', { name: 'Disable helpdesk' }).click();
  await page.locator('tr[data-user="helpdesk"]', { hasText: 'disabled' }).waitFor();
  assert.equal((await ok('GET', '/users')).find((u) => u.name === 'helpdesk').disabled, true);
  assert.notEqual((await apiCall('POST', '/auth/login', { username: 'helpdesk', password: generated })).status, 200, 'a disabled user cannot sign in');
  await page.getByRole('button', { name: 'Delete helpdesk' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.locator('tr[data-user="helpdesk"]').waitFor({ state: 'detached' });
  assert.ok(!(await ok('GET', '/users')).some((u) => u.name === 'helpdesk'), 'the user is deleted');
  await shot(page, 'users-after-changes');

  // ---- Audit log: filter by action. ----
  await open(page, '/audit', 'Audit log');
  await page.getByLabel('Action').fill('user.add');
  await page.getByRole('button', { name: 'Filter' }).click();
  const want = await ok('GET', '/audit?action=user.add');
  assert.ok(want.length >= 1, 'the user added above is audited');
  const all = await ok('GET', '/audit');
  assert.ok(all.some((e) => e.action !== 'user.add'), 'other actions are in the log');
  const shown = () => page.locator('tr[data-action]').evaluateAll((rs) => rs.map((r) => `${r.dataset.action} ${r.dataset.result}`));
  await until('the filtered audit log', 10, async () => JSON.stringify(await shown()) === JSON.stringify(want.map((e) => `${e.action} ${e.result}`)));
  assert.ok((await shown()).every((a) => a.startsWith('user.add ')));
  await shot(page, 'audit-filtered');
  await checkA11y(page, 'the audit log');

  // ---- My account: an API token and an S3 key. ----
  await open(page, '/account', 'My account');
  await page.getByLabel('Token name').fill('ci-token');
  await page.getByLabel('Scope').selectOption('read-only');
  await page.getByLabel('Expires after (days)').fill('7');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.locator('code.token-secret').textContent();
  const me = await apiCall('GET', '/me', undefined, secret);
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.equal(me.body.user.name, env.user);
  assert.equal(me.body.token.scope, 'read-only');
  await page.locator('tr[data-token="ci-token"]').waitFor();
  await shot(page, 'account-token');
  await page.getByRole('button', { name: 'Revoke token ci-token' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.getByText('Token ci-token revoked').waitFor();
  assert.equal((await apiCall('GET', '/me', undefined, secret)).status, 401);

  await page.getByLabel('Description').fill('rclone on the laptop');
  await page.getByRole('button', { name: 'Create S3 key' }).click();
  const keyId = await page.locator('code.s3-key-id').textContent();
  assert.match(keyId, /^[A-Z0-9]{20}$/);
  assert.equal((await page.locator('code.s3-secret').textContent()).length, 40);
  await page.locator(`tr[data-key="${keyId}"]`).waitFor();
  const keys = await ok('GET', '/s3-keys');
  assert.ok(keys.some((k) => k.access_key_id === keyId && k.description === 'rclone on the laptop'));
  await shot(page, 'account');
  await checkA11y(page, 'the account page');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the account page at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });

  checkClean(page, 'the administration pages');
  console.log(`ok: dashboard, datastores, nodes, reports (${prot.sources.length} sources, ${samples} samples, ${tasks.tasks.length} tasks), users, audit, tokens, S3 keys`);
} finally {
  await browser.close();
}
