/** Vector indexes: exact search against brute force, int8, HNSW, save → load → search, corrupt files, dimension mismatch. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VectorIndex, IndexError } from '../../src/retrieval/index.js';
import { maxSim } from '../../src/retrieval/colbert.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { randomValues } from './helpers.js';

const N = 3000;
const DIM = 24;
const ids = Array.from({ length: N }, (_, i) => `doc-${i}`);
const vectors = randomValues(N * DIM, 1, 3);
const queries = new Tensor(randomValues(5 * DIM, 1, 4), [5, DIM]);

/** Brute-force top k by cosine, in float64. */
function bruteForce(q: Float32Array, k: number): { index: number; score: number }[] {
  const norm = (x: Float32Array, o: number) => Math.sqrt(Array.from(x.subarray(o, o + DIM)).reduce((s, v) => s + v * v, 0));
  const scores = ids.map((_, i) => {
    let dot = 0;
    for (let d = 0; d < DIM; d++) dot += q[d] * vectors[i * DIM + d];
    return { index: i, score: dot / (norm(vectors, i * DIM) * norm(q, 0)) };
  });
  return scores.sort((a, b) => b.score - a.score).slice(0, k);
}

describe('VectorIndex', () => {
  it('exact float32 search equals brute-force cosine; save → load → search gives the same hits', () => {
    const index = VectorIndex.build(vectors, DIM, ids, { model: 'some-model' });
    const hits = index.search(queries, 10);
    for (let i = 0; i < 5; i++) {
      const want = bruteForce(queries.data.subarray(i * DIM, (i + 1) * DIM), 10);
      assert.deepEqual(hits[i].map((h) => h.index), want.map((w) => w.index));
      hits[i].forEach((h, j) => assert.ok(Math.abs(h.score - want[j].score) < 1e-5 && h.id === `doc-${h.index}`));
    }
    const dir = mkdtempSync(join(tmpdir(), 'mb-index-'));
    index.save(join(dir, 'x.mbx'));
    const back = VectorIndex.load(join(dir, 'x.mbx'));
    assert.equal(back.model, 'some-model');
    assert.deepEqual(back.search(queries, 10), hits);
  });

  it('int8 vectors keep the ranking close (top-10 overlap ≥ 8) and survive a round trip', () => {
    const index = VectorIndex.build(vectors, DIM, ids, { dtype: 'int8' });
    const exact = VectorIndex.build(vectors, DIM, ids).search(queries, 10);
    const hits = index.search(queries, 10);
    hits.forEach((h, i) => {
      const overlap = h.filter((x) => exact[i].some((e) => e.index === x.index)).length;
      assert.ok(overlap >= 8, `query ${i}: overlap ${overlap}`);
      h.forEach((x) => {
        const e = exact[i].find((y) => y.index === x.index);
        if (e) assert.ok(Math.abs(x.score - e.score) < 0.02, `score ${x.score} vs ${e.score}`);
      });
    });
    const dir = mkdtempSync(join(tmpdir(), 'mb-index-'));
    index.save(join(dir, 'q.mbx'));
    assert.deepEqual(VectorIndex.load(join(dir, 'q.mbx')).search(queries, 10), hits);
    assert.ok(readFileSync(join(dir, 'q.mbx')).length < N * DIM * 2);
  });

  it('HNSW finds most exact neighbours (recall@10 ≥ 0.9) and is saved beside the index', () => {
    const index = VectorIndex.build(vectors, DIM, ids);
    index.buildHnsw({ m: 16, efConstruction: 100 });
    const exact = index.search(queries, 10);
    const approx = index.search(queries, 10, { approximate: true, ef: 100 });
    const found = approx.reduce((n, h, i) => n + h.filter((x) => exact[i].some((e) => e.index === x.index)).length, 0);
    assert.ok(found / 50 >= 0.9, `recall ${found / 50}`);
    const dir = mkdtempSync(join(tmpdir(), 'mb-index-'));
    const path = join(dir, 'h.mbx');
    index.save(path);
    const back = VectorIndex.load(path);
    assert.deepEqual(back.search(queries, 10, { approximate: true, ef: 100 }).map((h) => h.map((x) => x.index)), approx.map((h) => h.map((x) => x.index)));
    assert.throws(() => VectorIndex.build(vectors, DIM, ids).search(queries, 3, { approximate: true }), /approximate search needs the HNSW graph/);
    rmSync(`${path}.hnsw`);
    assert.throws(() => VectorIndex.load(path), (e: Error) => e instanceof IndexError && /h\.mbx\.hnsw is missing/.test(e.message));
  });

  it('multi-vector (ColBERT) search ranks by MaxSim, exact and through HNSW candidates', () => {
    const docs = Array.from({ length: 60 }, (_, d) => {
      const n = 1 + (d * 7) % 13;
      const m = randomValues(n * 8, 1, 100 + d);
      return new Tensor(m, [n, 8]);
    });
    const index = VectorIndex.buildMulti(docs, docs.map((_, i) => `d${i}`));
    const q = [new Tensor(randomValues(4 * 8, 1, 9), [4, 8]), new Tensor(randomValues(3 * 8, 1, 10), [3, 8])];
    const hits = index.searchMulti(q, 5);
    q.forEach((qq, i) => {
      const want = docs.map((d, j) => ({ j, s: maxSim(qq, d) })).sort((a, b) => b.s - a.s).slice(0, 5);
      assert.deepEqual(hits[i].map((h) => h.index), want.map((w) => w.j));
      hits[i].forEach((h, k) => assert.ok(Math.abs(h.score - want[k].s) < 1e-4));
    });
    index.buildHnsw();
    assert.deepEqual(index.searchMulti(q, 5, { approximate: true, tokenCandidates: 400 }).map((h) => h.map((x) => x.index)), hits.map((h) => h.map((x) => x.index)));
    const dir = mkdtempSync(join(tmpdir(), 'mb-index-'));
    index.save(join(dir, 'm.mbx'));
    assert.deepEqual(VectorIndex.load(join(dir, 'm.mbx')).searchMulti(q, 5), hits);
    assert.throws(() => index.search(new Tensor(new Float32Array(8), [1, 8]), 1), /multi-vector \(ColBERT\) index/);
  });

  it('a corrupt or truncated file, a missing file and a dimension mismatch give clear errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mb-index-'));
    const path = join(dir, 'c.mbx');
    VectorIndex.build(vectors.subarray(0, 10 * DIM), DIM, ids.slice(0, 10), { model: 'm' }).save(path);
    const good = readFileSync(path);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 5] ^= 0x40;
    writeFileSync(path, flipped);
    assert.throws(() => VectorIndex.load(path), /c\.mbx is corrupt: the vectors' checksum does not match/);
    writeFileSync(path, good.subarray(0, good.length - 100));
    assert.throws(() => VectorIndex.load(path), /c\.mbx is truncated or corrupt/);
    writeFileSync(path, Buffer.from('hello world, not an index'));
    assert.throws(() => VectorIndex.load(path), /not a modernbert index \(bad magic bytes\)/);
    const badJson = Buffer.from(good);
    badJson[20] = 0x7b;
    writeFileSync(path, badJson);
    assert.throws(() => VectorIndex.load(path), IndexError);
    assert.throws(() => VectorIndex.load(join(dir, 'nope.mbx')), /nope\.mbx does not exist/);
    writeFileSync(path, good);
    const index = VectorIndex.load(path);
    assert.throws(() => index.search(new Tensor(new Float32Array(2 * 16), [2, 16]), 3), /query vectors have dimension 16, but the index holds 24-dimensional vectors \(built with m\)/);
    assert.throws(() => VectorIndex.build(vectors.subarray(0, 2 * DIM), DIM, ['a', 'a']), /appears twice/);
  });
});
