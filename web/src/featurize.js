// The featurizer of a distill bundle, in JavaScript: text -> the int64 feature ids the student's ONNX
// graph takes. It implements the contract in docs/contracts.md (the words featurizer, and WordPiece with
// hashed token and character n-grams) and gives the same ids as pipeline/students/featurize.py, which
// tests/web/test_featurizer.py checks text by text. No DOM here: the page, Node.js (the benchmark) and
// any bundler use the same module.

import { blake2b } from '@noble/hashes/blake2.js';
import { WordPieceTokenizer } from './wordpiece.js';

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

/** Cut to `maxChars` code points (as Python slices), then lowercase. */
function prepare(text, maxChars, lowercase) {
  let t = String(text);
  if (maxChars !== null && t.length > maxChars) t = Array.from(t).slice(0, maxChars).join('');
  return lowercase ? t.toLowerCase() : t;
}

/** Pad rows of ids into the `{data: BigInt64Array, dims: [texts, width]}` matrix the graph takes. */
function padded(rows) {
  const width = rows.reduce((most, r) => Math.max(most, r.length), 1);
  const data = new BigInt64Array(rows.length * width);
  rows.forEach((row, i) => row.forEach((id, j) => { data[i * width + j] = BigInt(id); }));
  return { data, dims: [rows.length, width] };
}

/** The settings both featurizers read from `featurizer.config`. */
function settings(config) {
  return {
    lowercase: Boolean(config.lowercase),
    maxTokens: Number(config.max_tokens),
    maxChars: config.max_chars == null ? null : Number(config.max_chars),
    ngrams: (config.ngrams || [1]).map(Number),
    buckets: BigInt(config.buckets),
    charNgrams: (config.char_ngrams || []).map(Number),
  };
}

/** The featurizer of a bundle: `config` is bundle.json's `featurizer.config`, `tokenizerJson` the text of
 * its tokenizer file (WordPiece bundles; none for the words featurizer). */
export function makeFeaturizer(config, tokenizerJson = null) {
  if (config.tokenizer === 'words') return new WordsFeaturizer(config);
  if (!tokenizerJson) throw new FeaturizerError('this bundle featurizes with WordPiece and names no tokenizer file');
  return new WordPieceFeaturizer(config, tokenizerJson);
}

/** The words featurizer (`tokenizer: words`). */
export class WordsFeaturizer {
  constructor(config) {
    if (config.tokenizer !== 'words') throw new FeaturizerError('not a words featurizer config');
    Object.assign(this, settings(config));
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
    const t = prepare(text, this.maxChars, this.lowercase);
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
  matrix(texts) { return padded(texts.map((t) => this.features(t))); }
}

/** WordPiece ids of the bundle's tokenizer, then hashed token n-grams and hashed char n-grams of the
 * pieces, each `vocabSize + hash % buckets`. */
export class WordPieceFeaturizer {
  constructor(config, tokenizerJson) {
    const spec = typeof tokenizerJson === 'string' ? JSON.parse(tokenizerJson) : tokenizerJson; // parsed once
    this.tokenizer = new WordPieceTokenizer(spec);
    this.pieces = [];
    for (const [piece, id] of Object.entries(spec.model.vocab)) this.pieces[id] = piece;
    for (const t of spec.added_tokens || []) this.pieces[t.id] = t.content;
    this.vocabSize = this.pieces.length;
    Object.assign(this, settings(config));
    this.charIds = new Map();
  }

  /** Sorted feature ids of the distinct char n-grams of a piece (`<piece`, or a `##` piece without its mark). */
  pieceChars(id) {
    let ids = this.charIds.get(id);
    if (ids !== undefined) return ids;
    const piece = this.pieces[id] ?? '';
    ids = [];
    if (id !== 0 && !(piece.startsWith('[') && piece.endsWith(']'))) {
      const chars = Array.from(piece.startsWith('##') ? piece.slice(2) : '<' + piece);
      const grams = new Set();
      for (const n of this.charNgrams) for (let i = 0; i + n <= chars.length; i++) grams.add(chars.slice(i, i + n).join(''));
      const base = BigInt(this.vocabSize);
      ids = [...grams].map((g) => Number(base + (stableHash(g) % this.buckets))).sort((a, b) => a - b);
    }
    this.charIds.set(id, ids);
    return ids;
  }

  features(text) {
    const ids = this.tokenizer.encode(prepare(text, this.maxChars, this.lowercase), this.maxTokens);
    const out = ids.filter((id) => id !== 0);
    const base = BigInt(this.vocabSize);
    for (const n of this.ngrams.slice(1)) {
      for (let i = 0; i + n <= ids.length; i++) {
        let h = 0n;
        let valid = true;
        for (let k = 0; k < n; k++) {
          valid &&= ids[i + k] !== 0;
          h = (h * STEP + BigInt(ids[i + k]) + 1n) & MASK;
        }
        if (valid) out.push(Number(base + ((((h * MIX) & MASK) >> 17n) % this.buckets)));
      }
    }
    if (this.charNgrams.length) for (const id of ids) out.push(...this.pieceChars(id));
    return out;
  }

  matrix(texts) { return padded(texts.map((t) => this.features(t))); }
}
