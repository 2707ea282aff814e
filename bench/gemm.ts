/**
 * GEMM benchmark: checks the native GEMM against the reference first, then times the model's shapes
 * and prints GFLOP/s and the fraction of the measured FMA peak, for 1 and 2 threads.
 *
 *   node --import tsx bench/gemm.ts [--threads=1,2] [--quick]
 *
 * Shapes: the encoder's Linear layers (transB, PyTorch [out, in] weights) at M = 16384, 8192, 512 tokens
 * (Wqkv 2304×768, attn Wo 768×768, mlp Wi 2304×768, mlp Wo 768×1152), the MLM decoder 50368×768, the
 * same with prepacked weights (gemmPacked), and the training GEMMs (dX = dY·W, dW = dYᵀ·X with beta 1).
 */
import { referenceKernels } from '../src/kernels/reference.js';
import { gemmPacked, measureFmaPeak, nativeInfo, nativeKernels, packWeight, setNumThreads } from '../src/kernels/native.js';

const args = process.argv.slice(2);
const threadList = (args.find((a) => a.startsWith('--threads='))?.slice(10) ?? '1,2').split(',').map(Number);
const quick = args.includes('--quick');

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

// --- 1. Correctness: every trans combination, beta 0/1, bias, against the reference oracle.
function check(): void {
  const [M, N, K] = [67, 130, 301];
  let worst = 0;
  for (const transA of [false, true])
    for (const transB of [false, true])
      for (const beta of [0, 1] as const) {
        const A = random(M * K, 1), B = random(K * N, 2), bias = random(N, 3), C0 = random(M * N, 4);
        const got = C0.slice(), want = C0.slice();
        nativeKernels.gemm(got, A, B, bias, M, N, K, transA, transB, beta);
        referenceKernels.gemm(want, A, B, bias, M, N, K, transA, transB, beta);
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      }
  const Wp = packWeight(random(130 * 301, 5), 130, 301);
  const A = random(67 * 301, 6), got = new Float32Array(67 * 130), want = new Float32Array(67 * 130);
  gemmPacked(got, A, Wp, null, 67, 130, 301, 0);
  referenceKernels.gemm(want, A, random(130 * 301, 5), null, 67, 130, 301, false, true, 0);
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  // |entries| ~ sqrt(K)/12 ≈ 1.4; float32 accumulation error ~ 1e-6 relative.
  if (!(worst < 1e-4)) throw new Error(`native gemm disagrees with the reference: max |diff| ${worst}`);
  console.log(`check: native vs reference, 4 trans combinations × beta 0/1 + packed, max |diff| ${worst.toExponential(2)}`);
}

// --- 2. Timing.
interface Case { label: string; M: number; N: number; K: number; run: () => void; verify: () => number }

function linear(M: number, N: number, K: number, name: string, packed: boolean): Case {
  const A = random(M * K, 11), W = random(N * K, 12), C = new Float32Array(M * N);
  const Wp = packed ? packWeight(W, N, K) : null;
  const run = Wp ? () => gemmPacked(C, A, Wp, null, M, N, K, 0) : () => nativeKernels.gemm(C, A, W, null, M, N, K, false, true, 0);
  // Spot-check a few entries of the timed product in float64.
  const verify = () => {
    let worst = 0;
    for (const [i, j] of [[0, 0], [M - 1, N - 1], [M >> 1, N >> 1], [M - 1, 0]]) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[i * K + k] * W[j * K + k];
      worst = Math.max(worst, Math.abs(C[i * N + j] - s));
    }
    return worst;
  };
  return { label: `${name}${packed ? ' packed' : ''}`, M, N, K, run, verify };
}

function training(M: number, N: number, K: number, name: string, transA: boolean): Case {
  // dX[T,in] = dY[T,out]·W[out,in] (no trans); dW[out,in] += dY[T,out]ᵀ·X[T,in] (transA, beta 1).
  const A = random(M * K, 21), B = random(K * N, 22), C = new Float32Array(M * N);
  const run = () => nativeKernels.gemm(C, A, B, null, M, N, K, transA, false, transA ? 1 : 0);
  return { label: name, M, N, K, run, verify: () => 0 };
}

function time(c: Case): number {
  c.run();
  const times: number[] = [];
  const budget = quick ? 0.3 : 1.0;
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start) / 1000 < budget) {
    const t0 = performance.now();
    c.run();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 50) break;
  }
  return Math.min(...times);
}

check();
const info = nativeInfo();
console.log(`isa ${info.isa}; features ${Object.entries(info.features).filter(([, v]) => v).map(([k]) => k).join(' ')}`);

const Ms = quick ? [4096, 512] : [16384, 8192, 512];
const layers: [string, number, number][] = [['Wqkv', 2304, 768], ['attn.Wo', 768, 768], ['mlp.Wi', 2304, 768], ['mlp.Wo', 768, 1152]];

for (const threads of threadList) {
  setNumThreads(threads);
  const peak = measureFmaPeak(0.5);
  console.log(`\nthreads ${threads}: measured FMA peak ${peak.toFixed(1)} GFLOP/s`);
  console.log('shape'.padEnd(26) + 'M'.padStart(7) + 'N'.padStart(7) + 'K'.padStart(6) + '  GFLOP/s  % peak');
  const cases: Case[] = [];
  for (const M of Ms) for (const [name, N, K] of layers) cases.push(linear(M, N, K, name, false));
  for (const [name, N, K] of layers) cases.push(linear(Ms[Ms.length - 1], N, K, name, true));
  cases.push(linear(512, 50368, 768, 'decoder', false), linear(512, 50368, 768, 'decoder', true));
  if (!quick) cases.push(linear(2048, 50368, 768, 'decoder', true));
  cases.push(linear(64, 2304, 768, 'Wqkv (short sequence)', false), linear(64, 2304, 768, 'Wqkv (short sequence)', true));
  cases.push(training(Ms[1] ?? 4096, 768, 2304, 'dX = dY·Wqkv', false), training(2304, 768, Ms[1] ?? 4096, 'dW += dYᵀ·X (Wqkv)', true));
  for (const c of cases) {
    const seconds = time(c);
    const err = c.verify();
    if (!(err < 1e-3)) throw new Error(`${c.label} ${c.M}x${c.N}x${c.K}: spot check off by ${err}`);
    const gflops = (2 * c.M * c.N * c.K) / seconds / 1e9;
    console.log(c.label.padEnd(26) + String(c.M).padStart(7) + String(c.N).padStart(7) + String(c.K).padStart(6) +
      gflops.toFixed(1).padStart(9) + `${((100 * gflops) / peak).toFixed(1)}%`.padStart(8));
  }
}
