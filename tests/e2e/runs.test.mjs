// Runs kept in IndexedDB: a finished run survives a reload and can be renamed, reopened
// and deleted; a reload in the middle of training offers "Resume", and the resumed run
// reaches exactly the losses of a run that never stopped; without IndexedDB or with a
// full quota the page says so and goes on, and nothing half-written is left.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, nav } from './harness.mjs';

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ gpu: false });
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

async function open(page) {
  await page.goto(server.url);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.waitForSelector('#demo-button:enabled');
}

const losses = async (page) => JSON.parse(await page.textContent('#loss-json'));
const runs = (page) => page.locator('#runs-list .run');

test('a finished run is kept across reloads, renamed, reopened and deleted', async () => {
  const { page, errors } = browser;
  await open(page);
  await nav(page, 'runs');
  await page.waitForSelector('#runs-empty');
  await nav(page, 'train');
  await page.fill('#f-training-duration-steps', '15');
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
  const trained = await losses(page);
  assert.equal(trained.length, 15);
  await nav(page, 'runs');
  await page.waitForSelector('#runs-list .run[data-status="done"]');

  await page.reload();
  await page.waitForSelector('#runs-list .run[data-status="done"]');
  assert.equal(await runs(page).count(), 1);
  await runs(page).first().locator('.run-name').fill('my first run <b>bold</b>');
  await runs(page).first().locator('.run-rename').click();
  await page.reload();
  await page.waitForSelector('#runs-list .run');
  assert.equal(await runs(page).first().locator('.run-name').inputValue(), 'my first run <b>bold</b>');
  assert.equal(await page.locator('#runs-list b').count(), 0, 'a name is text, never markup');

  await page.waitForSelector('#runs-list .run-open:enabled');
  await runs(page).first().locator('.run-open').click();
  await page.waitForSelector('#status[data-state="reopened"]');
  assert.deepEqual(await losses(page), trained, 'the reopened run shows the kept losses');
  assert.equal(await page.inputValue('#f-training-duration-steps'), '15');

  await nav(page, 'runs');
  await runs(page).first().locator('.run-delete').click();
  await page.waitForSelector('#runs-empty');
  await page.reload();
  await page.waitForSelector('#runs-empty');
  assert.deepEqual(errors, []);
});

test('a reload mid-training offers to resume, and the resumed run ends with the same losses', async () => {
  const { page, errors } = browser;
  await open(page);
  await page.click('#demo-button');
  await page.waitForSelector('#status[data-state="done"]', { timeout: 180_000 });
  const whole = await losses(page);

  await page.click('#demo-button');
  await nav(page, 'runs');
  // Wait for a resume point of the new run (written every few seconds).
  await page.waitForSelector('#runs-list .run[data-status="running"]:not([data-resume-step=""])', { timeout: 120_000 });
  const at = Number(await page.getAttribute('#runs-list .run[data-status="running"]', 'data-resume-step'));
  assert.ok(at > 0 && at < whole.length, `resume point at step ${at}`);
  await page.reload();
  await page.waitForSelector('#runs-list .run[data-status="interrupted"]');
  const resume = page.locator('#runs-list .run[data-status="interrupted"] .run-resume');
  await page.waitForSelector('#runs-list .run-resume:enabled');
  assert.match(await resume.textContent(), /^Resume from step \d+$/);
  const from = Number((await resume.textContent()).match(/\d+/)[0]);
  assert.ok(from >= at, `${from} >= ${at}`);
  await page.locator('#runs-panel').screenshot({ path: 'target/e2e/runs-cpu.png' });
  await resume.click();
  await page.waitForSelector('#status[data-state="done"]', { timeout: 180_000 });
  const resumed = await losses(page);
  assert.equal(resumed.length, whole.length);
  assert.deepEqual(resumed, whole, 'bit-identical to the run that never stopped');
  await nav(page, 'runs');
  await page.waitForSelector(`#runs-list .run[data-status="done"]`);
  assert.equal(await page.locator('#runs-list .run[data-status="interrupted"]').count(), 0);
  assert.deepEqual(errors, []);
});

test('without IndexedDB the page says runs are not kept, and training still works', async () => {
  const page = await browser.context.newPage();
  await page.addInitScript(() => { Object.defineProperty(window, 'indexedDB', { value: undefined }); });
  await open(page);
  assert.match(await page.textContent('#runs-unavailable'), /runs are not kept in this browser/);
  await page.fill('#f-training-duration-steps', '5');
  await page.click('#train-button');
  await page.waitForSelector('#status[data-state="done"]', { timeout: 60_000 });
  await page.close();
});

test('a full quota gets a message, and no half-written resume point is left', async () => {
  // The browser's quota error as IndexedDB raises it (a QuotaExceededError from put),
  // for the resume points only: the run's other records still fit.
  const page = await browser.context.newPage();
  await page.addInitScript(() => {
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (value, key) {
      if (this.name === 'resume' && !window.__roomAgain) {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      }
      return put.call(this, value, key);
    };
  });
  await open(page);
  await nav(page, 'runs');
  while ((await runs(page).count()) > 0) await runs(page).first().locator('.run-delete').click();
  await page.waitForSelector('#runs-empty');
  await nav(page, 'train');
  await page.click('#demo-button');
  await page.waitForSelector('#runs-error', { state: 'attached', timeout: 120_000 });
  assert.match(await page.textContent('#runs-error'), /storage for this page is full/);
  await page.waitForSelector('#status[data-state="done"]', { timeout: 180_000 });
  await nav(page, 'runs');
  await page.waitForSelector('#runs-list .run[data-status="done"]');
  await page.reload();
  await page.waitForSelector('#runs-list .run[data-status="done"]');
  // The step and the resume point are written in one transaction: as the resume point
  // could not be written, no resume step was recorded either.
  assert.equal(await runs(page).first().getAttribute('data-resume-step'), '');
  await page.close();
});
