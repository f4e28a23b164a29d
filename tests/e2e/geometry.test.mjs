// The Geometry view on the CPU path: impossible settings are refused in place; Cancel
// stops a training run between steps; the geometry demo (a lollipop with an isolated and
// a duplicated point) trains in the page and FLIPD's region means sit near the true
// dimensions (natively at the demo's t0 = 0.035: disk 1.84, stick 0.87, point -0.05), the
// duplicated point is DD-Mem, the charts are drawn and the exports hold the result; a
// copied link re-runs the same settings and gets the same regions table. Prints the
// demo's seconds in the page for the README.
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

/** The regions table as rows of cells. */
async function regions(page) {
  return page.$$eval('#geo-regions tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
}

test('impossible geometry settings are refused in place', async () => {
  const { page, errors } = browser;
  await nav(page, 'geometry');
  assert.equal(await page.getAttribute('#geo-status', 'data-state'), 'idle');
  assert.equal(await page.inputValue('#geo-manifold'), 'lollipop');
  assert.equal(await page.inputValue('#geo-steps'), '8000', 'the demo\'s settings to start with');
  await page.waitForSelector('#geo-run:enabled');
  await page.fill('#geo-points', '3');
  await page.waitForSelector('#geo-panel .field.invalid #geo-points');
  assert.equal(await page.getAttribute('#geo-points', 'aria-invalid'), 'true');
  assert.match(await page.textContent('#geo-panel .field.invalid small'), /whole number from 8 to 5000/);
  assert.ok(await page.isDisabled('#geo-run'));
  assert.ok(await page.isEnabled('#geo-demo'), 'the demo has its own settings');
  await page.fill('#geo-points', '10');
  await page.fill('#geo-duplicated', '12');
  assert.match(await page.textContent('#geo-panel .field.invalid small'), /at most the 10 points/);
  await page.fill('#geo-duplicated', '17');
  assert.match(await page.textContent('#geo-panel .field.invalid small'), /whole number from 0 to 16/);
  await page.fill('#geo-points', '300');
  assert.ok(await page.isDisabled('#geo-run'));
  await page.fill('#geo-duplicated', '1');
  await page.fill('#geo-steps', 'many');
  assert.ok(await page.isDisabled('#geo-run'));
  await page.fill('#geo-steps', '8000');
  // Every field is in range, but 8 points are too few for lPCA's 20 neighbours.
  await page.fill('#geo-points', '8');
  await page.fill('#geo-duplicated', '0');
  await page.fill('#geo-isolated', '0');
  assert.match(await page.textContent('#geo-invalid'), /k_lpca is 20, but the training set has only 8 points/);
  assert.ok(await page.isDisabled('#geo-run'));
  await page.fill('#geo-points', '300');
  await page.fill('#geo-duplicated', '1');
  await page.fill('#geo-isolated', '1');
  await page.waitForSelector('#geo-run:enabled');
  assert.equal(await page.$('#geo-invalid'), null);
  assert.deepEqual(errors, []);
});

test('Cancel stops geometry training between steps', async () => {
  const { page, errors } = browser;
  await page.click('#geo-run');
  await page.waitForSelector('#geo-status[data-state="training"]');
  await page.waitForFunction(() => /step [1-9]\d* of 8000/.test(document.getElementById('geo-status').textContent), null, { timeout: 60_000 });
  await page.click('#cancel-button');
  await page.waitForSelector('#geo-status[data-state="stopped"]', { timeout: 30_000 });
  assert.equal(await page.$('#geo-results'), null, 'nothing is kept of an unfinished run');
  assert.equal(await page.$('#geo-error'), null);
  await page.waitForSelector('#geo-demo:enabled');
  assert.deepEqual(errors, []);
});

let table;
test('the geometry demo trains in the page and FLIPD finds the lollipop\'s dimensions', async () => {
  const { page, errors } = browser;
  const t0 = Date.now();
  await page.click('#geo-demo');
  await page.waitForSelector('#geo-progress', { timeout: 30_000 });
  await page.waitForSelector('#geo-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  assert.equal(await page.$('#geo-error'), null);
  table = await regions(page);
  const by = Object.fromEntries(table.map((r) => [r[0], r]));
  // region, points, true LID, lPCA, MLE, FLIPD, normal bundle
  for (const [region, truth] of [['disk', '2'], ['stick', '1'], ['point', '0'], ['isolated', '1'], ['duplicated', '0']]) {
    assert.ok(by[region], `a ${region} row`);
    assert.equal(by[region][2], truth, `${region}'s true LID`);
  }
  const flipd = (r) => Number(by[r][5]);
  assert.ok(flipd('disk') > 1.3 && flipd('disk') < 2.6, `disk FLIPD ${flipd('disk')}`);
  assert.ok(flipd('stick') > 0.4 && flipd('stick') < 1.6, `stick FLIPD ${flipd('stick')}`);
  assert.ok(flipd('point') < 0.6, `point FLIPD ${flipd('point')}`);
  assert.ok(flipd('duplicated') < 0.5, `duplicated FLIPD ${flipd('duplicated')}`);
  const summary = await page.textContent('#geo-summary');
  assert.match(summary, /^320 training points \(2-D lollipop\), 256 samples/);
  const dd = Number(summary.match(/DD-Mem (\d+)/)[1]);
  assert.ok(dd >= 19, `the 20 copies of the duplicated point are DD-Mem (${dd})`);
  console.log(`# geometry demo in the browser (CPU): ${secs.toFixed(1)} s; ` +
    table.map((r) => `${r[0]} (n=${r[1]}, true ${r[2]}): lPCA ${r[3]}, MLE ${r[4]}, FLIPD ${r[5]}, NB ${r[6]}`).join('; '));
  assert.ok((await inkOnChart(page, 'geo-scatter')) > 5000, 'the scatter is drawn');
  assert.ok((await inkOnChart(page, 'geo-curve')) > 2000, 'the FLIPD curve is drawn');
  assert.ok((await inkOnChart(page, 'geo-estimators')) > 2000, 'the estimator chart is drawn');
  // The picked curve follows the list of memorised points and the select.
  const flagged = await page.$$eval('#geo-flagged tbody tr', (rs) => rs.map((r) => [r.dataset.point, r.dataset.class]));
  assert.ok(flagged.some(([, c]) => c === 'dd_mem'));
  const [pt] = flagged[flagged.length - 1];
  await page.click(`#geo-flagged tr[data-point="${pt}"]`);
  assert.equal(await page.inputValue('#geo-point'), pt);
  await page.selectOption('#geo-colour', { label: 'true LID' });
  assert.ok((await inkOnChart(page, 'geo-scatter')) > 5000);
  // Exports.
  const csv = await download(page, page.locator('#geo-panel button', { hasText: 'training.csv' }));
  const lines = csv.text.trim().split('\n');
  assert.equal(lines[0], 'point,x0,x1,true_lid,lpca,mle,flipd,normal_bundle,class');
  assert.equal(lines.length, 321);
  assert.equal(lines.filter((l) => l.endsWith(',dd_mem')).length, dd);
  const curve = await download(page, page.locator('#geo-panel button', { hasText: 'flipd_curve.csv' }));
  assert.equal(curve.text.trim().split('\n')[0], 'point,t0,flipd');
  const json = JSON.parse((await download(page, page.locator('#geo-panel button', { hasText: 'geometry.json' }))).text);
  assert.equal(json.train.length, 320);
  assert.equal(json.settings.t0, 0.035);
  const svg = await download(page, page.locator('#geo-panel button', { hasText: 'scatter SVG' }));
  assert.ok(svg.text.includes('<svg') && svg.text.includes('DD-Mem'));
  const png = await download(page, page.locator('#geo-panel button', { hasText: 'curve PNG' }));
  assert.equal(png.name, 'flipd_curve.png');
  await page.locator('#geo-panel').screenshot({ path: 'target/e2e/geometry-cpu.png' });
  assert.deepEqual(errors, []);
});

test('a link to the geometry view re-runs it and gets the same regions table', async () => {
  const { page, errors } = browser;
  assert.ok(table, 'the demo ran');
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  const other = await browser.context.newPage();
  await other.goto(url);
  await other.waitForSelector('#view-geometry:not([hidden])');
  await other.waitForSelector('#geo-status[data-state="training"]', { timeout: 30_000 });
  await other.waitForSelector('#geo-status[data-state="ready"]', { timeout: 300_000 });
  assert.equal(await other.inputValue('#geo-steps'), '8000');
  assert.deepEqual(await regions(other), table);
  await other.close();
  assert.deepEqual(errors, []);
});

test('the overfitting demo: the model memorises the isolated point of a small training set (OD-Mem)', async () => {
  const { page, errors } = browser;
  await nav(page, 'geometry');
  const t0 = Date.now();
  await page.click('#geo-overfit');
  await page.waitForSelector('#geo-status[data-state="training"]', { timeout: 30_000 });
  await page.waitForSelector('#geo-status[data-state="ready"]', { timeout: 300_000 });
  const secs = (Date.now() - t0) / 1000;
  assert.equal(await page.$('#geo-error'), null);
  const by = Object.fromEntries((await regions(page)).map((r) => [r[0], r]));
  assert.equal(by.isolated[1], '1');
  assert.equal(by.isolated[2], '1', 'the arm has LID 1');
  // Natively: FLIPD 0.009 at the isolated point.
  assert.ok(Number(by.isolated[5]) < 0.5, `isolated FLIPD ${by.isolated[5]}`);
  const flagged = await page.$$eval('#geo-flagged tbody tr', (rs) => rs.map((r) => [r.dataset.point, r.dataset.class]));
  assert.ok(flagged.some(([p, c]) => p === '16' && c === 'od_mem'), `the isolated point (16) is OD-Mem: ${JSON.stringify(flagged)}`);
  assert.equal(await page.inputValue('#geo-points'), '16', 'the form shows the demo');
  console.log(`# geometry overfitting demo in the browser (CPU): ${secs.toFixed(1)} s; isolated FLIPD ${by.isolated[5]}, manifold FLIPD ${by.manifold?.[5]}`);
  await page.locator('#geo-panel').screenshot({ path: 'target/e2e/geometry-overfit-cpu.png' });
  assert.deepEqual(errors, []);
});

/** The pixels of a canvas, as a string that changes when anything drawn changes. */
async function pixels(page, id) {
  return page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0;
    return h.toString(16);
  }, id);
}

