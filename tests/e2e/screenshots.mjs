// Screenshots for docs/ and the README: each view as a new user sees it after pressing
// its demo button (headless Chromium, CPU path). Not a test; run after `trunk build`:
//   node tests/e2e/screenshots.mjs [out-dir] [shot ...]   (the named shots only)
import { mkdir } from 'node:fs/promises';
import { serveDist, launch, nav } from './harness.mjs';

const out = process.argv[2] ?? 'docs/screenshots';
const only = process.argv.slice(3);
await mkdir(out, { recursive: true });
const server = await serveDist();
const browser = await launch({ gpu: false });
// shot (the file name), view, buttons to press in order, what "done" looks like
const shots = [
  ['profile', 'profile', ['#profile-button'], '#profile-status[data-state="ready"]'],
  ['counterfactual', 'counterfactual', ['#cf-button'], '#cf-status[data-state="ready"]'],
  // Extraction measures the last trained model: the demo's, trained just before.
  ['train', 'train', ['#demo-button'], '#status[data-state="done"]'],
  ['extraction', 'extraction', ['#ex-button'], '#ex-status[data-state="ready"]'],
  ['softprompt', 'softprompt', ['#sp-demo'], '#sp-status[data-state="ready"]'],
  ['softprompt-context', 'softprompt', ['#sp-context-demo'], '#sp-status[data-state="ready"]'],
  ['influence', 'influence', ['#inf-demo'], '#inf-status[data-state="ready"]'],
  // The paper's headline setting on the built-in 2-layer noise model.
  ['mitigation', 'mitigation', ['#mit-headline', '#mit-run'], '#mit-status[data-state="ready"]'],
  ['geometry', 'geometry', ['#geo-demo'], '#geo-status[data-state="ready"]'],
  ['geometry-overfit', 'geometry', ['#geo-overfit'], '#geo-status[data-state="ready"]'],
  ['exposure', 'exposure', ['#exp-demo'], '#exp-status[data-state="ready"]'],
  ['runs', 'runs', [], '#runs-list .run'],
].filter(([shot]) => only.length === 0 || only.includes(shot));
const page = browser.page;
await page.goto(server.url);
await page.waitForSelector('#backend-badge[data-backend="cpu"]');
for (const [shot, view, buttons, done] of shots) {
  await nav(page, view);
  for (const button of buttons) {
    await page.waitForSelector(`${button}:enabled`, { timeout: 60_000 });
    await page.click(button);
  }
  // A view already showing an earlier result: wait for the new run to start first.
  if (buttons.length > 0) await page.waitForFunction((sel) => !document.querySelector(sel), done, { timeout: 60_000 });
  await page.waitForSelector(done, { timeout: 600_000 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/${shot}.png`, fullPage: true });
  console.log(`${out}/${shot}.png`);
}
// A lesson as a student follows it: the canaries lesson's first step run, one question
// answered; then the Lessons view with the teacher's link builder filled in.
if (only.length === 0 || only.includes('lesson')) {
  await page.goto(`${server.url}?view=lessons`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.click('#lesson-start-canaries');
  await page.waitForSelector('#guide-run:enabled');
  await page.click('#guide-run');
  await page.waitForSelector('#exp-status[data-state="ready"]', { timeout: 600_000 });
  await page.fill('#guide-q-x32', '13.29');
  await page.click('#guide-check-x32');
  await page.fill('#guide-q-max', '13');
  await page.click('#guide-check-max');
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/lesson.png`, fullPage: true });
  console.log(`${out}/lesson.png`);
}
if (only.length === 0 || only.includes('lessons')) {
  await page.goto(`${server.url}?view=lessons`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.click('#guide-close').catch(() => {});
  await page.selectOption('#teach-what', 'lesson:geometry');
  await page.check('#teach-hide-share');
  await page.check('#teach-lock-all');
  await page.fill('#teach-note', 'Week 5: the geometry of memorisation. Hand in your answers by Friday.');
  await page.click('#teach-make');
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/lessons.png`, fullPage: true });
  console.log(`${out}/lessons.png`);
}
await browser.context.close();
await server.close();
