// The memorisation-profile view on the CPU path: the demo trains, evaluates its panel in
// the worker, and draws the heat map and curves; hovering a cell shows its numbers;
// the charts and tables export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, inkOnChart, nav } from './harness.mjs';

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

test('the profile demo evaluates its panel and draws every chart', async () => {
  const { page, errors } = browser;
  await nav(page, 'profile');
  const t0 = Date.now();
  await page.click('#profile-button');
  await page.waitForSelector('#profile-status[data-state="evaluating"]', { timeout: 120_000 });
  await page.waitForSelector('#panel-progress');
  await page.waitForSelector('#profile-status[data-state="ready"]', { timeout: 300_000 });
  console.log(`# profile demo in the browser (CPU): ${((Date.now() - t0) / 1000).toFixed(1)} s; ${await page.textContent('#profile-status')}`);
  const summary = await page.textContent('#profile-summary');
  assert.match(summary, /400 instances \(80 never trained\) in 8 cohorts/);
  for (const id of ['profile-heatmap', 'persistent-chart', 'instantaneous-chart', 'residual-chart', 'simple-chart']) {
    assert.ok((await inkOnChart(page, id)) > 2000, `${id} is drawn`);
  }
  // Hover the cell of cohort 4 at checkpoint 4 (the diagonal): its numbers appear.
  // The pointer only reaches what is on screen: bring the heat map into view first.
  await page.locator('#profile-heatmap').scrollIntoViewIfNeeded();
  const box = await page.locator('#profile-heatmap').boundingBox();
  const scale = box.width / 760;
  // The page publishes where the plotting area landed (canvas pixels); checkpoints
  // 0.5..8.5 run left to right, cohorts 8.5..0.5 top to bottom.
  const [x0, x1] = (await page.getAttribute('#profile-heatmap', 'data-plot-x')).split(',').map(Number);
  const [y0, y1] = (await page.getAttribute('#profile-heatmap', 'data-plot-y')).split(',').map(Number);
  assert.ok(x1 > x0 + 100 && y1 > y0 + 100, `plot area ${x0},${x1} ${y0},${y1}`);
  const x = x0 + ((4 - 0.5) / 8) * (x1 - x0);
  const y = y0 + ((8 + 0.5 - 4) / 8) * (y1 - y0);
  await page.mouse.move(box.x + x * scale, box.y + y * scale);
  await page.waitForFunction(() => document.getElementById('cell-tooltip').textContent.startsWith('cohort'));
  assert.match(await page.textContent('#cell-tooltip'), /^cohort 4 · checkpoint 4 · memorisation -?\d+\.\d+ \(band/);
  // Exports: a CSV download with the documented header.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#profile-panel button', { hasText: 'CSV' }).first().click(),
  ]);
  assert.equal(download.suggestedFilename(), 'att_gt.csv');
  const text = await (await import('node:fs/promises')).readFile(await download.path(), 'utf8');
  assert.ok(text.startsWith('cohort,checkpoint,att,memorisation,se,lower,upper,significant\n'));
  assert.equal(text.trim().split('\n').length, 1 + 8 * 8);
  const [svg] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#profile-panel button', { hasText: 'SVG' }).first().click(),
  ]);
  assert.equal(svg.suggestedFilename(), 'profile.svg');
  assert.deepEqual(errors, []);
  await page.locator('#profile-panel').screenshot({ path: 'target/e2e/profile-cpu.png' });
});

/** Run the size comparison on `workers` workers: its summary and seconds. */
async function compareSizes(page, workers) {
  await page.selectOption('#workers-select', String(workers));
  const t0 = Date.now();
  await page.click('#compare-button');
  await page.waitForFunction(() => document.getElementById('profile-status').dataset.state !== 'ready');
  if (workers > 1) {
    await page.waitForFunction(
      (w) => new RegExp(`on ${w} workers \\(up to \\d+ MiB each\\)`).test(document.getElementById('profile-status')?.textContent ?? ''),
      workers, { timeout: 300_000 });
  }
  await page.waitForFunction(
    () => (document.getElementById('compare-summary')?.textContent ?? '').includes('d_model 128')
      && document.getElementById('profile-status').dataset.state === 'ready',
    null, { timeout: 600_000 });
  return { summary: await page.textContent('#compare-summary'), secs: (Date.now() - t0) / 1000 };
}

test('the size comparison trains three models on two workers and overlays their curves; one worker gives the same', async () => {
  const { page, errors } = browser;
  const pooled = await compareSizes(page, 2);
  console.log(`# size comparison in the browser, 2 workers: ${pooled.secs.toFixed(1)} s; ${pooled.summary}`);
  assert.match(pooled.summary, /d_model 32: .* · d_model 64: .* · d_model 128: /);
  const alone = await compareSizes(page, 1);
  console.log(`# size comparison, 1 worker: ${alone.secs.toFixed(1)} s (${(alone.secs / pooled.secs).toFixed(2)}x the pool's time)`);
  assert.equal(alone.summary, pooled.summary, 'the same profiles on one worker');
  await page.selectOption('#workers-select', '2');
  assert.deepEqual(errors, []);
});
