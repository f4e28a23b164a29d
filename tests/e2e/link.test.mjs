// Links that reproduce an experiment: a copied link re-runs to the same losses, a frozen
// v1 link still opens, damaged links get a message and change nothing, text from a link
// is never markup, the embed mode shows one view, and a large text travels by hash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDist, launch, v1 } from './harness.mjs';

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ gpu: false });
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

const fixture = (name) => new URL(`../fixtures/links/${name}`, import.meta.url);

async function baseSpec() {
  const { spec } = JSON.parse(await readFile(fixture('v1_profile_demo.json'), 'utf8'));
  delete spec.profile;
  spec.name = 'link test';
  spec.training.duration = { steps: 12 };
  spec.training.batch_size = 4;
  spec.training.checkpoint_every = 0;
  spec.data.source = { kind: 'builtin', corpus: 'facts', instances: 24 };
  return spec;
}

async function open(fragment) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${server.url}#${fragment}`);
  // The badge may be hidden by the link: wait for it to exist, not to be visible.
  await page.waitForSelector('#backend-badge[data-backend="cpu"]', { state: 'attached' });
  return { page, errors };
}

test('a copied link re-runs the experiment to the same losses', async () => {
  const { page, errors } = await open('');
  await page.fill('#f-training-duration-steps', '15');
  await page.fill('#f-seed', '7');
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  const losses = JSON.parse(await page.textContent('#loss-json'));
  assert.equal(losses.length, 15);
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/#v1\.[A-Za-z0-9_-]+$/);
  assert.equal(await page.evaluate(() => location.hash.slice(1)), url.split('#')[1]);
  const other = await open(url.split('#')[1]);
  await other.page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  const again = JSON.parse(await other.page.textContent('#loss-json'));
  assert.deepEqual(again, losses, 'the same losses, step by step');
  assert.equal(await other.page.inputValue('#f-seed'), '7');
  assert.deepEqual([...errors, ...other.errors], []);
  await page.close(); await other.page.close();
});

test('a frozen v1 link still opens its experiment and starts it', async () => {
  const fragment = (await readFile(fixture('v1_profile_demo.txt'), 'utf8')).trim();
  const { page, errors } = await open(fragment);
  await page.waitForSelector('#profile-status[data-state="training"]', { timeout: 60_000 });
  assert.equal(await page.inputValue('#f-model-d_model'), '64');
  assert.ok(await page.isVisible('#view-profile'), 'the link opens its view');
  await page.click('#cancel-button');
  await page.waitForSelector('#profile-status[data-state="cancelled"]', { timeout: 60_000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('damaged links get a message and change nothing', async () => {
  for (const bad of ['v1.AAAA', 'v9.abc', 'hello', v1({ spec: { version: 1 } })]) {
    const { page, errors } = await open(bad);
    const msg = await page.textContent('#link-error');
    assert.match(msg, /^This link could not be opened: .+ Mnemo starts with its usual settings instead\.$/, msg);
    assert.equal(await page.inputValue('#f-training-duration-steps'), '200', 'the usual demo settings');
    assert.equal(await page.getAttribute('#status', 'data-state'), 'idle');
    assert.deepEqual(errors, []);
    await page.close();
  }
});

test('text from a link is shown as text and never runs', async () => {
  const spec = await baseSpec();
  spec.name = '<img src=x onerror="window.__pwned=1">';
  spec.data.source = { kind: 'text', text: '<script>window.__pwned=2</script>\n<img src=x onerror="window.__pwned=3">\nplain line\n', split: { mode: 'lines' } };
  const payload = { spec, view: 'train', run: true, lesson: '<b>Lesson</b><img src=x onerror="window.__pwned=4">', hide: ['backend'], lock: ['model.d_model'] };
  const { page, errors } = await open(v1(payload));
  await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  assert.equal(await page.textContent('#lesson'), payload.lesson, 'the lesson is text');
  assert.equal(await page.inputValue('#text-input'), spec.data.source.text);
  assert.equal(await page.locator('#lesson b, #lesson img').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.ok(await page.isDisabled('#f-model-d_model'), 'locked');
  assert.ok(!(await page.isDisabled('#f-model-n_layers')), 'not locked');
  assert.ok(!(await page.locator('#backend-select').isVisible()), 'hidden');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the embed mode shows one view with minimal chrome and still runs', async () => {
  const spec = await baseSpec();
  const { page, errors } = await open(v1({ spec, view: 'train', run: true, embed: true }));
  await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  assert.ok(await page.locator('#loss-chart').isVisible());
  for (const hidden of ['#text-input', '#f-model-d_model', '#demo-button', '#profile-panel', '#cf-panel', '#share-panel']) {
    assert.ok(!(await page.locator(hidden).isVisible()), `${hidden} is hidden`);
  }
  assert.equal(await page.locator('.tagline').count(), 0);
  await page.close();
  // The Embed button gives an iframe snippet of the embed link.
  const main = await open('');
  await main.page.click('#embed-button');
  const snippet = await main.page.inputValue('#embed-snippet');
  assert.match(snippet, /^<iframe src="http:\/\/127\.0\.0\.1:\d+\/#v1\.[A-Za-z0-9_-]+" width="820" height="900"/);
  assert.deepEqual([...errors, ...main.errors], []);
  await main.page.close();
});

test('a large text travels by its hash and only the same file is accepted', async () => {
  const text = Array.from({ length: 3000 }, (_, i) => `Line ${i} of a long private text.`).join('\n') + '\n';
  assert.ok(Buffer.byteLength(text) > 32 * 1024);
  const spec = await baseSpec();
  spec.data.source = { kind: 'text', text: '', split: { mode: 'lines' } };
  const sha256 = createHash('sha256').update(text).digest('hex');
  const fragment = v1({ spec, view: 'train', run: true, corpus: { sha256, bytes: Buffer.byteLength(text), name: 'notes.txt' } });
  assert.ok(fragment.length < 2000);
  const dir = await mkdtemp(join(tmpdir(), 'mnemo-link-'));
  await writeFile(join(dir, 'wrong.txt'), text.replace('Line 7 ', 'Line 8 '));
  await writeFile(join(dir, 'notes.txt'), text);
  const { page, errors } = await open(fragment);
  assert.match(await page.textContent('#link-file'), /text of \d+ bytes \(“notes.txt”\)/);
  await page.setInputFiles('#link-file-input', join(dir, 'wrong.txt'));
  await page.waitForSelector('#link-file-error');
  assert.match(await page.textContent('#link-file-error'), /not the one the link was made with/);
  assert.equal(await page.getAttribute('#status', 'data-state'), 'idle', 'nothing ran');
  await page.setInputFiles('#link-file-input', join(dir, 'notes.txt'));
  await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  assert.equal(await page.locator('#link-file').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
