// The page: load the bundle the model server publishes (./bundle/, or ?bundle=<folder URL>), classify what
// the user types, and keep everything it loaded so it works offline. `window.distill` is the same
// classifier for scripts and for the browser test (tests/web/test_browser.py):
//   await window.distill.ready;  await window.distill.classify(['text', ...])

import * as ort from 'onnxruntime-web/wasm';
import { Student } from './student.js';

const CACHE = 'distill-demo-v1'; // the service worker's cache (public/sw.js)
const $ = (id) => document.getElementById(id);

function bundleBase() {
  const given = new URLSearchParams(location.search).get('bundle');
  const base = new URL(given || './bundle/', location.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

async function fetchOk(url, as) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
  return as === 'json' ? response.json() : new Uint8Array(await response.arrayBuffer());
}

async function load() {
  const started = performance.now();
  // Threads need a cross-origin isolated page; one thread is what a phone gives a page anyway.
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const base = bundleBase();
  const manifest = await fetchOk(new URL('bundle.json', base), 'json');
  const tokenizer = manifest.featurizer?.tokenizer; // WordPiece bundles carry their tokenizer.json
  const [model, tokenizerJson] = await Promise.all([
    fetchOk(new URL(manifest.files.int8, base)),
    tokenizer ? fetchOk(new URL(tokenizer, base)).then((bytes) => new TextDecoder().decode(bytes)) : null,
  ]);
  const serving = manifest.serving || {};
  const student = await Student.load(ort, manifest, model,
    { tokenizerJson, abstainLabel: serving.ood_abstain_label ?? null });
  await student.classify(['warm up']);
  const info = {
    labels: student.labels.length,
    version: serving.version ?? null,
    digest: manifest.digest,
    modelBytes: model.byteLength,
    oodThreshold: student.oodThreshold,
    threads: ort.env.wasm.numThreads,
    loadMs: performance.now() - started,
    sinceNavigationMs: performance.now(),
  };
  return { student, info };
}

async function keepForOffline() {
  // What the page loaded before the service worker controlled it: the page, its assets, the runtime's
  // wasm and the bundle. Later loads go through the worker, which keeps them itself.
  if (!('serviceWorker' in navigator) || !('caches' in globalThis)) return false;
  const scope = new URL(import.meta.env.BASE_URL, location.href);
  await navigator.serviceWorker.register(new URL('sw.js', scope));
  const urls = new Set([location.href.split('#')[0]]);
  for (const entry of performance.getEntriesByType('resource')) {
    const url = new URL(entry.name); // the page's own files only: no blob: URLs, nothing outside its folder
    if (url.origin === scope.origin && url.pathname.startsWith(scope.pathname)) urls.add(entry.name);
  }
  const cache = await caches.open(CACHE);
  await Promise.all([...urls].map(async (url) => {
    if (await cache.match(url)) return;
    try {
      await cache.add(url);
    } catch (err) {
      throw new Error(`could not keep ${url} for offline use: ${err.message}`);
    }
  }));
  return true;
}

function render(answer, student) {
  $('answer').hidden = false;
  $('label').textContent = answer.abstained ? (answer.label ?? 'out of domain') : answer.label;
  $('note').textContent = answer.abstained
    ? `(abstained: in-domain score ${answer.inDomain.toFixed(2)} < ${student.oodThreshold.toFixed(2)}; the student would say "${answer.studentLabel}")`
    : `(${(answer.top * 100).toFixed(1)} %)`;
  const top = Object.entries(answer.probs).sort((a, b) => b[1] - a[1]).slice(0, 5);
  $('probs').replaceChildren(...top.map(([name, p]) => {
    const li = document.createElement('li');
    const label = Object.assign(document.createElement('span'), { className: 'name', textContent: name, title: name });
    const bar = Object.assign(document.createElement('span'), { className: 'bar' });
    bar.style.width = `${Math.max(1, p * 100)}%`;
    li.append(label, bar, Object.assign(document.createElement('span'), { textContent: `${(p * 100).toFixed(1)} %` }));
    return li;
  }));
}

const ready = load();
window.distill = {
  ready: ready.then(({ info }) => info),
  classify: async (texts) => (await ready).student.classify(texts),
  offline: ready.then(() => keepForOffline()),
};

ready.then(({ student, info }) => {
  $('model').textContent = `Model ${info.version ?? info.digest.slice(0, 12)}: ${info.labels} labels, `
    + `${(info.modelBytes / 1e6).toFixed(2)} MB int8, loaded in ${info.loadMs.toFixed(0)} ms.`;
  $('status').textContent = 'ready: type a text';
  const box = $('text');
  box.disabled = false;
  let pending = 0;
  box.addEventListener('input', async () => {
    const mine = ++pending;
    const text = box.value.trim();
    if (!text) { $('answer').hidden = true; return; }
    const [answer] = await student.classify([text]);
    if (mine === pending) render(answer, student);
  });
  window.distill.offline.then((kept) => {
    if (kept) $('status').textContent = 'ready, and available offline: type a text';
  }, (err) => console.warn('offline copy failed', err));
}, (err) => {
  $('status').textContent = `could not load the model: ${err.message}`;
  $('status').className = 'error';
});
