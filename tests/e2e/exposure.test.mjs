// The Exposure view on the CPU path: an impossible format or repetition list is refused
// in place; the exposure demo (six 4-digit PINs seen 1 to 32 times among 160 invented
// facts) trains and ranks all 10,000 PINs in the page, the canary seen 32 times has a
// higher exposure than the one seen once, the charts are drawn, the exports hold the
// result, and a copied link re-runs to the same table. Prints the demo's seconds and
// exposures for the README.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, inkOnChart, download, nav } from './harness.mjs';

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

/** The exposure table as rows of cells. */
async function table(page) {
  return page.$$eval('#exp-table tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
}

test('impossible canary settings are refused in place', async () => {
  const { page, errors } = browser;
  await nav(page, 'exposure');
  assert.equal(await page.getAttribute('#exp-status', 'data-state'), 'idle');
  assert.equal(await page.inputValue('#exp-format'), 'my PIN is {d} {d} {d} {d}');
  assert.equal(await page.inputValue('#exp-repetitions'), '1, 2, 4, 8, 16, 32');
  await page.waitForSelector('#exp-run:enabled');
  for (const [format, reps, message] of [
    ['my PIN is', '1, 2', /0 slots/],
    ['my PIN is {x}', '1', /unknown slot \{x\}/],
    ['{d}', '1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11', /only 10 candidates/],
    ['{d}{d}', 'one, two', /whole numbers separated by commas/],
    ['{d}{d}', '5000', /outside the allowed range/],
    ['{l}{l}{l}{l}{l}', '1', /exact, but|more than/],
  ]) {
    await page.fill('#exp-format', format);
    await page.fill('#exp-repetitions', reps);
    const shown = await page.textContent('#exp-invalid').catch(() => '');
    if (format === '{l}{l}{l}{l}{l}') {
      // 11.9 million candidates: extrapolated (auto), so this one is allowed.
      assert.equal(await page.$('#exp-invalid'), null, shown);
      continue;
    }
    assert.match(shown, message, `${format} / ${reps}`);
    assert.ok(await page.isDisabled('#exp-run'), `${format} / ${reps} cannot run`);
    assert.ok(await page.isEnabled('#exp-demo'), 'the demo has its own settings');
  }
  await page.fill('#exp-format', 'my PIN is {d} {d} {d} {d}');
  await page.fill('#exp-repetitions', '1, 2, 4, 8, 16, 32');
  await page.waitForSelector('#exp-run:enabled');
  assert.equal(await page.$('#exp-error'), null, 'nothing ran');
  assert.deepEqual(errors, []);
});

let rows;
test('the exposure demo trains, ranks every PIN, and exposes the repeated canary', async () => {
  const { page, errors } = browser;
  const t0 = Date.now();
  await page.click('#exp-demo');
  await page.waitForSelector('#exp-status[data-state="training"]', { timeout: 30_000 });
  await page.waitForSelector('#exp-status[data-state="scoring"]', { timeout: 300_000 });
  await page.waitForSelector('#exp-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  assert.equal(await page.$('#exp-error'), null);
  rows = await table(page);
  // canary, times, log-perplexity, rank, candidates, exposure
  assert.deepEqual(rows.map((r) => r[1]), ['1', '2', '4', '8', '16', '32']);
  const max = Math.log2(10000);
  for (const r of rows) {
    assert.match(r[0], /^my PIN is \d \d \d \d$/);
    assert.equal(r[4], '9995', 'each secret among the PINs that are not another canary');
    assert.match(r[3], /^\d+$/, 'exact ranks');
    const e = Number(r[5]);
    assert.ok(e >= 0 && e <= max + 0.005, `exposure ${e} (shown to 2 decimals)`);
  }
  const exposure = (times) => Number(rows.find((r) => r[1] === times)[5]);
  assert.ok(exposure('32') > exposure('1') + 3, `x32 ${exposure('32')} vs x1 ${exposure('1')}`);
  assert.match(await page.textContent('#exp-summary'), /^6 canaries of the format “my PIN is \{d\} \{d\} \{d\} \{d\}”, each ranked among 10000 candidates \(exact ranks, 10000 scored\)/);
  assert.ok((await inkOnChart(page, 'exp-chart')) > 3000, 'the exposure chart is drawn');
  assert.ok((await inkOnChart(page, 'exp-hist')) > 3000, 'the histogram is drawn');
  // The candidates above the once-seen canary: a list of other PINs, most likely first.
  await page.click('#exp-table tr[data-repetitions="1"]');
  const above = await page.$$eval('#exp-above li', (ls) => ls.map((l) => l.textContent));
  const rank1 = Number(rows.find((r) => r[1] === '1')[3]);
  assert.equal(above.length, Math.min(10, rank1 - 1));
  const lps = above.map((a) => Number(a.match(/\(([\d.]+) bits\)$/)[1]));
  assert.deepEqual([...lps].sort((a, b) => a - b), lps, 'most likely first');
  // Exports.
  const csv = await download(page, page.locator('#exp-panel button', { hasText: 'exposure.csv' }));
  const lines = csv.text.trim().split('\n');
  assert.equal(lines[0], 'canary,repetitions,rank,candidates,exposure,method');
  assert.equal(lines.length, 7);
  assert.ok(lines.slice(1).every((l) => l.endsWith(',exact')));
  const json = JSON.parse((await download(page, page.locator('#exp-panel button', { hasText: 'exposure.json' }))).text);
  assert.equal(json.canaries.length, 6);
  assert.equal(json.scored, 10000);
  const svg = await download(page, page.locator('#exp-panel button', { hasText: 'exposure SVG' }));
  assert.ok(svg.text.includes('<svg') && svg.text.includes('largest exposure'));
  const png = await download(page, page.locator('#exp-panel button', { hasText: 'perplexity PNG' }));
  assert.equal(png.name, 'perplexity.png');
  console.log(`# exposure demo in the browser (CPU): ${secs.toFixed(1)} s; ` +
    rows.map((r) => `x${r[1]}: rank ${r[3]}, ${r[5]} bits`).join('; '));
  await page.locator('#exp-panel').screenshot({ path: 'target/e2e/exposure-cpu.png' });
  assert.deepEqual(errors, []);
});

test('unlearning the canaries and ranking again shows the exposure after beside the exposure before', async () => {
  const { page, errors } = browser;
  assert.ok(rows, 'the demo ran');
  await page.fill('#exp-unlearn-ratio', '2');
  assert.match(await page.textContent('#exp-unlearn-invalid'), /ratio/);
  assert.ok(await page.isDisabled('#exp-unlearn'));
  await page.selectOption('#exp-unlearn-method', 'balanced-subnet');
  await page.fill('#exp-unlearn-ratio', '0.2');
  const t0 = Date.now();
  await page.click('#exp-unlearn');
  await page.waitForSelector('#exp-status[data-state="unlearning"]', { timeout: 30_000 });
  await page.waitForSelector('#exp-table td.after', { timeout: 400_000 });
  await page.waitForSelector('#exp-status[data-state="ready"]');
  const secs = (Date.now() - t0) / 1000;
  const after = await table(page);
  // canary, times, log-perplexity, rank, candidates, exposure, exposure after, rank after
  assert.deepEqual(after.map((r) => r.slice(0, 6)), rows, 'the exposure before is unchanged');
  const max = Math.log2(10000);
  for (const r of after) {
    const e = Number(r[6]);
    assert.ok(e >= 0 && e <= max + 0.005, `exposure after ${e}`);
    assert.match(r[7], /^\d+$/);
  }
  assert.match(await page.textContent('#exp-table thead'), /exposure after balanced-subnet \(ratio 0\.2\)/);
  assert.match(await page.textContent('#exp-status'), /unlearned with balanced-subnet/);
  const csv = await download(page, page.locator('#exp-panel button', { hasText: 'exposure_after.csv' }));
  const lines = csv.text.trim().split('\n');
  assert.equal(lines.length, 7);
  const svg = await download(page, page.locator('#exp-panel button', { hasText: 'exposure SVG' }));
  assert.ok(svg.text.includes('after balanced-subnet'), 'the chart shows both');
  console.log(`# exposure after balanced-subnet (ratio 0.2) in the browser: ${secs.toFixed(1)} s; ` +
    after.map((r) => `x${r[1]}: ${r[5]} -> ${r[6]} bits (rank ${r[3]} -> ${r[7]})`).join('; '));
  assert.deepEqual(errors, []);
});

test('a link to the exposure view re-runs it and gets the same table', async () => {
  const { page, errors } = browser;
  assert.ok(rows, 'the demo ran');
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  const other = await browser.context.newPage();
  await other.goto(url);
  await other.waitForSelector('#view-exposure:not([hidden])');
  await other.waitForSelector('#exp-status[data-state="ready"]', { timeout: 400_000 });
  assert.deepEqual(await table(other), rows);
  await other.close();
  assert.deepEqual(errors, []);
});
