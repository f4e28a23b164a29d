// The WebGPU path, on headless Chromium's SwiftShader adapter (emulated on the CPU, so
// slow: a few steps only). Its losses must agree with the CPU path's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { serveDist, launch, setField, trainAndWait, v1, download } from './harness.mjs';

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

// The geometry job on WebGPU: a small diffusion run (40 von Mises points, 40 steps, few
// samples and sampler steps, so SwiftShader finishes in a few minutes) gives the same
// result as on the CPU: lPCA and MLE read only the data, so they are equal; FLIPD comes
// from a model trained on each backend, so it agrees to float rounding (measured below).
const GEO_FLIPD_TOLERANCE = 1e-2;

async function geometryRun(page) {
  await page.waitForSelector('#geo-status[data-state="ready"], #geo-error', { timeout: 400_000 });
  assert.equal(await page.$('#geo-error'), null, 'the geometry job failed');
  return JSON.parse((await download(page, page.locator('#geo-panel button', { hasText: 'geometry.json' }))).text);
}

test('the geometry job runs on WebGPU and agrees with the CPU', async () => {
  const { spec } = JSON.parse(await readFile(new URL('../fixtures/links/v1_profile_demo.json', import.meta.url), 'utf8'));
  delete spec.profile;
  spec.name = 'geometry on WebGPU';
  spec.geometry = {
    data: { manifold: 'von_mises', points: 40 },
    training: { steps: 40, batch: 32 },
    samples: 8, sample_steps: 8, curve_points: 2, t0: 0.035, k_lpca: 10, k_mle: 10,
  };
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}#${v1({ spec, view: 'geometry', run: true })}`);
  await page.waitForSelector('#backend-badge[data-backend="webgpu"]', { timeout: 60_000 });
  const t0 = Date.now();
  const gpu = await geometryRun(page);
  const gpuSecs = (Date.now() - t0) / 1000;
  await page.selectOption('#backend-select', 'cpu');
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.click('#geo-run');
  await page.waitForSelector('#geo-status[data-state="training"]', { timeout: 30_000 });
  const cpu = await geometryRun(page);
  assert.equal(gpu.train.length, 40);
  assert.equal(cpu.train.length, 40);
  let maxDiff = 0;
  for (let i = 0; i < 40; i++) {
    const [g, c] = [gpu.train[i], cpu.train[i]];
    assert.deepEqual(g.x, c.x, 'the same data');
    assert.deepEqual([g.lpca, g.mle], [c.lpca, c.mle], 'the data estimators are the same');
    maxDiff = Math.max(maxDiff, Math.abs(g.flipd - c.flipd));
  }
  console.log(`# geometry on WebGPU: ${gpuSecs.toFixed(1)} s; FLIPD max |webgpu - cpu| over 40 points ${maxDiff.toExponential(2)}`);
  assert.ok(maxDiff < GEO_FLIPD_TOLERANCE, `FLIPD differs by ${maxDiff}`);
  await page.close();
  assert.deepEqual(errors, []);
});
