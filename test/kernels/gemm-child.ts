/**
 * Child process of gemm.test.ts: runs the native GEMMs (float32, prepacked, bf16) with the ISA, bf16
 * path and thread count the parent put in MODERNBERT_ISA / MODERNBERT_BF16 / MODERNBERT_NUM_THREADS
 * (read once per process) against the reference on awkward shapes, and prints one JSON line: the paths
 * in use and the failures.
 */
import { referenceGemmBf16, referenceKernels } from '../../src/kernels/reference.js';
import {
  alignedFloat32Array, gemmBf16, gemmPacked, nativeInfo, nativeKernels, packWeight, packWeightBf16,
} from '../../src/kernels/native.js';

// Shapes: unit, odd, narrower than a SIMD vector, M = 1 against wide N, K across the depth block (at most 288,
// cut evenly: 530 = 2 × 265, 600 = 3 × 200), N across the column block (1152), K = 0 (C = beta·C + bias), and
// M = 4200, which two threads cut into row tasks of about 512 rows, and whole 32 × 32 tiles across the bf16 AMX
// depth blocks (256: 96 × 64 × 520 takes three, its partial sums held between them).
export const SHAPES: [number, number, number][] = [
  [1, 1, 1], [7, 13, 5], [33, 65, 17], [100, 3, 48], [257, 300, 129], [1, 2304, 64], [3, 50, 1],
  [29, 33, 530], [15, 1200, 40], [300, 17, 600], [5, 7, 0], [64, 96, 192], [4200, 40, 20], [96, 64, 520],
];

let seed = 12345;
function random(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out[i] = seed / 2 ** 32 - 0.5;
  }
  return out;
}

/**
 * Float32 accumulation over K terms drifts like sqrt(K)·2⁻²⁴ relative to the size of the result;
 * allow 1e-6·sqrt(K+1)·max(1, max|C|), ~16× that, so any wrong index (an O(1) error) still fails.
 */
function maxExcess(got: Float32Array, want: Float32Array, K: number): number {
  let scale = 1;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  const tol = 1e-6 * Math.sqrt(K + 1) * scale;
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / tol);
  return worst; // > 1 fails
}

const failures: string[] = [];
let cases = 0;
for (const [M, N, K] of SHAPES)
  for (const transA of [false, true])
    for (const transB of [false, true])
      for (const beta of [0, 1] as const)
        for (const withBias of [false, true]) {
          const A = random(M * K), B = random(K * N), bias = withBias ? random(N) : null, C0 = random(M * N);
          const got = C0.slice(), want = C0.slice();
          nativeKernels.gemm(got, A, B, bias, M, N, K, transA, transB, beta);
          referenceKernels.gemm(want, A, B, bias, M, N, K, transA, transB, beta);
          const e = maxExcess(got, want, K);
          cases++;
          if (!(e <= 1)) failures.push(`gemm ${M}x${N}x${K} transA=${transA} transB=${transB} beta=${beta} bias=${withBias}: ${e.toFixed(1)}× tolerance`);
        }
// Prepacked weights: the same product as gemm with transB.
for (const [M, N, K] of SHAPES)
  for (const beta of [0, 1] as const) {
    const A = random(M * K), W = random(N * K), bias = random(N), C0 = random(M * N);
    const got = C0.slice(), want = C0.slice();
    gemmPacked(got, A, packWeight(W, N, K), bias, M, N, K, beta);
    referenceKernels.gemm(want, A, W, bias, M, N, K, false, true, beta);
    const e = maxExcess(got, want, K);
    cases++;
    if (!(e <= 1)) failures.push(`gemmPacked ${M}x${N}x${K} beta=${beta}: ${e.toFixed(1)}× tolerance`);
  }
// Unpacking (an inference model keeps only the packed copy) gives W back bit for bit.
for (const [, N, K] of SHAPES) {
  const W = random(N * K);
  const back = nativeKernels.unpackLinear({ dtype: 'float32', N, K, data: packWeight(W, N, K) });
  cases++;
  if (back.length !== W.length || back.some((v, i) => !Object.is(v, W[i]))) failures.push(`unpackLinear ${N}x${K} is not W`);
}
// bf16: the oracle rounds A and W to bf16 as the kernel does and accumulates in float64, so the same
// float32-accumulation tolerance applies and a wrong tile layout fails.
for (const [M, N, K] of SHAPES)
  for (const beta of [0, 1] as const)
    for (const withBias of [false, true]) {
      const A = random(M * K), W = random(N * K), bias = withBias ? random(N) : null, C0 = random(M * N);
      const got = C0.slice(), want = C0.slice();
      gemmBf16(got, A, packWeightBf16(W, N, K), bias, M, N, K, beta);
      referenceGemmBf16(want, A, W, bias, M, N, K, beta);
      const e = maxExcess(got, want, K);
      cases++;
      if (!(e <= 1)) failures.push(`gemmBf16 ${M}x${N}x${K} beta=${beta} bias=${withBias}: ${e.toFixed(1)}× tolerance`);
    }
// The model's Linear interface (Kernels.packLinear/linear): the native implementation against the reference's,
// per dtype, with the same tolerance (both round A and W to bf16 identically; only accumulation order differs).
for (const [M, N, K] of SHAPES)
  for (const dtype of ['float32', 'bf16'] as const)
    for (const beta of [0, 1] as const) {
      const A = random(M * K), W = random(N * K), bias = random(N), C0 = random(M * N);
      const got = C0.slice(), want = C0.slice();
      nativeKernels.linear(got, A, nativeKernels.packLinear(W, N, K, dtype), bias, M, beta);
      referenceKernels.linear(want, A, referenceKernels.packLinear(W, N, K, dtype), bias, M, beta);
      const e = maxExcess(got, want, K);
      cases++;
      if (!(e <= 1)) failures.push(`linear ${dtype} ${M}x${N}x${K} beta=${beta}: ${e.toFixed(1)}× tolerance`);
    }
// Cache-line-aligned buffers (views at an offset into a larger ArrayBuffer, as the model allocates them).
for (const [M, N, K] of SHAPES) {
  const A = alignedFloat32Array(M * K), W = random(N * K), got = alignedFloat32Array(M * N), want = new Float32Array(M * N);
  A.set(random(M * K));
  gemmPacked(got, A, packWeight(W, N, K), null, M, N, K, 0);
  referenceKernels.gemm(want, A, W, null, M, N, K, false, true, 0);
  cases++;
  if (!(maxExcess(got, want, K) <= 1)) failures.push(`gemmPacked on aligned views ${M}x${N}x${K}`);
}
// beta = 0 must not read C: NaN left in the output buffer may not leak into the result.
for (const [M, N, K] of [[33, 65, 17], [257, 300, 129]]) {
  const A = random(M * K), W = random(N * K);
  const outs = [new Float32Array(M * N).fill(NaN), new Float32Array(M * N).fill(NaN), new Float32Array(M * N).fill(NaN)];
  nativeKernels.gemm(outs[0], A, W, null, M, N, K, false, true, 0);
  gemmPacked(outs[1], A, packWeight(W, N, K), null, M, N, K, 0);
  gemmBf16(outs[2], A, packWeightBf16(W, N, K), null, M, N, K, 0);
  cases++;
  if (!outs.every((o) => o.every(Number.isFinite))) failures.push(`beta=0 read the NaN in C (${M}x${N}x${K})`);
}
const info = nativeInfo();
console.log(JSON.stringify({ isa: info.isa, bf16: info.bf16, threads: info.threads, cases, failures }));
