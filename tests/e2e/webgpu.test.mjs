// The WebGPU path, on headless Chromium's SwiftShader adapter (emulated on the CPU, so
// slow: a few steps only). Its losses must agree with the CPU path's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, setField, trainAndWait } from './harness.mjs';

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

