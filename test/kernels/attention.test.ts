// Attention, forward and backward: the float64 reference backward against finite differences on tiny shapes,
// then the native kernel against the reference on awkward shapes (kernel-checks.ts) for every ISA path this
// machine has and 1 and 2 threads, each in a child process because the addon reads MODERNBERT_ISA and
// MODERNBERT_NUM_THREADS once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nativeInfo, nativeKernels } from '../../src/kernels/native.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import { availableIsas, checkGradient, cuSeqlensOf, dot, randn64, runChildChecks } from './kernel-checks.js';

describe('attention backward (float64 reference) against finite differences', () => {
  for (const window of [-1, 0, 1, 2]) {
    it(`lengths 1, 3, 6; H=2, Dh=4; window ${window}`, () => {
      const lengths = [1, 3, 6];
      const cu = cuSeqlensOf(lengths);
      const T = 10, H = 2, Dh = 4, hidden = H * Dh, scale = 0.7;
      const qkv = randn64(T * 3 * hidden, 50 + window);
      const g = randn64(T * hidden, 60 + window);
      const out = new Float64Array(T * hidden);
      const lse = new Float64Array(H * T);
      const loss = () => {
        referenceKernels.attention(out, lse, qkv, cu, lengths.length, H, Dh, window, scale, false);
        return dot(g, out);
      };
      loss();
      const dqkv = new Float64Array(T * 3 * hidden);
      referenceKernels.attentionBackward(dqkv, g, qkv, out, lse, cu, lengths.length, H, Dh, window, scale);
      checkGradient('attention dqkv', qkv, loss, dqkv);
    });
  }
});

describe('native attention against the reference', () => {
  for (const isa of availableIsas())
    for (const threads of [1, 2])
      it(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}: lengths 1..600, windows global/0/4/8/16/64, H 1..12, Dh 12/16/24/64`,
        () => { runChildChecks('attention', isa, threads); });
});

// bf16 = true: the bf16 kernel on every bf16 path the CPU has (AMX, AVX512-BF16; against the references), the
// float32 kernel bit for bit where it has none or MODERNBERT_BF16=portable caps them (attentionBf16Checks).
describe('native bf16 attention', () => {
  const f = nativeInfo().features;
  const bf16 = f.amxBf16 && f.avx512bf16 ? 'amx' : f.avx512bf16 ? 'avx512bf16' : 'float32';
  // [MODERNBERT_ISA, MODERNBERT_BF16, the bf16 attention path expected]
  const runs: [string, string, string][] = availableIsas().map((isa) => [isa, '', isa === 'avx512' ? bf16 : 'float32']);
  if (bf16 === 'amx') runs.push(['avx512', 'avx512bf16', 'avx512bf16']);
  if (availableIsas().includes('avx512')) runs.push(['avx512', 'portable', 'float32']);
  for (const [isa, cap, path] of runs)
    for (const threads of [1, 2])
      it(`${isa}${cap ? `, MODERNBERT_BF16=${cap}` : ''}, ${threads} thread${threads > 1 ? 's' : ''}: ${path}`, () => {
        const out = runChildChecks('attentionBf16', isa, threads, cap);
        assert.match(out, new RegExp(`^bf16Attention=${path}$`, 'm'), 'the child ran the expected bf16 attention path');
      });
});

describe('native attention argument checks', () => {
  it('requires the bf16 flag to be a boolean', () => {
    const f = (n: number) => new Float32Array(n);
    const call = nativeKernels.attention as (...args: unknown[]) => void;
    assert.throws(() => call(f(12), null, f(36), cuSeqlensOf([3]), 1, 1, 4, -1, 0.5), /argument 'bf16' must be a boolean/);
  });
  it('rejects an lse buffer that is too short for the backward', () => {
    const cu = cuSeqlensOf([3]);
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => nativeKernels.attentionBackward(f(3 * 3 * 4), f(3 * 4), f(3 * 3 * 4), f(3 * 4), f(2), cu, 1, 1, 4, -1, 0.5),
      /argument 'lse' has 2 elements, needs at least 3/);
  });
  it('rejects decreasing cuSeqlens in the backward', () => {
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => nativeKernels.attentionBackward(f(99), f(99), f(99), f(99), f(99), Int32Array.from([0, 3, 2]), 2, 1, 4, -1, 0.5),
      /cuSeqlens must be non-decreasing/);
  });
});
