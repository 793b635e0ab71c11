// Every Unicode code point between two letters ("a" + c + "b"), normalized and pre-tokenized by the web
// WordPiece tokenizer: what tests/web/test_featurizer.py compares with the Rust tokenizer.
//
//   echo '{"tokenizer": "<tokenizer.json text>"}' | node scripts/characters.mjs  ->  {"words": [["a", ...], ...]}

import { readFileSync } from 'node:fs';
import { WordPieceTokenizer } from '../src/wordpiece.js';

const { tokenizer } = JSON.parse(readFileSync(0, 'utf8'));
const tok = new WordPieceTokenizer(tokenizer);
const words = [];
for (let c = 0; c <= 0x10ffff; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  words.push(tok.preTokenize(tok.normalize('a' + String.fromCodePoint(c) + 'b')));
}
process.stdout.write(JSON.stringify({ words }));
