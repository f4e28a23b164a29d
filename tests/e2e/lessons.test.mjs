// Every guided lesson under web/lessons/, start to finish on the CPU path: the guide
// opens each step's view, runs its seeded experiment, and every question answered with
// the file's expected answer is checked right by the page against what the page
// computed (a lesson whose numbers drift after a change fails here). The answers are
// kept (a reload shows them) and export as CSV. Then the teacher's link builder: a link
// made for a lesson with hidden panels and locked settings opens that lesson for a
// student with those panels hidden and those settings locked. Prints each question's
// page values (to update a lesson file after an intended change).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { serveDist, launch, download, nav, v1 } from './harness.mjs';

const dir = new URL('../../web/lessons/', import.meta.url);
const lessons = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')));
// A subset by id: MNEMO_LESSONS=canaries,geometry
const only = process.env.MNEMO_LESSONS?.split(',');
// MNEMO_LESSONS_RECORD=FILE answers with what the page shows and writes those answers
// to FILE (tests/e2e/record-lessons.py puts them into the lesson files).
const record = process.env.MNEMO_LESSONS_RECORD;
const recorded = {};

let server, browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ gpu: false });
});
after(async () => {
  await browser?.context.close();
  await server?.close();
});

/** The first number of each selector's text, as the page's checker reads it. */
async function shown(page, selectors) {
  return page.evaluate((sels) => sels.map((s) => {
    const t = document.querySelector(s)?.textContent ?? null;
    if (t === null) return null;
    const m = t.replace(/(\d),(\d)/g, '$1$2').replace('\u2212', '-').match(/-?\d+(\.\d+)?(e[-+]?\d+)?/i);
    return m ? Number(m[0]) : null;
  }), selectors);
}

function reads(q) {
  return q.kind === 'number' ? [q.read] : q.options.map((o) => o.read).filter(Boolean);
}

