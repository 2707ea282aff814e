/**
 * Learning-rate schedules and batch-size warmup. Steps count optimiser updates from 0, as Hugging Face's
 * schedulers do: `learningRate(o, s)` is the rate of update s, so linear warmup starts at 0 and reaches the
 * peak at s = warmupSteps.
 *
 * - constant: warmup, then the peak rate.
 * - linear / cosine: warmup, then down to minLrRatio·lr at totalSteps.
 * - wsd (trapezoidal warmup–stable–decay, ModernBERT's): warmup, the peak until totalSteps − decaySteps,
 *   then the 1 − sqrt decay: factor = 1 − sqrt(progress), progress 0 → 1 over decaySteps.
 */
import { ModernBertError } from '../errors.js';

export type ScheduleType = 'constant' | 'linear' | 'cosine' | 'wsd';

export interface ScheduleOptions {
  type: ScheduleType;
  /** The peak learning rate. */
  lr: number;
  warmupSteps?: number;
  /** Total optimiser updates (needed by every type but constant). */
  totalSteps?: number;
  /** wsd: updates in the final decay (default: 10 % of totalSteps). */
  decaySteps?: number;
  /** The rate at the end of the decay, as a fraction of lr (default 0). */
  minLrRatio?: number;
}

export class ScheduleError extends ModernBertError {}

/** Checks the options once (the trainer calls this before training), naming the bad value. */
export function checkSchedule(o: ScheduleOptions): void {
  const warmup = o.warmupSteps ?? 0;
  if (!(o.lr >= 0)) throw new ScheduleError(`learning rate must be ≥ 0, got ${o.lr}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new ScheduleError(`warmupSteps must be a non-negative integer, got ${warmup}`);
  if (o.type !== 'constant') {
    if (o.totalSteps === undefined || !Number.isInteger(o.totalSteps) || o.totalSteps <= warmup)
      throw new ScheduleError(`the ${o.type} schedule needs totalSteps (an integer) greater than warmupSteps (${warmup}), got ${o.totalSteps}`);
  }
  if (o.type === 'wsd') {
    const decay = decayStepsOf(o);
    if (!Number.isInteger(decay) || decay < 1 || warmup + decay > o.totalSteps!)
      throw new ScheduleError(`wsd decaySteps (${decay}) must be a positive integer with warmupSteps + decaySteps ≤ totalSteps (${o.totalSteps})`);
  }
  const min = o.minLrRatio ?? 0;
  if (!(min >= 0 && min <= 1)) throw new ScheduleError(`minLrRatio must be in [0, 1], got ${min}`);
}

function decayStepsOf(o: ScheduleOptions): number {
  return o.decaySteps ?? Math.max(1, Math.round(0.1 * (o.totalSteps ?? 0)));
}

/** The multiplier of the peak rate at update `step`. */
export function scheduleFactor(o: ScheduleOptions, step: number): number {
  const warmup = o.warmupSteps ?? 0;
  if (step < warmup) return step / warmup;
  if (o.type === 'constant') return 1;
  const total = o.totalSteps!;
  const min = o.minLrRatio ?? 0;
  const floor = (f: number) => min + (1 - min) * f;
  if (step >= total) return min;
  if (o.type === 'wsd') {
    const decay = decayStepsOf(o);
    const decayStart = total - decay;
    if (step < decayStart) return 1;
    return floor(1 - Math.sqrt((step - decayStart) / decay));
  }
  const progress = (step - warmup) / (total - warmup);
  return floor(o.type === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** The learning rate of update `step`. */
export function learningRate(o: ScheduleOptions, step: number): number {
  return o.lr * scheduleFactor(o, step);
}

/** Batch-size warmup (as in ModernBERT's pretraining): the batch grows linearly with the tokens seen. */
export interface BatchSizeWarmup {
  /** Batch size (sequences, or tokens for a token-budget batcher) at the start. */
  start: number;
  /** Full batch size, reached after warmupTokens. */
  end: number;
  warmupTokens: number;
}

/** The batch size to use once `tokensSeen` tokens have been trained on: start → end linearly, rounded down. */
export function batchSizeAt(w: BatchSizeWarmup, tokensSeen: number): number {
  if (w.warmupTokens <= 0 || tokensSeen >= w.warmupTokens) return w.end;
  return Math.max(w.start, Math.floor(w.start + ((w.end - w.start) * tokensSeen) / w.warmupTokens));
}
