// Finite-difference checks of every backward kernel on tiny, awkward random shapes. The forward is the
// reference kernel run in float64 (its loops work on any typed array), so a central difference with a
// small step is accurate to ~1e-9 and the check can be tight.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { referenceKernels as ref } from '../../src/kernels/reference.js';
import { Activation } from '../../src/kernels/types.js';
import { ropeTables } from '../../src/model/modernbert.js';
import { biasBackward } from '../../src/train/bias.js';
const bk = ref;

type F = Float32Array;
/** Float64 data through the Float32Array-typed kernel signatures (the TS kernels only index them). */
const f = (x: Float64Array) => x as unknown as F;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const rand = (n: number, r: () => number, scale = 1) => Float64Array.from({ length: n }, () => (2 * r() - 1) * scale);

/**
 * Checks `analytic` = d/dx Σ weights·forward(x) by central differences on every element of x.
 * Tolerance: max|fd − analytic| ≤ tol · max(1e-3, max|analytic|).
 */
function check(what: string, x: Float64Array, analytic: ArrayLike<number>, loss: () => number, tol = 1e-6, skip?: (i: number) => boolean) {
  const eps = 1e-6;
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < x.length; i++) {
    if (skip?.(i)) continue;
    const x0 = x[i];
    x[i] = x0 + eps;
    const up = loss();
    x[i] = x0 - eps;
    const down = loss();
    x[i] = x0;
    const fd = (up - down) / (2 * eps);
    maxDiff = Math.max(maxDiff, Math.abs(fd - analytic[i]));
    maxAbs = Math.max(maxAbs, Math.abs(analytic[i]));
  }
  assert.ok(maxAbs > 0, `${what}: analytic gradient is all zero`);
  const rel = maxDiff / Math.max(1e-3, maxAbs);
  assert.ok(rel <= tol, `${what}: finite-difference mismatch ${rel.toExponential(3)} (max |g| ${maxAbs.toExponential(2)})`);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

const ACTS = [Activation.GeluErf, Activation.GeluTanh, Activation.Silu, Activation.Relu, Activation.Identity];

