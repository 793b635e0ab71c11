// The student under Node.js (onnxruntime-node, the web featurizer): load time and texts/s at batch 1 and
// 32, on one intra-op thread as the page runs. benchmarks/web_runtime.py prints it beside the page's and
// Python's numbers.
//
//   node scripts/node-bench.mjs --bundle models/bundle --texts texts.json [--speed-texts 2000]
//   -> {"load_ms", "texts_per_s": {"batch_1", "batch_32"}, "labels": [...], "answers": [[probs...]...]}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Student } from '../src/student.js';

const { values: args } = parseArgs({
  options: { bundle: { type: 'string' }, texts: { type: 'string' }, 'speed-texts': { type: 'string', default: '2000' } },
});
const texts = JSON.parse(readFileSync(args.texts, 'utf8'));
const started = performance.now();
const manifest = JSON.parse(readFileSync(join(args.bundle, 'bundle.json'), 'utf8'));
const model = readFileSync(join(args.bundle, manifest.files.int8));
const tokenizerJson = manifest.featurizer.tokenizer ? readFileSync(join(args.bundle, manifest.featurizer.tokenizer), 'utf8') : null;
const student = await Student.load(ort, manifest, new Uint8Array(model),
  { tokenizerJson, sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
await student.classify(['warm up']);
const loadMs = performance.now() - started;

const answers = [];
for (let i = 0; i < texts.length; i += 32) answers.push(...await student.classify(texts.slice(i, i + 32)));
const pool = Array.from({ length: Number(args['speed-texts']) }, (_, i) => texts[i % texts.length]);
const rate = {};
for (const batch of [1, 32]) {
  await student.classify(pool.slice(0, batch));
  const t0 = performance.now();
  for (let i = 0; i < pool.length; i += batch) await student.classify(pool.slice(i, i + batch));
  rate[`batch_${batch}`] = pool.length / ((performance.now() - t0) / 1000);
}
process.stdout.write(JSON.stringify({
  load_ms: loadMs, texts_per_s: rate, labels: student.labels,
  answers: answers.map((a) => student.labels.map((l) => a.probs[l])),
}) + '\n');
