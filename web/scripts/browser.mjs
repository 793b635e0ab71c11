// Drive the distill web page in headless Chromium (Debian's /usr/bin/chromium, through playwright-core):
// load it, classify texts in the page, time it; with --offline, wait until the caller has stopped the
// server, reload the page and classify the same texts again from the offline copy.
//
//   node scripts/browser.mjs --url http://127.0.0.1:8000/demo/ --texts texts.json [--speed-texts 2000] [--offline]
//
// Prints one JSON line per phase: {"phase": "online", "info", "labels", "answers": [[probs...], ...],
// "abstained", "texts_per_s": {"batch_1", "batch_32"}, "ready_ms"}; with --offline it then prints
// {"phase": "waiting"}, reads one line from stdin (the caller's "server stopped"), and prints
// {"phase": "offline", ...} the same way.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    texts: { type: 'string' },
    'speed-texts': { type: 'string', default: '0' },
    offline: { type: 'boolean', default: false },
    chromium: { type: 'string', default: process.env.DISTILL_CHROMIUM || '/usr/bin/chromium' },
  },
});
const texts = JSON.parse(readFileSync(args.texts, 'utf8'));
const speedTexts = Number(args['speed-texts']);

// Without the background-networking flags Chromium keeps dialling Google's hosts on a closed network.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

function emit(record) { process.stdout.write(JSON.stringify(record) + '\n'); }

async function phase(page, name) {
  const started = Date.now();
  const info = await page.evaluate(() => window.distill.ready);
  const readyMs = Date.now() - started;
  const run = await page.evaluate(async ({ texts, speedTexts }) => {
    const answers = [];
    for (let i = 0; i < texts.length; i += 32) answers.push(...await window.distill.classify(texts.slice(i, i + 32)));
    const rate = {};
    if (speedTexts > 0) {
      const pool = Array.from({ length: speedTexts }, (_, i) => texts[i % texts.length]);
      for (const batch of [1, 32]) {
        await window.distill.classify(pool.slice(0, batch)); // warm
        const t0 = performance.now();
        for (let i = 0; i < pool.length; i += batch) await window.distill.classify(pool.slice(i, i + batch));
        rate[`batch_${batch}`] = pool.length / ((performance.now() - t0) / 1000);
      }
    }
    return { answers, rate };
  }, { texts, speedTexts });
  const labels = Object.keys(run.answers[0]?.probs ?? {});
  emit({
    phase: name, info, ready_ms: readyMs, labels,
    answers: run.answers.map((a) => labels.map((l) => a.probs[l])),
    student_labels: run.answers.map((a) => a.studentLabel),
    abstained: run.answers.map((a) => a.abstained),
    texts_per_s: run.rate,
  });
}

const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: FLAGS });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  await page.goto(args.url, { waitUntil: 'load' });
  try {
    await phase(page, 'online');
  } catch (err) {
    throw new Error(`${err.message}\npage errors: ${errors.join('\n')}\nstatus: ${await page.textContent('#status')}`);
  }
  if (args.offline) {
    const kept = await page.evaluate(() => window.distill.offline);
    if (!kept) throw new Error('the page kept no offline copy (no service worker or Cache API)');
    emit({ phase: 'waiting' });
    const lines = createInterface({ input: process.stdin });
    for await (const _ of lines) break; // the caller stopped the server
    lines.close();
    await page.reload({ waitUntil: 'load' });
    await phase(page, 'offline');
  }
} finally {
  await browser.close();
}
process.exit(0); // stdin may still be open

