/**
 * Attention at long context: one sequence of T tokens (default 8192, ModernBERT-base heads: H=12, Dh=64),
 * a global layer and a local layer (window 64, i.e. local_attention 128) timed separately, forward and backward,
 * against their FLOP counts, and the bf16 forward (dtype 'bf16' inference; float32 where the CPU lacks
 * AVX512-BF16). Validates the native kernels against the reference on a short sequence first.
 * Usage: node --import tsx bench/attention.ts [--tokens 8192] [--reps 3] [--threads N]
 */
import { nativeInfo, nativeKernels, setNumThreads } from '../src/kernels/native.js';
import { referenceKernels } from '../src/kernels/reference.js';
import { cuSeqlensOf, expectClose, randn } from '../test/kernels/kernel-checks.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const T = arg('tokens', 8192);
const reps = arg('reps', 3);
const H = 12;
const Dh = 64;
const hidden = H * Dh;
const scale = 1 / Math.sqrt(Dh);
if (process.argv.includes('--threads')) setNumThreads(arg('threads', 0));

// Validate first: a 300-token sequence, both patterns, forward and backward.
{
  const n = 300;
  const cu = cuSeqlensOf([n]);
  const qkv = randn(n * 3 * hidden, 1);
  const dout = randn(n * hidden, 2);
  for (const window of [-1, 64]) {
    const out = new Float32Array(n * hidden), lse = new Float32Array(H * n);
    const ro = new Float32Array(n * hidden), rl = new Float32Array(H * n);
    nativeKernels.attention(out, lse, qkv, cu, 1, H, Dh, window, scale, false);
    referenceKernels.attention(ro, rl, qkv, cu, 1, H, Dh, window, scale, false);
    expectClose('out', out, ro, 1e-5, 1e-5);
    const g = new Float32Array(n * 3 * hidden), rg = new Float32Array(n * 3 * hidden);
    nativeKernels.attentionBackward(g, dout, qkv, ro, rl, cu, 1, H, Dh, window, scale);
    referenceKernels.attentionBackward(rg, dout, qkv, ro, rl, cu, 1, H, Dh, window, scale);
    expectClose('dqkv', g, rg, 2e-5, 2e-5);
    // bf16: within u·max|v| (u = 2⁻⁸) of the bf16 reference, which leaves the softmax numerators unrounded.
    let vmax = 0;
    for (let t = 0; t < n; t++) for (let d = 0; d < hidden; d++) vmax = Math.max(vmax, Math.abs(qkv[t * 3 * hidden + 2 * hidden + d]));
    nativeKernels.attention(out, null, qkv, cu, 1, H, Dh, window, scale, true);
    referenceKernels.attention(ro, null, qkv, cu, 1, H, Dh, window, scale, true);
    expectClose('bf16 out', out, ro, 2 ** -8 * vmax * (1 + 2 ** -8) + 1e-5, 1e-5);
  }
}

const info = nativeInfo();
console.log(`attention bench: T=${T} H=${H} Dh=${Dh}, isa ${info.isa}, bf16 attention ${info.bf16Attention}, ${info.threads} threads`);

const cu = cuSeqlensOf([T]);
const qkv = randn(T * 3 * hidden, 3);
const dout = randn(T * hidden, 4);
const out = new Float32Array(T * hidden);
const lse = new Float32Array(H * T);
const dqkv = new Float32Array(T * 3 * hidden);

// Median wall time and the CPU time of that same run. The machine is shared, so CPU seconds (all threads)
// show the kernel's own efficiency better than wall time when other processes compete for the cores.
function median(f: () => void): { wall: number; cpu: number } {
  f();  // warm-up
  const runs: { wall: number; cpu: number }[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    f();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    runs.push({ wall, cpu: (c.user + c.system) / 1e6 });
  }
  return runs.sort((a, b) => a.wall - b.wall)[Math.floor(runs.length / 2)];
}

// Visible (query, key) pairs; each costs 2·Dh FLOPs for q·k and 2·Dh for p·v (4·Dh forward, 10·Dh backward).
function pairs(window: number): number {
  if (window < 0) return T * T;
  let p = 0;
  for (let i = 0; i < T; i++) p += Math.min(T, i + window + 1) - Math.max(0, i - window);
  return p;
}

type Timing = { wall: number; cpu: number };
const rows: { layer: string; fwd: Timing; bwd: Timing; bf16: Timing; fwdFlops: number; bwdFlops: number }[] = [];
for (const [layer, window] of [['global', -1], ['local (window 64)', 64]] as const) {
  // The bf16 forward as inference runs it: no lse.
  const bf16 = median(() => nativeKernels.attention(out, null, qkv, cu, 1, H, Dh, window, scale, true));
  const fwd = median(() => nativeKernels.attention(out, lse, qkv, cu, 1, H, Dh, window, scale, false));
  const bwd = median(() => nativeKernels.attentionBackward(dqkv, dout, qkv, out, lse, cu, 1, H, Dh, window, scale));
  const p = pairs(window) * H;
  rows.push({ layer, fwd, bwd, bf16, fwdFlops: 4 * Dh * p, bwdFlops: 10 * Dh * p });
}
const fmt = (flops: number, t: Timing) =>
  `${(t.wall * 1e3).toFixed(1).padStart(8)} ms ${(flops / t.wall / 1e9).toFixed(1).padStart(6)} GFLOP/s wall, ` +
  `${(flops / t.cpu / 1e9).toFixed(1).padStart(6)} GFLOP per CPU-second`;
for (const r of rows) {
  console.log(`${r.layer.padEnd(18)} forward  ${fmt(r.fwdFlops, r.fwd)}`);
  console.log(`${''.padEnd(18)} backward ${fmt(r.bwdFlops, r.bwd)}`);
  console.log(`${''.padEnd(18)} bf16 fwd ${fmt(r.fwdFlops, r.bf16)}  (bf16/float32 time ${(r.bf16.wall / r.fwd.wall).toFixed(3)}, ` +
    `CPU ${(r.bf16.cpu / r.fwd.cpu).toFixed(3)})`);
}
const [g, l] = rows;
console.log(`local/global time: forward ${(l.fwd.wall / g.fwd.wall).toFixed(4)} (CPU ${(l.fwd.cpu / g.fwd.cpu).toFixed(4)}), ` +
  `backward ${(l.bwd.wall / g.bwd.wall).toFixed(4)} (CPU ${(l.bwd.cpu / g.bwd.cpu).toFixed(4)}); FLOP ratio ${(l.fwdFlops / g.fwdFlops).toFixed(4)}`);
