/** The batcher alone, with a fake forward pass the test releases by hand: packing, budget, order, errors. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type BatchStats } from '../../src/serve/batcher.js';

interface Call {
  inputIds: Int32Array;
  cuSeqlens: Int32Array;
  finish(): void;
  fail(e: Error): void;
}

/** A fake forward whose output row per sequence is [sum of its ids, its length]; each call waits for finish(). */
function fakeInfer() {
  const calls: Call[] = [];
  const infer = (inputIds: Int32Array, cuSeqlens: Int32Array) => new Promise<Float32Array>((resolve, reject) => {
    calls.push({
      inputIds, cuSeqlens, fail: reject,
      finish: () => {
        const n = cuSeqlens.length - 1;
        const out = new Float32Array(2 * n);
        for (let s = 0; s < n; s++) {
          for (let t = cuSeqlens[s]; t < cuSeqlens[s + 1]; t++) out[2 * s] += inputIds[t];
          out[2 * s + 1] = cuSeqlens[s + 1] - cuSeqlens[s];
        }
        resolve(out);
      },
    });
  });
  return { calls, infer };
}

const seq = (...ids: number[]) => Int32Array.from(ids);
const tick = () => new Promise((r) => setImmediate(r));
const rows = (out: Float32Array[]) => out.map((r) => Array.from(r));

describe('Batcher', () => {
  it('packs the requests queued during a pass into the next one, in order, within the token budget', async () => {
    const { calls, infer } = fakeInfer();
    const stats: BatchStats[] = [];
    const b = new Batcher(infer, { maxBatchTokens: 6, batching: true, onBatch: (s) => stats.push(s) });
    const r1 = b.submit([seq(1, 2)]);
    assert.equal(calls.length, 1, 'an idle thread gets the first request at once');
    const r2 = b.submit([seq(3), seq(4, 5)]);
    const r3 = b.submit([seq(6, 7, 8)]);
    const r4 = b.submit([seq(9)]);
    assert.equal(b.queuedSequences, 4);
    calls[0].finish();
    assert.deepEqual(rows(await r1), [[3, 2]]);
    assert.equal(calls.length, 2);
    // r2 (3 tokens) and r3 (3 tokens) fill the budget of 6; r4 waits.
    assert.deepEqual(Array.from(calls[1].inputIds), [3, 4, 5, 6, 7, 8]);
    assert.deepEqual(Array.from(calls[1].cuSeqlens), [0, 1, 3, 6]);
    assert.equal(b.queuedSequences, 1);
    calls[1].finish();
    assert.deepEqual(rows(await r2), [[3, 1], [9, 2]]);
    assert.deepEqual(rows(await r3), [[21, 3]]);
    calls[2].finish();
    assert.deepEqual(rows(await r4), [[9, 1]]);
    assert.deepEqual(stats.map((s) => [s.sequences, s.tokens, s.requests]), [[1, 2, 1], [3, 6, 2], [1, 1, 1]]);
  });

  it('splits a request over passes, and runs a sequence longer than the budget alone', async () => {
    const { calls, infer } = fakeInfer();
    const b = new Batcher(infer, { maxBatchTokens: 4, batching: true });
    const r = b.submit([seq(1, 1, 1), seq(2, 2), seq(3, 3, 3, 3, 3, 3), seq(4)]);
    assert.deepEqual(Array.from(calls[0].cuSeqlens), [0, 3]);
    calls[0].finish();
    await tick();
    assert.deepEqual(Array.from(calls[1].cuSeqlens), [0, 2]);
    calls[1].finish();
    await tick();
    assert.deepEqual(Array.from(calls[2].cuSeqlens), [0, 6], 'over the budget: alone');
    calls[2].finish();
    await tick();
    assert.deepEqual(Array.from(calls[3].cuSeqlens), [0, 1]);
    calls[3].finish();
    assert.deepEqual(rows(await r), [[3, 3], [4, 2], [18, 6], [4, 1]]);
  });

  it('with batching off, a pass holds sequences of one request only', async () => {
    const { calls, infer } = fakeInfer();
    const b = new Batcher(infer, { maxBatchTokens: 100, batching: false });
    const r1 = b.submit([seq(1)]);
    const r2 = b.submit([seq(2), seq(3)]);
    const r3 = b.submit([seq(4)]);
    calls[0].finish();
    await r1;
    assert.deepEqual(Array.from(calls[1].inputIds), [2, 3]);
    calls[1].finish();
    await r2;
    assert.deepEqual(Array.from(calls[2].inputIds), [4]);
    calls[2].finish();
    assert.deepEqual(rows(await r3), [[4, 1]]);
  });

  it('a failed pass rejects every request in it, drops their queued sequences, and the queue goes on', async () => {
    const { calls, infer } = fakeInfer();
    const b = new Batcher(infer, { maxBatchTokens: 2, batching: true });
    const r1 = b.submit([seq(1)]);
    const r2 = b.submit([seq(2), seq(3, 3)]); // its second sequence does not fit the next pass
    const r3 = b.submit([seq(4)]);
    calls[0].finish();
    await r1;
    assert.deepEqual(Array.from(calls[1].inputIds), [2]);
    calls[1].fail(new Error('boom'));
    await assert.rejects(r2, /boom/);
    await tick();
    assert.deepEqual(Array.from(calls[2].inputIds), [4], "r2's remaining sequence was dropped");
    calls[2].finish();
    assert.deepEqual(rows(await r3), [[4, 1]]);
    assert.equal(b.queuedSequences, 0);
    assert.deepEqual(await b.submit([]), []);
  });
});
