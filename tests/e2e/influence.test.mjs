// The influence view on the CPU path: impossible settings are refused in place; the demo
// trains, scores every test text against every training text by the four methods in
// well under 30 s, the repeated "my PIN" line is its own top proponent with its copies
// next, the exports hold every score; case deletion retrains with progress, beats random
// removal on the repeated text, and Cancel keeps the retrains done; a link re-runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, inkOnChart, download, nav } from './harness.mjs';

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ gpu: false });
  await browser.page.goto(server.url);
  await browser.page.waitForSelector('#backend-badge[data-backend="cpu"]');
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

test('impossible influence settings are refused in place', async () => {
  const { page } = browser;
  await nav(page, 'influence');
  await page.fill('#inf-k', '0,3');
  assert.match(await page.textContent('#inf-panel .field.invalid small'), /whole numbers from 1/);
  await page.waitForFunction(() => document.getElementById('inf-demo').disabled);
  await page.fill('#inf-k', '1,6');
  await page.fill('#inf-topk', 'ten');
  assert.ok(await page.isDisabled('#inf-demo'));
  await page.fill('#inf-topk', '10');
  await page.waitForSelector('#inf-demo:enabled');
  assert.ok(await page.isDisabled('#inf-delete'), 'nothing to delete from yet');
});

test('the influence demo finds the repeated text as its own top proponent', async () => {
  const { page, errors } = browser;
  const t0 = Date.now();
  await page.click('#inf-demo');
  await page.waitForSelector('#inf-status[data-state="ready"]', { timeout: 120_000 });
  const secs = (Date.now() - t0) / 1000;
  const summary = await page.textContent('#inf-summary');
  console.log(`# influence demo in the browser (CPU): ${secs.toFixed(1)} s in all; ${summary}`);
  assert.ok(secs < 30, `the demo shows its pattern in under 30 s (${secs} s)`);
  const m = summary.match(/^(\d+) test texts scored against (\d+) training texts at (\d+) checkpoints/);
  assert.ok(m, summary);
  const [tests, train] = [Number(m[1]), Number(m[2])];
  // The first test text is the repeated "my PIN" line (a training text): with every
  // method its copies are its top proponents.
  assert.match(await page.$eval('#inf-test', (s) => s.selectedOptions[0].textContent), /\(training\) my PIN is/);
  for (const method of ['TracIn', 'TracIn-WE']) {
    await page.locator('#inf-methods label', { hasText: new RegExp(`^ ${method} $`) }).locator('input').check();
    const top = await page.$$eval('#inf-proponents li', (li) => li.map((x) => x.textContent));
    assert.ok(top.length >= 6, method);
    for (const t of top.slice(0, 6)) assert.match(t, /my PIN is/, `${method}: ${t}`);
    assert.doesNotMatch(top[6] ?? '', /my PIN is/, `${method}: the copies come first, then the rest`);
  }
  // Shared tokens are shaded on both texts.
  assert.ok((await page.locator('#inf-pair .tok.att').count()) > 4);
  assert.ok((await inkOnChart(page, 'inf-agreement')) > 2000, 'the agreement chart is drawn');
  // Search picks a matching test text.
  await page.fill('#inf-search', 'Oulu');
  const picked = await page.$eval('#inf-test', (s) => s.selectedOptions[0]?.textContent ?? '');
  if (picked) assert.match(picked, /Oulu/);
  await page.fill('#inf-search', '');
  const scores = await download(page, page.locator('#inf-panel button', { hasText: 'Scores CSV' }));
  assert.equal(scores.name, 'influence.csv');
  const lines = scores.text.trim().split('\n');
  assert.equal(lines[0], 'test,train,method,score');
  assert.equal(lines.length, 1 + tests * train * 4, 'every (test, train, method)');
  const tokens = await download(page, page.locator('#inf-panel button', { hasText: 'Tokens CSV' }));
  assert.ok(tokens.text.startsWith('test,train,token,score\n'));
  const json = JSON.parse((await download(page, page.locator('#inf-panel button', { hasText: 'JSON' }))).text);
  assert.equal(json.result.tests.length, tests);
  assert.equal(json.agreement.methods.length, 4);
  await page.locator('#inf-panel').screenshot({ path: 'target/e2e/influence-cpu.png' });
  assert.deepEqual(errors, []);
});

