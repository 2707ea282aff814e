/**
 * T1, the training step: masked LM and sequence classification on 8 × 512 packed tokens (the first
 * 8 sequences of W1), forward + backward + optimiser step. It plugs into the benchmark as a
 * workload runner with the inference workloads' result shape; until the training API (src/train/)
 * is on main it reports itself as not available instead of failing the run.
 */
import type { Unavailable } from './workload.js';

export const TRAINING_WORKLOADS = ['T1'];

export function runTraining(name: string): Unavailable {
  return { workload: name, engine: 'ours', available: false, reason: 'the training API (src/train/) is not on main yet' };
}
