// The Mitigation view on the CPU path: impossible settings are refused in place; the
// built-in backdoor model is fetched from the bundle and measured (the backdoor fires on
// every backdoor test sequence); the methods run on two workers with progress, each on a
// copy (the untouched row stays), and one worker gives the same rows; the table, the
// trade-off chart with the
// reference's points, the sequences token by token and the exports hold what the run
// measured; Cancel keeps the methods done; a link re-runs the same methods and gets the
// same numbers (a fine-tune's training included). Prints each method's seconds in the
// page for the README.
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

/** Tick exactly `names` in the methods table. */
async function tick(page, names) {
  for (const row of await page.$$('#mit-methods tbody tr')) {
    const name = await row.getAttribute('data-method');
    const box = await row.$('input[type=checkbox]');
    if ((await box.isChecked()) !== names.includes(name)) await box.click();
  }
}

/** The results table as rows of cells (the untouched row first). */
async function table(page) {
  return page.$$eval('#mit-table tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
}

test('impossible mitigation settings are refused in place', async () => {
  const { page, errors } = browser;
  await nav(page, 'mitigation');
  assert.equal(await page.inputValue('#mit-model'), 'tinymem-noise-2l', 'the first shipped model');
  await page.selectOption('#mit-model', 'tinymem-backdoor-2l');
  assert.ok(await page.$eval('#mit-model option[value="last"]', (o) => o.disabled), 'no trained model yet');
  for (const o of await page.$$eval('#mit-model option', (os) => os.map((o) => [o.textContent, o.disabled]))) {
    if (/not shipped/.test(o[0])) assert.ok(o[1], `${o[0]} cannot be picked`);
  }
  await page.waitForSelector('#mit-run:enabled');
  await page.fill('#mit-ratio-subnet', '1.5');
  await page.waitForSelector('#mit-methods tr.invalid[data-method="subnet"]');
  assert.match(await page.textContent('#mit-methods tr[data-method="subnet"] td.error'), /above 0 and below 1/);
  assert.ok(await page.isDisabled('#mit-run'));
  await page.fill('#mit-ratio-subnet', '0.05');
  await page.fill('#mit-sweep', '0.1,two');
  assert.match(await page.textContent('#mit-panel .field.invalid small'), /up to eight shares/);
  assert.ok(await page.isDisabled('#mit-run'));
  await page.fill('#mit-sweep', '');
  await tick(page, []);
  assert.ok(await page.isDisabled('#mit-run'), 'no method ticked');
  await tick(page, ['activations']);
  await page.waitForSelector('#mit-run:enabled');
  assert.deepEqual(errors, []);
});

let pooled; // the table and seconds of the three methods on two workers

test('methods run on the built-in backdoor model on two workers, each on a copy', async () => {
  const { page, errors } = browser;
  await page.selectOption('#workers-select', '2');
  await tick(page, ['activations', 'durable', 'subnet']);
  const t0 = Date.now();
  await page.click('#mit-run');
  await page.waitForSelector('#mit-progress', { timeout: 60_000 });
  await page.waitForFunction(() => /done on 2 workers \(up to \d+ MiB each\)/.test(document.getElementById('mit-status')?.textContent ?? ''), null, { timeout: 300_000 });
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  const before = await page.textContent('#mit-before');
  assert.match(before, /^built-in tinymem-backdoor-2l: memorised 100\.0% \(backdoor success on 15 backdoor test sequences\), test accuracy 93\.\d%/);
  const rows = await table(page);
  assert.equal(rows.length, 4, 'the untouched model and three methods');
  assert.deepEqual(rows.map((r) => r[0]), ['(untouched)', 'activations', 'durable', 'subnet']);
  const [untouched, act] = rows;
  assert.equal(untouched[2], '100.0');
  // Activations at ratio 0.01 removes most of the backdoor (natively: 26.7% left) and
  // keeps the accuracy within a point.
  assert.ok(Number(act[2]) < 50, `activations leaves ${act[2]}% memorised`);
  assert.ok(Math.abs(Number(act[3]) - Number(untouched[3])) < 1.0, `accuracy ${act[3]} vs ${untouched[3]}`);
  assert.match(act[6], /^89\.6 \/ 0\.0$/, 'the reference result beside it');
  pooled = { rows, secs };
  console.log(`# mitigation in the browser (CPU), backdoor-2l, 2 workers, ${secs.toFixed(1)} s in all: ` +
    rows.slice(1).map((r) => `${r[0]} ${r[1]}: memorised ${r[2]}%, accuracy ${r[3]}%, ${r[5]} s`).join('; '));
  assert.ok((await inkOnChart(page, 'mit-tradeoff')) > 3000, 'the trade-off chart is drawn');
  assert.ok((await inkOnChart(page, 'mit-bars')) > 2000, 'the bar chart is drawn');
  // The last method's sequences are shown; picking another row shows its own.
  await page.click('#mit-table tr[data-method="activations"]');
  assert.match(await page.textContent('#mit-results h3'), /activations/);
  const seqs = await page.$$eval('#mit-sequences .tokens', (d) => d.map((x) => [x.dataset.before, x.dataset.after]));
  assert.equal(seqs.length, 8, 'the first eight of the 15 are shown');
  assert.ok(seqs.every(([b]) => b === 'true'), 'the backdoor fired on each before');
  assert.ok((await page.locator('#mit-sequences .tok.mem').count()) > 100, 'memorised tokens marked');
  // Exports.
  const csv = await download(page, page.locator('#mit-panel button', { hasText: 'mitigation.csv' }));
  const lines = csv.text.trim().split('\n');
  assert.equal(lines[0], 'method,kind,setting,memorised_before,memorised_after,clean_after,accuracy_before,accuracy_after,perplexity_after,seconds');
  assert.equal(lines.length, 4);
  assert.match(lines[1], /^activations,neuron,ratio=0.01,1\.000000,/);
  const seq = await download(page, page.locator('#mit-panel button', { hasText: 'sequences.csv' }));
  const seqRows = seq.text.trim().split('\n').slice(1).map((l) => l.split(','));
  assert.equal(seqRows.length, 3 * 15);
  const actRows = seqRows.filter((r) => r[1].startsWith('activations'));
  const after = actRows.filter((r) => r[3] === 'true').length;
  assert.equal(`${(100 * after / 15).toFixed(1)}`, act[2], 'the sequences agree with the table');
  for (const [i, [b, a]] of seqs.entries()) assert.deepEqual([b, a], [actRows[i][2], actRows[i][3]]);
  const json = JSON.parse((await download(page, page.locator('#mit-panel button', { hasText: 'mitigation.json' }))).text);
  assert.equal(json.data, 'backdoor');
  assert.equal(json.results.length, 3);
  assert.equal(json.memorised_before, 1);
  const svg = await download(page, page.locator('#mit-panel button', { hasText: 'trade-off SVG' }));
  assert.ok(svg.text.includes('<svg') && svg.text.includes('reference (Sakarvadia et al.)'));
  await page.locator('#mit-panel').screenshot({ path: 'target/e2e/mitigation-cpu.png' });
  assert.deepEqual(errors, []);
});

test('one worker gives the same rows as two', async () => {
  const { page, errors } = browser;
  assert.ok(pooled, 'the two-worker run came first');
  await page.selectOption('#workers-select', '1');
  const t0 = Date.now();
  await page.click('#mit-run');
  await page.waitForFunction(() => document.getElementById('mit-status')?.dataset.state !== 'ready');
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  const rows = await table(page);
  // Every cell but the seconds (column 5).
  const cells = (rs) => rs.map((r) => r.filter((_, i) => i !== 5));
  assert.deepEqual(cells(rows), cells(pooled.rows));
  console.log(`# mitigation, backdoor-2l, three methods: 1 worker ${secs.toFixed(1)} s, 2 workers ${pooled.secs.toFixed(1)} s (${(secs / pooled.secs).toFixed(2)}x)`);
  await page.selectOption('#workers-select', '2');
  assert.deepEqual(errors, []);
});

test('Cancel keeps the methods done so far', async () => {
  const { page, errors } = browser;
  // Activations (quick) and a long Slimming, on two workers: cancelled once Activations'
  // row is in.
  await tick(page, ['activations', 'slimming']);
  await page.fill('#mit-epochs-slimming', '2000');
  await page.click('#mit-run');
  await page.waitForFunction(() => document.querySelectorAll('#mit-table tbody tr').length >= 2 && document.getElementById('mit-status')?.dataset.state === 'running', null, { timeout: 120_000 });
  await page.click('#cancel-button');
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 60_000 });
  assert.match(await page.textContent('#mit-status'), /methods done so far are kept/);
  const rows = await table(page);
  assert.deepEqual(rows.map((r) => r[0]), ['(untouched)', 'activations']);
  await page.fill('#mit-epochs-slimming', '50');
  assert.deepEqual(errors, []);
});

