// Time to interactive of web UI pages (benches/ui.sh): headless Chromium
// (the system's), signed in, opens each page N times and reads when the
// page had its data (app.js sets main[data-ready] and window.arcaReadyAt,
// milliseconds since the navigation started). The first load of each page
// is cold (a fresh browser context: empty HTTP cache); the next ones are
// warm (cache revalidated by ETag). Prints one JSON line per page.
//   node benches/ui/tti.mjs URL USER PASSWORD RUNS HASH...

import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/ui/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, user, password, runsArg, ...hashes] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function signedIn() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const r = await ctx.request.post(`${url}/api/v1/auth/login`, { data: { username: user, password, cookie: true } });
  if (!r.ok()) throw new Error(`sign-in: ${r.status()} ${await r.text()}`);
  return ctx;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
try {
  for (const hash of hashes) {
    const times = [];
    let requests = 0;
    let bytes = 0;
    let rows = 0;
    const ctx = await signedIn();
    const page = await ctx.newPage();
    for (let i = 0; i < runs; i += 1) {
      let n = 0;
      let b = 0;
      const onResp = async (resp) => {
        n += 1;
        const len = Number(resp.headers()['content-length'] || 0);
        b += len;
      };
      page.on('response', onResp);
      // A new document each time (not a hash change): the whole page loads.
      await page.goto('about:blank');
      await page.goto(`${url}/#${hash}`);
      await page.waitForSelector('main[data-ready]', { timeout: 60000 });
      const t = await page.evaluate(() => window.arcaReadyAt);
      page.off('response', onResp);
      times.push(t);
      if (i === 0) { requests = n; bytes = b; rows = await page.locator('main tbody tr').count(); }
    }
    await ctx.close();
    console.log(JSON.stringify({ hash, cold_ms: Math.round(times[0]), warm_median_ms: Math.round(median(times.slice(1))), runs, requests_cold: requests, rows_shown: rows }));
  }
} finally {
  await browser.close();
}
