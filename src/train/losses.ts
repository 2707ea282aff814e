/**
 * The losses of the task heads, as Hugging Face computes them (torch.nn.functional defaults), each
 * returning the mean loss and, when `grad` is given, writing d loss / d logits into it. Sums over rows run in
 * float64; cross-entropy's rows run on the kernels (the native one takes exp in float32, a few ulps).
 */
import { InputError, ModernBertError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { nativeKernels } from '../kernels/native.js';
import type { Kernels } from '../kernels/types.js';

/** A training call that cannot run as asked (backward without a training forward, a stale tape, ...). */
export class TrainingError extends ModernBertError {}

export const IGNORE_INDEX = -100;

/**
 * Cross-entropy over rows of logits [N, C] with integer targets [N], averaged over the rows whose target
 * is not `ignoreIndex` (PyTorch's `cross_entropy(ignore_index=-100)`, reduction 'mean'). With no counted
 * row the loss is NaN (0/0, as in PyTorch) and the gradient is zero. `grad` may alias `logits`. The rows run
 * on `kernels` (the model's: native by default).
 */
export function crossEntropy(logits: Float32Array, targets: Int32Array, N: number, C: number,
  grad: Float32Array | null, ignoreIndex = IGNORE_INDEX, kernels: Kernels = nativeKernels): { loss: number; count: number } {
  let count = 0;
  for (let n = 0; n < N; n++) {
    const y = targets[n];
    if (y === ignoreIndex) continue;
    if (!Number.isInteger(y) || y < 0 || y >= C)
      throw new InputError(`label ${y} at row ${n} is outside [0, ${C}) (use ${ignoreIndex} to ignore a position)`);
    count++;
  }
  const sum = kernels.crossEntropy(logits, targets, N, C, grad, ignoreIndex, 1 / count);
  return { loss: sum / count, count };
}

/** Binary cross-entropy with logits, mean over all n elements (`BCEWithLogitsLoss`); targets in [0, 1]. */
export function bceWithLogits(logits: Float32Array, targets: Float32Array, n: number, grad: Float32Array | null): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const y = targets[i];
    // max(x, 0) − x·y + log(1 + e^−|x|): the stable form PyTorch uses.
    sum += Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
    if (grad) grad[i] = (1 / (1 + Math.exp(-x)) - y) / n;
  }
  return sum / n;
}

/** Mean squared error over n elements (`MSELoss`). */
export function meanSquaredError(pred: Float32Array, targets: Float32Array, n: number, grad: Float32Array | null): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i] - targets[i];
    sum += d * d;
    if (grad) grad[i] = (2 * d) / n;
  }
  return sum / n;
}

/**
 * The loss a task model's forward returns when given labels: a scalar Tensor (dims []) whose `backward()`
 * adds d loss / d parameter into every parameter's `.grad`, as PyTorch's `loss.backward()`.
 */
export class Loss extends Tensor {
  private pending: (() => void) | null;

  constructor(
    /** The loss in float64 (`data` holds it rounded to float32). */
    readonly value: number,
    backward: (() => void) | null,
  ) {
    super(Float32Array.of(value), []);
    this.pending = backward;
  }

  item(): number {
    return this.value;
  }

  /** Runs the backward pass once; the model must have been in training mode for the forward. */
  backward(): void {
    if (!this.pending)
      throw new TrainingError('this loss has no backward: the forward ran in eval mode (call model.train() before it), or backward() already ran');
    const run = this.pending;
    this.pending = null;
    run();
  }
}
