// Restore points, the file browser, downloads, restores, search and
// mounts: a tree with hostile names and an image are backed up through
// the API; then, in the UI, the list of restore points, browsing into a
// folder (hostile names shown as text, never run), downloads of a file
// and of a folder as zip and tar compared byte for byte with the
// originals, a restore to a node path checked on disk, refused restores
// (outside the roots, into a folder with data) with inline errors,
// protect and a refused delete, an NBD mount whose address is the API's,
// extended and stopped, a search that opens the browser, and what a
// restore-only user and an auditor are offered.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  assert, env, launch, newPage, signIn, open, shot, checkA11y, checkFits, checkClean, apiCall, adminToken, until,
} from './lib.mjs';

const HOSTILE = '<img src=x onerror=alert(1)>.txt';
const QUOTE_NL = 'a"b\nc.txt';

// ---- the tree to back up ----
const tree = path.join(env.work, 'home');
const files = {
  'big.bin': crypto.randomBytes(1536 * 1024 + 7),
  'small.bin': crypto.randomBytes(3 * 1024),
  'docs/report.pdf': crypto.randomBytes(200 * 1024 + 3),
  [`docs/${HOSTILE}`]: Buffer.from('hostile name 1\n'),
  [`docs/${QUOTE_NL}`]: crypto.randomBytes(40 * 1024),
  'docs/deep/nested/x.dat': crypto.randomBytes(50 * 1024),
  'docs/deep/empty.txt': Buffer.alloc(0),
};
// A folder of 450 entries: listed 200 at a time.
for (let i = 0; i < 450; i += 1) files[`many/f${String(i).padStart(3, '0')}`] = Buffer.from(`${i}`);
for (const [p, data] of Object.entries(files)) {
  fs.mkdirSync(path.dirname(path.join(tree, p)), { recursive: true });
  fs.writeFileSync(path.join(tree, p), data);
}
const disk = path.join(env.work, 'disk.raw');
fs.writeFileSync(disk, crypto.randomBytes(1 << 20));

/** Every regular file below dir: {relative path: bytes}. */
function readTree(dir) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else if (e.isFile()) out[r] = fs.readFileSync(path.join(d, e.name));
    }
  };
  walk(dir, '');
  return out;
}

/** The files of the source below prefix ('docs/'), relative to it. */
function expected(prefix) {
  const out = {};
  for (const [p, d] of Object.entries(files)) if (p.startsWith(prefix)) out[p.slice(prefix.length)] = d;
  return out;
}

function sameTree(got, want, what) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: the files`);
  for (const [p, d] of Object.entries(want)) assert.ok(got[p].equals(d), `${what}: the bytes of ${JSON.stringify(p)}`);
}

// (unzip -^ keeps the newline of a name: without it, Info-ZIP drops
// control characters when it extracts.)

// ---- back it up through the API ----
const token = await adminToken();
const ok = async (method, p, body, status) => {
  const r = await apiCall(method, p, body, token);
  assert.ok(status ? r.status === status : r.status < 300, `${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};
