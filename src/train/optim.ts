/**
 * Optimisers over a model's flat parameters (`FlatParameters`: one values buffer, one gradient buffer,
 * one view per tensor), plus gradient clipping by global norm and gradient scaling for accumulation.
 *
 * AdamW is PyTorch's `torch.optim.AdamW`. StableAdamW is Wortsman et al. (2023) as in Benjamin Warner's
 * `optimi.StableAdamW`, the optimiser ModernBERT was trained with: AdamW whose learning rate is divided,
 * per parameter tensor, by max(1, RMS_t) with RMS_t = sqrt(mean(g_t² / max(v̂_t, ε²))) — Adafactor's update
 * clipping (the "RMS of g²/v̂" of MODERNBERT.md is this root mean of the ratio). Weight decay is decoupled
 * (p ← p·(1 − lr_t·wd), lr_t the tensor's possibly clipped rate) and, by default, skips every 1-d tensor:
 * LayerNorm weights and biases.
 */
import type { FlatParameters } from '../model/parameter.js';
import { nativeKernels } from '../kernels/native.js';
import type { Kernels } from '../kernels/types.js';

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Which tensors get weight decay (default: tensors of rank ≥ 2, i.e. not norms or biases). */
  decay?: (name: string, shape: readonly number[]) => boolean;
  /** Where the update runs (default: the native addon; the model's kernels in the trainer). */
  kernels?: Kernels;
}

/** The optimiser state a checkpoint saves: the step count and the two moments (flat, in parameter order). */
export interface OptimizerState {
  steps: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Updates taken so far (Adam's t). */
  steps = 0;
  /** First and second moments, same layout as `params.data`. */
  readonly expAvg: Float32Array;
  readonly expAvgSq: Float32Array;
  private readonly decays: boolean[];
  private readonly kernels: Kernels;

  constructor(
    readonly params: FlatParameters,
    options: AdamWOptions = {},
    /** Per-tensor update clipping (StableAdamW). */
    readonly stable = false,
  ) {
    this.lr = options.lr ?? 1e-3;
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    const decay = options.decay ?? ((_name: string, shape: readonly number[]) => shape.length >= 2);
    this.decays = params.entries.map((e) => decay(e.name, e.param.shape));
    this.kernels = options.kernels ?? nativeKernels;
    this.expAvg = new Float32Array(params.data.length);
    this.expAvgSq = new Float32Array(params.data.length);
  }

  /** One update from the gradients in `params.grad` (scale or clip them first); `lr` sets the rate from now on. */
  step(lr = this.lr): void {
    this.lr = lr;
    this.steps++;
    const { data, grad } = this.params;
    this.params.entries.forEach((e, idx) => {
      const view = (a: Float32Array) => a.subarray(e.offset, e.offset + e.param.size);
      this.kernels.adamwStep(view(data), view(grad), view(this.expAvg), view(this.expAvgSq), e.param.size, lr, this.beta1,
        this.beta2, this.eps, this.decays[idx] ? this.weightDecay : 0, this.steps, this.stable);
    });
  }

  zeroGrad(): void {
    this.params.zeroGrad();
  }

  state(): OptimizerState {
    return { steps: this.steps, expAvg: this.expAvg, expAvgSq: this.expAvgSq };
  }

  loadState(s: OptimizerState): void {
    if (s.expAvg.length !== this.expAvg.length || s.expAvgSq.length !== this.expAvgSq.length)
      throw new RangeError(`optimizer state has ${s.expAvg.length} values, the model has ${this.expAvg.length} parameters`);
    this.steps = s.steps;
    this.expAvg.set(s.expAvg);
    this.expAvgSq.set(s.expAvgSq);
  }
}

/** StableAdamW (optimi's defaults: betas 0.9/0.99, eps 1e-6). */
export class StableAdamW extends AdamW {
  constructor(params: FlatParameters, options: AdamWOptions = {}) {
    super(params, { betas: [0.9, 0.99], eps: 1e-6, ...options }, true);
  }
}

/** The global L2 norm of all gradients. */
export function gradNorm(params: FlatParameters, kernels: Kernels = nativeKernels): number {
  return Math.sqrt(kernels.sumSquares(params.grad, params.grad.length));
}

/**
 * Clips gradients by their global norm, as `torch.nn.utils.clip_grad_norm_`: when the norm exceeds
 * maxNorm, scales them by maxNorm / (norm + 1e-6). Returns the norm before clipping.
 */
export function clipGradNorm(params: FlatParameters, maxNorm: number, kernels: Kernels = nativeKernels): number {
  const norm = gradNorm(params, kernels);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) scaleGradients(params, coef, kernels);
  return norm;
}

/** grad ← grad·factor (e.g. 1/k after accumulating k micro-batches). */
export function scaleGradients(params: FlatParameters, factor: number, kernels: Kernels = nativeKernels): void {
  if (factor === 1) return; // one micro-batch per step: nothing to average, and a pass over every gradient saved
  kernels.scale(params.grad, params.grad.length, factor);
}
