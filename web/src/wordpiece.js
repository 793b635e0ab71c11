// The BERT WordPiece tokenizer of a tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece: the
// teacher encoder's, all-MiniLM-L6-v2), in JavaScript: text -> token ids without special tokens, as
// Hugging Face's Rust `tokenizers` gives them. Other tokenizer kinds are refused with the reason.

export class TokenizerError extends Error {}

// The CJK ideograph blocks BertNormalizer puts spaces around (handle_chinese_chars).
const CJK = [[0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f], [0x2b740, 0x2b81f],
  [0x2b920, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f]]; // 0x2b920, not 0x2b820: as the Rust tokenizer has it
const OTHER = /[\p{Cc}\p{Cf}\p{Co}]/u; // control, format, private use: deleted by clean_text (but \t \n \r)
const SPACE = /\s/u;
const MARK = /\p{Mn}/gu; // strip_accents: NFD, then the non-spacing marks go
const PUNCT = /\p{P}/u;

function isCjk(cp) { return CJK.some(([a, b]) => cp >= a && cp <= b); }
function isWhitespace(ch) { return ch === '\t' || ch === '\n' || ch === '\r' || SPACE.test(ch); }
function isControl(ch) { return ch !== '\t' && ch !== '\n' && ch !== '\r' && OTHER.test(ch); }
function isPunctuation(ch) {
  const cp = ch.codePointAt(0);
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)
    || PUNCT.test(ch);
}

export class WordPieceTokenizer {
  constructor(tokenizerJson) {
    const spec = typeof tokenizerJson === 'string' ? JSON.parse(tokenizerJson) : tokenizerJson;
    const kinds = [spec.normalizer?.type, spec.pre_tokenizer?.type, spec.model?.type];
    if (kinds.join() !== 'BertNormalizer,BertPreTokenizer,WordPiece') {
      throw new TokenizerError(`tokenizer.json is ${kinds.map((k) => k ?? 'none').join(' + ')}; the web runtime `
        + 'implements BertNormalizer + BertPreTokenizer + WordPiece (BERT-style vocabularies) and the words featurizer');
    }
    const n = spec.normalizer;
    this.cleanText = n.clean_text !== false;
    this.chinese = n.handle_chinese_chars !== false;
    this.lowercase = n.lowercase !== false;
    this.stripAccents = n.strip_accents ?? this.lowercase; // null follows lowercase, as in BERT
    const m = spec.model;
    this.vocab = new Map(Object.entries(m.vocab));
    this.unk = this.vocab.get(m.unk_token);
    this.prefix = m.continuing_subword_prefix ?? '##';
    this.maxWordChars = m.max_input_chars_per_word ?? 100;
    // Added tokens (the specials: [PAD], [UNK], [CLS], ...) are matched in the raw text first, longest first.
    this.added = (spec.added_tokens || []).map((t) => ({ content: t.content, id: t.id }))
      .sort((a, b) => b.content.length - a.content.length);
  }

  normalize(text) {
    let out = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0);
      if (this.cleanText && (cp === 0 || cp === 0xfffd || isControl(ch))) continue;
      const c = this.cleanText && isWhitespace(ch) ? ' ' : ch;
      out += this.chinese && isCjk(cp) ? ` ${c} ` : c;
    }
    if (this.stripAccents) out = out.normalize('NFD').replace(MARK, '');
    if (this.lowercase) out = Array.from(out, (ch) => ch.toLowerCase()).join(''); // char by char, as Rust: no final sigma
    return out;
  }

  /** Words and punctuation marks, each alone, split on whitespace. */
  preTokenize(text) {
    const words = [];
    let word = '';
    for (const ch of text) {
      if (isWhitespace(ch)) {
        if (word) words.push(word);
        word = '';
      } else if (isPunctuation(ch)) {
        if (word) words.push(word);
        words.push(ch);
        word = '';
      } else {
        word += ch;
      }
    }
    if (word) words.push(word);
    return words;
  }

  wordPiece(word, out) {
    const chars = Array.from(word);
    if (chars.length > this.maxWordChars) { out.push(this.unk); return; }
    const pieces = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found;
      while (start < end) {
        const piece = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
        found = this.vocab.get(piece);
        if (found !== undefined) break;
        end -= 1;
      }
      if (found === undefined) { out.push(this.unk); return; }
      pieces.push(found);
      start = end;
    }
    out.push(...pieces);
  }

  /** Token ids of a text, no special tokens added, at most `maxTokens`. */
  encode(text, maxTokens = Infinity) {
    const ids = [];
    for (const segment of this.splitAdded(text)) {
      if (typeof segment === 'number') { ids.push(segment); continue; }
      for (const word of this.preTokenize(this.normalize(segment))) this.wordPiece(word, ids);
    }
    return ids.slice(0, maxTokens);
  }

  /** The text cut around added tokens: strings to tokenize, and the added tokens' ids. */
  splitAdded(text) {
    const parts = [];
    let rest = text;
    while (rest) {
      let best = null;
      for (const t of this.added) {
        const at = rest.indexOf(t.content);
        if (at >= 0 && (best === null || at < best.at)) best = { at, t };
      }
      if (best === null) { parts.push(rest); break; }
      if (best.at > 0) parts.push(rest.slice(0, best.at));
      parts.push(best.t.id);
      rest = rest.slice(best.at + best.t.content.length);
    }
    return parts;
  }
}