let pooledCsv; // deletion.csv from two workers

test('case deletion retrains with progress and beats random removal on the repeated text', async () => {
  const { page, errors } = browser;
  await page.selectOption('#workers-select', '2');
  await page.fill('#inf-dtests', '1');
  await page.fill('#inf-k', '1,6');
  const t0 = Date.now();
  await page.click('#inf-delete');
  await page.waitForSelector('#inf-del-progress', { timeout: 30_000 });
  await page.waitForFunction(() => / on 2 workers/.test(document.getElementById('inf-status')?.textContent ?? ''), null, { timeout: 120_000 });
  await page.waitForSelector('#inf-deletion-table', { timeout: 300_000 });
  console.log(`# case deletion in the browser (1 test text, k = 1, 6, 3 random draws): ${((Date.now() - t0) / 1000).toFixed(1)} s; ${await page.textContent('#inf-deletion-summary')}`);
  const rise = async (removal, col) => Number((await page.textContent(`#inf-deletion-table tr[data-removal="${removal}"] td:nth-child(${col})`)).split(' ')[0]);
  // k = 6 removes the six copies of the repeated line: its loss rises far more than when
  // six random texts go.
  const we = await rise('tracin_we', 3), random = await rise('random', 3);
  assert.ok(we > 1 && we > 5 * Math.max(random, 0.01), `TracIn-WE ${we} vs random ${random}`);
  assert.ok((await inkOnChart(page, 'inf-deletion')) > 2000);
  const csv = await download(page, page.locator('#inf-panel button', { hasText: /^CSV$/ }));
  assert.equal(csv.name, 'deletion.csv');
  const rows = csv.text.trim().split('\n');
  assert.equal(rows[0], 'method,k,draw,test,loss_before,loss_after');
  assert.equal(rows.length, 1 + 2 * (4 + 3), 'per k: 4 methods and 3 random draws');
  pooledCsv = csv.text;
  assert.deepEqual(errors, []);
});

test('case deletion on one worker gives the pool\'s rows exactly', async () => {
  const { page, errors } = browser;
  await page.selectOption('#workers-select', '1');
  const t0 = Date.now();
  await page.click('#inf-delete');
  await page.waitForSelector('#inf-del-progress', { timeout: 30_000 });
  await page.waitForSelector('#inf-del-progress', { state: 'detached', timeout: 300_000 });
  await page.waitForSelector('#inf-deletion-table', { timeout: 300_000 });
  console.log(`# the same case deletion on one worker: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const csv = await download(page, page.locator('#inf-panel button', { hasText: /^CSV$/ }));
  assert.equal(csv.text, pooledCsv);
  await page.selectOption('#workers-select', '2');
  assert.deepEqual(errors, []);
});

test('Cancel keeps the retrains done so far', async () => {
  const { page, errors } = browser;
  await page.fill('#inf-dtests', '3');
  await page.fill('#inf-k', '1,3,6');
  await page.click('#inf-delete');
  await page.waitForFunction(() => Number(document.getElementById('inf-del-progress')?.value ?? 0) >= 2, null, { timeout: 120_000 });
  await page.click('#cancel-button');
  await page.waitForFunction(() => /cancelled/.test(document.getElementById('inf-deletion-summary')?.textContent ?? ''), null, { timeout: 60_000 });
  const n = Number((await page.textContent('#inf-deletion-summary')).match(/^(\d+) retrains/)[1]);
  assert.ok(n >= 2 && n < 63, `${n} retrains kept`);
  assert.deepEqual(errors, []);
});

test('a link to the influence view re-runs it', async () => {
  const { page, errors } = browser;
  const summary = await page.textContent('#inf-summary');
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  const other = await browser.context.newPage();
  await other.goto(url);
  await other.waitForSelector('#view-influence:not([hidden])');
  await other.waitForSelector('#inf-status[data-state="ready"]', { timeout: 120_000 });
  assert.equal((await other.textContent('#inf-summary')).replace(/ in [\d.]+ s\.$/, ''), summary.replace(/ in [\d.]+ s\.$/, ''));
  assert.equal(await other.inputValue('#inf-k'), '1,3,6', 'the view\'s settings travel in the link');
  await other.close();
  assert.deepEqual(errors, []);
});
