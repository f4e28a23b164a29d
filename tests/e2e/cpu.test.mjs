// The app on the CPU path: the default demo trains to completion, the chart and the CPU
// badge are there, and bad uploads get a clear message and change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { serveDist, launch, inkOnChart } from './harness.mjs';

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

test('without WebGPU the app says so and shows the CPU badge', async () => {
  const { page } = browser;
  await page.waitForSelector('#webgpu-notice');
  assert.match(await page.textContent('#webgpu-notice'), /WebGPU is not available.*CPU/s);
  assert.equal((await page.textContent('#backend-badge')).trim(), 'CPU');
});

test('the default demo trains to completion on the CPU and draws its loss curve', async () => {
  const { page, errors } = browser;
  const blank = await inkOnChart(page);
  const t0 = Date.now();
  await page.click('#demo-button');
  await page.waitForSelector('#status[data-state="running"]', { timeout: 60_000 });
  // The page stays responsive while the worker trains: the UI keeps updating.
  const seen = new Set();
  for (let i = 0; i < 5; i++) {
    seen.add(await page.textContent('#progress-text'));
    await page.waitForTimeout(300);
  }
  assert.ok(seen.size > 1, 'progress text updates while training');
  await page.waitForSelector('#status[data-state="done"], #status[data-state="failed"]', { timeout: 300_000 });
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(await page.getAttribute('#status', 'data-state'), 'done', await page.textContent('#status'));
  console.log(`# default demo on the CPU path: ${seconds.toFixed(1)} s wall clock, status: ${await page.textContent('#status')}`);
  const losses = JSON.parse(await page.textContent('#loss-json'));
  assert.equal(losses.length, 200);
  const first = losses[0][1], last = losses.at(-1)[1];
  assert.ok(first > 2.5 && first < 4.5, `initial loss near ln(vocab): ${first}`);
  assert.ok(last < first * 0.6, `the loss falls: ${first} -> ${last}`);
  assert.match(await page.textContent('#progress-text'), /step 200\/200/);
  assert.equal(await page.getAttribute('#status', 'data-backend'), 'cpu');
  // The random facts are memorised, not generalised: held-out loss stays higher.
  const gap = await page.textContent('#generalisation-gap');
  const [train, held] = [...gap.matchAll(/(\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.ok(held > train + 0.3, `held-out ${held} vs training ${train}`);
  assert.ok((await inkOnChart(page)) > blank + 500, 'the curve is drawn');
  await mkdir('target/e2e', { recursive: true }).catch(() => {});
  await page.screenshot({ path: 'target/e2e/demo-cpu.png', fullPage: true });
  assert.deepEqual(errors, []);
});

test('cancel stops a run between steps and keeps the curve', async () => {
  const { page } = browser;
  await page.fill('#f-training-duration-steps', '2000');
  await page.click('#train-button');
  await page.waitForFunction(() => JSON.parse(document.getElementById('loss-json').textContent).length >= 3, null, { timeout: 60_000 });
  await page.click('#cancel-button');
  await page.waitForSelector('#status[data-state="cancelled"]', { timeout: 30_000 });
  const losses = JSON.parse(await page.textContent('#loss-json'));
  assert.ok(losses.length >= 3 && losses.length < 2000);
  assert.match(await page.textContent('#status'), /Cancelled after step \d+/);
  await page.fill('#f-training-duration-steps', '200');
});

test('settings are validated as the user types', async () => {
  const { page } = browser;
  await page.fill('#f-model-n_layers', '12');
  assert.match(await page.textContent('label.field.invalid'), /between 1 and 8/);
  assert.equal(await page.isDisabled('#train-button'), true);
  await page.fill('#f-model-n_layers', 'two');
  assert.match(await page.textContent('label.field.invalid'), /not a valid number/);
  await page.fill('#f-model-n_layers', '2');
  await page.fill('#f-model-n_heads', '3');
  assert.match(await page.textContent('label.field.invalid'), /multiple of model.n_heads/);
  await page.fill('#f-model-n_heads', '4');
  assert.equal(await page.isDisabled('#train-button'), false);
});

test('non-UTF-8, binary and empty uploads get a clear message and change nothing', async () => {
  const { page } = browser;
  await page.fill('#text-input', 'my own line one\nmy own line two');
  const cases = [
    { name: 'latin1.txt', bytes: [0x63, 0x61, 0x66, 0xe9, 0x0a], message: /“latin1.txt” is not UTF-8 text/ },
    { name: 'image.png', bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00], message: /looks like a binary file/ },
    { name: 'empty.txt', bytes: [], message: /“empty.txt” is empty/ },
    { name: 'rows.csv', bytes: [...Buffer.from('id,text\n1,fine\n2,bad,extra\n')], message: /“rows.csv”, line 3: 3 fields where the header has 2/ },
    { name: 'rows.jsonl', bytes: [...Buffer.from('{"text": "fine"}\n{"text": 5}\n')], message: /“rows.jsonl”, line 2: “text” is not a string/ },
    { name: 'big.txt', bytes: [...Buffer.alloc(2 * 1024 * 1024 + 1, 97)], message: /“big.txt” is 2097153 bytes; the limit is 2097152 bytes/ },
  ];
  for (const c of cases) {
    await page.setInputFiles('#file-input', { name: c.name, mimeType: 'text/plain', buffer: Buffer.from(c.bytes) });
    await page.waitForFunction((n) => document.getElementById('upload-message')?.textContent.includes(n), c.name);
    assert.match(await page.textContent('#upload-message'), c.message);
    assert.equal(await page.getAttribute('#upload-message', 'role'), 'alert');
    assert.equal(await page.inputValue('#text-input'), 'my own line one\nmy own line two', 'the text is untouched');
  }
  // A good file replaces the text and says what it loaded.
  await page.setInputFiles('#file-input', { name: 'ok.txt', mimeType: 'text/plain', buffer: Buffer.from('alpha\nbeta\n') });
  await page.waitForFunction(() => document.getElementById('upload-message')?.textContent.includes('ok.txt'));
  assert.match(await page.textContent('#upload-message'), /Loaded “ok.txt”: 11 characters, 2 non-empty lines/);
  assert.equal(await page.inputValue('#text-input'), 'alpha\nbeta\n');
  // A table: one instance per record of its text column.
  await page.setInputFiles('#file-input', { name: 'ok.csv', mimeType: 'text/csv', buffer: Buffer.from('id,text\n1,"one, quoted"\n2,two\n') });
  await page.waitForFunction(() => document.getElementById('upload-message')?.textContent.includes('ok.csv'));
  assert.match(await page.textContent('#upload-message'), /Loaded “ok.csv”: 2 records from its text column/);
  assert.equal(await page.inputValue('#text-input'), 'one, quoted\ntwo\n');
});

test('uploaded text with markup is shown as text, never run', async () => {
  const { page } = browser;
  const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  await page.setInputFiles('#file-input', { name: '<b>x</b>.txt', mimeType: 'text/plain', buffer: Buffer.from(evil) });
  await page.waitForFunction(() => document.getElementById('upload-message')?.textContent.includes('<b>x</b>.txt'));
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator('main img').count(), 0);
});
