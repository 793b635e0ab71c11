// A distill bundle as a classifier, on any onnxruntime JavaScript runtime: onnxruntime-web in the page,
// onnxruntime-node in the benchmark. The caller passes the runtime's namespace, so this module imports none.
//
//   const student = await Student.load(ort, manifest, modelBytes);
//   const [answer] = await student.classify(['where is my card?']);
//   // {label, probs: {label: p}, top, inDomain, abstained, studentLabel}
//
// Probabilities are softmax(logits / temperature) and the in-domain score is logsumexp of the raw logits,
// as pipeline/bundle.py computes them; a text whose score is below the bundle's `ood.threshold` abstains,
// as the model server does with serve.ood_abstain (its label is null, or the abstain label given).

import { makeFeaturizer } from './featurize.js';

export const FORMAT = 'distill-bundle/1';

export class BundleError extends Error {}

/** Check a bundle.json for what this runtime needs; returns the manifest. */
export function checkManifest(manifest) {
  if (!manifest || manifest.format !== FORMAT) {
    throw new BundleError(`bundle.json format ${JSON.stringify(manifest?.format)} is not ${FORMAT}`);
  }
  if (!Array.isArray(manifest.labels) || manifest.labels.length === 0) throw new BundleError('bundle.json has no labels');
  if (!manifest.files?.int8) throw new BundleError('bundle.json names no int8 model (files.int8)');
  return manifest;
}

export class Student {
  constructor(ort, manifest, session, featurizer, abstainLabel = null) {
    this.ort = ort;
    this.manifest = manifest;
    this.labels = manifest.labels;
    this.temperature = Number(manifest.temperature ?? 1);
    this.oodThreshold = manifest.ood?.threshold ?? null;
    this.abstainLabel = abstainLabel;
    this.featurizer = featurizer;
    this.session = session;
  }

  /** Build from the manifest, the int8 model's bytes (Uint8Array) and, for a WordPiece bundle, the text
   * of its tokenizer file (`manifest.featurizer.tokenizer`). */
  static async load(ort, manifest, modelBytes, { tokenizerJson = null, abstainLabel = null, sessionOptions = {} } = {}) {
    checkManifest(manifest);
    const featurizer = makeFeaturizer(manifest.featurizer.config, tokenizerJson); // refused before the model loads
    const session = await ort.InferenceSession.create(modelBytes, sessionOptions);
    return new Student(ort, manifest, session, featurizer, abstainLabel);
  }

  /** Raw logits of a batch: {logits: Float32Array, classes}. */
  async logits(texts) {
    const { data, dims } = this.featurizer.matrix(texts);
    const out = await this.session.run({ ids: new this.ort.Tensor('int64', data, dims) });
    const logits = out.logits ?? Object.values(out)[0];
    return { logits: logits.data, classes: this.labels.length };
  }

  /** Class probabilities and in-domain scores of a batch: {probs: Float64Array[], inDomain: number[]}. */
  async scored(texts) {
    if (texts.length === 0) return { probs: [], inDomain: [] };
    const { logits, classes } = await this.logits(texts);
    const probs = [];
    const inDomain = [];
    for (let i = 0; i < texts.length; i++) {
      const row = logits.subarray(i * classes, (i + 1) * classes);
      let top = -Infinity;
      let topScaled = -Infinity;
      for (const z of row) { top = Math.max(top, z); topScaled = Math.max(topScaled, z / this.temperature); }
      let sum = 0;
      let sumRaw = 0;
      const p = new Float64Array(classes);
      for (let c = 0; c < classes; c++) {
        p[c] = Math.exp(row[c] / this.temperature - topScaled);
        sum += p[c];
        sumRaw += Math.exp(row[c] - top);
      }
      for (let c = 0; c < classes; c++) p[c] /= sum;
      probs.push(p);
      inDomain.push(top + Math.log(sumRaw));
    }
    return { probs, inDomain };
  }

  /** One answer per text: label (null or the abstain label when out of domain), probs by label, top
   * probability, in-domain score, whether it abstained, and the student's own label. */
  async classify(texts) {
    const { probs, inDomain } = await this.scored(texts);
    return probs.map((p, i) => {
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
      const abstained = this.oodThreshold !== null && inDomain[i] < this.oodThreshold;
      const byLabel = Object.fromEntries(this.labels.map((name, c) => [name, p[c]]));
      return {
        label: abstained ? this.abstainLabel : this.labels[best],
        studentLabel: this.labels[best],
        probs: byLabel,
        top: p[best],
        inDomain: inDomain[i],
        abstained,
      };
    });
  }
}
