// Screenshots for docs/ and the README: each view as a new user sees it after pressing
// its demo button (headless Chromium, CPU path). Not a test; run after `trunk build`:
//   node tests/e2e/screenshots.mjs [out-dir]
import { mkdir } from 'node:fs/promises';
import { serveDist, launch, nav } from './harness.mjs';

const out = process.argv[2] ?? 'docs/screenshots';
await mkdir(out, { recursive: true });
const server = await serveDist();
const browser = await launch({ gpu: false });
// view, demo button, what "done" looks like
const shots = [
  ['profile', '#profile-button', '#profile-status[data-state="ready"]'],
  ['counterfactual', '#cf-button', '#cf-status[data-state="ready"]'],
  // Extraction measures the last trained model: the demo's, trained just before.
  ['train', '#demo-button', '#status[data-state="done"]'],
  ['extraction', null, '#ex-status[data-state="ready"]'],
  ['softprompt', '#sp-demo', '#sp-status[data-state="ready"]'],
  ['influence', '#inf-demo', '#inf-status[data-state="ready"]'],
  // The default ticks on the built-in 2-layer noise model.
  ['mitigation', '#mit-run', '#mit-status[data-state="ready"]'],
  ['runs', null, '#runs-list .run'],
];
const page = browser.page;
await page.goto(server.url);
await page.waitForSelector('#backend-badge[data-backend="cpu"]');
for (const [view, button, done] of shots) {
  await nav(page, view);
  if (view === 'extraction') {
    await page.waitForSelector('#ex-button:enabled', { timeout: 60_000 });
    await page.click('#ex-button');
  } else if (button) {
    await page.waitForSelector(`${button}:enabled`, { timeout: 60_000 });
    await page.click(button);
  }
  await page.waitForSelector(done, { timeout: 600_000 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/${view}.png`, fullPage: true });
  console.log(`${out}/${view}.png`);
}
await browser.context.close();
await server.close();
