// Browser test of the dashboard: Debian's chromium driven by playwright-core (run by
// scripts/test-dashboard.sh, which starts a cluster and passes its status URL).
// Checks: the page loads with no console errors, the chart shows candles for a symbol, a
// new candle arrives live (pushed by the SSE stream), the cluster panel shows a rate; a
// screenshot goes to OUT_DIR/dashboard.png.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(process.env.PLAYWRIGHT_DIR + '/');
const { chromium } = require('playwright-core');
const base = process.env.TICKFLOW_URL;
const out = process.env.OUT_DIR;
const fail = (msg) => { console.error('dashboard test: ' + msg); process.exitCode = 1; };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/?symbol=SYM0001&timeframe=1m`, { waitUntil: 'load' });

  // Candles on the chart (from /api/v1/candles, then the stream).
  await page.waitForFunction(() => window.tickflow && window.tickflow.rows.length >= 2, null, { timeout: 60000 });
  const first = await page.evaluate(() => ({ n: window.tickflow.rows.length, last: window.tickflow.rows.at(-1).ts }));
  console.log(`dashboard test: ${first.n} candles of SYM0001 on the chart, newest ${first.last}`);
  const canvases = await page.locator('#price canvas').count();
  if (canvases === 0) fail('the price chart drew no canvas');

  // A new candle arrives live.
  await page.waitForFunction((t) => window.tickflow.rows.at(-1).ts > t, first.last, { timeout: 60000 });
  const later = await page.evaluate(() => ({ n: window.tickflow.rows.length, updates: window.tickflow.updates }));
  console.log(`dashboard test: a new candle arrived live (${later.n} candles, ${later.updates} stream updates)`);

  // The cluster panel shows a rate for every process.
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll('#cluster .rate')].map((e) => Number(e.textContent));
    return r.length >= 2 && r.every((x) => x > 0);
  }, null, { timeout: 30000 });
  console.log('dashboard test: cluster panel: ' + (await page.locator('#cluster').innerText()).replace(/\s+/g, ' '));

  // The symbol list and its search.
  const listed = await page.locator('#symbols tr').count();
  await page.fill('#search', 'SYM0001');
  const found = await page.locator('#symbols tr').count();
  if (listed < 2 || found !== 1) fail(`symbol list: ${listed} rows, ${found} after searching SYM0001`);

  await page.screenshot({ path: path.join(out, 'dashboard.png') });
  if (errors.length) fail('console errors:\n  ' + errors.join('\n  '));
} catch (e) {
  fail(String(e && e.stack || e));
} finally {
  await browser.close();
}
