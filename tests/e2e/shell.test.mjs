// The shell: one view at a time, named in the address (back, forward and reload keep
// it), the settings reachable from every view, each view keeping its results while
// another is shown, and every frozen v1 link opening its own view and running there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { serveDist, launch, inkOnChart, nav } from './harness.mjs';

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ gpu: false });
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

const shown = (page, view) => page.isVisible(`#view-${view}`);

test('the address names the view: back, forward and reload keep it', async () => {
  const { page, errors } = browser;
  await page.goto(server.url);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  assert.ok(await shown(page, 'train'));
  assert.ok(!(await shown(page, 'profile')));
  await nav(page, 'profile');
  assert.equal(await page.evaluate(() => location.search), '?view=profile');
  assert.ok(await page.isVisible('#profile-panel'));
  assert.ok(!(await page.isVisible('#train-panel')));
  assert.equal(await page.getAttribute('#nav-profile', 'aria-current'), 'page');
  await nav(page, 'counterfactual');
  await page.goBack();
  await page.waitForSelector('#view-profile:not([hidden])');
  assert.ok(!(await shown(page, 'counterfactual')));
  await page.goForward();
  await page.waitForSelector('#view-counterfactual:not([hidden])');
  await page.reload();
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  assert.ok(await shown(page, 'counterfactual'), 'a reload returns to the same view');
  assert.ok(!(await shown(page, 'train')));
  // The data and model settings are one click away on every view.
  assert.ok(!(await page.isVisible('#f-model-d_model')));
  await page.click('#settings-toggle');
  assert.ok(await page.isVisible('#f-model-d_model'));
  await page.fill('#f-model-d_model', '48');
  await nav(page, 'train');
  assert.equal(await page.inputValue('#f-model-d_model'), '48', 'one form for every view');
  await page.fill('#f-model-d_model', '64');
  assert.deepEqual(errors, []);
});

test('each view keeps its results while another is shown', async () => {
  const { page, errors } = browser;
  await nav(page, 'train');
  await page.fill('#f-training-duration-steps', '30');
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  const losses = await page.textContent('#loss-json');
  assert.equal(JSON.parse(losses).length, 30);
  await nav(page, 'extraction');
  await page.waitForSelector('#ex-button:enabled');
  await page.click('#ex-button');
  await page.waitForSelector('#ex-status[data-state="ready"]', { timeout: 120_000 });
  const summary = await page.textContent('#ex-summary');
  await nav(page, 'counterfactual');
  await nav(page, 'train');
  assert.equal(await page.textContent('#loss-json'), losses, 'the loss curve is still there');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'done');
  assert.ok((await inkOnChart(page, 'loss-chart')) > 500, 'and still drawn');
  await nav(page, 'extraction');
  assert.equal(await page.textContent('#ex-summary'), summary, 'the extraction result is still there');
  assert.ok((await inkOnChart(page, 'ex-chart')) > 2000);
  assert.deepEqual(errors, []);
});

test('every v1 fixture link opens its view and runs there', async () => {
  const dir = new URL('../fixtures/links/', import.meta.url);
  const links = (await readdir(dir)).filter((f) => f.endsWith('.txt'));
  assert.ok(links.length > 0);
  for (const file of links) {
    const fragment = (await readFile(new URL(file, dir), 'utf8')).trim();
    const { view } = JSON.parse(await readFile(new URL(file.replace(/\.txt$/, '.json'), dir), 'utf8'));
    const page = await browser.context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}#${fragment}`);
    await page.waitForSelector(`#view-${view}:not([hidden])`);
    await page.waitForSelector(`#job-bar[data-busy="${view}"]`, { timeout: 60_000 });
    assert.equal(await page.getAttribute(`#nav-${view}`, 'aria-current'), 'page', `${file} opens ${view}`);
    await page.click('#cancel-button');
    await page.waitForSelector('#job-bar[data-busy=""]', { timeout: 60_000 });
    assert.deepEqual(errors, [], file);
    await page.close();
  }
});
