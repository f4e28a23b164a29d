// The browser build on the CPU path (headless Chromium, no WebGPU) training the
// benchmark-shaped model through the app's own form, timed from what the page shows.
// Usage: node tests/bench/browser_bench.mjs TEXT_FILE STEPS TOKENS_PER_STEP > browser.json
// (needs dist/ from `trunk build --release` and tests/e2e/node_modules).
//
// Training tokens/s: the worker's cumulative figure in #progress-text at step 1 and at
// the last step gives the worker's own elapsed time at both (tokens / tokens-per-second),
// so the rate over steps 2..N excludes the first (warm-up) step, as natively. The page's
// whole-run figure (status line, first step and weight snapshots included) is kept too.
// Evaluation: after the last step the worker evaluates the mean loss of all training
// sequences (in batches of the batch size) and snapshots the weights; the time from the
// last step's progress to "done" on the page gives an approximate sequences/s.
// Peak memory: VmHWM of Chromium's renderer process (the page, its worker, wasm memory).
import { readFile } from 'node:fs/promises';
import { serveDist, launch, setField } from '../e2e/harness.mjs';
import { descendants, vmHwmMiB } from './procs.mjs';

const [textFile, stepsArg, tpsArg] = process.argv.slice(2);
if (!textFile || !stepsArg || !tpsArg) {
  console.error('usage: node tests/bench/browser_bench.mjs TEXT_FILE STEPS TOKENS_PER_STEP');
  process.exit(2);
}
const steps = Number(stepsArg);
const tokensPerStep = Number(tpsArg);
if (!Number.isInteger(steps) || steps < 2 || !(tokensPerStep > 0)) {
  console.error('STEPS must be a whole number of at least 2 (one warm-up step), TOKENS_PER_STEP positive');
  process.exit(2);
}
const text = await readFile(textFile, 'utf8');

const server = await serveDist();
const browser = await launch({ gpu: false });
const { page, errors } = browser;
try {
  await page.goto(server.url);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  // The worker has answered its probe (buttons stay disabled until then).
  await page.waitForSelector('#demo-button:enabled');
  await page.selectOption('#backend-select', 'cpu');

  // The benchmark-shaped model on the benchmark text, through the form.
  await page.check('#source-text');
  await page.fill('#text-input', text);
  await page.selectOption('#split-select', 'windows');
  await page.locator('label.field', { hasText: 'Window (characters)' }).locator('input').fill('149');
  await page.locator('label.field', { hasText: 'Held out (%)' }).locator('input').fill('0');
  const fields = {
    'f-model-n_layers': 2, 'f-model-d_model': 128, 'f-model-n_heads': 4, 'f-model-context': 150,
    'f-training-batch_size': 32, 'f-training-duration-steps': steps,
    'f-training-learning_rate': 0.001, 'f-seed': 42,
  };
  for (const [id, v] of Object.entries(fields)) await setField(page, id, v);
  if (await page.isDisabled('#train-button')) {
    throw new Error('the form refused the settings: ' + (await page.locator('label.field.invalid').allTextContents()).join('; '));
  }

  // Record every change of the progress text and of the state, with the page's clock.
  await page.evaluate(() => {
    window.__bench = [];
    let last = '';
    const note = () => {
      const p = document.getElementById('progress-text')?.textContent ?? '';
      const s = document.getElementById('status')?.getAttribute('data-state') ?? '';
      const key = p + '|' + s;
      if (key !== last) { last = key; window.__bench.push({ t: performance.now(), progress: p, state: s }); }
    };
    new MutationObserver(note).observe(document.querySelector('main'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const t0 = Date.now();
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"], #status[data-state="failed"]', { timeout: 120_000 + steps * 30_000 });
  const wall = (Date.now() - t0) / 1000;
  const state = await page.getAttribute('#status', 'data-state');
  const status = (await page.textContent('#status')).trim();
  if (state !== 'done') throw new Error('training failed: ' + status);

  let renderer = null;
  for (const [pid, cmd] of descendants()) {
    if (!cmd.includes('--type=renderer')) continue;
    const hwm = vmHwmMiB(pid);
    if (hwm !== null && (renderer === null || hwm > renderer.peak)) renderer = { pid, peak: hwm };
  }

  const records = await page.evaluate(() => window.__bench);
  const info = (await page.locator('#progress-text + p.help').textContent().catch(() => '')).trim();
  const progress = [];
  for (const r of records) {
    const m = r.progress.match(/^step (\d+)\/(\d+) · loss ([\d.]+) · (\d+) tokens\/s/);
    if (m && !progress.some((p) => p.step === Number(m[1]))) {
      progress.push({ step: Number(m[1]), t: r.t, tokensPerS: Number(m[4]), loss: Number(m[3]) });
    }
  }
  const first = progress.find((p) => p.step === 1);
  const lastP = progress.find((p) => p.step === steps);
  const done = records.find((r) => r.state === 'done');
  if (!first || !lastP || !done) throw new Error(`missing progress records (${progress.length} steps seen)`);
  // The worker's elapsed time at a step: its tokens so far over its tokens/s so far.
  const elapsed = (p) => (p.step * tokensPerStep) / p.tokensPerS;
  const timedTokens = (steps - 1) * tokensPerStep;
  const workerSeconds = elapsed(lastP) - elapsed(first);
  const pageSeconds = (lastP.t - first.t) / 1000;
  const evalSeconds = (done.t - lastP.t) / 1000;
  const [, runS, runTps] = status.match(/finished in ([\d.]+) s \((\d+) tokens\/s\)/) ?? [];
  const trainMatch = info.match(/^(\d+) training/);
  const evalSequences = trainMatch ? Number(trainMatch[1]) : null;
  console.log(JSON.stringify({
    steps,
    timed_steps: steps - 1,
    tokens_per_step: tokensPerStep,
    train_tokens_per_s: timedTokens / workerSeconds,
    ms_per_step: (workerSeconds * 1000) / (steps - 1),
    train_tokens_per_s_page_clock: timedTokens / pageSeconds,
    page_run_seconds: runS ? Number(runS) : null,
    page_run_tokens_per_s: runTps ? Number(runTps) : null,
    eval_sequences: evalSequences,
    eval_seconds_approx: evalSeconds,
    eval_sequences_per_s: evalSequences ? evalSequences / evalSeconds : null,
    peak_rss_mib: renderer?.peak ?? null,
    wall_seconds: wall,
    first_losses: progress.slice(0, 3).map((p) => p.loss),
    status,
    info,
    console_errors: errors,
    user_agent: await page.evaluate(() => navigator.userAgent),
  }, null, 2));
} finally {
  await browser.context.close();
  await server.close();
}
