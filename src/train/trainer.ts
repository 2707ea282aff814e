/**
 * The training loop for masked LM, sequence classification (single-label, multi-label, regression) and
 * token classification: seeded shuffling, greedy packing into micro-batches by token budget, gradient
 * accumulation (with optional batch-size warmup), clipping, AdamW or StableAdamW with a schedule,
 * evaluation every N steps, a progress bar, a JSONL log of every step, atomic checkpoints and exact resume.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { ProblemType } from '../config/config.js';
import {
  ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification, type SequenceLabels,
} from '../model/heads.js';
import { Tensor } from '../tensor/tensor.js';
import {
  latestCheckpoint, loadCheckpoint, loadParametersInto, pruneCheckpoints, saveCheckpoint, saveModel, type TrainerState,
} from './checkpoint.js';
import {
  collate, maskTokens, type MaskingOptions, packByTokens, packStream, type PackedMicroBatch, permutation, type Sequence, shuffleStream,
} from './data.js';
import { IGNORE_INDEX, TrainingError } from './losses.js';
import { accuracy, argmax, f1, matthews, pearson, spearman } from './metrics.js';
import { AdamW, clipGradNorm, scaleGradients, StableAdamW } from './optim.js';
import { Rng } from './random.js';
import { batchSizeAt, type BatchSizeWarmup, checkSchedule, learningRate, type ScheduleOptions } from './schedule.js';

export type TrainableModel = ModernBertForMaskedLM | ModernBertForSequenceClassification | ModernBertForTokenClassification;

export interface TrainerOptions {
  /** Where checkpoints, the final model and log.jsonl go. */
  outputDir: string;
  /** Passes over the training set (default 1); `maxSteps` overrides it. */
  epochs?: number;
  maxSteps?: number;
  /** Token budget of one micro-batch (default 4096): sequences are packed greedily up to it. */
  maxTokensPerBatch?: number;
  /** Micro-batches per optimiser step (default 1). */
  gradAccumulation?: number;
  /** Grows the micro-batches per step from `start` to `end` over `warmupTokens` (needs maxSteps). */
  batchSizeWarmup?: BatchSizeWarmup;
  optimizer?: 'adamw' | 'stable-adamw';
  lr?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  /** The schedule after warmup (default linear, no warmup); totalSteps is filled in. */
  schedule?: Omit<ScheduleOptions, 'lr' | 'totalSteps'>;
  /** Clip gradients to this global norm (default 1; 0 turns clipping off). */
  maxGradNorm?: number;
  /** Evaluate every N steps (0: only at the end; needs an eval set). */
  evalEvery?: number;
  /** Save a resumable checkpoint every N steps (0: only at the end). */
  saveEvery?: number;
  /** Checkpoints to keep (default: all). */
  saveTotalLimit?: number;
  seed?: number;
  /** MLM masking (MLM only): [MASK] id, special ids, probability (default 0.3). */
  masking?: Omit<MaskingOptions, 'vocabSize'>;
  /** MLM evaluation masking probability (default: the training one; BERT-style reports use 0.15). */
  evalMaskProbability?: number;
  /** A NaN or infinite loss: throw (default) or skip that step's update. */
  onNonFinite?: 'error' | 'skip';
  /** Show a progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** Tokenizer folder whose files are copied into every checkpoint. */
  tokenizerDir?: string;
  /** A checkpoint folder to resume from, or 'latest': the newest checkpoint in outputDir (none: start fresh). */
  resumeFrom?: string;
  /** MLM: decode only the masked tokens (HF's sparse_prediction; default true, ~70 % of the decoder saved). */
  sparsePrediction?: boolean;
  /** Called with every log record (also written to log.jsonl). */
  onLog?: (record: LogRecord) => void;
  /** Streaming data: sequences held by the shuffle buffer (default 10 000). */
  shuffleBuffer?: number;
}

export type LogRecord = Record<string, number | string | boolean>;

/**
 * Training data: sequences in memory (shuffled by a seeded permutation each epoch), or a function opening
 * a fresh stream of them per epoch (a corpus larger than memory: shuffled through a seeded buffer of
 * `shuffleBuffer` sequences, packed as it streams; needs maxSteps). Resuming replays the stream to the saved
 * micro-batch, so the stream must yield the same sequences in the same order each time it is opened.
 */
export type TrainingData = Sequence[] | (() => AsyncIterable<Sequence>);

