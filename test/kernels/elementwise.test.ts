// LayerNorm, GeGLU, activations, RoPE and embedding, forward and backward: each float64 reference backward
// against finite differences on tiny random shapes, then the native kernels against the references on odd
// sizes (kernel-checks.ts) for every ISA path this machine has, with 1 and 2 threads, in child processes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nativeKernels } from '../../src/kernels/native.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import { Activation } from '../../src/kernels/types.js';
import { ACTIVATIONS, availableIsas, checkGradient, dot, randn64, runChildChecks } from './kernel-checks.js';

describe('element-wise backward (float64 references) against finite differences', () => {
  for (const act of ACTIVATIONS) {
    it(`activation and geglu, ${Activation[act]}`, () => {
      const n = 23;
      const x = randn64(n, 70 + act, 2);
      const g = randn64(n, 71);
      const y = new Float64Array(n);
      const dx = new Float64Array(n);
      referenceKernels.activationBackward(dx, g, x, n, act);
      checkGradient(`activation ${Activation[act]}`, x, () => (referenceKernels.activation(y, x, n, act), dot(g, y)), dx);

      const T = 3, I = 5;
      const gx = randn64(T * 2 * I, 72 + act, 2);
      const gg = randn64(T * I, 73);
      const out = new Float64Array(T * I);
      const gdx = new Float64Array(T * 2 * I);
      referenceKernels.gegluBackward(gdx, gg, gx, T, I, act);
      checkGradient(`geglu ${Activation[act]}`, gx, () => (referenceKernels.geglu(out, gx, T, I, act), dot(gg, out)), gdx);
    });
  }

  for (const bias of [false, true]) {
    it(`layernorm (x, weight${bias ? ', bias' : ''})`, () => {
      const T = 4, D = 7;
      const x = randn64(T * D, 80, 2);
      const w = randn64(D, 81, 0.3).map((v) => v + 1);
      const b = bias ? randn64(D, 82) : null;
      const g = randn64(T * D, 83);
      const out = new Float64Array(T * D), mean = new Float64Array(T), rstd = new Float64Array(T);
      const loss = () => (referenceKernels.layernorm(out, x, w, b, T, D, 1e-5, mean, rstd), dot(g, out));
      loss();
      const dx = new Float64Array(T * D), dw = new Float64Array(D), db = bias ? new Float64Array(D) : null;
      referenceKernels.layernormBackward(dx, dw, db, g, x, w, mean, rstd, T, D);
      checkGradient('layernorm dx', x, loss, dx);
      checkGradient('layernorm dw', w, loss, dw);
      if (b && db) checkGradient('layernorm db', b, loss, db);
    });
  }

  it('rope (q and k rotated, v untouched)', () => {
    const T = 3, H = 2, Dh = 6, maxPos = 5, half = Dh / 2;
    const pos = Int32Array.from([4, 0, 2]);
    const cos = randn64(maxPos * half, 90), sin = randn64(maxPos * half, 91);  // any table: rope is linear in qkv
    const qkv = randn64(T * 3 * H * Dh, 92);
    const g = randn64(T * 3 * H * Dh, 93);
    const y = new Float64Array(qkv.length);
    const grad = g.slice();
    referenceKernels.ropeBackward(grad, pos, cos, sin, T, H, Dh, maxPos);
    checkGradient('rope', qkv, () => (y.set(qkv), referenceKernels.rope(y, pos, cos, sin, T, H, Dh, maxPos), dot(g, y)), grad);
  });

  it('embedding (padding_idx row gets no gradient)', () => {
    const T = 6, D = 3, vocab = 5;
    const ids = Int32Array.from([1, 4, 1, 0, 3, 1]);
    const table = randn64(vocab * D, 94);
    const g = randn64(T * D, 95);
    const out = new Float64Array(T * D);
    const loss = () => {
      for (let t = 0; t < T; t++) out.set(table.subarray(ids[t] * D, (ids[t] + 1) * D), t * D);
      return dot(g, out);
    };
    const grad = new Float64Array(vocab * D);
    referenceKernels.embeddingBackward(grad, g, ids, T, D, vocab, -1);
    checkGradient('embedding', table, loss, grad);
    const padded = new Float64Array(vocab * D);
    referenceKernels.embeddingBackward(padded, g, ids, T, D, vocab, 1);
    assert.deepEqual([...padded.subarray(D, 2 * D)], [0, 0, 0]);
    assert.deepEqual([...padded.subarray(4 * D)], [...grad.subarray(4 * D)]);
  });
});

describe('native element-wise kernels against the references', () => {
  for (const isa of availableIsas())
    for (const threads of [1, 2])
      it(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}: activations, geglu, layernorm, rope, embedding (forward + backward)`,
        () => { runChildChecks('elementwise', isa, threads); });
});

describe('native element-wise argument checks', () => {
  it('embeddingBackward rejects ids outside the vocabulary', () => {
    assert.throws(() => nativeKernels.embeddingBackward(new Float32Array(8), new Float32Array(4), Int32Array.from([0, 4]), 2, 2, 4, -1),
      /token id 4 at position 1 is outside the vocabulary \[0, 4\)/);
  });
  it('ropeBackward rejects positions outside the table', () => {
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => nativeKernels.ropeBackward(f(12), Int32Array.from([2]), f(2), f(2), 1, 1, 4, 1), /position 2 is outside the RoPE table/);
  });
});
