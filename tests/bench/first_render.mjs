// First render of the browser app from a local server: the time from navigation to the
// first rendered control (the app's wasm loaded and the page drawn) and to the moment the
// worker has answered (its wasm loaded, "Run the demo" enabled), median of N fresh loads,
// with the gzipped sizes of both wasm files. Run after `trunk build --release`:
//   node tests/bench/first_render.mjs [N]
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { serveDist, launch } from '../e2e/harness.mjs';

const n = Number(process.argv[2] ?? 5);
const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
const size = (f) => {
  const raw = readFileSync(dist + f);
  return { raw_bytes: raw.length, gzip_bytes: gzipSync(raw, { level: 9 }).length };
};
const server = await serveDist();
const browser = await launch({ gpu: false });
const first = [], ready = [];
for (let i = 0; i < n; i++) {
  const page = await browser.context.newPage();
  const t0 = Date.now();
  await page.goto(server.url);
  await page.waitForSelector('#demo-button');
  first.push(Date.now() - t0);
  await page.waitForSelector('#demo-button:enabled');
  ready.push(Date.now() - t0);
  await page.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = {
  loads: n,
  first_render_ms: median(first),
  worker_ready_ms: median(ready),
  app_wasm: size('app_bg.wasm'),
  worker_wasm: size('worker_bg.wasm'),
};
console.log(JSON.stringify(out, null, 2));
await browser.context.close();
await server.close();
