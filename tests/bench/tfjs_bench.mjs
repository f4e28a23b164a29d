// TensorFlow.js 4.22 as the browser peer of Mnemo's benchmark (issue 20): the page in
// tests/bench/tfjs/ trains the benchmark model from Mnemo's initial weights on the same
// data, order, learning rates and AdamW as tests/bench/torch_ref.py, in headless Chromium,
// on each TensorFlow.js backend in turn (wasm, webgl, webgpu; a fresh browser each, one
// at a time), and this script prints one JSON document.
// Usage: node tests/bench/tfjs_bench.mjs INIT_DIR STEPS > tfjs.json
// INIT_DIR is what `mnemo bench export-init` wrote (bench.json, init.safetensors).
// Needs tests/bench/tfjs/node_modules (npm ci there) and tests/e2e/node_modules.
//
// The server sends Cross-Origin-Opener-Policy and -Embedder-Policy, so the page is
// cross-origin isolated and tfjs-wasm may use its threaded build (2 threads, as natively).
// Without a GPU, WebGL and WebGPU run on SwiftShader, which emulates one on the CPU and is
// slow (here about 20 s a step with WebGL, 110 s with WebGPU, whose first pass also
// compiles its shaders for about 100 s): there the page runs only
// MNEMO_BENCH_TFJS_SWIFTSHADER_STEPS steps (default 2: one warm-up, one timed;
// `steps_note` in the JSON), and every backend's timed steps and evaluation stop once a
// time budget is spent (`capped`). Peak memory is the renderer's; with WebGL and WebGPU
// the tensors live in the GPU process, which it leaves out.
// Settings: MNEMO_BENCH_TFJS_BACKENDS (default "wasm webgl webgpu"),
// MNEMO_BENCH_TFJS_THREADS (wasm threads, default 2), MNEMO_BENCH_TFJS_BUDGET_S (timed
// training per backend, default 90), MNEMO_BENCH_TFJS_EVAL_BUDGET_S (default 30),
// MNEMO_BENCH_TFJS_SWIFTSHADER_STEPS (default 2), MNEMO_BENCH_TFJS_TIMEOUT_S (a whole
// backend, default 900).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../e2e/harness.mjs';
import { rendererPeakMiB } from './procs.mjs';

const LOSS_TOLERANCE = 1e-4;
const [initArg, stepsArg] = process.argv.slice(2);
const steps = Number(stepsArg);
if (!initArg || !Number.isInteger(steps) || steps < 2) {
  console.error('usage: node tests/bench/tfjs_bench.mjs INIT_DIR STEPS (STEPS at least 2: one warm-up step)');
  process.exit(2);
}
const initDir = resolve(initArg);
const pageDir = fileURLToPath(new URL('./tfjs/', import.meta.url));
const env = process.env;
const backends = (env.MNEMO_BENCH_TFJS_BACKENDS ?? 'wasm webgl webgpu').split(/\s+/).filter(Boolean);
const threads = Number(env.MNEMO_BENCH_TFJS_THREADS ?? 2);
const budgetS = Number(env.MNEMO_BENCH_TFJS_BUDGET_S ?? 90);
const evalBudgetS = Number(env.MNEMO_BENCH_TFJS_EVAL_BUDGET_S ?? 30);
const timeoutS = Number(env.MNEMO_BENCH_TFJS_TIMEOUT_S ?? 900);
// Where WebGL's or WebGPU's adapter is SwiftShader (a GPU emulated on the CPU, as on a
// machine without one), the page runs this many steps (one warm-up, the rest timed).
const swiftshaderSteps = Math.max(2, Number(env.MNEMO_BENCH_TFJS_SWIFTSHADER_STEPS ?? 2));
const spec = JSON.parse(await readFile(join(initDir, 'bench.json'), 'utf8'));
const tfjsVersion = JSON.parse(await readFile(join(pageDir, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8')).version;
const mnemoLoss = spec.mnemo_losses?.[0];
const log = (s) => process.stderr.write(`[tfjs] ${s}\n`);

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json',
};
/** The page, the packages' dist files and the two init files; cross-origin isolated. */
function serve() {
  const server = createServer(async (req, res) => {
    const asked = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    let file = null;
    if (asked === '/' || asked === '/index.html') file = join(pageDir, 'index.html');
    else if (asked === '/bench.js') file = join(pageDir, 'bench.js');
    else if (asked === '/init/bench.json' || asked === '/init/init.safetensors') file = join(initDir, asked.slice(6));
    else if (/^\/nm\/@tensorflow\/[a-z0-9-]+\/dist\/[^/]+$/.test(asked)) file = join(pageDir, 'node_modules', asked.slice(4));
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    if (!file) { res.writeHead(404, headers).end('not found'); return; }
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((done) => server.close(done)),
  })));
}

