// The soft-prompt extraction view on the CPU path: the demo trains its model, then the
// constant prompt and the generator in the worker with live progress and loss curves;
// the three methods are compared, the exports agree with what the page shows, Cancel
// keeps the prompts as trained so far, bad settings are refused in place, and a link
// with the soft-prompt view re-runs it in an embedded page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { serveDist, launch, inkOnChart, download, v1, nav } from './harness.mjs';

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

const STEPS = 40;

test('impossible soft-prompt settings are refused in place', async () => {
  const { page } = browser;
  await nav(page, 'softprompt');
  await page.fill('#sp-prefix', '0');
  assert.match(await page.textContent('#sp-panel .field.invalid small'), /from 1 to 256/);
  assert.ok(await page.isDisabled('#sp-demo'));
  await page.fill('#sp-prefix', '16');
  await page.fill('#sp-steps', 'many');
  assert.ok(await page.isDisabled('#sp-demo'));
  await page.fill('#sp-steps', String(STEPS));
  // Enabled once the worker has answered (and nothing else runs).
  await page.waitForSelector('#sp-demo:enabled');
  assert.ok(await page.isDisabled('#sp-button'), 'no trained model yet');
});

test('the soft-prompt demo trains both prompts and compares the three methods', async () => {
  const { page, errors } = browser;
  await page.click('#sp-demo');
  await page.waitForSelector('#sp-train-progress', { timeout: 60_000 });
  await page.waitForSelector('#sp-progress', { timeout: 240_000 });
  // The live loss curve draws while the prompts train.
  await page.waitForFunction(() => Number(document.getElementById('sp-progress')?.value ?? 0) >= 5);
  assert.ok((await inkOnChart(page, 'sp-losses')) > 1000);
  await page.waitForSelector('#sp-status[data-state="ready"]', { timeout: 240_000 });
  const status = await page.textContent('#sp-status');
  const [, constantS, dynamicS] = status.match(/Constant prompt trained in ([\d.]+) s, generator in ([\d.]+) s/);
  console.log(`# soft prompts in the browser: constant ${(1000 * constantS / STEPS).toFixed(0)} ms/step, generator ${(1000 * dynamicS / STEPS).toFixed(0)} ms/step (${STEPS} steps each)`);
  assert.doesNotMatch(status, /cancelled/);
  const summary = await page.textContent('#sp-summary');
  assert.match(summary, /32 pairs trained the prompts, 32 test pairs measured \(k = 16, s = 32, L = 8\)/);
  // The page's figures are the exported table's.
  const shown = await page.$$eval('#sp-methods li', (li) => li.map((l) => [l.dataset.method, l.textContent]));
  assert.deepEqual(shown.map((s) => s[0]), ['none', 'constant', 'dynamic']);
  const csv = await download(page, page.locator('#sp-panel button', { hasText: /^CSV$/ }));
  assert.equal(csv.name, 'softprompt.csv');
  const rows = csv.text.trim().split('\n');
  assert.equal(rows[0], 'method,exact_rate,fractional_rate,relative_gain');
  assert.equal(rows.length, 4);
  for (const [i, row] of rows.slice(1).entries()) {
    const [method, exact, fractional, gain] = row.split(',');
    assert.equal(method, shown[i][0]);
    const [, e, f] = shown[i][1].match(/exact ([\d.]+)%, fractional ([\d.]+)%/);
    assert.ok(Math.abs(e - 100 * exact) <= 0.051 && Math.abs(f - 100 * fractional) <= 0.051, `${row} vs ${shown[i][1]}`);
    if (method === 'none') assert.equal(gain, 'undefined');
    // 32 test pairs: every exact rate is a whole number of pairs.
    assert.ok(Math.abs(32 * exact - Math.round(32 * exact)) < 1e-9, row);
  }
  const pairs = await download(page, page.locator('#sp-panel button', { hasText: 'Pairs CSV' }));
  const pairRows = pairs.text.trim().split('\n');
  assert.equal(pairRows[0], 'pair,method,exact,fraction');
  assert.equal(pairRows.length, 1 + 3 * 32);
  const losses = await download(page, page.locator('#sp-panel button', { hasText: 'Loss CSV' }));
  assert.equal(losses.text.trim().split('\n').length, 1 + 2 * STEPS);
  const svg = await download(page, page.locator('#sp-panel button', { hasText: /^SVG$/ }));
  assert.ok(svg.text.startsWith('<svg'));
  const json = JSON.parse((await download(page, page.locator('#sp-panel button', { hasText: 'JSON' }))).text);
  assert.equal(json.methods.length, 3);
  assert.equal(json.methods[1].losses.length, STEPS);
  assert.ok((await inkOnChart(page, 'sp-rates')) > 2000);
  assert.ok((await inkOnChart(page, 'sp-losses')) > 2000);
  // The pairs the dynamic prompt does better on, token by token, or a sentence saying there are none.
  const heading = await page.textContent('#sp-pairs-heading');
  const listed = await page.locator('#sp-pairs .tokens').count();
  if (/On no test pair/.test(heading)) assert.equal(listed, 0);
  else {
    assert.ok(listed > 0, heading);
    assert.equal(await page.locator('#sp-pairs .tokens').first().locator('.who').count(), 4);
  }
  await page.locator('#sp-panel').screenshot({ path: 'target/e2e/softprompt-cpu.png' });
  assert.deepEqual(errors, []);
});

