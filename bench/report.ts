/** The benchmark's printed tables: the machine, throughput and memory per engine, ratios to the peer, per-kernel time. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { InvalidArgumentError } from 'commander';
import type { PeerResult, PeerSkipped } from './peer.js';
import type { FlopCount } from './peers.js';
import type { KernelStat } from './profile.js';
import type { Unavailable, WorkloadResult } from './workload.js';

/** Option parsers of the bench command lines: an integer >= min, a positive number. */
export const int = (min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
  return n;
};
export const positive = (v: string) => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
};

export interface Row {
  workload: string;
  ours: WorkloadResult | Unavailable;
  /** The same workload with bf16 Linears (bench --dtype bf16). */
  oursBf16?: WorkloadResult | Unavailable;
  peer?: PeerResult | PeerSkipped;
  /** flops.mjs counts for the workload's lengths and the model's shape. */
  flops?: FlopCount;
}

/** The issue's targets: ours/peer tokens/s per workload, peak RSS for W3, GEMMs' share of the FMA peak. */
export const TARGETS: Record<string, { speedup: number; maxRssMiB?: number }> = {
  W1: { speedup: 1.5 },
  W2: { speedup: 2.5 },
  W3: { speedup: 5, maxRssMiB: 1.5e9 / 2 ** 20 },
};
export const GEMM_TARGET = 0.8;

export interface Ratios {
  tokensPerSec: number;
  peakRss: number;
  speedupTarget?: number;
  meetsSpeedup?: boolean;
  meetsRss?: boolean;
}

export function ratios(row: Row): Ratios | undefined {
  const { ours, peer } = row;
  if (!ours.available || !peer?.available) return undefined;
  const t = TARGETS[row.workload];
  const tokensPerSec = ours.tokensPerSec.median / peer.tokensPerSec.median;
  return {
    tokensPerSec,
    peakRss: ours.peakRssMiB / peer.peakRssMiB,
    speedupTarget: t?.speedup,
    meetsSpeedup: t ? tokensPerSec >= t.speedup : undefined,
    meetsRss: t?.maxRssMiB !== undefined ? ours.peakRssMiB <= t.maxRssMiB : undefined,
  };
}

/** GEMM totals of one forward: FLOPs, ms and the achieved fraction of the FMA peak. */
export function gemmShare(r: WorkloadResult): { flops: number; ms: number; gflops: number; ofPeak: number } {
  let flops = 0;
  let ms = 0;
  for (const [label, s] of Object.entries(r.kernels))
    if (label.startsWith('gemm')) {
      flops += s.flops;
      ms += s.ms;
    }
  const gflops = ms > 0 ? flops / ms / 1e6 : 0;
  return { flops, ms, gflops, ofPeak: gflops / r.fmaPeakGflops };
}