/** splitmix-style mix of integers into a 32-bit seed: per-micro-batch streams that do not depend on history. */
function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export class Trainer {
  readonly model: TrainableModel;
  readonly optimizer: AdamW;
  readonly options: TrainerOptions;
  private readonly train: TrainingData;
  private readonly evalSet: Sequence[];
  state: TrainerState;
  private readonly schedule: ScheduleOptions;
  private readonly totalSteps: number;
  private readonly logPath: string;

  constructor(model: TrainableModel, train: TrainingData, evalSet: Sequence[] | null, options: TrainerOptions) {
    if (Array.isArray(train) && train.length === 0) throw new TrainingError('the training set is empty');
    if (!Array.isArray(train) && options.maxSteps === undefined) throw new TrainingError('streaming training data needs maxSteps');
    this.model = model;
    this.train = train;
    this.evalSet = evalSet ?? [];
    this.options = options;
    if (Array.isArray(train)) train.forEach((s, i) => this.check(s, 'training', i));
    this.evalSet.forEach((s, i) => this.check(s, 'evaluation', i));
    if (model instanceof ModernBertForMaskedLM) {
      if (!options.masking) throw new TrainingError('masked LM training needs `masking` (maskTokenId, specialIds)');
      model.sparsePrediction = options.sparsePrediction ?? true;
    }
    if (options.batchSizeWarmup && options.maxSteps === undefined) throw new TrainingError('batchSizeWarmup needs maxSteps');
    model.train();
    const opt = { lr: options.lr ?? 5e-5, weightDecay: options.weightDecay ?? 0.01, betas: options.betas, eps: options.eps, kernels: model.model.kernels };
    const params = model.parameters();
    this.optimizer = options.optimizer === 'stable-adamw' ? new StableAdamW(params, opt) : new AdamW(params, opt);
    const seed = options.seed ?? 42;
    model.manualSeed(seed);
    this.state = { step: 0, epoch: 0, microInEpoch: 0, tokensSeen: 0, rngState: model.model.rng.state, seed };
    this.totalSteps = options.maxSteps ?? (options.epochs ?? 1) * Math.ceil(this.plan(train as Sequence[], 0).length / (options.gradAccumulation ?? 1));
    this.schedule = { type: 'linear', ...options.schedule, lr: opt.lr, totalSteps: this.totalSteps };
    checkSchedule(this.schedule);
    mkdirSync(options.outputDir, { recursive: true });
    this.logPath = join(options.outputDir, 'log.jsonl');
    const from = options.resumeFrom === 'latest' ? latestCheckpoint(options.outputDir) : options.resumeFrom;
    if (from) this.resume(from);
  }

  private get budget(): number {
    return this.options.maxTokensPerBatch ?? 4096;
  }

  /** A sequence the model can take: not empty, within the token budget and max_position_embeddings. */
  private check(s: Sequence, what: string, i: number): void {
    const limit = Math.min(this.budget, this.model.config.max_position_embeddings);
    if (s.ids.length === 0) throw new TrainingError(`${what} sequence ${i} is empty`);
    if (s.ids.length > limit)
      throw new TrainingError(`${what} sequence ${i} has ${s.ids.length} tokens, more than ${limit} (the token budget or max_position_embeddings): truncate it`);
  }

  /** The micro-batches (sequence indices) of an in-memory epoch: a seeded permutation, packed greedily. */
  private plan(train: Sequence[], epoch: number): number[][] {
    const order = permutation(train.length, mixSeed(this.state.seed, epoch));
    return packByTokens(order.map((i) => train[i].ids.length), this.budget).map((b) => b.map((j) => order[j]));
  }

  /** The micro-batches of an epoch, in order (in memory: the plan; streaming: shuffled and packed on the fly). */
  private async *microBatches(epoch: number): AsyncGenerator<Sequence[]> {
    const train = this.train;
    if (Array.isArray(train)) {
      for (const b of this.plan(train, epoch)) yield b.map((i) => train[i]);
      return;
    }
    let n = 0;
    const checked = async function* (self: Trainer, source: AsyncIterable<Sequence>) {
      for await (const s of source) {
        self.check(s, 'training', n++);
        yield s;
      }
    };
    const shuffled = shuffleStream(checked(this, train()), this.options.shuffleBuffer ?? 10000, new Rng(mixSeed(this.state.seed, epoch)));
    yield* packStream(shuffled, this.budget);
  }

  private resume(dir: string): void {
    loadParametersInto(this.model, dir);
    const { state, optimizer } = loadCheckpoint(dir);
    this.optimizer.loadState(optimizer);
    this.state = state;
    this.model.model.rng.state = state.rngState;
  }

  private microBatchesPerStep(): number {
    const w = this.options.batchSizeWarmup;
    return w ? batchSizeAt(w, this.state.tokensSeen) : (this.options.gradAccumulation ?? 1);
  }

  /** Labels of a micro-batch in the form the model's packed forward takes. */
  private labelsFor(mb: PackedMicroBatch, seqs: Sequence[], epoch: number, index: number): { inputIds: Int32Array; labels: Int32Array | SequenceLabels } {
    const m = this.model;
    if (m instanceof ModernBertForMaskedLM) {
      const rng = new Rng(mixSeed(this.state.seed, epoch, index, 1));
      const { inputIds, labels } = maskTokens(mb.inputIds, { ...this.options.masking!, vocabSize: m.config.vocab_size }, rng);
      return { inputIds, labels };
    }
    if (m instanceof ModernBertForTokenClassification) {
      if (!mb.tokenLabels) throw new TrainingError('token classification sequences need tokenLabels');
      return { inputIds: mb.inputIds, labels: mb.tokenLabels };
    }
    if (seqs.some((s) => s.label === undefined)) throw new TrainingError('sequence classification needs a label on every sequence');
    return { inputIds: mb.inputIds, labels: sequenceLabels(mb.labels!, this.problemType()) };
  }

  problemType(): ProblemType {
    const c = this.model.config;
    if (c.problem_type) return c.problem_type;
    if (c.num_labels === 1) return 'regression';
    const first = Array.isArray(this.train) ? this.train[0] : this.evalSet[0];
    return Array.isArray(first?.label) ? 'multi_label_classification' : 'single_label_classification';
  }

  private log(record: LogRecord): void {
    appendFileSync(this.logPath, `${JSON.stringify(record)}\n`);
    this.options.onLog?.(record);
  }

  /** Trains to the end (maxSteps or epochs); returns the final state. */
  async fit(): Promise<TrainerState> {
    const o = this.options;
    const bar = (o.progress ?? process.stderr.isTTY)
      ? new cliProgress.SingleBar({
        format: 'train |{bar}| {value}/{total} steps | loss {loss} | lr {lr} | {tps} tok/s | eta {eta_formatted}',
        stream: process.stderr,
      }, cliProgress.Presets.shades_classic)
      : null;
    bar?.start(this.totalSteps, this.state.step, { loss: '-', lr: '-', tps: '-' });
    const started = Date.now();
    let tokensThisRun = 0;
    try {
      while (this.state.step < this.totalSteps) {
        const batches = this.microBatches(this.state.epoch);
        // Resume position: skip the micro-batches already consumed in this epoch.
        let micro = 0;
        let ended = false;
        while (micro < this.state.microInEpoch && !(await batches.next()).done) micro++;
        while (!ended && this.state.step < this.totalSteps) {
          const group: Sequence[][] = [];
          for (let want = this.microBatchesPerStep(); group.length < want;) {
            const next = await batches.next();
            if (next.done) {
              ended = true;
              break;
            }
            group.push(next.value);
          }
          if (group.length === 0) break;
          const t0 = Date.now();
          const r = this.step(group, micro);
          micro += group.length;
          this.state.step++;
          this.state.microInEpoch = micro;
          this.state.tokensSeen += r.tokens;
          this.state.rngState = this.model.model.rng.state;
          tokensThisRun += r.tokens;
          const dt = (Date.now() - t0) / 1000;
          this.log({
            type: 'train', step: this.state.step, epoch: this.state.epoch, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm,
            tokens: r.tokens, tokens_per_s: Math.round(r.tokens / Math.max(dt, 1e-6)), skipped: r.skipped,
            elapsed_s: (Date.now() - started) / 1000,
          });
          bar?.update(this.state.step, {
            loss: r.loss.toFixed(4), lr: r.lr.toExponential(2),
            tps: Math.round(tokensThisRun / Math.max((Date.now() - started) / 1000, 1e-6)),
          });
          if (o.evalEvery && this.evalSet.length && this.state.step % o.evalEvery === 0) this.evaluateAndLog();
          if (o.saveEvery && this.state.step % o.saveEvery === 0) this.checkpoint();
        }
        if (ended) {
          if (micro === 0) throw new TrainingError(`the training data yielded no sequence in epoch ${this.state.epoch}`);
          this.state.epoch++;
          this.state.microInEpoch = 0;
        }
      }
    } finally {
      bar?.stop();
    }
    if (this.evalSet.length && !(o.evalEvery && this.state.step % o.evalEvery === 0)) this.evaluateAndLog();
    if (!(o.saveEvery && this.state.step % o.saveEvery === 0)) this.checkpoint();
    saveModel(this.model, o.outputDir, o.tokenizerDir);
    return this.state;
  }

  /** One optimiser step over the micro-batches `group`, the first being micro-batch `from` of the epoch. */
  private step(group: Sequence[][], from: number) {
    const o = this.options;
    const m = this.model;
    m.zeroGrad();
    let lossSum = 0;
    let tokens = 0;
    let used = 0;
    let bad: number | null = null;
    for (let j = 0; j < group.length; j++) {
      const seqs = group[j];
      const mb = collate(seqs);
      const { inputIds, labels } = this.labelsFor(mb, seqs, this.state.epoch, from + j);
      tokens += mb.numTokens;
      // A masked-LM micro-batch where masking selected no token has no loss (0/0): it contributes nothing.
      if (m instanceof ModernBertForMaskedLM && (labels as Int32Array).every((l) => l === IGNORE_INDEX)) continue;
      const out = (m as ModernBertForSequenceClassification).forwardPacked({ inputIds, cuSeqlens: mb.cuSeqlens, labels: labels as SequenceLabels });
      const loss = out.loss!;
      if (!Number.isFinite(loss.item())) {
        bad = loss.item();
        if ((o.onNonFinite ?? 'error') === 'error')
          throw new TrainingError(`loss is ${loss.item()} at step ${this.state.step + 1} (epoch ${this.state.epoch}, micro-batch ${from + j}): lower the learning rate, check the labels, or set onNonFinite: 'skip'`);
        continue;
      }
      lossSum += loss.item();
      used++;
      loss.backward();
    }
    const lr = learningRate(this.schedule, this.state.step);
    if (bad !== null || used === 0) {
      m.zeroGrad();
      return { loss: bad ?? NaN, lr, gradNorm: 0, tokens, skipped: true };
    }
    scaleGradients(m.parameters(), 1 / used, m.model.kernels);
    const maxNorm = o.maxGradNorm ?? 1;
    const gradNorm = maxNorm > 0 ? clipGradNorm(m.parameters(), maxNorm, m.model.kernels) : 0;
    this.optimizer.step(lr);
    return { loss: lossSum / used, lr, gradNorm, tokens, skipped: false };
  }

  /** Saves a resumable checkpoint now; returns its folder. */
  checkpoint(): string {
    const o = this.options;
    const dir = saveCheckpoint(o.outputDir, this.model, this.optimizer.state(), { ...this.state }, o.tokenizerDir);
    if (o.saveTotalLimit) pruneCheckpoints(o.outputDir, o.saveTotalLimit);
    return dir;
  }

  private evaluateAndLog(): void {
    this.log({ type: 'eval', step: this.state.step, ...this.evaluate() });
  }

  /** Metrics on the evaluation set (eval mode: no dropout), then back to training mode. */
  evaluate(): Record<string, number> {
    const m = this.model;
    m.eval();
    try {
      const batches = packByTokens(this.evalSet.map((s) => s.ids.length), this.budget);
      if (m instanceof ModernBertForMaskedLM) return this.evaluateMlm(m, batches);
      if (m instanceof ModernBertForTokenClassification) return this.evaluateTokens(m, batches);
      return this.evaluateSequences(m, batches);
    } finally {
      m.train();
    }
  }

  private evaluateMlm(m: ModernBertForMaskedLM, batches: number[][]): Record<string, number> {
    let nll = 0;
    let count = 0;
    let correct = 0;
    batches.forEach((b, bi) => {
      const mb = collate(b.map((i) => this.evalSet[i]));
      // Fixed masking seed: every evaluation sees the same masked positions.
      const masking = { ...this.options.masking!, vocabSize: m.config.vocab_size };
      if (this.options.evalMaskProbability !== undefined) masking.probability = this.options.evalMaskProbability;
      const { inputIds, labels } = maskTokens(mb.inputIds, masking, new Rng(mixSeed(this.state.seed, bi, 2)));
      const out = m.forwardPacked({ inputIds, cuSeqlens: mb.cuSeqlens, labels });
      const n = labels.reduce((s, l) => s + (l === IGNORE_INDEX ? 0 : 1), 0);
      if (n === 0) return;
      nll += out.loss!.item() * n;
      count += n;
      // Logits rows: every token, or (sparse prediction) the labelled tokens in order.
      const rows = out.logits.dims[0];
      const pred = argmax(out.logits.data, rows, m.config.vocab_size);
      const gold = rows === labels.length ? labels : labels.filter((l) => l !== IGNORE_INDEX);
      gold.forEach((l, r) => {
        if (l !== IGNORE_INDEX && pred[r] === l) correct++;
      });
    });
    return { eval_loss: nll / count, perplexity: Math.exp(nll / count), mlm_accuracy: correct / count };
  }

  private evaluateTokens(m: ModernBertForTokenClassification, batches: number[][]): Record<string, number> {
    const C = m.config.num_labels;
    const pred: number[] = [];
    const gold: number[] = [];
    let nll = 0;
    let count = 0;
    for (const b of batches) {
      const mb = collate(b.map((i) => this.evalSet[i]));
      const out = m.forwardPacked({ inputIds: mb.inputIds, cuSeqlens: mb.cuSeqlens, labels: mb.tokenLabels! });
      const p = argmax(out.logits.data, mb.numTokens, C);
      let n = 0;
      mb.tokenLabels!.forEach((l, t) => {
        if (l === IGNORE_INDEX) return;
        pred.push(p[t]);
        gold.push(l);
        n++;
      });
      if (n) {
        nll += out.loss!.item() * n;
        count += n;
      }
    }
    const f = f1(pred, gold, C);
    return { eval_loss: nll / count, accuracy: accuracy(pred, gold), f1_macro: f.macro, f1_micro: f.micro };
  }

  private evaluateSequences(m: ModernBertForSequenceClassification, batches: number[][]): Record<string, number> {
    const C = m.config.num_labels;
    const type = this.problemType();
    const logits: number[] = [];
    const gold: (number | number[])[] = [];
    let lossSum = 0;
    for (const b of batches) {
      const seqs = b.map((i) => this.evalSet[i]);
      const mb = collate(seqs);
      const out = m.forwardPacked({ inputIds: mb.inputIds, cuSeqlens: mb.cuSeqlens, labels: sequenceLabels(mb.labels!, type) });
      lossSum += out.loss!.item() * seqs.length;
      logits.push(...out.logits.data);
      gold.push(...mb.labels!);
    }
    const N = gold.length;
    const metrics: Record<string, number> = { eval_loss: lossSum / N };
    if (type === 'regression') {
      const y = gold.flat();
      Object.assign(metrics, { pearson: pearson(logits, y), spearman: spearman(logits, y) });
    } else if (type === 'multi_label_classification') {
      // Per label: positive when the logit is > 0. Micro F1 pools every (sequence, label) decision of the positive class.
      const pred = logits.map((v) => (v > 0 ? 1 : 0));
      const y = gold.flat();
      let tp = 0;
      let wrong = 0;
      pred.forEach((p, i) => {
        if (p === 1 && y[i] === 1) tp++;
        else if (p !== y[i]) wrong++;
      });
      Object.assign(metrics, { accuracy: accuracy(pred, y), f1_micro: tp + wrong ? (2 * tp) / (2 * tp + wrong) : 0 });
    } else {
      const pred = Array.from(argmax(Float32Array.from(logits), N, C));
      const y = gold as number[];
      const f = f1(pred, y, C);
      Object.assign(metrics, { accuracy: accuracy(pred, y), f1_macro: f.macro, f1_micro: f.micro, matthews: matthews(pred, y, C) });
    }
    return metrics;
  }
}

/** Per-sequence labels in the form the loss expects for the problem type. */
function sequenceLabels(labels: (number | number[])[], type: ProblemType): SequenceLabels {
  if (type === 'single_label_classification') return Int32Array.from(labels as number[]);
  const flat = labels.flatMap((l) => (Array.isArray(l) ? l : [l]));
  return new Tensor(Float32Array.from(flat), [labels.length, flat.length / labels.length]);
}