describe('backward kernels vs finite differences', () => {
  it('attentionBackward: global and windowed, sequences of length 1, inside and beyond the window', () => {
    const r = rng(1);
    const H = 2;
    const Dh = 6;
    const cu = Int32Array.from([0, 1, 5, 7, 15]);
    const numSeqs = 4;
    const T = 15;
    for (const window of [-1, 0, 2]) {
      const qkv = rand(T * 3 * H * Dh, r, 1.5);
      const w = rand(T * H * Dh, r);
      const scale = 1 / Math.sqrt(Dh);
      const out = new Float64Array(T * H * Dh);
      const lse = new Float64Array(H * T);
      const loss = () => {
        ref.attention(f(out), f(lse), f(qkv), cu, numSeqs, H, Dh, window, scale, false);
        return dot(out, w);
      };
      loss();
      const dqkv = new Float64Array(qkv.length);
      bk.attentionBackward(f(dqkv), f(w), f(qkv), f(out), f(lse), cu, numSeqs, H, Dh, window, scale);
      check(`attention window ${window}`, qkv, dqkv, loss);
    }
  });

  it('layernormBackward: dx, dw, db (with and without bias)', () => {
    const r = rng(2);
    const T = 5;
    const D = 7;
    for (const withBias of [true, false]) {
      const x = rand(T * D, r, 2);
      const w = rand(D, r);
      const b = withBias ? rand(D, r) : null;
      const wout = rand(T * D, r);
      const out = new Float64Array(T * D);
      const mean = new Float64Array(T);
      const rstd = new Float64Array(T);
      const loss = () => {
        ref.layernorm(f(out), f(x), f(w), b && f(b), T, D, 1e-5, f(mean), f(rstd));
        return dot(out, wout);
      };
      loss();
      const dx = new Float64Array(T * D).fill(0.5); // dx is overwritten: stale values must not leak in
      const dw = new Float64Array(D).fill(0.25); // dw and db accumulate: start from non-zero values
      const db = new Float64Array(D).fill(0.25);
      bk.layernormBackward(f(dx), f(dw), b && f(db), f(wout), f(x), f(w), f(mean), f(rstd), T, D);
      check('layernorm dx', x, dx, loss);
      dw.forEach((_, i) => (dw[i] -= 0.25));
      db.forEach((_, i) => (db[i] -= 0.25));
      check('layernorm dw', w, dw, loss);
      if (b) check('layernorm db', b, db, loss);
    }
  });

  it('gegluBackward for every activation', () => {
    const r = rng(3);
    const T = 3;
    const I = 5;
    for (const act of ACTS) {
      const x = rand(T * 2 * I, r, 3);
      const wout = rand(T * I, r);
      const out = new Float64Array(T * I);
      const loss = () => {
        ref.geglu(f(out), f(x), T, I, act);
        return dot(out, wout);
      };
      const dx = new Float64Array(x.length);
      bk.gegluBackward(f(dx), f(wout), f(x), T, I, act);
      // The erf-GELU forward uses a 1.2e-7 erf fit, so its finite difference is a little looser.
      check(`geglu ${Activation[act]}`, x, dx, loss, act === Activation.GeluErf ? 2e-6 : 1e-6);
    }
  });

  it('activationBackward for every activation (also in place)', () => {
    const r = rng(4);
    const n = 11;
    for (const act of ACTS) {
      const x = rand(n, r, 3);
      const wout = rand(n, r);
      const out = new Float64Array(n);
      const loss = () => {
        ref.activation(f(out), f(x), n, act);
        return dot(out, wout);
      };
      const dx = Float64Array.from(wout);
      bk.activationBackward(f(dx), f(dx), f(x), n, act);
      check(`activation ${Activation[act]}`, x, dx, loss, act === Activation.GeluErf ? 2e-6 : 1e-6);
    }
  });

  it('ropeBackward on q and k (v passes through)', () => {
    const r = rng(5);
    const T = 4;
    const H = 3;
    const Dh = 8;
    const maxPos = 40;
    const { cos, sin } = ropeTables(10000, Dh, maxPos);
    const pos = Int32Array.from([0, 7, 39, 3]);
    const x = rand(T * 3 * H * Dh, r);
    const wout = rand(x.length, r);
    const y = new Float64Array(x.length);
    const loss = () => {
      y.set(x);
      ref.rope(f(y), pos, cos, sin, T, H, Dh, maxPos);
      return dot(y, wout);
    };
    const dx = Float64Array.from(wout);
    bk.ropeBackward(f(dx), pos, cos, sin, T, H, Dh, maxPos);
    check('rope', x, dx, loss);
  });

  it('embeddingBackward: repeated ids accumulate, the padding row gets nothing', () => {
    const r = rng(6);
    const vocab = 6;
    const D = 3;
    const pad = 4;
    const ids = Int32Array.from([1, 4, 1, 0, 5, 4, 1]);
    const T = ids.length;
    const table = rand(vocab * D, r);
    const wout = rand(T * D, r);
    const out = new Float64Array(T * D);
    const loss = () => {
      ref.embedding(f(out), f(table), ids, T, D, vocab);
      return dot(out, wout);
    };
    const dtable = new Float64Array(vocab * D);
    bk.embeddingBackward(f(dtable), f(wout), ids, T, D, vocab, pad);
    check('embedding', table, dtable, loss, 1e-6, (i) => Math.floor(i / D) === pad);
    assert.deepEqual(Array.from(dtable.subarray(pad * D, (pad + 1) * D)), [0, 0, 0]);
    assert.throws(() => bk.embeddingBackward(f(dtable), f(wout), Int32Array.from([6]), 1, D, vocab, pad), /outside the vocabulary/);
  });

  it('biasBackward sums rows into the existing gradient', () => {
    const r = rng(7);
    const T = 4;
    const N = 5;
    const dout = rand(T * N, r);
    const db = new Float64Array(N).fill(1);
    biasBackward(f(db), f(dout), T, N);
    for (let n = 0; n < N; n++) {
      let s = 1;
      for (let t = 0; t < T; t++) s += dout[t * N + n];
      assert.ok(Math.abs(db[n] - s) < 1e-12);
    }
  });
});