async function backup(source) {
  const t = await ok('POST', `/sources/${source.id}/backup`);
  const done = await until(`the backup of ${source.name}`, 60, async () => {
    const x = await ok('GET', `/tasks/${t.id}`);
    return ['succeeded', 'failed', 'cancelled'].includes(x.state) && x;
  });
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
}
const home = await ok('POST', '/sources', { name: 'home', kind: 'files', path: tree }, 201);
const img = await ok('POST', '/sources', { name: 'disk', kind: 'image', path: disk }, 201);
await backup(home);
await backup(img);
const [homeRp] = await ok('GET', '/restore-points?source=home');
const [diskRp] = await ok('GET', '/restore-points?source=disk');
assert.ok(homeRp && diskRp);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arca-ui-files-'));
const browser = await launch();
try {
  const page = await newPage(browser);
  await signIn(page, env.user, env.password, '#/restore-points');

  // ---- the list of restore points ----
  await page.getByRole('heading', { level: 1, name: 'Restore points' }).waitFor();
  await page.waitForFunction(() => !document.querySelector('main .loading'));
  const rows = page.locator('main table tbody tr');
  assert.equal(await rows.count(), 2);
  // Newest first: the image was backed up last.
  assert.match(await rows.nth(0).textContent(), /disk/);
  assert.match(await rows.nth(1).textContent(), /home/);
  await shot(page, 'restore-points');
  await checkA11y(page, 'the restore points');
  await checkFits(page, 'the restore points');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the restore points at 390 px');
  await checkA11y(page, 'the restore points at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });
  // The source field suggests the sources.
  const suggested = async (label) => page.getByLabel(label).evaluate((i) => [...(i.list ? i.list.options : [])].map((o) => o.value));
  await until('source suggestions', 10, async () => (await suggested('Source')).length === 2);
  assert.deepEqual(await suggested('Source'), ['disk', 'home']);
  // A filter (kind) goes to the API and into the hash.
  await page.getByLabel('Kind').selectOption('image');
  await page.getByRole('button', { name: 'Filter' }).click();
  await until('the filtered list', 10, async () => (await rows.count()) === 1 && /disk/.test(await rows.nth(0).textContent()));
  assert.match(page.url(), /kind=image/);
  await page.getByRole('button', { name: 'Clear' }).click();
  await until('the whole list', 10, async () => (await rows.count()) === 2);
  // An unknown project is said under its field.
  await page.getByLabel('Project').fill('no-such-project');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByText('project "no-such-project" not found').waitFor();
  assert.equal(await page.getByLabel('Project').getAttribute('aria-invalid'), 'true');
  await checkA11y(page, 'the restore points with a refused filter');
  await page.getByRole('button', { name: 'Clear' }).click();
  await until('the whole list', 10, async () => (await rows.count()) === 2);

  // ---- browse the tree restore point ----
  await page.getByRole('link', { name: /Browse the restore point of home/ }).click();
  await page.getByRole('heading', { level: 1, name: /^home · / }).waitFor();
  await page.locator('table.files').waitFor();
  const names = async () => page.locator('table.files tbody td.name').allTextContents();
  assert.deepEqual(await names(), ['big.bin', '▸ docs', '▸ many', 'small.bin']);
  assert.match(await page.locator('main dl.facts').textContent(), new RegExp(homeRp.id));
  await shot(page, 'browse-root');
  await checkA11y(page, 'the browser');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the browser at 390 px');
  await checkA11y(page, 'the browser at 390 px');
  await shot(page, 'browse-root-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });

  // A big folder comes a page at a time.
  await page.getByRole('link', { name: 'many', exact: true }).click();
  await until('the first page of many', 10, async () => (await names()).length === 200);
  assert.deepEqual(await names(), Array.from({ length: 200 }, (_, i) => `f${String(i).padStart(3, '0')}`));
  const more = page.getByRole('button', { name: 'Show more' });
  await more.click();
  await until('the second page', 10, async () => (await names()).length === 400);
  await more.click();
  await until('the last page', 10, async () => (await names()).length === 450);
  assert.deepEqual(await names(), Array.from({ length: 450 }, (_, i) => `f${String(i).padStart(3, '0')}`));
  assert.equal(await more.isVisible(), false);
  await page.getByText('450 entries').waitFor();
  await page.goBack();
  await until('the root', 10, async () => (await names()).includes('big.bin'));

  // Into the folder: the hostile names are text, exactly.
  await page.getByRole('link', { name: 'docs', exact: true }).click();
  await page.getByRole('navigation', { name: 'Folder' }).getByText('docs').waitFor();
  await until('the docs folder', 10, async () => (await names()).includes(HOSTILE));
  assert.deepEqual(await names(), [HOSTILE, QUOTE_NL, '▸ deep', 'report.pdf']);
  assert.equal(await page.locator('main img').count(), 0, 'no element made from a name');
  assert.equal(new URL(page.url()).hash, '#/restore-points/' + homeRp.id + '?path=docs');
  checkClean(page, 'the folder with hostile names');
  await shot(page, 'browse-docs');
  await checkA11y(page, 'the docs folder');

  // Download files: the bytes are the originals.
  for (const name of ['report.pdf', HOSTILE, QUOTE_NL]) {
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: `Download ${name}`, exact: true }).click(),
    ]);
    const got = fs.readFileSync(await dl.path());
    assert.ok(got.equals(files[`docs/${name}`]), `the downloaded ${JSON.stringify(name)}`);
  }
  // The folder as zip and as tar: every file's bytes.
  for (const format of ['zip', 'tar']) {
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: `Download as ${format}: /docs` }).click(),
    ]);
    const file = path.join(tmp, `docs.${format}`);
    await dl.saveAs(file);
    const into = path.join(tmp, format);
    fs.mkdirSync(into);
    if (format === 'zip') execFileSync('unzip', ['-q', '-^', file, '-d', into]);
    else execFileSync('tar', ['-xf', file, '-C', into]);
    const top = fs.readdirSync(into);
    assert.equal(top.length, 1, `one folder in the ${format}: ${top}`);
    sameTree(readTree(path.join(into, top[0])), expected('docs/'), `the ${format} of docs`);
  }
  // The whole restore point as zip, from its root.
  await page.getByRole('navigation', { name: 'Folder' }).getByRole('link', { name: 'home' }).click();
  await until('the root again', 10, async () => (await names()).includes('big.bin'));
  {
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download as zip: the whole restore point' }).click(),
    ]);
    const file = path.join(tmp, 'all.zip');
    await dl.saveAs(file);
    const into = path.join(tmp, 'all');
    fs.mkdirSync(into);
    execFileSync('unzip', ['-q', '-^', file, '-d', into]);
    sameTree(readTree(path.join(into, fs.readdirSync(into)[0])), files, 'the zip of the restore point');
  }

  // ---- restore one file to a node path ----
  await page.getByRole('link', { name: 'docs', exact: true }).click();
  await until('the docs folder', 10, async () => (await names()).includes('report.pdf'));
  const target = path.join(env.work, 'restored');
  await page.getByRole('button', { name: 'Restore report.pdf' }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore' });
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /\/docs\/report\.pdf/);
  await checkA11y(page, 'the restore dialog');
  await shot(page, 'restore-dialog');
  // Outside the node's restore roots: the server's message, inline.
  await dialog.getByLabel('Target folder on the node').fill('/etc/arca-ui-test');
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await dialog.getByText(/outside the restore roots/).waitFor();
  assert.equal(await dialog.getByLabel('Target folder on the node').getAttribute('aria-invalid'), 'true');
  // Not absolute: said before asking.
  await dialog.getByLabel('Target folder on the node').fill('relative/path');
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await dialog.getByText('The target must be an absolute path').waitFor();
  await shot(page, 'restore-refused');
  assert.ok(!fs.existsSync('/etc/arca-ui-test'));
  // A good one: the task page, and the file on disk.
  await dialog.getByLabel('Target folder on the node').fill(target);
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await until('the task page', 20, async () => /^#\/tasks\/\d+$/.test(new URL(page.url()).hash));
  const taskId = Number(new URL(page.url()).hash.split('/').pop());
  const task = await until('the restore task', 60, async () => {
    const t = await ok('GET', `/tasks/${taskId}`);
    return ['succeeded', 'failed'].includes(t.state) && t;
  });
  assert.equal(task.state, 'succeeded', JSON.stringify(task));
  assert.equal(task.kind, 'restore');
  assert.ok(fs.readFileSync(path.join(target, 'report.pdf')).equals(files['docs/report.pdf']), 'the restored file');
  assert.deepEqual(fs.readdirSync(target), ['report.pdf']);
  // Again into the same folder, without overwrite: refused, inline.
  await page.goBack();
  await until('the docs folder', 10, async () => (await names()).includes('report.pdf'));
  await page.getByRole('button', { name: 'Restore report.pdf' }).click();
  await dialog.getByLabel('Target folder on the node').fill(target);
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await dialog.getByText(/is not empty/).waitFor();
  await dialog.getByText('Tick this to restore into a folder that holds data').waitFor();
  await shot(page, 'restore-not-empty');
  await checkA11y(page, 'the restore dialog with errors');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });

  // ---- protect, a refused delete, unprotect ----
  await page.getByRole('button', { name: 'Protect…' }).click();
  const pd = page.getByRole('dialog', { name: 'Protect the restore point' });
  await pd.getByLabel('Note').fill('kept for the audit <b>2026</b>');
  await pd.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('button', { name: 'Protection and note…' }).waitFor();
  let rp = await ok('GET', `/restore-points/${homeRp.id}`);
  assert.equal(rp.protected, true);
  assert.equal(rp.note, 'kept for the audit <b>2026</b>');
  assert.match(await page.locator('main dl.facts').textContent(), /kept for the audit <b>2026<\/b>/);
  await page.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('dialog', { name: 'Delete the restore point?' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('alert').filter({ hasText: 'is protected: unprotect it first' }).waitFor();
  await shot(page, 'delete-refused');
  await page.getByRole('button', { name: 'Protection and note…' }).click();
  const pd2 = page.getByRole('dialog', { name: 'Protection and note' });
  await pd2.getByLabel('Protected: retention never removes it').uncheck();
  await pd2.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('button', { name: 'Protect…' }).waitFor();
  rp = await ok('GET', `/restore-points/${homeRp.id}`);
  assert.equal(rp.protected, false);

  // ---- an NBD mount of the image ----
  await open(page, `/restore-points/${diskRp.id}`, /^disk · /);
  await page.locator('table.files').waitFor();
  assert.deepEqual(await names(), ['disk.img']);
  await page.getByRole('button', { name: 'Mount…' }).click();
  const md = page.getByRole('dialog', { name: 'Mount the restore point' });
  await md.getByLabel('Stops after').fill('forever');
  await md.getByRole('button', { name: 'Start' }).click();
  await md.getByText('Enter a time like 90s').waitFor();
  await md.getByLabel('Stops after').fill('1h');
  assert.equal(await md.getByLabel('Protocol').inputValue(), 'nbd');
  await md.getByRole('button', { name: 'Start' }).click();
  const addrEl = md.locator('dl.export-details dd code').first();
  await addrEl.waitFor();
  const [exp] = await ok('GET', '/exports');
  assert.equal(exp.protocol, 'nbd');
  assert.equal(exp.restore_point_id, diskRp.id);
  assert.match(exp.address, /^nbd:\/\//);
  assert.equal(await addrEl.textContent(), exp.address);
  assert.ok(await md.getByRole('button', { name: `Copy the address: ${exp.address}` }).isVisible());
  await shot(page, 'mount-started');
  await checkA11y(page, 'the mount dialog');
  await md.getByRole('link', { name: 'All mounts' }).click();

  // ---- the mounts page: extend, stop ----
  await page.getByRole('heading', { level: 1, name: 'Mounts' }).waitFor();
  const card = page.locator(`section.mount[data-export="${exp.id}"]`);
  await card.waitFor();
  assert.match(await card.textContent(), new RegExp(exp.address.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  assert.match(await card.textContent(), new RegExp(exp.secret));
  await shot(page, 'mounts');
  await checkA11y(page, 'the mounts');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the mounts at 390 px');
  await checkA11y(page, 'the mounts at 390 px');
  await shot(page, 'mounts-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });
  await card.getByLabel('Extend to').selectOption('1d');
  await card.getByRole('button', { name: 'Extend' }).click();
  await until('the longer mount', 10, async () => (await ok('GET', `/exports/${exp.id}`)).expires_at >= exp.created_at + 86400 - 5);
  await page.locator(`section.mount[data-export="${exp.id}"]`).getByRole('button', { name: 'Stop' }).click();
  await page.getByRole('dialog', { name: `Stop mount ${exp.id}?` }).getByRole('button', { name: 'Stop' }).click();
  await page.getByText('No mount is running.').waitFor();
  assert.equal((await ok('GET', `/exports/${exp.id}`)).state, 'stopped');

  // ---- an NFS mount of the tree ----
  await open(page, `/restore-points/${homeRp.id}`, /^home · /);
  await page.getByRole('button', { name: 'Mount…' }).click();
  const nd = page.getByRole('dialog', { name: 'Mount the restore point' });
  assert.deepEqual(await nd.getByLabel('Protocol').locator('option').allTextContents(), ['NFS (the files, read-only)']);
  await nd.getByLabel('Allowed NFS clients').fill('not-an-address');
  await nd.getByRole('button', { name: 'Start' }).click();
  await nd.getByText(/^allow: /).waitFor();
  await nd.getByLabel('Allowed NFS clients').fill('127.0.0.0/8');
  await nd.getByRole('button', { name: 'Start' }).click();
  await nd.locator('dl.export-details dd code').first().waitFor();
  const [nfs] = (await ok('GET', '/exports')).filter((x) => x.protocol === 'nfs');
  assert.equal(nfs.restore_point_id, homeRp.id);
  assert.match(nfs.address, /^nfs:\/\//);
  assert.equal(await nd.locator('dl.export-details dd code').first().textContent(), nfs.address);
  assert.match(await nd.textContent(), /127\.0\.0\.0\/8/);
  await shot(page, 'mount-nfs');
  await nd.getByRole('button', { name: 'Close' }).click();
  await ok('DELETE', `/exports/${nfs.id}`);

  // ---- search opens the browser at the file ----
  await open(page, '/search', 'Search files');
  await checkA11y(page, 'the search page');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('Enter a file name or a pattern.').waitFor();
  await page.getByLabel('File name').fill('a[b');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText(/is not a glob/).waitFor();
  assert.equal(await page.getByLabel('File name').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('File name').fill('REPORT');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: '/docs/report.pdf' }).waitFor();
  await page.getByLabel('File name').fill('onerror');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: `/docs/${HOSTILE}` }).waitFor();
  assert.equal(await page.locator('main img').count(), 0);
  await shot(page, 'search');
  await checkA11y(page, 'the search results');
  await page.setViewportSize({ width: 390, height: 800 });
  await checkFits(page, 'the search results at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel('File name').fill('report.pdf');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: '/docs/report.pdf' }).click();
  await page.getByRole('heading', { level: 2, name: 'File' }).waitFor();
  assert.deepEqual(await names(), ['report.pdf']);
  assert.equal(new URL(page.url()).hash, `#/restore-points/${homeRp.id}?path=docs%2Freport.pdf`);
  await shot(page, 'search-opened');
  checkClean(page, 'the admin\'s pages');

  // ---- a session that ends while a dialog is open: sign-in, then back here ----
  await open(page, `/restore-points/${homeRp.id}?path=docs`, /^home · /);
  await page.getByRole('button', { name: 'Restore report.pdf' }).click();
  await dialog.getByLabel('Target folder on the node').fill(path.join(env.work, 'restored-2'));
  const tokenId = await page.evaluate(async () => (await (await fetch('/api/v1/me')).json()).token_id);
  await ok('DELETE', `/tokens/${tokenId}`);
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await page.getByText('Your session has ended').waitFor();
  assert.equal(await page.locator('dialog').count(), 0, 'no dialog left over the sign-in page');
  assert.ok(!fs.existsSync(path.join(env.work, 'restored-2')));
  await page.getByLabel('User name').fill(env.user);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: /^home · / }).waitFor();
  await until('the docs folder', 10, async () => (await names()).includes('report.pdf'));

  // ---- delete the image's restore point ----
  await open(page, `/restore-points/${diskRp.id}`, /^disk · /);
  await page.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('dialog', { name: 'Delete the restore point?' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { level: 1, name: 'Restore points' }).waitFor();
  await until('the forgotten image', 60, async () => (await ok('GET', '/restore-points?source=disk')).length === 0);

  // ---- a restore-only user: browse, download, restore; no protect or delete ----
  await ok('POST', '/users', { name: 'helpdesk', password: 'help desk password 1', roles: [{ role: 'restore-only', project: 1 }] }, 201);
  const rpage = await newPage(browser);
  await signIn(rpage, 'helpdesk', 'help desk password 1', `#/restore-points/${homeRp.id}?path=docs`);
  await rpage.locator('table.files').waitFor();
  await rpage.getByRole('button', { name: 'Restore…', exact: true }).waitFor();
  assert.ok(await rpage.getByRole('button', { name: 'Mount…' }).isVisible());
  assert.equal(await rpage.getByRole('button', { name: /Protect/ }).count(), 0);
  assert.equal(await rpage.getByRole('button', { name: 'Delete…' }).count(), 0);
  const [dl] = await Promise.all([
    rpage.waitForEvent('download'),
    rpage.getByRole('link', { name: 'Download report.pdf', exact: true }).click(),
  ]);
  assert.ok(fs.readFileSync(await dl.path()).equals(files['docs/report.pdf']));
  await shot(rpage, 'restore-only-browse');
  await checkA11y(rpage, 'the browser of a restore-only user');
  checkClean(rpage, 'the restore-only user\'s pages');

  // ---- an auditor: browse and download only ----
  await ok('POST', '/users', { name: 'auditor1', password: 'auditor password 1', roles: [{ role: 'auditor', project: 1 }] }, 201);
  const apage = await newPage(browser);
  await signIn(apage, 'auditor1', 'auditor password 1', `#/restore-points/${homeRp.id}?path=docs`);
  await apage.locator('table.files').waitFor();
  await apage.getByRole('link', { name: 'Download report.pdf', exact: true }).waitFor();
  assert.equal(await apage.getByRole('button', { name: /Restore|Mount|Protect|Delete/ }).count(), 0);
  await checkA11y(apage, 'the browser of an auditor');
  checkClean(apage, 'the auditor\'s pages');
  checkClean(page, 'the admin\'s pages');
  console.log('ok: list, browse (paged), downloads (file, zip, tar), restore, protect, mount, search, restore-only, auditor');
} finally {
  await browser.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