test('a link to the mitigation view re-runs the same methods, a fine-tune included', async () => {
  const { page, errors } = browser;
  await tick(page, ['finetune-clean', 'activations']);
  await page.fill('#mit-epochs-finetune-clean', '1');
  await page.click('#mit-run');
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 120_000 });
  const rows = (await table(page)).map((r) => r.slice(0, 5));
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  const other = await browser.context.newPage();
  await other.goto(url);
  await other.waitForSelector('#view-mitigation:not([hidden])');
  await other.waitForSelector('#mit-status[data-state="ready"]', { timeout: 120_000 });
  assert.deepEqual(rows.map((r) => r[0]), ['(untouched)', 'finetune-clean', 'activations']);
  assert.equal(rows[1][1], 'epochs=1 lr=0.001');
  assert.ok(Number(rows[1][2]) < 100, `fine-tuning on the clean copies lowers the backdoor (${rows[1][2]}%)`);
  assert.deepEqual((await table(other)).map((r) => r.slice(0, 5)), rows, 'the same numbers, training included');
  assert.equal(await other.inputValue('#mit-epochs-finetune-clean'), '1');
  assert.ok(await other.$eval('#mit-tick-activations', (b) => b.checked));
  assert.ok(!(await other.$eval('#mit-tick-subnet', (b) => b.checked)), 'the ticks travel in the link');
  await other.close();
  assert.deepEqual(errors, []);
});