/** The CPU as /proc/cpuinfo names it, with family/model (virtual machines often hide the marketing name). */
export function cpuName(): string {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '?';
    const flags = new Set(field('flags').split(/\s+/));
    const simd = ['avx2', 'avx512f', 'avx512_bf16', 'amx_tile', 'amx_bf16'].filter((f) => flags.has(f));
    return `${field('model name')} (${field('vendor_id')} family ${field('cpu family')} model ${field('model')}; ${simd.join(' ')})`;
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

const f1 = (x: number) => x.toFixed(1);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const summary = (s: { median: number; min: number; max: number }) => `${f1(s.median)} [${f1(s.min)}, ${f1(s.max)}]`;

export function mainTable(rows: Row[]): string[] {
  const out = ['workload | engine | seqs | real tok | tok/s median [min, max] | peak RSS MiB (after load) | load s | useful GFLOP/s | % of FMA peak',
    '---|---|---|---|---|---|---|---|---'];
  for (const row of rows) {
    let peakGflops: number | undefined;
    for (const [o, engine] of [[row.ours, 'ours'], [row.oursBf16, 'ours bf16']] as const) {
      if (!o) continue;
      if (!o.available) out.push(`${row.workload} | ${engine} | not available: ${o.reason}`);
      else {
        const useful = (o.usefulFlopsPerToken * o.tokensPerSec.median) / 1e9;
        peakGflops ??= o.fmaPeakGflops;
        out.push(`${row.workload} | ${engine} | ${o.sequences} | ${o.realTokens} | ${summary(o.tokensPerSec)} | ${o.peakRssMiB.toFixed(0)} (${o.peakRssAfterLoadMiB.toFixed(0)}) | ` +
          `${(o.loadMs / 1000).toFixed(2)} | ${f1(useful)} | ${pct(useful / o.fmaPeakGflops)}${o.outputFinite ? '' : ' | NON-FINITE OUTPUT'}`);
      }
    }
    const p = row.peer;
    if (!p) continue;
    if (!p.available) out.push(`${row.workload} | onnxruntime | ${p.reason}`);
    else {
      // Useful work is the same for both engines; the peer also computes padding and masked attention.
      const useful = row.flops ? (row.flops.minimumPerReal * p.tokensPerSec.median) / 1e9 : NaN;
      out.push(`${row.workload} | onnxruntime | ${p.sequences} | ${p.realTokens} (${p.paddedPositions} padded) | ${summary(p.tokensPerSec)} | ` +
        `${p.peakRssMiB.toFixed(0)} (${p.peakRssAfterLoadMiB.toFixed(0)}) | ${(p.loadMs / 1000).toFixed(2)} | ${f1(useful)} | ` +
        `${peakGflops ? pct(useful / peakGflops) : '-'}${p.outputFinite ? '' : ' | NON-FINITE OUTPUT'}`);
    }
  }
  return out;
}

export function ratioTable(rows: Row[]): string[] {
  const out = ['workload | tok/s ours/peer | target | peak RSS ours/peer | ours peak RSS MiB | RSS target', '---|---|---|---|---|---'];
  for (const row of rows) {
    const r = ratios(row);
    if (!r) continue;
    const t = TARGETS[row.workload];
    const ok = (b: boolean | undefined) => (b === undefined ? '' : b ? ' (met)' : ' (NOT met)');
    const o = row.ours as WorkloadResult;
    out.push(`${row.workload} | ${r.tokensPerSec.toFixed(2)}x | ${t ? `>= ${t.speedup}x${ok(r.meetsSpeedup)}` : '-'} | ${r.peakRss.toFixed(2)}x | ` +
      `${o.peakRssMiB.toFixed(0)} | ${t?.maxRssMiB ? `<= ${t.maxRssMiB.toFixed(0)}${ok(r.meetsRss)}` : '-'}`);
  }
  return out;
}

/** The issue's bf16 target: W1 in bf16 at >= 3x our own float32 tokens/s. */
export const BF16_TARGET: Record<string, number> = { W1: 3 };

/** bf16 over float32 tokens/s and peak RSS per inference workload run in both. */
export function dtypeTable(rows: Row[]): string[] {
  const out = ['workload | tok/s bf16/float32 | target | peak RSS bf16/float32', '---|---|---|---'];
  for (const row of rows) {
    const [f, b] = [row.ours, row.oursBf16];
    if (!f.available || !b?.available) continue;
    const r = b.tokensPerSec.median / f.tokensPerSec.median;
    const t = BF16_TARGET[row.workload];
    out.push(`${row.workload} | ${r.toFixed(2)}x | ${t ? `>= ${t}x${r >= t ? ' (met)' : ' (NOT met)'}` : '-'} | ${(b.peakRssMiB / f.peakRssMiB).toFixed(2)}x`);
  }
  return out;
}

/** Per-kernel time of one forward, largest first, with GFLOP/s and share of the FMA peak where FLOPs are counted. */
export function kernelTable(r: WorkloadResult): string[] {
  const forwardMs = r.timesMs.reduce((a, b) => a + b, 0) / r.timesMs.length;
  const entries = Object.entries(r.kernels).sort((a, b) => b[1].ms - a[1].ms);
  const kernelMs = entries.reduce((a, [, s]) => a + s.ms, 0);
  const out = [`${r.workload}${r.dtype === 'bf16' ? ' bf16' : ''}: one ${r.phasesMs ? 'step' : 'forward'} ${(forwardMs / 1000).toFixed(3)} s (mean of ${r.runs} timed runs), FMA peak ${f1(r.fmaPeakGflops)} GFLOP/s`,
    `kernel | calls | ms | % of ${r.phasesMs ? 'step' : 'forward'} | GFLOP/s | % of FMA peak`, '---|---|---|---|---|---'];
  if (r.phasesMs) {
    const p = r.phasesMs;
    out.splice(1, 0, `training step: forward ${p.forward.toFixed(0)} ms, backward ${p.backward.toFixed(0)} ms, optimiser ${p.optimizer.toFixed(0)} ms`);
  }
  const line = (label: string, calls: string, ms: number, flops: number) => {
    const g = flops > 0 && ms > 0 ? flops / ms / 1e6 : 0;
    out.push(`${label} | ${calls} | ${ms.toFixed(1)} | ${pct(ms / forwardMs)} | ${g ? f1(g) : '-'} | ${g ? pct(g / r.fmaPeakGflops) : '-'}`);
  };
  for (const [label, s] of entries) line(label, String(s.calls), s.ms, s.flops);
  const g = gemmShare(r);
  line('all GEMMs', '', g.ms, g.flops);
  line(`outside kernels (TypeScript: ${r.phasesMs ? 'loss, optimiser, glue' : 'packing, padding, allocation'})`, '', Math.max(0, forwardMs - kernelMs), 0);
  const glob = r.kernels['attention global'];
  const loc = r.kernels['attention local'];
  if (glob?.calls && loc?.calls) {
    // Per layer, so 8 global and 14 local layers compare directly: a windowed layer should cost its FLOP share.
    const perLayer = (s: KernelStat) => ({ ms: s.ms / s.calls, gflop: s.flops / s.calls / 1e9 });
    const [gl, lo] = [perLayer(glob), perLayer(loc)];
    out.push('', `attention per layer: global ${gl.ms.toFixed(1)} ms for ${gl.gflop.toFixed(2)} GFLOP, local ${lo.ms.toFixed(1)} ms for ` +
      `${lo.gflop.toFixed(2)} GFLOP: a local layer takes ${pct(lo.ms / gl.ms)} of a global one's time for ${pct(lo.gflop / gl.gflop)} of its FLOPs`);
  }
  return out;
}
