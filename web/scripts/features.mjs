// Feature ids of texts, as the web featurizer computes them: the check of web/src/featurize.js against
// the Python featurizer (tests/web/test_featurizer.py).
//
//   echo '{"config": {...bundle.json featurizer.config...}, "texts": ["..."]}' | node scripts/features.mjs
//   -> {"rows": [[id, ...], ...]}

import { readFileSync } from 'node:fs';
import { WordsFeaturizer } from '../src/featurize.js';

const { config, texts } = JSON.parse(readFileSync(0, 'utf8'));
const featurizer = new WordsFeaturizer(config);
process.stdout.write(JSON.stringify({ rows: texts.map((t) => featurizer.features(t)) }));