test("the paper's headline setting: BalancedSubnet forgets the noise model, Subnet pays in accuracy", async () => {
  const { page, errors } = browser;
  await nav(page, 'mitigation');
  await page.selectOption('#mit-model', 'tinymem-noise-2l');
  await page.click('#mit-headline');
  const ticked = await page.$$eval('#mit-methods tbody tr', (rows) =>
    rows.filter((r) => r.querySelector('input[type=checkbox]').checked).map((r) => r.dataset.method));
  assert.deepEqual(ticked, ['subnet', 'balanced-subnet']);
  assert.equal(await page.inputValue('#mit-ratio-balanced-subnet'), '0.1');
  assert.equal(await page.inputValue('#mit-alpha-balanced-subnet'), '0.9');
  assert.equal(await page.inputValue('#mit-retain'), '256');
  await page.fill('#mit-alpha-balanced-subnet', '1.5');
  assert.ok(await page.isDisabled('#mit-run'), 'a above 1 is refused');
  await page.fill('#mit-alpha-balanced-subnet', '0.9');
  const t0 = Date.now();
  await page.click('#mit-run');
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 400_000 });
  const secs = (Date.now() - t0) / 1000;
  const rows = await table(page);
  assert.deepEqual(rows.map((r) => r[0]), ['(untouched)', 'subnet', 'balanced-subnet']);
  const [untouched, subnet, balanced] = rows;
  assert.equal(untouched[2], '30.8', 'the shipped model memorises 8 of 26');
  // Noise data: column 3 is the clean share, 4 the accuracy, 6 the seconds.
  // Natively: BalancedSubnet 0% at 94.7% (untouched 94.9%); Subnet 0% at 9.0%.
  assert.equal(balanced[2], '0.0');
  assert.ok(Math.abs(Number(balanced[4]) - Number(untouched[4])) < 1.0, `accuracy ${balanced[4]} vs ${untouched[4]}`);
  assert.equal(subnet[2], '0.0');
  assert.ok(Number(subnet[4]) < Number(untouched[4]) - 10, `Subnet keeps ${subnet[4]}%`);
  console.log(`# headline setting in the browser (CPU), noise-2l, ${secs.toFixed(1)} s in all: ` +
    rows.slice(1).map((r) => `${r[0]}: memorised ${r[2]}%, accuracy ${r[4]}%, ${r[6]} s`).join('; '));
  assert.deepEqual(errors, []);
});