async function openLesson(page, id) {
  await page.goto(`${server.url}?view=lessons`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.click(`#lesson-start-${id}`);
  await page.waitForSelector(`#guide[data-lesson="${id}"]`);
}

for (const lesson of lessons) {
  test(`lesson “${lesson.id}” runs start to finish and its expected answers are right`, { skip: only && !only.includes(lesson.id) }, async () => {
    const { page, errors } = browser;
    const t0 = Date.now();
    await openLesson(page, lesson.id);
    // A lesson kept from an earlier run of this test would start at its kept step.
    while (await page.isEnabled('#guide-back')) await page.click('#guide-back');
    for (const [i, step] of lesson.steps.entries()) {
      await page.waitForSelector(`#guide[data-step="${i}"]`);
      assert.equal(await page.textContent('#guide-title'), step.title);
      if (step.view) await page.waitForSelector(`#view-${step.view}:not([hidden])`);
      if (step.run) {
        await page.waitForSelector('#guide-run:enabled');
        const started = Date.now();
        await page.click('#guide-run');
        await page.waitForSelector(`#job-bar[data-busy="${step.view}"]`, { timeout: 30_000 }).catch(() => {});
        await page.waitForSelector('#job-bar[data-busy=""]', { timeout: 500_000 });
        console.log(`${lesson.id} step ${i + 1}: the experiment took ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      if (step.point) {
        assert.ok(await page.$(step.point.selector), `${lesson.id}: ${step.point.selector} is on the page`);
        await page.click('#guide-point');
      }
      for (const q of step.questions ?? []) {
        const values = await shown(page, reads(q));
        console.log(`${lesson.id}/${q.id}: page ${JSON.stringify(values)}, file ${q.expected}`);
        let answer = q.expected;
        if (record) {
          // Answer with what the page shows, and keep it for the lesson file.
          if (q.kind === 'number') answer = values[0];
          else if (q.answer !== 'fixed') {
            const best = q.answer === 'largest' ? Math.max(...values) : Math.min(...values);
            answer = values.indexOf(best);
          }
          recorded[`${lesson.id}/${q.id}`] = answer;
          writeFileSync(record, JSON.stringify(recorded, null, 1));
        }
        if (q.kind === 'number') {
          await page.fill(`#guide-q-${q.id}`, String(answer));
        } else {
          await page.check(`#guide-q-${q.id}-${answer}`);
        }
        await page.click(`#guide-check-${q.id}`);
        const verdict = `#guide-verdict-${q.id}`;
        await page.waitForSelector(`${verdict}[data-verdict]:not([data-verdict=""])`);
        assert.equal(await page.getAttribute(verdict, 'data-verdict'), 'correct',
          `${lesson.id}/${q.id}: ${await page.textContent(verdict)} (page ${JSON.stringify(values)})`);
      }
      if (i + 1 < lesson.steps.length) await page.click('#guide-next');
    }
    const total = lesson.steps.flatMap((s) => s.questions ?? []).length;
    assert.match(await page.textContent('#guide-score'), new RegExp(`${total} of ${total} answered right`));
    await page.fill('#guide-student', 'Ada Lovelace');
    const csv = await download(page, page.locator('#guide-export-csv'));
    assert.equal(csv.name, `mnemo-lesson-${lesson.id}-answers.csv`);
    const lines = csv.text.trim().split('\n');
    assert.equal(lines[0], 'question,answer,correct,page_value,tries,run');
    assert.equal(lines.length, total + 1);
    assert.ok(lines.slice(1).every((l) => l.split(',')[2] === 'true'), csv.text);
    const json = JSON.parse((await download(page, page.locator('#guide-export-json'))).text);
    assert.equal(json.student, 'Ada Lovelace');
    assert.equal(json.correct, total);
    console.log(`${lesson.id}: ${total} questions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(errors, []);
  });
}

test('answers are kept: the Lessons view shows the progress after a reload', { skip: !!only }, async () => {
  const { page } = browser;
  await page.goto(`${server.url}?view=lessons`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  const total = lessons[0].steps.flatMap((s) => s.questions ?? []).length;
  await page.waitForFunction(([id, n]) => document.querySelector(`#lesson-${id} .lesson-state`)?.textContent === `${n} of ${n} answered right`,
    [lessons[0].id, total], { timeout: 10_000 });
  assert.equal(await page.textContent(`#lesson-start-${lessons[0].id}`), 'Continue');
});

test('the link builder makes links that open a lesson or a view with what the teacher ticked hidden and locked', async () => {
  const { page, errors } = browser;
  await page.goto(`${server.url}?view=lessons`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.click('#teach-make');
  assert.match(await page.textContent('#teach-error'), /pick a lesson or a view/);
  await page.selectOption('#teach-what', 'lesson:canaries');
  await page.check('#teach-hide-share');
  await page.check('#teach-hide-runs');
  await page.fill('#teach-note', 'Homework for Monday.');
  await page.click('#teach-make');
  const url = await page.inputValue('#teach-link');
  assert.ok(url.startsWith(server.url) && url.includes('#v1.'), url);
  assert.match(await page.inputValue('#teach-embed'), /^<iframe src="http/);
  await page.click('#teach-preview');
  const frame = page.frameLocator('#teach-preview-frame');
  await frame.locator('#guide[data-lesson="canaries"]').waitFor({ timeout: 60_000 });

  // As a student opens it: the lesson's guide, the note, the ticked panels hidden.
  await page.goto('about:blank');
  await page.goto(url);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.waitForSelector('#guide[data-lesson="canaries"]');
  assert.equal(await page.textContent('#lesson'), 'Homework for Monday.');
  assert.equal(await page.$('#share-panel'), null, 'the Share panel is hidden');
  assert.equal(await page.$('#nav-runs'), null, 'the runs tab is hidden');
  await page.waitForSelector('#view-exposure:not([hidden])');

  // A view with the current settings, one setting locked.
  await page.goto(`${server.url}?view=lessons`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.selectOption('#teach-what', 'view:train');
  await page.check('#teach-lock-model-d_model');
  await page.uncheck('#teach-run');
  await page.click('#teach-make');
  const viewUrl = await page.inputValue('#teach-link');
  await page.goto('about:blank');
  await page.goto(viewUrl);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  await page.waitForSelector('#view-train:not([hidden])');
  assert.ok(await page.isDisabled('#f-model-d_model'), 'd_model is locked');
  assert.ok(await page.isEnabled('#f-model-n_layers'), 'the layers are not');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'idle', 'not run on open');
  assert.equal(await page.$('#guide'), null, 'no lesson');

  // A link to a lesson this Mnemo does not have says so, and the page works.
  const payload = JSON.parse(inflateRawSync(Buffer.from(url.split('#v1.')[1], 'base64url')).toString());
  payload.guide = 'no-such-lesson';
  await page.goto('about:blank');
  await page.goto(`${server.url}#${v1(payload)}`);
  await page.waitForSelector('#backend-badge[data-backend="cpu"]');
  assert.match(await page.textContent('#guide-open-error'), /no-such-lesson/);
  assert.equal(await page.$('#guide'), null);
  assert.deepEqual(errors, []);
});
