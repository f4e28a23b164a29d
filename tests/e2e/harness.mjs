// Shared pieces of the end-to-end tests: a static server for dist/ on 127.0.0.1 and a
// headless Debian Chromium driven by playwright-core.
import { createServer } from 'node:http';
import { readFile, mkdtemp } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { chromium } from 'playwright-core';

// MNEMO_DIST serves another build (benchmarks compare two builds side by side).
const root = process.env.MNEMO_DIST
  ? resolve(process.env.MNEMO_DIST) + '/'
  : fileURLToPath(new URL('../../dist/', import.meta.url));
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
};

/**
 * Serve dist/ as a static host would. `base` serves it under a sub-path (`/mnemo/`; any
 * other path answers 404); `rewrite(path, body)` may change a file as it is sent (a new
 * build, say). `requests` lists every path asked for.
 */
export async function serveDist({ base = '/', rewrite } = {}) {
  const requests = [];
  const state = { down: false };
  const server = createServer(async (req, res) => {
    const asked = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.push(asked);
    if (state.down) {
      res.writeHead(503).end('the server is down');
      return;
    }
    if (!asked.startsWith(base)) {
      res.writeHead(404).end('not found');
      return;
    }
    const path = normalize('/' + asked.slice(base.length)).replace(/^(\.\.[/\\])+/, '');
    const file = join(root, path.endsWith('/') ? path + 'index.html' : path);
    try {
      let body = await readFile(file);
      if (rewrite) body = rewrite(path, body);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}${base}`,
    requests,
    /** While true every request is answered 503, as if the host were gone. */
    set down(value) { state.down = value; },
    close: () => new Promise((ok) => server.close(ok)),
  };
}

const common = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Chromium on the CPU path (`gpu: false`, WebGPU has no adapter) or with SwiftShader's
 * WebGPU; `args` adds flags (the TensorFlow.js benchmark's SwiftShader WebGL).
 */
export async function launch({ gpu, args: extra = [] }) {
  const userDataDir = await mkdtemp(join(tmpdir(), 'mnemo-chromium-'));
  const args = [...(gpu ? [...common, '--enable-unsafe-webgpu']
                        : [...common, '--disable-gpu']), ...extra];
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args,
    viewport: { width: 1000, height: 1400 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { context, page, errors };
}

/** Non-white pixels on a canvas chart (the loss chart by default): what was drawn. */
export async function inkOnChart(page, id = 'loss-chart') {
  return page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
    return n;
  }, id);
}

export async function setField(page, id, value) {
  await page.fill(`#${id}`, String(value));
}

export async function trainAndWait(page, timeout = 180_000) {
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"], #status[data-state="failed"]', { timeout });
  const state = await page.getAttribute('#status', 'data-state');
  if (state !== 'done') throw new Error('training failed: ' + (await page.textContent('#status')));
  return JSON.parse(await page.textContent('#loss-json'));
}

/** Click `locator` and return the download it starts: its suggested name and its text. */
export async function download(page, locator) {
  const [d] = await Promise.all([page.waitForEvent('download'), locator.click()]);
  return { name: d.suggestedFilename(), text: await readFile(await d.path(), 'utf8') };
}

/** A v1 link fragment for `payload`, made independently of the Rust encoder. */
export function v1(payload) {
  return 'v1.' + deflateRawSync(Buffer.from(JSON.stringify(payload))).toString('base64url');
}

/** Open a view with the navigation and wait until it shows. */
export async function nav(page, view) {
  await page.click(`#nav-${view}`);
  await page.waitForSelector(`#view-${view}:not([hidden])`);
}
