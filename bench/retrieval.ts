/**
 * Search benchmark: index build time and query latency for N random unit vectors (default 100 000 × 768),
 * exact (native GEMM, float32 and int8) and HNSW (hnswlib-node), with recall@10 of HNSW against exact.
 * Exact results are checked against a float64 brute force on a few queries before anything is timed.
 *
 *   node --import tsx bench/retrieval.ts [--n=100000] [--dim=768] [--queries=100] [--m=16] [--ef-construction=200] [--threads=2] [--data=random|clustered]
 *
 * --data=random: i.i.d. Gaussian vectors, the worst case for any graph index (no structure; every point is
 * almost equally far from a query). --data=clustered: 1000 Gaussian cluster centres plus noise of the same
 * norm, queries drawn the same way — closer to embeddings of text, which have far lower intrinsic dimension.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeInfo, setNumThreads } from '../src/kernels/native.js';
import { indexSize, VectorIndex } from '../src/retrieval/index.js';
import { Tensor } from '../src/tensor/tensor.js';

const arg = (name: string, def: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def);
const N = arg('n', 100_000);
const DIM = arg('dim', 768);
const Q = arg('queries', 100);
const M = arg('m', 16);
const EFC = arg('ef-construction', 200);
setNumThreads(arg('threads', 2));
const DATA = process.argv.find((a) => a.startsWith('--data='))?.slice(7) ?? 'clustered';
if (DATA !== 'random' && DATA !== 'clustered') throw new Error('--data must be random or clustered');

/** Standard normal values (Box–Muller on a fixed LCG). */
function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

const ms = (t0: number) => performance.now() - t0;
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** n vectors: Gaussian, or (clustered) a random one of 1000 Gaussian centres plus Gaussian noise. */
function data(n: number, seed: number): Float32Array {
  const v = gaussian(n * DIM, seed);
  if (DATA === 'random') return v;
  const centres = gaussian(1000 * DIM, 12345);
  let s = seed * 7 + 1;
  for (let r = 0; r < n; r++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const c = s % 1000;
    for (let d = 0; d < DIM; d++) v[r * DIM + d] = centres[c * DIM + d] + v[r * DIM + d];
  }
  return v;
}

const vectors = data(N, 1);
const ids = Array.from({ length: N }, (_, i) => String(i));
const queries = new Tensor(data(Q, 2), [Q, DIM]);
console.log(`# retrieval bench: ${N} × ${DIM} ${DATA} vectors (cosine), ${Q} queries, k = 10; ${JSON.stringify(nativeInfo())}`);

let t0 = performance.now();
const exact = VectorIndex.build(vectors, DIM, ids);
const buildExact = ms(t0);
t0 = performance.now();
const int8 = VectorIndex.build(vectors, DIM, ids, { dtype: 'int8' });
const buildInt8 = ms(t0);

// Check exact search against a float64 brute force before timing it.
const truth = exact.search(queries, 10);
for (let i = 0; i < 3; i++) {
  const q = queries.data.subarray(i * DIM, (i + 1) * DIM);
  const qn = Math.hypot(...q);
  const scores = Array.from({ length: N }, (_, r) => {
    let dot = 0;
    let n2 = 0;
    for (let d = 0; d < DIM; d++) {
      dot += q[d] * vectors[r * DIM + d];
      n2 += vectors[r * DIM + d] ** 2;
    }
    return dot / (qn * Math.sqrt(n2));
  });
  const want = scores.map((_, r) => r).sort((a, b) => scores[b] - scores[a]).slice(0, 10);
  const got = truth[i].map((h) => h.index);
  if (want.some((w, j) => w !== got[j] && Math.abs(scores[w] - scores[got[j]]) > 1e-5)) throw new Error(`exact search disagrees with brute force on query ${i}`);
}

const recall = (hits: { index: number }[][]) => hits.reduce((n, h, i) => n + h.filter((x) => truth[i].some((t) => t.index === x.index)).length, 0) / (10 * Q);
const perQuery = (index: VectorIndex, options = {}) => {
  const t = performance.now();
  for (let i = 0; i < Q; i++) index.search(new Tensor(queries.data.slice(i * DIM, (i + 1) * DIM), [1, DIM]), 10, options);
  return ms(t) / Q;
};
const batched = (index: VectorIndex) => {
  const t = performance.now();
  index.search(queries, 10);
  return ms(t) / Q;
};

console.log('| method | build (s) | latency, 1 query (ms) | per query in a batch of ' + Q + ' (ms) | recall@10 vs exact |');
console.log('| --- | --- | --- | --- | --- |');
const show = (r: string[]) => console.log(`| ${r.join(' | ')} |`);
show(['exact float32', fmt(buildExact / 1000), fmt(perQuery(exact)), fmt(batched(exact)), '1.000']);
show(['exact int8', fmt(buildInt8 / 1000), fmt(perQuery(int8)), fmt(batched(int8)), recall(int8.search(queries, 10)).toFixed(3)]);
t0 = performance.now();
exact.buildHnsw({ m: M, efConstruction: EFC });
const buildHnsw = ms(t0);
for (const ef of [32, 64, 128, 256, 512]) {
  const hits = exact.search(queries, 10, { approximate: true, ef });
  show([`HNSW M=${M} efC=${EFC}, ef=${ef}`, ef === 32 ? fmt(buildHnsw / 1000) : '', fmt(perQuery(exact, { approximate: true, ef })), '', recall(hits).toFixed(3)]);
}
const dir = mkdtempSync(join(tmpdir(), 'mb-bench-'));
t0 = performance.now();
exact.save(join(dir, 'x.mbx'));
const save = ms(t0);
t0 = performance.now();
VectorIndex.load(join(dir, 'x.mbx'));
const load = ms(t0);
const size = indexSize(join(dir, 'x.mbx'));
int8.save(join(dir, 'q.mbx'));
const sizeInt8 = indexSize(join(dir, 'q.mbx'));
rmSync(dir, { recursive: true });

console.log(`\nfiles: float32 + HNSW ${(size / 2 ** 20).toFixed(0)} MiB (save ${fmt(save / 1000)} s, load with checksums ${fmt(load / 1000)} s); int8 ${(sizeInt8 / 2 ** 20).toFixed(0)} MiB`);
