/**
 * Per-kernel timing for the benchmark: a `Kernels` object that forwards every call to the real
 * kernels and, while recording, adds the call's wall time (and FLOPs, for GEMM and attention) to
 * a per-label total. The library's own path is untouched; only the benchmark builds its model on
 * this wrapper. Native kernels are synchronous (the pool joins before returning), so wall time
 * around a call is the kernel's time.
 */
import { performance } from 'node:perf_hooks';
import type { Kernels } from '../src/kernels/types.js';

export interface KernelStat {
  calls: number;
  ms: number;
  /** 2 per multiply-add; 0 for kernels whose FLOPs are not counted. */
  flops: number;
}

export class KernelProfile {
  readonly stats = new Map<string, KernelStat>();
  /** GEMM B operands (weights) to their names; see weightNames. */
  weightNames = new Map<unknown, string>();
  recording = false;

  add(label: string, ms: number, flops: number): void {
    let s = this.stats.get(label);
    if (!s) {
      s = { calls: 0, ms: 0, flops: 0 };
      this.stats.set(label, s);
    }
    s.calls++;
    s.ms += ms;
    s.flops += flops;
  }

  totalMs(): number {
    let t = 0;
    for (const s of this.stats.values()) t += s.ms;
    return t;
  }
}

/** Query–key pairs attention visits in one sequence of n tokens: all n² (window < 0) or |i − j| ≤ window. */
export function attentionPairs(n: number, window: number): number {
  if (window < 0 || window >= n - 1) return n * n;
  // Every row sees 2·window + 1 keys, minus the ones cut off at both ends of the sequence.
  return n * (2 * window + 1) - window * (window + 1);
}

/**
 * Names the weight matrices of `layers` by their field name (Wqkv, Wo, Wi, ...), keyed by the object
 * itself: GEMMs are labelled by the weight they receive, since shapes alone collide (in the base
 * model Wqkv and Wi are both [2304, 768]).
 */
export function weightNames(layers: readonly object[]): Map<unknown, string> {
  const names = new Map<unknown, string>();
  for (const layer of layers)
    for (const [key, value] of Object.entries(layer)) {
      if (value === null || typeof value !== 'object') continue;
      // Parameters carry their values in `.data`, the array the kernels receive.
      names.set('data' in value && value.data instanceof Float32Array ? value.data : value, key);
    }
  return names;
}

type AnyFn = (...args: unknown[]) => unknown;
type Labeller = (args: unknown[]) => { label: string; flops: number };

/**
 * Wraps `inner` so every kernel call is timed into `profile` while `profile.recording` is set.
 * GEMMs are labelled by the name of their B operand (`profile.weightNames`, else its [N, K] shape)
 * and direction (forward, dX = dY·W, dW = dYᵀ·X); attention and its backward by global/local layers.
 */
export function profiledKernels(inner: Kernels, profile: KernelProfile): Kernels {
  const gemmLabel: Labeller = (a) => {
    const [M, N, K, transA, transB] = a.slice(4, 9) as [number, number, number, boolean, boolean];
    const name = profile.weightNames.get(a[2]) ?? `${N}x${K}`;
    const kind = transA ? ' dW' : transB ? '' : ' dX';
    return { label: `gemm ${name}${kind}`, flops: 2 * M * N * K };
  };
  // Attention FLOPs per visited query–key pair and head, in units of Dh: the forward does Q·Kᵀ and P·V
  // (2 FLOPs per multiply-add each); the FlashAttention-2 backward recomputes Q·Kᵀ and does dV, dP, dQ, dK.
  const attentionLabel = (name: string, at: number, perPair: number): Labeller => (a) => {
    const [cu, numSeqs, H, Dh, window] = a.slice(at, at + 5) as [Int32Array, number, number, number, number];
    let pairs = 0;
    for (let s = 0; s < numSeqs; s++) pairs += attentionPairs(cu[s + 1] - cu[s], window);
    return { label: `${name} ${window < 0 ? 'global' : 'local'}`, flops: perPair * Dh * H * pairs };
  };
  const labellers: Record<string, Labeller> = {
    gemm: gemmLabel,
    attention: attentionLabel('attention', 3, 4),
    attentionBackward: attentionLabel('attentionBackward', 5, 10),
  };

  const wrapped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(inner)) {
    if (typeof value !== 'function') {
      wrapped[key] = value;
      continue;
    }
    const fn = value as AnyFn;
    const labeller = labellers[key] ?? (() => ({ label: key, flops: 0 }));
    wrapped[key] = (...args: unknown[]) => {
      if (!profile.recording) return fn(...args);
      const t0 = performance.now();
      const result = fn(...args);
      const ms = performance.now() - t0;
      const { label, flops } = labeller(args);
      profile.add(label, ms, flops);
      return result;
    };
  }
  return wrapped as unknown as Kernels;
}
