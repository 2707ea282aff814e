/**
 * GEMM benchmark: checks the native GEMM against the reference first, then times the model's shapes
 * and prints GFLOP/s and the fraction of the measured FMA peak, for 1 and 2 threads.
 *
 *   node --import tsx bench/gemm.ts [--threads=1,2] [--quick]
 *
 * Shapes: the encoder's Linear layers (transB, PyTorch [out, in] weights) at M = 16384, 8192, 512 tokens
 * (Wqkv 2304×768, attn Wo 768×768, mlp Wi 2304×768, mlp Wo 768×1152), the MLM decoder 50368×768, the
 * same with prepacked weights (gemmPacked), the training GEMMs (dX = dY·W, dW = dYᵀ·X with beta 1), and the
 * bf16 path (gemmBf16: AMX / AVX512-BF16) with its speed-up over float32 on the same shape.
 * GFLOP/s is the best of several runs (the machine is shared: best-of is the least noisy estimate).
 */
import { referenceKernels } from '../src/kernels/reference.js';
import {
  alignedFloat32Array, gemmBf16, gemmPacked, measureFmaPeak, nativeInfo, nativeKernels, packWeight, packWeightBf16, setNumThreads,
} from '../src/kernels/native.js';

const args = process.argv.slice(2);
const threadList = (args.find((a) => a.startsWith('--threads='))?.slice(10) ?? '1,2').split(',').map(Number);
const quick = args.includes('--quick');

function random(n: number, seed: number): Float32Array {
  const out = alignedFloat32Array(n);
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
  // bf16: against float32 on the same data the error is bf16 rounding (2⁻⁹ relative per input).
  const W = random(130 * 301, 5), bfGot = new Float32Array(67 * 130);
  gemmBf16(bfGot, A, packWeightBf16(W, 130, 301), null, 67, 130, 301, 0);
  let bfWorst = 0;
  for (let i = 0; i < bfGot.length; i++) bfWorst = Math.max(bfWorst, Math.abs(bfGot[i] - want[i]));
  if (!(bfWorst < 2e-2)) throw new Error(`native gemmBf16 disagrees with float32: max |diff| ${bfWorst}`);
  console.log(`check: native vs reference, 4 trans combinations × beta 0/1 + packed, max |diff| ${worst.toExponential(2)}; ` +
    `bf16 vs float32 max |diff| ${bfWorst.toExponential(2)} (entries ~1)`);
}

// --- 2. Timing.
interface Case { label: string; M: number; N: number; K: number; run: () => void; verify: () => number }

type Variant = 'fp32' | 'packed' | 'bf16';

function linear(M: number, N: number, K: number, name: string, variant: Variant): Case {
  const A = random(M * K, 11), W = random(N * K, 12), C = alignedFloat32Array(M * N);
  let run = () => nativeKernels.gemm(C, A, W, null, M, N, K, false, true, 0);
  if (variant === 'packed') {
    const Wp = packWeight(W, N, K);
    run = () => gemmPacked(C, A, Wp, null, M, N, K, 0);
  } else if (variant === 'bf16') {
    const Wb = packWeightBf16(W, N, K);
    run = () => gemmBf16(C, A, Wb, null, M, N, K, 0);
  }
  const tol = variant === 'bf16' ? 2e-2 * Math.sqrt(K / 256) : 1e-3;
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
  return { label: `${name}${variant === 'fp32' ? '' : ` ${variant}`}`, M, N, K, run, verify: () => verify() / tol };
}

function training(M: number, N: number, K: number, name: string, transA: boolean): Case {
  // dX[T,in] = dY[T,out]·W[out,in] (no trans); dW[out,in] += dY[T,out]ᵀ·X[T,in] (transA, beta 1).
  const A = random(M * K, 21), B = random(K * N, 22), C = alignedFloat32Array(M * N);
  const run = () => nativeKernels.gemm(C, A, B, null, M, N, K, transA, false, transA ? 1 : 0);
  return { label: name, M, N, K, run, verify: () => 0 };
}

/**
 * Best wall time and best CPU time per thread over several runs. The machine is shared, so besides wall
 * GFLOP/s we report GFLOP per CPU-second of each thread (process CPU time / threads): it does not count
 * time the threads were preempted, and is compared with the FMA peak measured the same way.
 */
