// The counterfactual demo in the browser (headless Chromium, CPU path) on one worker and
// on a pool of workers, timed from the page, with the tables compared for equality.
// Usage: node tests/bench/pool_bench.mjs MODELS WORKERS > pool.json
// (needs dist/ from `trunk build --release` and tests/e2e/node_modules).
//
// Prints {models, workers, one_worker_s, pool_s, speedup, same_table, memory_mib}: the
// seconds from the click to the result on the page, the ratio, whether the downloaded
// counterfactual.csv is byte-identical, and the workers' WebAssembly heaps as the page
// reported them during the pooled run.
import { serveDist, launch, nav, download } from '../e2e/harness.mjs';

const [modelsArg, workersArg] = process.argv.slice(2);
const models = Number(modelsArg);
const workers = Number(workersArg);
if (!Number.isInteger(models) || models < 2 || models > 64 || !Number.isInteger(workers) || workers < 2 || workers > 16) {
  console.error('usage: node tests/bench/pool_bench.mjs MODELS (2-64) WORKERS (2-16)');
  process.exit(2);
}

const server = await serveDist();
const browser = await launch({ gpu: false });
const { page } = browser;
try {
  await page.goto(server.url);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await nav(page, 'counterfactual');
  await page.fill('#cf-models', String(models));
  const run = async (w) => {
    await page.selectOption('#workers-select', String(w));
    const t0 = Date.now();
    let memory = '';
    await page.click('#cf-button');
    await page.waitForSelector('#cf-status[data-state="training"]');
    for (;;) {
      const state = await page.getAttribute('#cf-status', 'data-state');
      if (state === 'ready') break;
      if (state !== 'training') throw new Error(`the ensemble stopped: ${await page.textContent('#cf-panel')}`);
      const m = (await page.textContent('#cf-status')).match(/up to (\d+) MiB each/);
      if (m) memory = Number(m[1]);
      await page.waitForTimeout(200);
    }
    const secs = (Date.now() - t0) / 1000;
    const csv = await download(page, page.locator('#cf-panel button', { hasText: 'CSV' }).first());
    return { secs, csv: csv.text, memory };
  };
  const one = await run(1);
  const pool = await run(workers);
  console.log(JSON.stringify({
    models,
    workers,
    one_worker_s: one.secs,
    pool_s: pool.secs,
    speedup: one.secs / pool.secs,
    same_table: one.csv === pool.csv,
    memory_mib: pool.memory,
  }));
} finally {
  await browser.context.close();
  await server.close();
}