test('the hidden-context demo trains records packed and shows its own prompt settings', async () => {
  const { page, errors } = browser;
  await nav(page, 'softprompt');
  const started = Date.now();
  await page.click('#sp-context-demo');
  // Its prompt settings fill the fields (L = 13, k = 13, s = 32).
  await page.waitForFunction(() => [...document.querySelectorAll('#sp-panel input')].slice(0, 3).map((i) => i.value).join(',') === '13,13,32');
  await page.waitForSelector('#sp-train-progress', { timeout: 60_000 });
  await page.waitForSelector('#sp-status[data-state="ready"]', { timeout: 600_000 });
  console.log(`# hidden-context demo in the browser (CPU path): ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const summary = await page.textContent('#sp-summary');
  // 64 records, one pair each, half of them test pairs; the source line is never in a pair.
  assert.match(summary, /32 pairs trained the prompts, 32 test pairs measured \(k = 13, s = 32, L = 13/);
  const shown = await page.$$eval('#sp-methods li', (li) => li.map((l) => l.dataset.method));
  assert.deepEqual(shown, ['none', 'constant', 'dynamic']);
  const json = JSON.parse((await download(page, page.locator('#sp-panel button', { hasText: 'JSON' }))).text);
  for (const m of json.methods) {
    assert.ok(m.rates.fractional_rate > 0.05 && m.rates.fractional_rate < 1, JSON.stringify(m.rates));
  }
  assert.deepEqual(errors, []);
});

test('Cancel keeps the prompts as trained so far', async () => {
  const { page, errors } = browser;
  await page.fill('#sp-steps', '5000');
  await page.click('#sp-button');
  await page.waitForFunction(() => Number(document.getElementById('sp-progress')?.value ?? 0) >= 3, null, { timeout: 60_000 });
  await page.click('#sp-cancel');
  await page.waitForSelector('#sp-status[data-state="ready"]', { timeout: 120_000 });
  assert.match(await page.textContent('#sp-status'), /cancelled/);
  assert.equal(await page.locator('#sp-methods li').count(), 3);
  // The target model is untouched by cancelling its prompts: prompts can train on it again.
  assert.ok(!(await page.isDisabled('#sp-button')));
  assert.deepEqual(errors, []);
});

test('a link to the soft-prompt view re-runs it, embedded', async () => {
  const spec = JSON.parse(await readFile(new URL('../fixtures/links/v1_profile_demo.json', import.meta.url), 'utf8')).spec;
  delete spec.profile;
  spec.name = 'soft-prompt link';
  spec.training.duration = { steps: 20 };
  spec.training.checkpoint_every = 0;
  spec.data.heldout_fraction = 0;
  spec.data.source = { kind: 'builtin', corpus: 'facts', instances: 16 };
  spec.softprompt = { prompt_len: 4, prefix: 8, suffix: 8, steps: 6, batch_size: 4 };
  const payload = { spec, view: 'softprompt', run: true, embed: true };
  const fragment = v1(payload);
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}#${fragment}`);
  await page.waitForSelector('#sp-status[data-state="ready"]', { timeout: 120_000 });
  assert.match(await page.textContent('#sp-summary'), /8 pairs trained the prompts, 8 test pairs measured \(k = 8, s = 8, L = 4\)/);
  assert.equal(await page.inputValue('#sp-steps'), '6');
  assert.equal(await page.locator('#ex-panel').count(), 0, 'the embed shows one view');
  assert.deepEqual(errors, []);
  await page.close();
});
