// The WebGPU path, on headless Chromium's SwiftShader adapter (emulated on the CPU, so
// slow: a few steps only). Its losses must agree with the CPU path's, and so must the
// exposure job's candidate scores and the geometry job's training and FLIPD (small
// seeded specs in fixtures/, opened as links on WebGPU, then re-run on the CPU).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serveDist, launch, setField, trainAndWait, download, v1 } from './harness.mjs';

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ gpu: true });
  await browser.page.goto(server.url);
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

// nats/token. Same initial weights and data order; f32 kernels only sum in a different
// order on the GPU (measured: about 2e-6 on SwiftShader).
const TOLERANCE = 1e-4;

test('WebGPU finds an adapter, trains on it, and matches the CPU losses', async () => {
  const { page } = browser;
  await page.waitForSelector('#backend-badge:not(:has-text("checking"))', { timeout: 60_000 });
  const adapter = await page.getAttribute('#backend-badge', 'title');
  assert.equal(await page.getAttribute('#backend-badge', 'data-backend'), 'webgpu', `no WebGPU adapter: ${adapter}`);
  console.log(`# WebGPU adapter: ${adapter}`);
  await setField(page, 'f-training-duration-steps', 3);
  const gpu = await trainAndWait(page, 300_000);
  assert.equal(await page.getAttribute('#status', 'data-backend'), 'webgpu', 'the run used WebGPU');
  await page.selectOption('#backend-select', 'cpu');
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  const cpu = await trainAndWait(page, 120_000);
  assert.equal(await page.getAttribute('#status', 'data-backend'), 'cpu');
  assert.equal(gpu.length, 3);
  assert.equal(cpu.length, 3);
  for (let i = 0; i < 3; i++) {
    const d = Math.abs(gpu[i][1] - cpu[i][1]);
    console.log(`# step ${i + 1}: webgpu ${gpu[i][1]} cpu ${cpu[i][1]} |diff| ${d.toExponential(2)}`);
    assert.ok(d < TOLERANCE, `step ${i + 1}: WebGPU ${gpu[i][1]} vs CPU ${cpu[i][1]}`);
  }
});


const fixture = (name) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));

/** Open `spec` in `view` as a link that runs on open, on the automatic backend (WebGPU). */
async function openOnWebGpu(page, spec, view) {
  await page.goto('about:blank');
  await page.goto(`${server.url}#${v1({ spec, view, run: true })}`);
  await page.waitForSelector('#backend-badge[data-backend="webgpu"]', { timeout: 60_000 });
}

/** What the newest kept run says of itself (view · backend · status · ...). */
async function newestRun(page, view) {
  await page.waitForSelector('#job-bar[data-busy=""]');
  await page.click('#nav-runs');
  await page.waitForSelector('#runs-list .run');
  const facts = await page.textContent('#runs-list .run:first-child .run-facts');
  await page.click(`#nav-${view}`);
  await page.waitForSelector(`#view-${view}:not([hidden])`);
  return facts;
}

/** Switch to the CPU and wait until the badge says so. */
async function toCpu(page) {
  await page.selectOption('#backend-select', 'cpu');
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
}

test('exposure scores the candidates on WebGPU as on the CPU', async () => {
  const { page, errors } = browser;
  const spec = fixture('webgpu-exposure.json');
  await openOnWebGpu(page, spec, 'exposure');
  await page.waitForSelector('#exp-status[data-state="ready"]', { timeout: 500_000 });
  const json = async () => JSON.parse((await download(page, page.locator('#exp-panel button', { hasText: 'exposure.json' }))).text);
  const gpu = await json();
  assert.match(await newestRun(page, 'exposure'), /^exposure · WebGPU · done/);
  await toCpu(page);
  await page.click('#exp-run');
  await page.waitForSelector('#exp-status[data-state="training"]', { timeout: 30_000 });
  await page.waitForSelector('#exp-status[data-state="ready"]', { timeout: 300_000 });
  const cpu = await json();
  assert.match(await newestRun(page, 'exposure'), /^exposure · CPU/);
  assert.equal(gpu.scored, 100);
  assert.equal(cpu.canaries.length, 2);
  for (const [g, c] of gpu.canaries.map((g, i) => [g, cpu.canaries[i]])) {
    const d = Math.abs(g.log_perplexity - c.log_perplexity);
    console.log(`# x${g.repetitions}: log-perplexity webgpu ${g.log_perplexity.toFixed(5)} cpu ${c.log_perplexity.toFixed(5)} |diff| ${d.toExponential(2)}; rank ${g.rank} / ${c.rank}`);
    assert.ok(d < 1e-3, `x${g.repetitions}: ${g.log_perplexity} vs ${c.log_perplexity}`);
    assert.equal(g.rank, c.rank);
  }
  assert.deepEqual(errors, []);
});

test('the geometry job trains and estimates FLIPD on WebGPU as on the CPU', async () => {
  const { page, errors } = browser;
  const spec = fixture('webgpu-geometry.json');
  await openOnWebGpu(page, spec, 'geometry');
  await page.waitForSelector('#geo-status[data-state="ready"]', { timeout: 500_000 });
  const json = async () => JSON.parse((await download(page, page.locator('#geo-panel button', { hasText: 'geometry.json' }))).text);
  const gpu = await json();
  assert.match(await newestRun(page, 'geometry'), /^geometry · WebGPU · done/);
  await toCpu(page);
  await page.click('#geo-run');
  await page.waitForSelector('#geo-status[data-state="training"]', { timeout: 30_000 });
  await page.waitForSelector('#geo-status[data-state="ready"]', { timeout: 300_000 });
  const cpu = await json();
  assert.match(await newestRun(page, 'geometry'), /^geometry · CPU/);
  assert.equal(gpu.losses.length, 40);
  const dl = Math.max(...gpu.losses.map((l, i) => Math.abs(l - cpu.losses[i])));
  const df = Math.max(...gpu.train.map((p, i) => Math.abs(p.flipd - cpu.train[i].flipd)));
  const same = gpu.train.every((p, i) => p.lpca === cpu.train[i].lpca && p.mle === cpu.train[i].mle);
  console.log(`# geometry on WebGPU vs CPU: max |loss diff| ${dl.toExponential(2)}, max |FLIPD diff| ${df.toExponential(2)} over ${gpu.train.length} points`);
  assert.ok(dl < 1e-3, `losses differ by ${dl}`);
  assert.ok(df < 0.05, `FLIPD differs by ${df}`);
  assert.ok(same, 'lPCA and MLE read only the data');
  assert.deepEqual(errors, []);
});
