/**
 * T1, the training step, in this (fresh) process: masked LM (T1-mlm) or sequence classification
 * (T1-cls) on the first 8 sequences of W1 packed into 8 × 512 = 4096 tokens; one step is zeroGrad,
 * forward with labels, loss.backward() and an AdamW update, as the Trainer does it. tokens/s counts
 * the 4096 tokens per step. The forward, backward and optimiser are also timed apart.
 */
import { performance } from 'node:perf_hooks';
import { measureFmaPeak, nativeInfo } from '../src/kernels/native.js';
import type { Kernels } from '../src/kernels/types.js';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification, type TaskOutput } from '../src/model/heads.js';
import { maskTokens } from '../src/train/data.js';
import { AdamW } from '../src/train/optim.js';
import { Rng } from '../src/train/random.js';
import type { Peers } from './peers.js';
import { KernelProfile, profiledKernels, weightNames } from './profile.js';
import { perRun, rssMiB, summarize, type RunOptions, type WorkloadResult } from './workload.js';

export const TRAINING_WORKLOADS = ['T1-mlm', 'T1-cls'];
/** `--workloads T1` means both tasks. */
export const ALIASES: Record<string, string[]> = { T1: TRAINING_WORKLOADS };

const SEQUENCES = 8;
const MASK_ID = 50284; // [MASK] in the ModernBERT tokenizer
const SEED = 0x4d425431;

export async function runTraining(name: string, peers: Peers, opt: RunOptions): Promise<WorkloadResult> {
  const w1 = peers.workloads.makeWorkload('W1');
  const seqs = w1.ids.slice(0, SEQUENCES);
  const cuSeqlens = Int32Array.from([0, ...seqs.map((_, i) => seqs.slice(0, i + 1).reduce((a, s) => a + s.length, 0))]);
  const ids = Int32Array.from(seqs.flat());
  const T = ids.length;

  const t0 = performance.now();
  const options = { numThreads: opt.threads };
  const task = name === 'T1-mlm'
    ? await ModernBertForMaskedLM.fromPretrained(opt.model, options)
    : await ModernBertForSequenceClassification.fromPretrained(opt.model, { ...options, numLabels: 2 });
  const profile = new KernelProfile();
  // The task model reads its kernels (forward and backward) from the encoder at every call.
  (task.model as { kernels: Kernels }).kernels = profiledKernels(task.model.kernels, profile);
  task.train();
  const optimizer = new AdamW(task.parameters(), { lr: 1e-5 });
  profile.weightNames = weightNames(task.namedParameters());
  const loadMs = performance.now() - t0;
  const rssAfterLoad = rssMiB();

  let forward: () => TaskOutput;
  if (task instanceof ModernBertForMaskedLM) {
    // Decode only the masked tokens, as the Trainer does by default (HF's sparse_prediction).
    task.sparsePrediction = true;
    const c = task.config;
    const special = [c.cls_token_id, c.sep_token_id, c.pad_token_id];
    const masked = maskTokens(ids, { maskTokenId: MASK_ID, vocabSize: c.vocab_size, specialIds: special }, new Rng(SEED));
    forward = () => task.forwardPacked({ inputIds: masked.inputIds, cuSeqlens, labels: masked.labels });
  } else {
    const labels = Int32Array.from(seqs, (_, i) => i % 2);
    forward = () => task.forwardPacked({ inputIds: ids, cuSeqlens, labels });
  }

  const phases = { forward: 0, backward: 0, optimizer: 0 };
  let finite = true;
  const step = (): number => {
    const t0 = performance.now();
    task.zeroGrad();
    const loss = forward().loss!;
    const t1 = performance.now();
    loss.backward();
    const t2 = performance.now();
    optimizer.step();
    const t3 = performance.now();
    if (!Number.isFinite(loss.item())) finite = false;
    phases.forward += t1 - t0;
    phases.backward += t2 - t1;
    phases.optimizer += t3 - t2;
    return t3 - t0;
  };
  for (let i = 0; i < opt.warmup; i++) process.stderr.write(`  [${name}] warm-up ${i + 1}: ${(step() / 1000).toFixed(2)} s\n`);
  const peakBefore = measureFmaPeak(opt.fmaSeconds); // and after: see RunOptions.fmaSeconds
  Object.assign(phases, { forward: 0, backward: 0, optimizer: 0 });
  const times: number[] = [];
  profile.recording = true;
  for (let i = 0; i < opt.runs; i++) {
    const ms = step();
    times.push(ms);
    process.stderr.write(`  [${name}] step ${i + 1}/${opt.runs}: ${(ms / 1000).toFixed(2)} s, ${(T / (ms / 1000)).toFixed(1)} tok/s\n`);
  }
  profile.recording = false;
  const fmaPeakGflops = (peakBefore + measureFmaPeak(opt.fmaSeconds)) / 2;

  const kernels = perRun(profile, opt.runs);
  const counted = Object.values(kernels).reduce((a, s) => a + s.flops, 0);
  return {
    workload: name,
    engine: 'ours',
    available: true,
    dtype: 'float32',
    sequences: SEQUENCES,
    realTokens: T,
    checksum: '0x' + peers.workloads.checksum({ ...w1, ids: seqs, lengths: seqs.map((s) => s.length) }).toString(16).padStart(8, '0'),
    threads: nativeInfo().threads,
    isa: nativeInfo().isa,
    runs: opt.runs,
    warmup: opt.warmup,
    timesMs: times,
    tokensPerSec: summarize(times.map((ms) => T / (ms / 1000))),
    peakRssMiB: rssMiB(),
    peakRssAfterLoadMiB: rssAfterLoad,
    loadMs,
    fmaPeakGflops,
    usefulFlopsPerToken: counted / T,
    phasesMs: { forward: phases.forward / opt.runs, backward: phases.backward / opt.runs, optimizer: phases.optimizer / opt.runs },
    kernels,
    outputFinite: finite,
  };
}
