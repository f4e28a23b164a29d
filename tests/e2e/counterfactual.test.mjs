// The counterfactual-memorisation and extraction views on the CPU path: an ensemble
// trains in the worker with progress across models, Cancel keeps the finished models,
// the charts draw, the most memorised text is the repeated one, and extraction runs on
// the last trained model with the texts shown token by token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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

test('an impossible number of models is refused in place', async () => {
  const { page } = browser;
  await nav(page, 'counterfactual');
  await page.fill('#cf-models', '100');
  assert.match(await page.textContent('#cf-panel .field small'), /from 2 to 64/);
  assert.ok(await page.isDisabled('#cf-button'));
  await page.fill('#cf-models', '6');
  assert.ok(!(await page.isDisabled('#cf-button')));
});

let pooled; // the demo's table and seconds on two workers

test('the counterfactual demo trains its ensemble and finds the repeated text', async () => {
  const { page, errors } = browser;
  await page.selectOption('#workers-select', '2');
  const t0 = Date.now();
  await page.click('#cf-button');
  await page.waitForSelector('#cf-progress');
  await page.waitForFunction(() => /on 2 workers \(up to \d+ MiB each\)/.test(document.getElementById('cf-status')?.textContent ?? ''), null, { timeout: 300_000 });
  await page.waitForSelector('#cf-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  const status = await page.textContent('#cf-status');
  console.log(`# counterfactual demo, 6 models, in the browser (CPU), 2 workers: ${secs.toFixed(1)} s (${(secs / 6).toFixed(1)} s per model); ${status}`);
  assert.match(status, /^6 models trained and scored/);
  for (const id of ['cf-histogram', 'cf-scatter']) {
    assert.ok((await inkOnChart(page, id)) > 2000, `${id} is drawn`);
  }
  const first = page.locator('#cf-top li').first();
  assert.match(await first.textContent(), /my PIN is .*×8 in the data/);
  await first.locator('button').click();
  await page.waitForSelector('#cf-detail');
  const detail = await page.textContent('#cf-detail');
  assert.match(detail, /model 6/);
  assert.match(detail, /trained on it/);
  const csv = await download(page, page.locator('#cf-panel button', { hasText: 'CSV' }).first());
  assert.equal(csv.name, 'counterfactual.csv');
  assert.ok(csv.text.startsWith('instance,mem,in_mean,out_mean,n_in,n_out,se,text\n'));
  assert.equal(csv.text.trim().split('\n').length, 1 + 49);
  pooled = { csv: csv.text, secs };
  const svg = await download(page, page.locator('#cf-panel button', { hasText: 'SVG' }).first());
  assert.equal(svg.name, 'mem_histogram.svg');
  assert.ok(svg.text.startsWith('<svg'));
  await page.locator('#cf-panel').screenshot({ path: 'target/e2e/counterfactual-cpu.png' });
  assert.deepEqual(errors, []);
});

test('one worker gives the pool\'s numbers exactly', async () => {
  const { page, errors } = browser;
  await page.selectOption('#workers-select', '1');
  const t0 = Date.now();
  await page.click('#cf-button');
  await page.waitForSelector('#cf-status[data-state="training"]');
  await page.waitForSelector('#cf-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  const csv = await download(page, page.locator('#cf-panel button', { hasText: 'CSV' }).first());
  assert.equal(csv.text, pooled.csv, 'the same table from one worker and from two');
  console.log(`# counterfactual demo, 6 models, 1 worker: ${secs.toFixed(1)} s; 2 workers: ${pooled.secs.toFixed(1)} s (${(secs / pooled.secs).toFixed(2)}x)`);
  await page.selectOption('#workers-select', '2');
  assert.deepEqual(errors, []);
});

test('Cancel keeps the models already trained', async () => {
  const { page, errors } = browser;
  await page.fill('#cf-models', '16');
  await page.click('#cf-button');
  await page.waitForFunction(() => Number(document.getElementById('cf-progress')?.value ?? 0) >= 2, null, { timeout: 120_000 });
  await page.click('#cancel-button');
  await page.waitForSelector('#cf-status[data-state="ready"]', { timeout: 60_000 });
  const status = await page.textContent('#cf-status');
  assert.match(status, /cancelled: \d+ of 16 planned/);
  const done = Number(status.match(/^(\d+) models/)[1]);
  assert.ok(done >= 2 && done < 16, status);
  assert.deepEqual(errors, []);
});

test('extraction runs on the last trained model and shows texts token by token', async () => {
  const { page, errors } = browser;
  await nav(page, 'extraction');
  assert.match(await page.textContent('#ex-status'), /Train a model first/);
  assert.ok(await page.isDisabled('#ex-button'));
  await nav(page, 'train');
  await page.click('#demo-button');
  await page.waitForSelector('#status[data-state="done"]', { timeout: 180_000 });
  await nav(page, 'extraction');
  await page.fill('#ex-prefix', '0');
  assert.ok(await page.isDisabled('#ex-button'), 'a prefix of 0 is refused');
  await page.fill('#ex-prefix', '12');
  await page.fill('#ex-suffix', '40');
  const t0 = Date.now();
  await page.click('#ex-button');
  await page.waitForSelector('#ex-status[data-state="ready"]', { timeout: 120_000 });
  const summary = await page.textContent('#ex-summary');
  console.log(`# extraction on the demo model in the browser: ${((Date.now() - t0) / 1000).toFixed(1)} s; ${summary}`);
  const m = summary.match(/training texts extracted exactly (\d+) of (\d+) .*held-out texts (\d+) of (\d+)/);
  assert.ok(m, summary);
  assert.equal(Number(m[2]), 36);
  assert.ok(Number(m[1]) > Number(m[3]), 'more training texts than held-out texts are extracted');
  assert.ok((await inkOnChart(page, 'ex-chart')) > 2000);
  assert.ok((await page.locator('#ex-rows .tokens').count()) > 0);
  assert.ok((await page.locator('#ex-rows .tok.hit').count()) > 0);
  const csv = await download(page, page.locator('#ex-panel button', { hasText: /^CSV$/ }));
  assert.equal(csv.name, 'extraction.csv');
  assert.ok(csv.text.startsWith('instance,prefix_len,suffix_len,exact,fraction\n'));
  const json = JSON.parse((await download(page, page.locator('#ex-panel button', { hasText: 'JSON' }))).text);
  assert.equal(json.train_rates.n, 36);
  assert.equal(json.train.length, 36);
  await page.locator('#ex-panel').screenshot({ path: 'target/e2e/extraction-cpu.png' });
  assert.deepEqual(errors, []);
});

test('weights download as safetensors and import back, checked against the settings', async () => {
  const { page, errors } = browser;
  await nav(page, 'train');
  const [d] = await Promise.all([page.waitForEvent('download'), page.click('#weights-download')]);
  assert.match(d.suggestedFilename(), /^mnemo-weights-step200\.safetensors$/);
  const bytes = await readFile(await d.path());
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
  assert.deepEqual(header['wte.weight'].shape.length, 2);
  assert.equal(header['wte.weight'].shape[1], 64, 'd_model 64');
  // Garbage is refused with a message; the model in use does not change.
  await page.setInputFiles('#weights-input', { name: 'junk.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not weights at all') });
  await page.waitForSelector('#weights-message[role="alert"]');
  assert.match(await page.textContent('#weights-message'), /“junk.safetensors” is not a readable safetensors file/);
  // The right file is accepted and extraction runs on it, with the same result as before.
  const before = await page.textContent('#ex-summary');
  await page.setInputFiles('#weights-input', await d.path());
  await page.waitForSelector('#weights-message[role="status"]');
  assert.match(await page.textContent('#weights-message'), /Loaded weights .* \(step 200\)/);
  await nav(page, 'extraction');
  await page.click('#ex-button');
  await page.waitForFunction(() => document.getElementById('ex-status').dataset.state === 'ready'
    && document.getElementById('ex-summary').textContent.startsWith('On weights'), null, { timeout: 60_000 });
  const after = await page.textContent('#ex-summary');
  assert.equal(after.replace(/^On [^:]*:/, ''), before.replace(/^On [^:]*:/, ''), 'the same rates from the imported weights');
  assert.deepEqual(errors, []);
});
