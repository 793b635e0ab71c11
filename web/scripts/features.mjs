// Feature ids of texts, as the web featurizer computes them: the check of web/src/featurize.js against
// the Python featurizer (tests/web/test_featurizer.py).
//
//   echo '{"config": {...bundle.json featurizer.config...}, "tokenizer": "<tokenizer.json text, WordPiece only>",
//          "texts": ["..."]}' | node scripts/features.mjs
//   -> {"rows": [[id, ...], ...]}

import { readFileSync } from 'node:fs';
import { makeFeaturizer } from '../src/featurize.js';

const { config, tokenizer, texts } = JSON.parse(readFileSync(0, 'utf8'));
const featurizer = makeFeaturizer(config, tokenizer ?? null);
process.stdout.write(JSON.stringify({ rows: texts.map((t) => featurizer.features(t)) }));
