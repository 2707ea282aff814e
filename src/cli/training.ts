/**
 * What `modernbert train` and `modernbert pretrain` share: the hyper-parameter option table, its conversion
 * to TrainerOptions, the tokenizer adapter for the data encoders, and the run summary.
 */
import { InvalidArgumentError } from 'commander';
import { InputError } from '../errors.js';
import { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';
import type { TokenEncoder } from '../train/data.js';
import type { BatchSizeWarmup, ScheduleType } from '../train/schedule.js';
import type { Trainer, TrainerOptions } from '../train/trainer.js';
import { oneOf, positiveInt, type CliOption } from './options.js';

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number.`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer.`);
    return n;
  };
}

/** START:END:TOKENS, e.g. 1:4:1000000 (micro-batches per step growing from 1 to 4 over the first million tokens). */
function batchWarmup(v: string): BatchSizeWarmup {
  const parts = v.split(':').map(Number);
  if (parts.length !== 3 || !parts.every((x) => Number.isInteger(x) && x > 0) || parts[0] > parts[1])
    throw new InvalidArgumentError('--batch-warmup must be START:END:TOKENS (positive integers, START <= END).');
  return { start: parts[0], end: parts[1], warmupTokens: parts[2] };
}

export function hyperParameterOptions(d: { lr: number; optimizer: 'adamw' | 'stableadamw'; schedule: ScheduleType; maskProb: number }): CliOption[] {
  return [
    { flags: '-o, --output <dir>', description: 'output folder: checkpoints, log.jsonl, and the final model (Hugging Face layout)' },
    { flags: '--steps <n>', description: 'optimiser steps (overrides --epochs)', parse: positiveInt('--steps') },
    { flags: '--lr <rate>', description: 'peak learning rate', default: d.lr, parse: positiveNumber('--lr') },
    { flags: '--weight-decay <w>', description: 'decoupled weight decay (norms and biases excluded)', default: d.optimizer === 'stableadamw' ? 1e-5 : 0.01, parse: (v) => nonNegative('--weight-decay', v) },
    { flags: '--optimizer <name>', description: 'adamw or stableadamw', default: d.optimizer, parse: oneOf('--optimizer', ['adamw', 'stableadamw'] as const) },
    { flags: '--schedule <type>', description: 'constant, linear, cosine or wsd (warmup-stable-decay with 1-sqrt decay)', default: d.schedule, parse: oneOf('--schedule', ['constant', 'linear', 'cosine', 'wsd'] as const) },
    { flags: '--warmup <steps>', description: 'linear warmup steps', default: 0, parse: nonNegativeInt('--warmup') },
    { flags: '--decay-steps <n>', description: 'wsd: steps of the final decay (default 10 % of the steps)', parse: positiveInt('--decay-steps') },
    { flags: '--batch-tokens <n>', description: 'token budget of one packed micro-batch', default: 4096, parse: positiveInt('--batch-tokens') },
    { flags: '--grad-accum <n>', description: 'micro-batches per optimiser step', default: 1, parse: positiveInt('--grad-accum') },
    { flags: '--batch-warmup <spec>', description: 'batch-size warmup START:END:TOKENS in micro-batches per step (needs --steps)', parse: batchWarmup },
    { flags: '--max-grad-norm <n>', description: 'clip gradients to this global norm (0: off)', default: 1, parse: (v) => nonNegative('--max-grad-norm', v) },
    { flags: '--mask-prob <p>', description: 'MLM masking probability', default: d.maskProb, parse: positiveNumber('--mask-prob') },
    { flags: '--eval-every <steps>', description: 'evaluate every N steps (0: at the end only)', default: 0, parse: nonNegativeInt('--eval-every') },
    { flags: '--save-every <steps>', description: 'save a resumable checkpoint every N steps (0: at the end only)', default: 0, parse: nonNegativeInt('--save-every') },
    { flags: '--save-total-limit <n>', description: 'checkpoints to keep (default: all)', parse: positiveInt('--save-total-limit') },
    { flags: '--resume [checkpoint]', description: 'resume from a checkpoint folder, or (no value) the latest in --output' },
    { flags: '--seed <n>', description: 'random seed (shuffling, masking, dropout, init)', default: 42, parse: nonNegativeInt('--seed') },
    { flags: '--skip-nonfinite', description: 'skip a step whose loss is NaN or infinite instead of stopping' },
    { flags: '--threads <n>', description: 'CPU threads (default: MODERNBERT_NUM_THREADS, else all cores)', parse: positiveInt('--threads') },
    { flags: '--quiet', description: 'no progress bar or per-eval lines' },
  ];
}

function nonNegative(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number.`);
  return n;
}

/** TrainerOptions from the parsed hyper-parameter options. */
export function trainerOptions(o: Record<string, unknown>, tokenizerDir: string, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  if (typeof o.output !== 'string') throw new InputError('--output <dir> is required');
  const quiet = o.quiet === true;
  return {
    outputDir: o.output,
    epochs: o.epochs as number | undefined,
    maxSteps: o.steps as number | undefined,
    maxTokensPerBatch: o.batchTokens as number,
    gradAccumulation: o.gradAccum as number,
    batchSizeWarmup: o.batchWarmup as BatchSizeWarmup | undefined,
    optimizer: o.optimizer === 'stableadamw' ? 'stable-adamw' : 'adamw',
    lr: o.lr as number,
    weightDecay: o.weightDecay as number,
    schedule: { type: o.schedule as ScheduleType, warmupSteps: o.warmup as number, decaySteps: o.decaySteps as number | undefined },
    maxGradNorm: o.maxGradNorm as number,
    evalEvery: o.evalEvery as number,
    saveEvery: o.saveEvery as number,
    saveTotalLimit: o.saveTotalLimit as number | undefined,
    seed: o.seed as number,
    onNonFinite: o.skipNonfinite ? 'skip' : 'error',
    progress: quiet ? false : undefined,
    tokenizerDir,
    resumeFrom: o.resume === true ? 'latest' : (o.resume as string | undefined),
    onLog: quiet ? undefined : (r) => {
      if (r.type === 'eval') process.stderr.write(`${JSON.stringify(r)}\n`);
    },
    ...extra,
  };
}

/** The data encoders' view of a tokenizer folder, plus the ids masking needs. */
export function loadTokenizer(dir: string): { encoder: TokenEncoder; maskTokenId: number; specialIds: number[] } {
  const tok = PreTrainedTokenizer.fromDirectory(dir);
  if (tok.maskTokenId === null) throw new InputError(`the tokenizer in ${dir} has no mask token`);
  const added = (tok.tokenizerJson.added_tokens ?? []) as { id: number; special?: boolean }[];
  return {
    encoder: {
      encode: (text, opts) => ({ ids: tok.encode(text, { textPair: opts?.text_pair ?? null, addSpecialTokens: opts?.add_special_tokens ?? true, truncation: false }).inputIds }),
    },
    maskTokenId: tok.maskTokenId,
    specialIds: added.filter((t) => t.special).map((t) => t.id),
  };
}

/** Runs the trainer and prints the final metrics (a JSON line) and where the model went. */
export async function fitAndReport(trainer: Trainer, evaluate: boolean): Promise<void> {
  const state = await trainer.fit();
  const metrics = evaluate ? trainer.evaluate() : {};
  process.stdout.write(`${JSON.stringify({ step: state.step, epoch: state.epoch, tokens: state.tokensSeen, ...metrics, output: trainer.options.outputDir })}\n`);
}
