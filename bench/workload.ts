/**
 * One inference workload in this (fresh) process, as the peer measures it: load the model, give
 * it the workload as a padded batch with its attention mask (what a user of the public API
 * passes), one or more untimed warm-up runs, then timed runs; tokens/s over real tokens.
 */
import { performance } from 'node:perf_hooks';
import { measureFmaPeak, nativeInfo } from '../src/kernels/native.js';
import { kernelsFor, loadConfig, ModernBertModel } from '../src/model/modernbert.js';
import { WeightStore } from '../src/model/weights.js';
import type { ForwardInput } from '../src/model/modernbert.js';
import type { Dtype } from '../src/kernels/types.js';
import { KernelProfile, profiledKernels, weightNames, type KernelStat } from './profile.js';
import type { Peers } from './peers.js';

export interface RunOptions {
  model: string;
  threads: number;
  runs: number;
  warmup: number;
  /**
   * Seconds of the FMA peak probe, run just before and just after the timed runs; the peak is their mean, so a
   * machine that speeds up or slows down during the runs (it is shared) moves both sides of the fraction alike.
   */
  fmaSeconds: number;
  /** Precision of the inference Linears (training workloads run in float32). */
  dtype: Dtype;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export interface WorkloadResult {
  workload: string;
  engine: 'ours';
  available: true;
  dtype: Dtype;
  sequences: number;
  realTokens: number;
  checksum: string;
  threads: number;
  isa: string;
  runs: number;
  warmup: number;
  timesMs: number[];
  tokensPerSec: Summary;
  peakRssMiB: number;
  peakRssAfterLoadMiB: number;
  loadMs: number;
  fmaPeakGflops: number;
  /** FLOPs the model must do, per real token: flops.mjs "minimum" (inference), the counted GEMM and attention FLOPs (training). */
  usefulFlopsPerToken: number;
  /** Training only: mean ms of one step's forward (zeroGrad included), backward and optimiser update. */
  phasesMs?: { forward: number; backward: number; optimizer: number };
  /** Per-kernel totals over the timed runs, divided by the number of runs: one forward (or step). */
  kernels: Record<string, KernelStat>;
  outputFinite: boolean;
}

export interface Unavailable {
  workload: string;
  engine: 'ours';
  available: false;
  reason: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summarize(xs: number[]): Summary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

export const rssMiB = () => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB

/** The profile's totals over `runs` timed runs, divided by `runs`: one forward (or training step). */
export function perRun(profile: KernelProfile, runs: number): Record<string, KernelStat> {
  const out: Record<string, KernelStat> = {};
  for (const [label, s] of profile.stats) out[label] = { calls: s.calls / runs, ms: s.ms / runs, flops: s.flops / runs };
  return out;
}

/** The workload as a right-padded [batch, maxLen] batch plus mask, like the peer feeds ONNX Runtime. */
function paddedInput(ids: number[][], padId: number): ForwardInput {
  const L = Math.max(...ids.map((s) => s.length));
  const inputIds = ids.map((s) => {
    const row = new Int32Array(L).fill(padId);
    row.set(s);
    return row;
  });
  const attentionMask = ids.map((s) => new Int32Array(L).fill(1, 0, s.length));
  return { inputIds, attentionMask };
}

export async function runInference(name: string, peers: Peers, opt: RunOptions): Promise<WorkloadResult> {
  const w = peers.workloads.makeWorkload(name);
  const t0 = performance.now();
  const config = loadConfig(opt.model);
  const store = WeightStore.fromDirectory(opt.model);
  const prefix = store.has('model.embeddings.tok_embeddings.weight') ? 'model.' : '';
  const profile = new KernelProfile();
  // Loaded as fromPretrained loads (packOnLoad), with the profiling kernels.
  const model = new ModernBertModel(config, store, prefix, profiledKernels(kernelsFor({ numThreads: opt.threads }), profile), opt.dtype, true);
  profile.weightNames = weightNames(model.namedParameters(), (p) => model.packedWeight(p));
  const loadMs = performance.now() - t0;
  const rssAfterLoad = rssMiB();

  const input = paddedInput(w.ids, peers.workloads.PAD_ID);
  let finite = true;
  const runOnce = (): number => {
    const t = performance.now();
    const out = model.forward(input);
    const ms = performance.now() - t;
    const y = out.lastHiddenState.data;
    for (let i = 0; i < y.length; i += 997) if (!Number.isFinite(y[i])) finite = false;
    return ms;
  };
  for (let i = 0; i < opt.warmup; i++) {
    const ms = runOnce();
    process.stderr.write(`  [${name}] warm-up ${i + 1}: ${(ms / 1000).toFixed(2)} s\n`);
  }
  const peakBefore = measureFmaPeak(opt.fmaSeconds);
  const times: number[] = [];
  profile.recording = true;
  for (let i = 0; i < opt.runs; i++) {
    const ms = runOnce();
    times.push(ms);
    process.stderr.write(`  [${name}] run ${i + 1}/${opt.runs}: ${(ms / 1000).toFixed(2)} s, ${(w.realTokens / (ms / 1000)).toFixed(1)} real tok/s\n`);
  }
  profile.recording = false;
  const fmaPeakGflops = (peakBefore + measureFmaPeak(opt.fmaSeconds)) / 2;

  const shape = {
    hidden: config.hidden_size,
    inter: config.intermediate_size,
    layers: config.num_hidden_layers,
    globalEvery: config.global_attn_every_n_layers,
    localAttention: config.local_attention,
  };
  return {
    workload: name,
    engine: 'ours',
    available: true,
    dtype: opt.dtype,
    sequences: w.lengths.length,
    realTokens: w.realTokens,
    checksum: '0x' + peers.workloads.checksum(w).toString(16).padStart(8, '0'),
    threads: nativeInfo().threads,
    isa: nativeInfo().isa,
    runs: opt.runs,
    warmup: opt.warmup,
    timesMs: times,
    tokensPerSec: summarize(times.map((ms) => w.realTokens / (ms / 1000))),
    peakRssMiB: rssMiB(),
    peakRssAfterLoadMiB: rssAfterLoad,
    loadMs,
    fmaPeakGflops,
    usefulFlopsPerToken: peers.flops.flops(w.lengths, shape).minimumPerReal,
    kernels: perRun(profile, opt.runs),
    outputFinite: finite,
  };
}
