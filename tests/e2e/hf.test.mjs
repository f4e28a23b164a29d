// Hugging Face folders through "Import weights" on the CPU path: a GPT-2 and a GPT-NeoX
// model (the tiny random fixtures of tests/fixtures/hf, made by transformers) are
// imported with their config.json and tokenizer.json, extraction runs on them with the
// settings' texts in their own tokens, and incomplete or damaged folders get a message
// that names the problem while the model in use stays.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, basename } from 'node:path';
import { readFileSync } from 'node:fs';
import { serveDist, launch, nav } from './harness.mjs';

const fixtures = new URL('../fixtures/hf/', import.meta.url).pathname;
// Files as buffers (playwright does not mix paths and buffers in one pick).
const file = (path) => ({ name: basename(path), mimeType: 'application/octet-stream', buffer: readFileSync(path) });
const folder = (name) => ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => file(join(fixtures, name, f)));

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

async function importFiles(page, files) {
  const n = await page.evaluate(() => Number(document.getElementById('weights-message')?.dataset.n ?? 0));
  await page.setInputFiles('#weights-input', files);
  await page.waitForSelector(`#weights-message[data-n="${n + 1}"]`);
  return { ok: (await page.getAttribute('#weights-message', 'role')) === 'status', text: await page.textContent('#weights-message') };
}

async function extract(page) {
  await nav(page, 'extraction');
  await page.click('#ex-button');
  await page.waitForFunction(() => document.getElementById('ex-status').dataset.state === 'ready'
    && document.getElementById('ex-summary').textContent.startsWith('On '), null, { timeout: 120_000 });
  const summary = await page.textContent('#ex-summary');
  await nav(page, 'train');
  return summary;
}

test('the page says what Import weights takes', async () => {
  const { page } = browser;
  assert.match(await page.textContent('#weights-help'), /Hugging Face GPT-2 or GPT-NeoX folder's config.json, model.safetensors and tokenizer.json/);
});

test('a GPT-2 folder is imported and extraction runs on it', async () => {
  const { page, errors } = browser;
  const r = await importFiles(page, folder('gpt2'));
  assert.ok(r.ok, r.text);
  assert.match(r.text, /Loaded Hugging Face GPT-2 model “model.safetensors” \(2 layers, d_model 32, vocabulary 300, context 64\)/);
  const summary = await extract(page);
  assert.match(summary, /^On Hugging Face GPT-2 model/);
  assert.deepEqual(errors, []);
});

test('a GPT-NeoX folder (rotary, parallel) is imported too', async () => {
  const { page, errors } = browser;
  const r = await importFiles(page, folder('neox'));
  assert.ok(r.ok, r.text);
  assert.match(r.text, /Loaded Hugging Face GPT-NeoX model .*vocabulary 304/);
  const summary = await extract(page);
  assert.match(summary, /^On Hugging Face GPT-NeoX model/);
  assert.deepEqual(errors, []);
});

test('incomplete or damaged folders are refused with a message; the model stays', async () => {
  const { page, errors } = browser;
  const [config, , tokenizer] = folder('gpt2');
  let r = await importFiles(page, [config, tokenizer]);
  assert.ok(!r.ok);
  assert.match(r.text, /pick the weights too/);
  r = await importFiles(page, [config, tokenizer,
    { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not weights') }]);
  assert.ok(!r.ok);
  assert.match(r.text, /the Hugging Face folder cannot be used: model.safetensors/);
  r = await importFiles(page, [{ name: 'config.json', mimeType: 'application/json', buffer: Buffer.from('{"model_type": "llama"}') },
    file(join(fixtures, 'gpt2', 'model.safetensors'))]);
  assert.ok(!r.ok);
  assert.match(r.text, /`model_type` = "llama" is not supported/);
  // The NeoX model imported before is still the one extraction runs on.
  const summary = await extract(page);
  assert.match(summary, /^On Hugging Face GPT-NeoX model/);
  assert.deepEqual(errors, []);
});
