// Sources, policies and tasks: add a source through the form (bad input
// first: inline errors), add a policy that takes it by pattern (a bad
// schedule first), back up now and watch the task run and succeed
// without a reload, its log, the new restore point on the source, the
// retention preview keeping it, edit the source's tags, cancel a long
// backup, retry a failed one, filter the task list, delete a source
// keeping its restore points; an auditor sees it all without buttons,
// a restore-only user is kept out. Every page: screenshot and axe-core.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  assert, env, launch, newPage, signIn, open, shot, checkA11y, checkFits, checkClean, apiCall, adminToken, until,
} from './lib.mjs';

// Does the server have POST /tasks/{id}/retry (branch `reports`)?
const RETRY = true;

const token = await adminToken();
const call = async (method, p, body) => apiCall(method, p, body, token);
const ok = async (method, p, body) => {
  const r = await call(method, p, body);
  assert.ok(r.status < 300, `${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};

// The trees: a small site, a slow (sparse, 1 TiB) image, a path that
// appears only later.
const site = path.join(env.work, 'site');
fs.mkdirSync(path.join(site, 'docs'), { recursive: true });
const files = {};
for (let i = 0; i < 20; i += 1) {
  const name = path.join(i % 2 ? 'docs' : '', `page-${i}.txt`);
  const text = `page ${i}\n`.repeat(2000 + i * 37);
  fs.writeFileSync(path.join(site, name), text);
  files[name] = text.length;
}
// A sparse 256 MiB file: the backup reads its zeros for a moment, so the
// task page first shows the task queued or running.
fs.closeSync(fs.openSync(path.join(site, 'docs', 'blank.img'), 'w'));
fs.truncateSync(path.join(site, 'docs', 'blank.img'), 256 << 20);
files[path.join('docs', 'blank.img')] = 256 << 20;
const slow = path.join(env.work, 'slow.raw');
fs.writeFileSync(slow, crypto.randomBytes(4 << 20));
fs.truncateSync(slow, 2 ** 40);
// Paths come back in task errors and logs: markup in one stays text.
const later = path.join(env.work, 'later <img src=x onerror=alert(1)> "q"');

/** The page at 390 px wide: nothing wider than the window, no accessibility violation. */
async function narrow(page, what) {
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, `${what} at 390 px`);
  await checkA11y(page, `${what} at 390 px`);
  await shot(page, `${what.replace(/^the /, '')}-narrow`);
  await page.setViewportSize({ width: 1280, height: 800 });
}

const browser = await launch();
try {
  const page = await newPage(browser);
  await signIn(page, env.user, env.password, '#/sources');
  await page.getByRole('heading', { level: 1, name: 'Sources' }).waitFor();
  await shot(page, 'sources-empty');
  await checkA11y(page, 'the empty source list');

  // ---- Add a source: bad input first.
  await page.getByRole('link', { name: 'Add a source' }).click();
  await page.getByRole('heading', { level: 1, name: 'Add a source' }).waitFor();
  await page.getByRole('button', { name: 'Add source' }).click();
  await page.getByText('Enter a name.').waitFor();
  await page.getByText('Enter the path to back up.').waitFor();
  assert.equal(await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Name', { exact: true }).fill('web-site');
  await page.getByLabel('Path').fill('srv/www');
  await page.getByRole('button', { name: 'Add source' }).click();
  await page.getByText('The path must be absolute').waitFor();
  assert.equal(await page.getByText('Enter a name.').count(), 0, 'the name error is gone');
  await shot(page, 'source-form-errors');
  await checkA11y(page, 'the source form with errors');
  await narrow(page, 'the source form');
  // A path outside the node's source roots: the server's 422, next to the field.
  await page.getByLabel('Path').fill('/definitely/not/a/source/root');
  await page.getByRole('button', { name: 'Add source' }).click();
  await until('the server\'s refusal of the path', 10, async () => (await page.locator('[data-field="path"] .field-error:not([hidden])').count()) > 0);
  const pathErr = await page.locator('[data-field="path"] .field-error').textContent();
  assert.ok(pathErr.length > 10 && !/Enter|absolute/.test(pathErr), `the server's message: ${pathErr}`);
  await page.getByLabel('Path').fill(site);
  await page.getByLabel('Tags').fill('prod');
  await page.getByRole('button', { name: 'Add source' }).click();
  await page.getByRole('heading', { level: 1, name: 'Source web-site' }).waitFor();
  const sources = await ok('GET', '/sources');
  const web = sources.find((s) => s.name === 'web-site');
  assert.ok(web, JSON.stringify(sources));
  assert.equal(web.path, site);
  assert.deepEqual(web.tags, ['prod']);
  assert.equal(web.kind, 'files');
  assert.equal(new URL(page.url()).hash, `#/sources/${web.id}`);

  // ---- Add a policy that takes it by pattern: a bad schedule first.
  await open(page, '/policies', 'Policies');
  await shot(page, 'policies-empty');
  await checkA11y(page, 'the empty policy list');
  await page.getByRole('link', { name: 'Add a policy' }).click();
  await page.getByRole('heading', { level: 1, name: 'Add a policy' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('web-nightly');
  await page.getByLabel('Schedule').fill('every blue moon');
  await page.getByLabel('Last (restore points)').fill('3');
  await page.getByLabel('Match pattern').fill('web-*');
  await page.getByLabel('RPO').fill('a day');
  await page.getByRole('button', { name: 'Add policy' }).click();
  await page.getByText('Write it as a number and a unit').waitFor();
  await page.getByLabel('RPO').fill('24h');
  await page.getByRole('button', { name: 'Add policy' }).click();
  await until('the server\'s refusal of the schedule', 10, async () => (await page.locator('[data-field="schedule"] .field-error:not([hidden])').count()) > 0);
  assert.match(await page.locator('[data-field="schedule"] .field-error').textContent(), /blue moon/);
  assert.equal(await page.getByLabel('Schedule').getAttribute('aria-invalid'), 'true');
  await shot(page, 'policy-form-errors');
  await checkA11y(page, 'the policy form with errors');
  await narrow(page, 'the policy form');
  await page.getByLabel('Schedule').fill('daily');
  await page.getByRole('button', { name: 'Add policy' }).click();
  await page.getByRole('heading', { level: 1, name: 'Policy web-nightly' }).waitFor();
  const pol = (await ok('GET', '/policies')).find((p) => p.name === 'web-nightly');
  assert.equal(pol.retention.keep_last, 3);
  assert.equal(pol.rpo_seconds, 86400);
  assert.equal(pol.match_pattern, 'web-*');
  // The source took it by its pattern.
  const assigned = await ok('GET', `/sources/${web.id}`);
  assert.equal(assigned.policy_id, pol.id);
  assert.equal(assigned.assigned_by, 'rule');
  await page.getByRole('table', { name: 'Sources of the policy' }).getByRole('link', { name: 'web-site' }).waitFor();
  assert.ok(pol.next_run, 'the policy has a next run');
  await shot(page, 'policy');
  await checkA11y(page, 'the policy page');

  // ---- Back up now: the task page shows it running, then succeeded, without a reload.
  await open(page, `/sources/${web.id}`, 'Source web-site');
  await page.getByText('by its match rules').waitFor();
  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.waitForURL(/#\/tasks\/\d+$/);
  const taskId = Number(new URL(page.url()).hash.split('/').pop());
  await page.evaluate(() => { window.arcaNoReload = true; });
  const seen = [];
  await until('the backup to succeed on the page', 60, async () => {
    const s = await page.locator('.task-state').textContent().catch(() => '');
    if (s && seen[seen.length - 1] !== s) seen.push(s);
    return s === 'succeeded';
  });
  assert.ok(['queued', 'running'].includes(seen[0]), `states seen: ${seen}`);
  console.log(`the first backup's states on its page: ${seen.join(' → ')}`);
  assert.equal(await page.evaluate(() => window.arcaNoReload), true, 'the page was not reloaded');
  const task = await ok('GET', `/tasks/${taskId}`);
  assert.equal(task.state, 'succeeded');
  assert.equal(task.kind, 'backup');
  assert.equal(task.source_id, web.id);
  // Its log: every line of the API's, on the page.
  const logs = await ok('GET', `/tasks/${taskId}/logs`);
  assert.ok(logs.length > 0, 'the backup logged');
  await until('the log lines', 10, async () => (await page.locator('pre.log .log-line').count()) === logs.length);
  const logText = await page.locator('pre.log').textContent();
  for (const l of logs) assert.ok(logText.includes(l.message), `log line ${l.message}`);
  // Its result names the new restore point.
  const rpId = task.result.snapshot;
  assert.ok(rpId, JSON.stringify(task.result));
  await page.getByRole('heading', { name: 'Result' }).waitFor();
  await page.locator('main').getByRole('link', { name: String(rpId) }).waitFor();
  await shot(page, 'task-succeeded');
  await checkA11y(page, 'the task page');
  await narrow(page, 'the task page');

  // ---- The source shows the new restore point.
  await open(page, `/sources/${web.id}`, 'Source web-site');
  const rps = await ok('GET', '/restore-points?source=web-site');
  assert.equal(rps.length, 1);
  assert.equal(rps[0].id, rpId);
  const rpTable = page.getByRole('table', { name: 'Restore points of the source' });
  await rpTable.locator(`a[href="#/restore-points/${rpId}"]`).waitFor();
  const total = Object.values(files).reduce((a, b) => a + b, 0);
  assert.equal(rps[0].bytes_total, total, 'the restore point holds the files');
  await page.getByRole('table', { name: 'Recent tasks of the source' }).getByRole('link', { name: `#${taskId} backup` }).waitFor();
  await shot(page, 'source-with-restore-point');
  await checkA11y(page, 'the source page');
  await narrow(page, 'the source page');

  // ---- The retention preview keeps it, and says why.
  await open(page, `/policies/${pol.id}`, 'Policy web-nightly');
  const row = page.locator('section.preview tr', { has: page.locator(`a[href="#/restore-points/${rpId}"]`) });
  await row.waitFor();
  assert.match(await row.textContent(), /kept/);
  assert.match(await row.textContent(), /last 1/);
  const pv = await ok('GET', `/policies/${pol.id}/preview`);
  assert.deepEqual(pv.sources[0].restore_points.map((r) => [r.id, r.keep]), [[rpId, true]]);
  await shot(page, 'retention-preview');
  await checkA11y(page, 'the retention preview');
  await narrow(page, 'the policy page');
  // Prune now: one source, one task, which keeps what the preview keeps.
  await page.getByRole('button', { name: 'Prune now' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Prune' }).click();
  await page.waitForURL(/#\/tasks\/\d+$/);
  const pruneId = Number(new URL(page.url()).hash.split('/').pop());
  await until('the prune to succeed on the page', 60, async () => (await page.locator('.task-state').textContent()) === 'succeeded');
  const pt = await ok('GET', `/tasks/${pruneId}`);
  assert.equal(pt.kind, 'prune');
  assert.equal(pt.policy_id, pol.id);
  assert.deepEqual((await ok('GET', '/restore-points?source=web-site')).map((r) => r.id), [rpId]);

  // ---- Edit the source's tags (a bad tag first).
  await open(page, `/sources/${web.id}`, 'Source web-site');
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Tags').fill('prod, -bad');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('The tag "-bad" must be').waitFor();
  await checkA11y(page, 'the source edit form with an error');
  await shot(page, 'source-edit-error');
  await page.getByLabel('Tags').fill('prod, web frontend');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('dd.tags', { hasText: 'prod, web, frontend' }).waitFor();
  assert.deepEqual((await ok('GET', `/sources/${web.id}`)).tags, ['prod', 'web', 'frontend']);

  // ---- A long backup, cancelled from the page.
  const big = await ok('POST', '/sources', { name: 'big-image', kind: 'image', path: slow });
  await open(page, `/sources/${big.id}`, 'Source big-image');
  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.waitForURL(/#\/tasks\/\d+$/);
  const bigTask = Number(new URL(page.url()).hash.split('/').pop());
  await until('the long backup to run', 60, async () => (await page.locator('.task-state').textContent()) === 'running');
  await until('progress on the page', 60, async () => (await ok('GET', `/tasks/${bigTask}`)).bytes_done > 0);
  await page.locator('main progress').waitFor();
  await shot(page, 'task-running');
  await checkA11y(page, 'a running task');
  // The live list shows it running, with a progress bar, filtered by source and kind.
  await open(page, `/tasks?kind=backup&source=${big.id}`, 'Tasks');
  const listRow = page.locator(`tr[data-task="${bigTask}"]`);
  await listRow.waitFor();
  assert.equal(await page.locator('tbody tr[data-task]').count(), 1, 'the filters leave only the long backup');
  assert.equal(await listRow.getAttribute('data-state'), 'running');
  await listRow.locator('progress').waitFor();
  assert.equal(await page.getByLabel('Kind').inputValue(), 'backup');
  await shot(page, 'tasks-filtered-running');
  await checkA11y(page, 'the task list');
  await narrow(page, 'the task list');
  await listRow.getByRole('link', { name: `#${bigTask}` }).click();
  await page.getByRole('heading', { level: 1, name: `Task ${bigTask}: backup` }).waitFor();
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Cancel the task' }).click();
  await until('the long backup to end cancelled', 60, async () => (await page.locator('.task-state').textContent()) === 'cancelled');
  assert.equal((await ok('GET', `/tasks/${bigTask}`)).state, 'cancelled');
  assert.equal(await page.getByRole('button', { name: 'Cancel', exact: true }).count(), 0, 'no Cancel on an ended task');
  await shot(page, 'task-cancelled');

  // ---- A backup of a missing path fails; retried once the path is there, it succeeds.
  fs.mkdirSync(later);
  const lt = await ok('POST', '/sources', { name: 'later', kind: 'files', path: later });
  fs.rmdirSync(later);
  await open(page, `/sources/${lt.id}`, 'Source later');
  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.waitForURL(/#\/tasks\/\d+$/);
  const failed = Number(new URL(page.url()).hash.split('/').pop());
  await until('the backup of a missing path to fail', 60, async () => (await page.locator('.task-state').textContent()) === 'failed');
  const ft = await ok('GET', `/tasks/${failed}`);
  assert.equal(ft.state, 'failed');
  assert.ok(ft.error, 'a failed task says why');
  assert.ok(ft.error.includes(later), ft.error);
  await page.locator('.task-live .error-box', { hasText: later }).waitFor();
  assert.equal(await page.locator('main img').count(), 0, 'no markup from the path');
  await page.getByRole('button', { name: 'Retry' }).waitFor();
  await shot(page, 'task-failed');
  await checkA11y(page, 'a failed task');
  if (RETRY) {
    fs.mkdirSync(later);
    fs.writeFileSync(path.join(later, 'now-here.txt'), 'it is here now\n');
    await page.getByRole('button', { name: 'Retry' }).click();
    // A retry is a new task: the page goes to it.
    await page.waitForURL((u) => /#\/tasks\/\d+$/.test(u.hash) && !u.hash.endsWith(`/${failed}`));
    await page.getByRole('heading', { level: 1, name: /^Task \d+: backup$/ }).waitFor();
    await until('the retried backup to succeed', 60, async () => (await page.locator('.task-state').textContent()) === 'succeeded');
    const retried = Number(new URL(page.url()).hash.split('/').pop());
    assert.notEqual(retried, failed);
    const rt = await ok('GET', `/tasks/${retried}`);
    assert.equal(rt.state, 'succeeded');
    assert.equal((await ok('GET', `/tasks/${failed}`)).state, 'failed', 'the failed task stays as it was');
    assert.equal(rt.source_id, lt.id);
    const lrps = await ok('GET', '/restore-points?source=later');
    assert.equal(lrps.length, 1);
    assert.equal(lrps[0].files >= 1, true, JSON.stringify(lrps[0]));
    await shot(page, 'task-retried');
  }

  // ---- Delete a source, keeping its restore points.
  await open(page, `/sources/${web.id}`, 'Source web-site');
  await page.getByRole('button', { name: 'Delete' }).click();
  const del = page.getByRole('dialog');
  assert.equal(await del.getByLabel(/Keep them/).isChecked(), true, 'keeping is the default');
  await checkA11y(page, 'the delete dialog');
  await shot(page, 'delete-source');
  await del.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sources' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'web-site' }).count(), 0);
  assert.equal((await call('GET', `/sources/${web.id}`)).status, 404);
  const kept = await ok('GET', '/restore-points?source=web-site');
  assert.deepEqual(kept.map((r) => [r.id, r.source_id]), [[rpId, null]]);
  await shot(page, 'sources');
  await checkA11y(page, 'the source list');
  // The list's filter (name or tag), kept in the address.
  await page.getByLabel('Name or tag').fill('big');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/#\/sources\?q=big$/);
  await until('the filtered list', 10, async () => (await page.locator('main tbody tr').count()) === 1);
  await page.getByRole('link', { name: 'big-image' }).waitFor();
  assert.equal(await page.getByRole('link', { name: /^later/ }).count(), 0);
  await narrow(page, 'the source list');
  // ---- Edit the policy: a bad window first, then more retention and disabled.
  await open(page, `/policies/${pol.id}`, 'Policy web-nightly');
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Backup window').fill('late at night');
  await page.getByRole('button', { name: 'Save' }).click();
  await until('the server\'s refusal of the window', 10, async () => (await page.locator('[data-field="window"] .field-error:not([hidden])').count()) > 0);
  assert.match(await page.locator('[data-field="window"] .field-error').textContent(), /late at night/);
  await checkA11y(page, 'the policy edit form with an error');
  await shot(page, 'policy-edit-error');
  await page.getByLabel('Backup window').fill('22:00-06:00');
  await page.getByLabel('Daily (days)').fill('7');
  await page.getByLabel(/^Enabled/).uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('dd', { hasText: 'last 3, daily 7' }).waitFor();
  const edited = await ok('GET', `/policies/${pol.id}`);
  assert.equal(edited.enabled, false);
  assert.equal(edited.backup_window, '22:00-06:00');
  assert.deepEqual([edited.retention.keep_last, edited.retention.keep_daily], [3, 7]);
  assert.equal(edited.next_run, null);
  await open(page, '/policies', 'Policies');
  await page.getByRole('row', { name: /web-nightly/ }).getByText('disabled').waitFor();
  await shot(page, 'policies');
  await checkA11y(page, 'the policy list');
  await narrow(page, 'the policy list');
  checkClean(page, 'the sources, policies and tasks pages');

  // ---- An auditor sees everything, and no button that changes anything.
  const auditorPw = 'an auditor password';
  await ok('POST', '/users', { name: 'auditor1', password: auditorPw, roles: [{ role: 'auditor' }] });
  const ap = await newPage(browser);
  await signIn(ap, 'auditor1', auditorPw, `#/sources/${big.id}`);
  await ap.getByRole('heading', { level: 1, name: 'Source big-image' }).waitFor();
  await ap.getByRole('table', { name: 'Recent tasks of the source' }).getByRole('link', { name: `#${bigTask} backup` }).waitFor();
  for (const b of ['Back up now', 'Edit', 'Delete']) assert.equal(await ap.getByRole('button', { name: b }).count(), 0, `an auditor has no ${b}`);
  await open(ap, '/sources', 'Sources');
  assert.equal(await ap.getByRole('link', { name: 'Add a source' }).count(), 0);
  await open(ap, `/policies/${pol.id}`, 'Policy web-nightly');
  for (const b of ['Edit', 'Prune now', 'Delete']) assert.equal(await ap.getByRole('button', { name: b }).count(), 0, `an auditor has no ${b}`);
  await open(ap, `/tasks/${failed}`);
  await ap.getByRole('heading', { level: 1, name: `Task ${failed}: backup` }).waitFor();
  assert.equal(await ap.getByRole('button', { name: 'Retry' }).count(), 0);
  await open(ap, '/policies/new', 'Not allowed');
  await shot(ap, 'auditor-policy-new');
  checkClean(ap, 'the auditor\'s pages');

  // ---- A restore-only user never reaches these pages.
  const rpw = 'a help desk password';
  await ok('POST', '/users', { name: 'helpdesk', password: rpw, roles: [{ role: 'restore-only', project: 1 }] });
  const rp = await newPage(browser);
  await signIn(rp, 'helpdesk', rpw);
  const menu = await rp.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
  assert.ok(!menu.includes('Sources') && !menu.includes('Policies'), `restore-only menu: ${menu}`);
  for (const hash of ['/policies/new', '/sources', `/sources/${big.id}`, '/policies']) {
    await open(rp, hash, 'Not allowed');
  }
  await shot(rp, 'restore-only-not-allowed');
  await checkA11y(rp, 'Not allowed');
  checkClean(rp, 'the restore-only user\'s pages');
  console.log(`ok: source, policy, backup task ${taskId} with ${logs.length} log lines, restore point ${rpId}, cancel, ${RETRY ? 'retry, ' : ''}delete, roles`);
} finally {
  await browser.close();
}
