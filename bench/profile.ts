/**
 * Per-kernel timing for the benchmark: a `Kernels` object that forwards every call to the real
 * kernels and, while recording, adds the call's wall time (and FLOPs, for GEMM and attention) to
 * a per-label total. The library's own path is untouched; only the benchmark builds its model on
 * this wrapper. Native kernels are synchronous (the pool joins before returning), so wall time
 * around a call is the kernel's time.
 */
import { performance } from 'node:perf_hooks';
import type { Parameter } from '../src/model/parameter.js';

export interface KernelStat {
  calls: number;
  ms: number;
  /** 2 per multiply-add; 0 for kernels whose FLOPs are not counted. */
  flops: number;
}

export class KernelProfile {
  readonly stats = new Map<string, KernelStat>();
  /** Parameter buffers (values and gradients) to their names; see weightNames. */
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
 * Names of the parameters' value and gradient buffers, keyed by the buffer itself: a GEMM is labelled
 * by the weight it reads (forward, dX) or the gradient it writes (dW), since shapes alone collide (in
 * the base model Wqkv and Wi are both [2304, 768]). Names are Hugging Face's without the layer index
 * ("attn.Wqkv"), so the 22 layers add up under one label. Build it after training mode moved the
 * parameters into their flat buffer.
 */
export function weightNames(named: readonly [string, Parameter][], packedOf: (p: Parameter) => object | undefined = () => undefined): Map<unknown, string> {
  const names = new Map<unknown, string>();
  for (const [name, p] of named) {
    const short = name.replace(/^model\./, '').replace(/^layers\.\d+\./, '').replace(/\.weight$/, '');
    if (p.resident) names.set(p.data, short); // reading .data of a packed-only weight would unpack it
    if (p.grad) names.set(p.grad, short);
    const packed = packedOf(p);
    if (packed) names.set(packed, short);
  }
  return names;
}

type AnyFn = (...args: unknown[]) => unknown;
type Labeller = (args: unknown[]) => { label: string; flops: number };

/**
 * Wraps the kernel set `inner` so every call is timed into `profile` while `profile.recording` is set.
 * GEMMs are labelled by weight name (`profile.weightNames`: the B operand, or for dW the output C; else
 * the [N, K] shape) and direction (forward, dX = dY·W, dW = dYᵀ·X); attention and its backward by
 * global/local layers; every other kernel by its name.
 */
export function profiledKernels<K extends object>(inner: K, profile: KernelProfile): K {
  const gemmLabel: Labeller = (a) => {
    const [M, N, K, transA, transB] = a.slice(4, 9) as [number, number, number, boolean, boolean];
    const name = profile.weightNames.get(a[2]) ?? profile.weightNames.get(a[0]) ?? `${N}x${K}`;
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
  // The inference Linear reads a packed weight: named after the weight it was packed from (packLinear below).
  const packedNames = new WeakMap<object, string>();
  const linearLabel: Labeller = (a) => {
    const [W, M] = [a[2] as { N: number; K: number; dtype: string }, a[4] as number];
    const name = packedNames.get(W) ?? profile.weightNames.get(W) ?? `${W.N}x${W.K}`;
    return { label: `gemm ${name}${W.dtype === 'bf16' ? ' bf16' : ''}`, flops: 2 * M * W.N * W.K };
  };
  const labellers: Record<string, Labeller> = {
    gemm: gemmLabel,
    linear: linearLabel,
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
    if (key === 'packLinear') {
      // Packing happens once, outside the timed runs; remember which weight each packed result came from.
      wrapped[key] = (...args: unknown[]) => {
        const packed = fn.apply(inner, args) as object;
        const name = profile.weightNames.get(args[0]);
        if (name) packedNames.set(packed, name);
        return packed;
      };
      continue;
    }
    wrapped[key] = (...args: unknown[]) => {
      if (!profile.recording) return fn.apply(inner, args);
      const t0 = performance.now();
      const result = fn.apply(inner, args);
      const ms = performance.now() - t0;
      const { label, flops } = labeller(args);
      profile.add(label, ms, flops);
      return result;
    };
  }
  return wrapped as K;
}
