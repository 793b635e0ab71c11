// The words featurizer of a distill bundle, in JavaScript: text -> the int64 feature ids the student's
// ONNX graph takes. It implements the contract in docs/contracts.md ("config.tokenizer: words") and gives
// the same ids as pipeline/students/featurize.py, which tests/web/test_featurizer.py checks text by text.
// No DOM here: the page, Node.js (the benchmark) and any bundler use the same module.

import { blake2b } from '@noble/hashes/blake2.js';

const MASK = (1n << 64n) - 1n;
const MIX = 0x9e3779b97f4a7c15n;
const STEP = 1000003n;
const MEMO_WORDS = 200000; // memoised words before the table is cleared, as in the Python featurizer

// Python's `\w` is Unicode letters, numbers and `_`; its `\s` also holds U+001C-U+001F and U+0085, which
// JavaScript's `\s` leaves out (and JavaScript's U+FEFF is deleted before the split anyway).
const WORD_RE = /[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s\x1c-\x1f\x85]/gu;
const INVISIBLE_RE = /[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/gu;

const encoder = new TextEncoder();

/** BLAKE2b with an 8-byte digest of the UTF-8 of `text`, read little-endian: the contract's H(s). */
export function stableHash(text) {
  const digest = blake2b(encoder.encode(text), { dkLen: 8 });
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0, true);
}

export class FeaturizerError extends Error {}

/** The words featurizer of a bundle's `featurizer.config`. */
export class WordsFeaturizer {
  constructor(config) {
    if (config.tokenizer !== 'words') {
      throw new FeaturizerError(
        `this bundle's featurizer is WordPiece (tokenizer ${JSON.stringify(config.tokenizer ?? 'tokenizer.json')}); ` +
          'the web runtime implements the words featurizer (distill.featurizer.tokenizer: words, the default)');
    }
    this.lowercase = Boolean(config.lowercase);
    this.maxTokens = Number(config.max_tokens);
    this.maxChars = config.max_chars == null ? null : Number(config.max_chars);
    this.ngrams = (config.ngrams || [1]).map(Number);
    this.buckets = BigInt(config.buckets);
    this.charNgrams = (config.char_ngrams || []).map(Number);
    this.memo = new Map();
  }

  /** The word's hash and its own ids: the word, then its distinct char n-grams of `<word>`. Memoised. */
  word(word) {
    let entry = this.memo.get(word);
    if (entry !== undefined) return entry;
    const b = this.buckets;
    const h = stableHash('w\x1f' + word);
    const own = [Number(1n + (h % b))];
    const marked = Array.from('<' + word + '>'); // code points, as Python slices
    const seen = new Set();
    for (const n of this.charNgrams) {
      for (let i = 0; i + n <= marked.length; i++) {
        const gram = marked.slice(i, i + n).join('');
        if (seen.has(gram)) continue;
        seen.add(gram);
        own.push(Number(1n + (stableHash('c\x1f' + gram) % b)));
      }
    }
    entry = { hash: h, own };
    if (this.memo.size >= MEMO_WORDS) this.memo.clear();
    this.memo.set(word, entry);
    return entry;
  }

  /** The words of a text, as the contract splits them (cut, lowercase, invisible characters deleted). */
  words(text) {
    let t = String(text);
    if (this.maxChars !== null && t.length > this.maxChars) t = Array.from(t).slice(0, this.maxChars).join('');
    if (this.lowercase) t = t.toLowerCase();
    const found = t.replace(INVISIBLE_RE, '').match(WORD_RE) || [];
    return found.slice(0, this.maxTokens);
  }

  /** One text's feature ids, in the order the Python featurizer writes them (each word's own ids, then
   * the word n-grams order by order). */
  features(text) {
    const entries = this.words(text).map((w) => this.word(w));
    const ids = [];
    for (const e of entries) for (const id of e.own) ids.push(id);
    for (const n of this.ngrams.slice(1)) {
      for (let i = 0; i + n <= entries.length; i++) {
        let h = entries[i].hash;
        for (let k = 1; k < n; k++) h = (h * STEP + entries[i + k].hash) & MASK;
        ids.push(Number(1n + ((((h * MIX) & MASK) >> 17n) % this.buckets)));
      }
    }
    return ids;
  }

  /** The padded id matrix of a batch: `{data: BigInt64Array, dims: [texts, width]}` (0 = padding). */
  matrix(texts) {
    const rows = texts.map((t) => this.features(t));
    const width = rows.reduce((most, r) => Math.max(most, r.length), 1);
    const data = new BigInt64Array(rows.length * width);
    rows.forEach((row, i) => row.forEach((id, j) => { data[i * width + j] = BigInt(id); }));
    return { data, dims: [rows.length, width] };
  }
}
