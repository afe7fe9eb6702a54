// Hypervisors and VM restore in the browser, with a real libvirt host:
// tests/libvirt/ui.rs starts the server, an sshd on loopback and a
// running KVM guest, and runs this scenario with
//   ARCA_SSH_ADDR     the sshd (127.0.0.1:PORT)
//   ARCA_SSH_KEY      the private key file (read through the file input)
//   ARCA_DOMAIN       the guest's domain name
//   ARCA_HOOK_MARK    a file the pre command set in the UI touches
//   ARCA_IMPORT_DIR   where the import writes the disks
//   ARCA_IMPORT_NAME  the imported VM's new name
// It adds a hypervisor through the form (key from the file), syncs it
// (the report lists the guest's source, the host key is pinned), shows
// a failing sync's reason in place (an unreachable host), adds an agent
// hypervisor (its command is shown), refuses to remove one with sources,
// removes the unreachable one; on the guest's source page it sets a pre
// command (a bad line is refused inline), and the next backup is
// application-consistent; the restore point's "Import to a hypervisor"
// dialog refuses a relative folder inline and then imports the VM under
// a new name (tests/libvirt/ui.rs checks the new domain and its disk).

import fs from 'node:fs';
import {
  assert, env, launch, newPage, signIn, open, shot, checkA11y, checkFits, checkClean, apiCall, adminToken, until,
} from './lib.mjs';

const need = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run through tests/libvirt/ui.rs)`);
  return v;
};
const sshAddr = need('ARCA_SSH_ADDR');
const keyFile = need('ARCA_SSH_KEY');
const domain = need('ARCA_DOMAIN');
const mark = need('ARCA_HOOK_MARK');
const importDir = need('ARCA_IMPORT_DIR');
const importName = need('ARCA_IMPORT_NAME');
const source = `kvm1.${domain}`;

const admin = await adminToken();
async function ok(m, p, b) {
  const r = await apiCall(m, p, b, admin);
  assert.ok(r.status >= 200 && r.status < 300, `${m} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
async function finished(id, secs = 180) {
  return until(`task ${id}`, secs, async () => {
    const t = await ok('GET', `/tasks/${id}`);
    return ['succeeded', 'failed', 'cancelled'].includes(t.state) ? t : null;
  });
}