async function runBackend(server, backend) {
  const gpu = backend !== 'wasm';
  // Chromium no longer falls back to SwiftShader for WebGL without this flag.
  const browser = await launch({ gpu, args: gpu ? ['--enable-unsafe-swiftshader'] : [] });
  const { page, errors } = browser;
  let last = 'loading the page';
  page.on('console', (m) => {
    const text = m.text();
    if (!text.startsWith('[bench] ')) return;
    last = text.slice(8);
    log(`${backend}: ${last}`);
  });
  let timer;
  try {
    await page.goto(`${server.url}?backend=${backend}`);
    await page.waitForFunction(() => window.benchReady === true);
    const run = page.evaluate((o) => window.runBench(o), { steps, budgetS, evalBudgetS, threads, swiftshaderSteps });
    const timeout = new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`no answer within ${timeoutS} s`)), timeoutS * 1000);
    });
    const r = await Promise.race([run, timeout]);
    r.first_step_loss_abs_diff = mnemoLoss === undefined ? null : Math.abs(r.first_step_loss - mnemoLoss);
    r.first_step_loss_agrees = r.first_step_loss_abs_diff !== null && r.first_step_loss_abs_diff <= LOSS_TOLERANCE;
    r.peak_rss_mib = rendererPeakMiB();
    if (errors.length) r.console_errors = errors.slice(0, 10);
    return r;
  } catch (e) {
    const error = String(e?.message ?? e).split('\n')[0].slice(0, 500);
    return { backend, error: `${error} (at: ${last})`, console_errors: errors.slice(0, 10) };
  } finally {
    clearTimeout(timer);
    await browser.context.close().catch(() => {});
  }
}

const server = await serve();
const results = [];
try {
  for (const backend of backends) {
    log(`${backend}: ${steps} steps (budget ${budgetS} s timed, ${evalBudgetS} s evaluation)`);
    const r = await runBackend(server, backend);
    log(r.error ? `${backend}: error: ${r.error}`
      : `${backend}: loss ${r.first_step_loss} (|diff| ${r.first_step_loss_abs_diff?.toExponential(1)}), `
        + `${r.train_tokens_per_s.toFixed(0)} tokens/s over ${r.timed_steps} steps, ${r.eval_sequences_per_s.toFixed(1)} eval seq/s`);
    results.push(r);
  }
} finally {
  await server.close();
}

const agreeing = results.filter((r) => !r.error && r.first_step_loss_agrees);
const bestTrain = agreeing.reduce((a, r) => (!a || r.train_tokens_per_s > a.train_tokens_per_s ? r : a), null);
const bestEval = agreeing.reduce((a, r) => (!a || r.eval_sequences_per_s > a.eval_sequences_per_s ? r : a), null);
console.log(JSON.stringify({
  tfjs_version: tfjsVersion,
  steps,
  mnemo_first_step_loss: mnemoLoss ?? null,
  loss_tolerance: LOSS_TOLERANCE,
  budget_s: budgetS,
  eval_budget_s: evalBudgetS,
  backends: results,
  best: bestTrain && {
    backend: bestTrain.backend,
    train_tokens_per_s: bestTrain.train_tokens_per_s,
    ms_per_step: bestTrain.ms_per_step,
    first_step_loss: bestTrain.first_step_loss,
    first_step_loss_abs_diff: bestTrain.first_step_loss_abs_diff,
    eval_backend: bestEval.backend,
    eval_sequences_per_s: bestEval.eval_sequences_per_s,
    peak_rss_mib: bestTrain.peak_rss_mib,
  },
}, null, 2));