test('the 4-layer noise model loads from the bundle, with the reference 4-layer column beside it', async () => {
  const { page, errors } = browser;
  await nav(page, 'mitigation');
  await page.selectOption('#mit-model', 'tinymem-noise-4l');
  await tick(page, ['activations']);
  await page.fill('#mit-retain', '64');
  await page.click('#mit-run');
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 300_000 });
  assert.match(await page.textContent('#mit-before'), /^built-in tinymem-noise-4l: memorised 46\.2% /);
  const [, act] = await table(page);
  assert.equal(act[0], 'activations');
  assert.equal(act[7], '90.5 / 0.3', "the reference's 4-layer noise column");
  assert.deepEqual(errors, []);
});

// Made by: mnemo link --spec tests/e2e/fixtures/regulariser-link.json --view mitigation --autorun
// (the small noise spec trained for 2 steps; loss truncation and Activations).
const REGULARISER_LINK = 'v1.tVLLbtswEPwVYU8twBiyYzep_qG33gKDoKmNRZgPlQ87buB_71CWW-fSWwAboHaHnNmdeac0sqbunY4ckwmeuqUgrxxTRz-NP_9g1_hgEotm1Vh1Bko0ySlrmy954Gb59OA4D6FvdHCjiiYF3-CnmtWDDpEbp_RgPH8lQYm5p64V1KusKmcKJWqup4PxaFEGo2MHbFbpgILxOrJjn1HC95MgVd7kIVH3shKPYi02W0FOGS8T_yrsNaO13rRX3F1t2aI2DdLflze3qhxj2EHcAuP3ZbRGq3xbR-bogF219Zjyx_sXQQPbPpQsX6PS10vtAlitvIpn6nyxFqgcDuzNb44f5nShZ1s34OV1u-CBAjnXl6tnCJQDq74OhkeDz_yW0anSs8E4tUndq7IwiaqC4yydIttClTpiQ8bvK89OZT3IBCHz632JMx6GZB6rAtyxrGK9I9HlaaIWqzip6MooZ1y1krXCjFVXymryycENG-X0KjjqKk5s9kOWM3ha8o5hMWxsF98F_s_wUQ-sD2MwPktGHM8TwV1xZn3ZXipJNvu_uq8RrL3bGZJsSOkhx-JnKwXNkjALBPAY9JAmg22cRSUkOJl8nvIymajsOKjaRfTM_iahRmFaJHWPsCvyvtia_WrufxXo-hRsPCHv4XSlaS8XcXfpn4Pp0yRftlV0Riqo-7YGPx0NQ879WoEoaEM-YsVux7eQXf4A';

test('a regulariser trains a new model in the page: progress, then its row with its training time', async () => {
  const { errors } = browser;
  const page = await browser.context.newPage();
  await page.goto(`${server.url}#${REGULARISER_LINK}`);
  await page.waitForSelector('#view-mitigation:not([hidden])');
  await page.waitForSelector('#mit-train-progress', { timeout: 120_000 });
  await page.waitForSelector('#mit-status[data-state="ready"]', { timeout: 400_000 });
  const rows = await table(page);
  assert.deepEqual(rows.map((r) => r[0]), ['(untouched)', 'loss-truncation', 'activations']);
  assert.equal(rows[1][1], 'c=0.4 window=10000');
  assert.match(rows[1][6], /^\d+\.\d \(training run\)$/, 'a regulariser says its time is a training run');
  assert.match(rows[2][6], /^\d+\.\d$/);
  assert.ok(await page.$eval('#mit-tick-loss-truncation', (b) => b.checked), 'the link ticks it');
  await page.close();
  assert.deepEqual(errors, []);
});