function time(c: Case, threads: number): { wall: number; cpu: number } {
  c.run();
  let wall = Infinity, cpu = Infinity, runs = 0;
  const budget = quick ? 0.3 : 1.0;
  const start = performance.now();
  while (runs < 3 || ((performance.now() - start) / 1000 < budget && runs < 50)) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    c.run();
    wall = Math.min(wall, (performance.now() - t0) / 1000);
    const used = process.cpuUsage(c0);
    cpu = Math.min(cpu, (used.user + used.system) / 1e6 / threads);
    runs++;
  }
  return { wall, cpu };
}

function peakGflops(threads: number): { wall: number; cpu: number } {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const g = measureFmaPeak(0.5);
  const wall = (performance.now() - t0) / 1000, used = process.cpuUsage(c0);
  return { wall: g, cpu: (g * wall) / ((used.user + used.system) / 1e6 / threads) };
}

check();
const info = nativeInfo();
console.log(`isa ${info.isa}; features ${Object.entries(info.features).filter(([, v]) => v).map(([k]) => k).join(' ')}`);

const Ms = quick ? [4096, 512] : [16384, 8192, 512];
const layers: [string, number, number][] = [['Wqkv', 2304, 768], ['attn.Wo', 768, 768], ['mlp.Wi', 2304, 768], ['mlp.Wo', 768, 1152]];

for (const threads of threadList) {
  setNumThreads(threads);
  const peak = peakGflops(threads);
  console.log(`\nthreads ${threads}: float32 FMA peak ${peak.wall.toFixed(1)} GFLOP/s wall, ${peak.cpu.toFixed(1)} per CPU-second ` +
    `of each thread; bf16 path ${info.bf16}`);
  console.log('shape'.padEnd(32) + 'M'.padStart(6) + 'N'.padStart(7) + 'K'.padStart(6) +
    '   wall GFLOP/s  %peak   CPU GFLOP/s  %peak  bf16/fp32');
  const cases: Case[] = [];
  for (const M of Ms) for (const [name, N, K] of layers) cases.push(linear(M, N, K, name, 'fp32'));
  for (const M of Ms) for (const [name, N, K] of layers) cases.push(linear(M, N, K, name, 'packed'));
  for (const M of Ms) for (const [name, N, K] of layers) cases.push(linear(M, N, K, name, 'bf16'));
  for (const variant of ['fp32', 'packed', 'bf16'] as const) cases.push(linear(512, 50368, 768, 'decoder', variant));
  for (const variant of ['fp32', 'packed', 'bf16'] as const) cases.push(linear(64, 2304, 768, 'Wqkv, one short sequence', variant));
  const M2 = quick ? 4096 : 8192;
  cases.push(training(M2, 768, 2304, 'dX = dY·W (Wqkv)', false), training(2304, 768, M2, 'dW += dYᵀ·X (Wqkv)', true));
  const fp32Cpu = new Map<string, number>();
  for (const c of cases) {
    const t = time(c, threads);
    const err = c.verify();
    if (!(err < 1)) throw new Error(`${c.label} ${c.M}x${c.N}x${c.K}: spot check off by ${err}× its tolerance`);
    const flop = 2 * c.M * c.N * c.K;
    const wall = flop / t.wall / 1e9, cpu = flop / t.cpu / 1e9;
    const key = `${c.label.replace(/ (packed|bf16)$/, '')} ${c.M}x${c.N}x${c.K}`;
    if (!/ (packed|bf16)$/.test(c.label)) fp32Cpu.set(key, cpu);
    const base = c.label.endsWith(' bf16') ? fp32Cpu.get(key) : undefined;
    console.log(c.label.padEnd(32) + String(c.M).padStart(6) + String(c.N).padStart(7) + String(c.K).padStart(6) +
      wall.toFixed(1).padStart(15) + `${((100 * wall) / peak.wall).toFixed(1)}%`.padStart(8) +
      cpu.toFixed(1).padStart(14) + `${((100 * cpu) / peak.cpu).toFixed(1)}%`.padStart(7) +
      (base ? `${(cpu / base).toFixed(2)}×`.padStart(11) : ''));
  }
}
