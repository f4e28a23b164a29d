// Hosting: the bundle served under a sub-path (/mnemo/), as GitHub Pages or a university
// web space serves it; every file loads from there by relative address, the footer shows
// the version stamp, a copied link names the hosted page and opens there; after one visit
// the page opens and trains offline (the service worker); a new build is announced and
// taken up with "Use it now". Screenshot of the offline reload for the README.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { serveDist, launch } from './harness.mjs';

// The "next build": the same files under another stamp, as a rebuilt bundle would be.
let nextBuild = false;
let server, browser;
before(async () => {
  server = await serveDist({
    base: '/mnemo/',
    rewrite: (path, body) => (nextBuild && path === '/sw.js'
      ? Buffer.from(body.toString().replace(/const BUILD = '([^']+)'/, "const BUILD = '$1-next'"))
      : body),
  });
  browser = await launch({ gpu: false });
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

async function trainSteps(page, steps) {
  await page.fill('#f-training-duration-steps', String(steps));
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"], #status[data-state="failed"]', { timeout: 120_000 });
  assert.equal(await page.getAttribute('#status', 'data-state'), 'done', await page.textContent('#status'));
  return JSON.parse(await page.textContent('#loss-json'));
}

let losses;
test('the bundle runs under a sub-path, with its version stamp, and links name the hosted page', async () => {
  const { page, errors } = browser;
  await page.goto(server.url);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  assert.match(await page.textContent('#version'),
    /^Mnemo \d+\.\d+\.\d+ \(([0-9a-f]{10}|unknown)\) · opens links up to v1 and specs up to v1$/);
  losses = await trainSteps(page, 12);
  assert.equal(losses.length, 12);
  const outside = server.requests.filter((p) => !p.startsWith('/mnemo/'));
  assert.deepEqual(outside, [], 'every file comes from the sub-path');
  assert.ok(server.requests.includes('/mnemo/worker_bg.wasm'), 'the worker loaded from the sub-path');
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  assert.ok(url.startsWith(`${server.url}#v1.`), `the link names the hosted page: ${url}`);
  const other = await browser.context.newPage();
  await other.goto(url);
  await other.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  assert.deepEqual(JSON.parse(await other.textContent('#loss-json')), losses, 'the link re-ran it there');
  await other.close();
  assert.deepEqual(errors, []);
});

test('after one visit the page opens and trains offline', async () => {
  const { page, context, errors } = browser;
  await page.waitForSelector('#offline-state[data-state="ready"]', { timeout: 120_000 });
  assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null), 'the page is controlled');
  const seen = server.requests.length;
  // Offline twice over: the browser's network is off and the host answers nothing.
  server.down = true;
  await context.setOffline(true);
  await page.reload();
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.waitForSelector('#offline-state[data-online="false"]');
  assert.match(await page.textContent('#offline-state'), /offline: Mnemo runs from its saved copy/);
  // The browser's own check for a new sw.js may slip past the emulated offline state
  // (it is not the page's request); it is answered 503 and changes nothing. Nothing the
  // page asks for may reach the server.
  const asked = server.requests.slice(seen).filter((p) => p !== '/mnemo/sw.js');
  assert.deepEqual(asked, [], 'nothing the page needs reached the server');
  assert.deepEqual(await trainSteps(page, 12), losses, 'the same run, offline');
  await mkdir('target/e2e', { recursive: true });
  assert.match(await page.textContent('#offline-notice'), /^You are offline/);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: 'target/e2e/offline.png' });
  await context.setOffline(false);
  server.down = false;
  assert.deepEqual(errors, []);
});

test('a new build is announced and taken up with "Use it now"', async () => {
  const { page, errors } = browser;
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  nextBuild = true;
  // The browser looks for a new sw.js when the page is opened again.
  await page.reload();
  await page.waitForSelector('#update-ready', { timeout: 120_000 });
  assert.match(await page.textContent('#update-ready'), /new version of Mnemo is ready\. It opens on your next visit/);
  // Both copies are kept while the new one waits: the running page keeps working.
  const before = await page.evaluate(() => caches.keys());
  assert.equal(before.length, 2, `the running copy and the waiting one: ${before}`);
  await Promise.all([page.waitForNavigation(), page.click('#update-now')]);
  await page.waitForSelector('#offline-state[data-state="ready"]', { timeout: 60_000 });
  assert.equal(await page.$('#update-ready'), null);
  const now = await page.evaluate(() => caches.keys());
  assert.equal(now.length, 1, `one copy kept: ${now}`);
  assert.ok(now[0].endsWith('-next'), `the new build's copy: ${before} -> ${now}`);
  assert.deepEqual(errors, []);
});