test('a 3-D data set (the sphere) trains and shows three projections', async () => {
  const { page, errors } = browser;
  await nav(page, 'geometry');
  await page.selectOption('#geo-manifold', 'sphere');
  await page.fill('#geo-points', '200');
  await page.fill('#geo-isolated', '0');
  await page.fill('#geo-duplicated', '0');
  await page.fill('#geo-steps', '600');
  await page.waitForSelector('#geo-run:enabled');
  await page.click('#geo-run');
  await page.waitForSelector('#geo-status[data-state="training"]', { timeout: 30_000 });
  await page.waitForSelector('#geo-status[data-state="ready"]', { timeout: 300_000 });
  assert.equal(await page.$('#geo-error'), null);
  const rows = await regions(page);
  assert.deepEqual(rows.map((r) => r[0]), ['manifold']);
  assert.equal(rows[0][1], '200');
  assert.equal(rows[0][2], '2', "the sphere's true LID");
  // lPCA and MLE read the data alone: on 200 points of a sphere both are near 2.
  assert.ok(Math.abs(Number(rows[0][3]) - 2) < 0.3, `lPCA ${rows[0][3]}`);
  assert.ok(Math.abs(Number(rows[0][4]) - 2) < 0.5, `MLE ${rows[0][4]}`);
  assert.match(await page.textContent('#geo-summary'), /^200 training points \(3-D unit sphere\)/);
  const options = await page.$$eval('#geo-axes option', (os) => os.map((o) => o.textContent));
  assert.deepEqual(options, ['x0 / x1', 'x0 / x2', 'x1 / x2']);
  const seen = new Set();
  for (const i of ['0', '1', '2']) {
    await page.selectOption('#geo-axes', i);
    assert.ok((await inkOnChart(page, 'geo-scatter')) > 5000, `projection ${i} is drawn`);
    seen.add(await pixels(page, 'geo-scatter'));
  }
  assert.equal(seen.size, 3, 'each projection draws a different picture');
  const svg = await download(page, page.locator('#geo-panel button', { hasText: 'scatter SVG' }));
  assert.ok(svg.text.includes('<svg'), 'the scatter exports as SVG');
  const csv = await download(page, page.locator('#geo-panel button', { hasText: 'training.csv' }));
  assert.equal(csv.text.split('\n')[0], 'point,x0,x1,x2,true_lid,lpca,mle,flipd,normal_bundle,class');
  const samples = await download(page, page.locator('#geo-panel button', { hasText: 'samples.csv' }));
  assert.equal(samples.text.split('\n')[0], 'sample,x0,x1,x2,flipd,copy_of');
  await page.locator('#geo-panel').screenshot({ path: 'target/e2e/geometry-sphere-cpu.png' });
  assert.deepEqual(errors, []);
});