const browser = await launch();
try {
  const page = await newPage(browser);
  await signIn(page);

  // ---- The page, empty; the menu leads to it. ----
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Hypervisors' }).click();
  await page.getByRole('heading', { level: 1, name: 'Hypervisors' }).waitFor();
  await page.getByText('No hypervisor yet.').waitFor();
  await checkA11y(page, 'the empty hypervisors page');

  const form = page.getByRole('form', { name: 'Add a hypervisor' });
  // Without a key: said at the key's field, nothing added.
  await form.getByLabel('Name', { exact: true }).fill('kvm1');
  await form.getByLabel('Address').fill(sshAddr);
  await form.getByRole('button', { name: 'Add hypervisor' }).click();
  const keyError = form.locator('[data-field="private_key"] .field-error');
  await keyError.waitFor();
  assert.match(await keyError.textContent(), /private key/);
  assert.equal((await ok('GET', '/hypervisors')).length, 0);

  // ---- Added over SSH, its key read from the file. ----
  await form.getByLabel('Read the private key from a file').setInputFiles(keyFile);
  await until('the key to be read', 10, async () => (await form.getByLabel('Private key', { exact: true }).inputValue()).includes('PRIVATE KEY'));
  await form.getByRole('button', { name: 'Add hypervisor' }).click();
  const row = page.locator('tr[data-hypervisor="kvm1"]');
  await row.waitFor();
  assert.match(await row.textContent(), /never/);
  assert.match(await row.textContent(), new RegExp(`root@${sshAddr.replace(/\./g, '\\.')}`));
  // The key is sealed: never in the page or the API again.
  assert.equal(await form.getByLabel('Private key', { exact: true }).inputValue(), '');
  const keyBody = fs.readFileSync(keyFile, 'utf8').split('\n')[1];
  assert.ok(keyBody.length > 20);
  assert.ok(!(await page.content()).includes(keyBody), 'the private key is shown on the page');
  const [hv] = await ok('GET', '/hypervisors');
  assert.ok(!JSON.stringify(hv).includes('PRIVATE') && !JSON.stringify(hv).includes(keyBody), JSON.stringify(hv));

  // ---- An unreachable host: the sync's reason in place, and in the row. ----
  await form.getByLabel('Name', { exact: true }).fill('dead');
  await form.getByLabel('Address').fill('127.0.0.1:1');
  await form.getByLabel('Read the private key from a file').setInputFiles(keyFile);
  await until('the key to be read', 10, async () => (await form.getByLabel('Private key', { exact: true }).inputValue()).includes('PRIVATE KEY'));
  await form.getByRole('button', { name: 'Add hypervisor' }).click();
  const dead = page.locator('tr[data-hypervisor="dead"]');
  await dead.waitFor();
  await dead.getByRole('button', { name: 'Sync dead' }).click();
  const failed = page.getByRole('alert').filter({ hasText: 'Sync of dead failed' });
  await failed.waitFor();
  assert.match(await failed.textContent(), /127\.0\.0\.1:1/);
  await dead.locator('.sync-error').waitFor();
  assert.match(await dead.textContent(), /sync failed/);

  // ---- An agent hypervisor: no address or key; its command is shown. ----
  await form.getByLabel('Name', { exact: true }).fill('kvm2');
  await form.getByLabel('Reached by').selectOption('agent');
  assert.equal(await form.getByLabel('Address').isVisible(), false);
  await form.getByRole('button', { name: 'Add hypervisor' }).click();
  const cmd = page.locator('code.agent-command');
  await cmd.waitFor();
  assert.match(await cmd.textContent(), /agent run --hypervisor kvm2/);
  await page.locator('tr[data-hypervisor="kvm2"]').waitFor();
  assert.match(await page.locator('tr[data-hypervisor="kvm2"]').textContent(), /its agent/);

  // ---- Sync: the guest becomes a source; the host key is pinned. ----
  await row.getByRole('button', { name: 'Sync kvm1' }).click();
  const report = page.locator('.sync-report[data-hypervisor="kvm1"]');
  await report.waitFor();
  const text = await report.textContent();
  assert.ok(text.includes(source), `the sync report lacks ${source}: ${text}`);
  assert.match(text, /Host key pinned\s*SHA256:/);
  await until('the row to show the pinned key', 10, async () => /SHA256:/.test(await row.textContent()));
  assert.doesNotMatch(await row.textContent(), /never/);
  await shot(page, 'hypervisors');
  await checkA11y(page, 'the hypervisors page');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the hypervisors page at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });

  // ---- Remove: refused while it has sources; the unreachable one goes. ----
  await row.getByRole('button', { name: 'Remove kvm1' }).click();
  await checkA11y(page, 'the remove dialog');
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  const refused = page.getByRole('alert').filter({ hasText: 'kvm1 was not removed' });
  await refused.waitFor();
  assert.match(await refused.textContent(), /source/);
  await dead.getByRole('button', { name: 'Remove dead' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await dead.waitFor({ state: 'detached' });
  assert.deepEqual((await ok('GET', '/hypervisors')).map((x) => x.name).sort(), ['kvm1', 'kvm2']);

  // ---- The guest's source: its hypervisor, and pre/post commands. ----
  await row.getByRole('link', { name: /sources of kvm1/ }).click();
  await page.getByRole('heading', { level: 1, name: 'Sources' }).waitFor();
  await page.getByRole('link', { name: source, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: `Source ${source}` }).waitFor();
  const facts = await page.locator('dl.facts').first().textContent();
  assert.match(facts, /Hypervisor\s*kvm1/);
  assert.ok(facts.includes(domain), facts);
  const hooks = page.getByRole('form', { name: 'Pre and post commands' });
  await hooks.getByLabel('Pre commands').fill('touch /tmp/x');
  await hooks.getByRole('button', { name: 'Save commands' }).click();
  const preErr = hooks.locator('[data-field="pre"] .field-error');
  await preErr.waitFor();
  assert.match(await preErr.textContent(), /Line 1 is not a command/);
  await hooks.getByLabel('Pre commands').fill(JSON.stringify(['touch', mark]));
  await hooks.getByRole('button', { name: 'Save commands' }).click();
  await page.locator('section.hooks ol li code', { hasText: `touch ${mark}` }).waitFor();
  const src = (await ok('GET', '/sources')).find((s) => s.name === source);
  assert.deepEqual(src.settings.hooks.pre, [['touch', mark]]);
  assert.equal(src.settings.hooks.on_pre_failure, 'fail');
  await shot(page, 'libvirt-source');
  await checkA11y(page, 'a libvirt source with commands');

  // A backup runs them: application-consistent.
  const t = await ok('POST', `/sources/${src.id}/backup`, {});
  const done = await finished(t.id);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  assert.equal(done.result.consistency, 'application', JSON.stringify(done));
  assert.ok(fs.existsSync(mark), 'the pre command did not run');

  // ---- Import the restore point onto kvm1 under a new name. ----
  const [rp] = await ok('GET', `/restore-points?source=${encodeURIComponent(source)}&kind=libvirt`);
  assert.equal(rp.kind, 'libvirt');
  await open(page, `/restore-points/${rp.id}`);
  await page.getByRole('button', { name: 'Import to a hypervisor…' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('Hypervisor').waitFor();
  // Only the SSH hypervisor is offered.
  assert.deepEqual(await dlg.getByLabel('Hypervisor').locator('option').allTextContents(), ['kvm1']);
  await dlg.getByLabel('New name').fill(importName);
  await dlg.getByLabel('Folder on the host').fill('images');
  await dlg.getByRole('button', { name: 'Import' }).click();
  const dirErr = dlg.locator('[data-field="dir"] .field-error');
  await dirErr.waitFor();
  assert.match(await dirErr.textContent(), /absolute path/);
  await shot(page, 'import-dialog');
  await checkA11y(page, 'the import dialog');
  await dlg.getByLabel('Folder on the host').fill(importDir);
  await dlg.getByRole('button', { name: 'Import' }).click();
  await page.waitForURL(/#\/tasks\/\d+$/);
  const taskId = Number(page.url().split('/').pop());
  const imp = await finished(taskId);
  assert.equal(imp.state, 'succeeded', JSON.stringify(imp));
  assert.equal(imp.kind, 'restore');
  assert.ok(imp.result.target.includes(importName), JSON.stringify(imp.result));
  await page.getByText('succeeded').first().waitFor();
  await shot(page, 'import-task');

  checkClean(page, 'the hypervisor pages');
  console.log(`hypervisors: added, synced (${source}), import task ${taskId} succeeded`);
} finally {
  await browser.close();
}
