/**
 * Trainable tensors. A `Parameter` holds the values (`data`) and, once training starts, the gradient
 * (`grad`), as PyTorch's does. `FlatParameters` moves a model's parameters into one Float32Array with a
 * view per tensor, and gives the gradients the same layout (llm.c's layout): zeroing the gradients,
 * clipping by global norm and the optimiser's moments are then single loops over single arrays.
 */
import { alignedFloat32Array } from '../kernels/native.js';

export class Parameter {
  /** d loss / d data, same shape; null until the model is put in training mode. Backward passes add to it. */
  grad: Float32Array | null = null;
  private values: Float32Array | null;
  /** Rebuilds the values after `release` (from the packed copy an inference model keeps instead). */
  private restore: (() => Float32Array) | null = null;

  constructor(values: Float32Array, readonly shape: readonly number[]) {
    this.values = values;
  }

  /** A parameter whose values live elsewhere until first use (a weight loaded straight into its packed form). */
  static released(shape: readonly number[], restore: () => Float32Array): Parameter {
    const p = new Parameter(new Float32Array(0), shape);
    p.values = null;
    p.restore = restore;
    return p;
  }

  /** The values; `FlatParameters` re-points this at a view of its buffer. Rebuilt on first use after `release`. */
  get data(): Float32Array {
    if (!this.values) {
      this.values = this.restore!();
      this.restore = null;
    }
    return this.values;
  }

  set data(values: Float32Array) {
    this.values = values;
    this.restore = null;
  }

  /**
   * Drops the values while another copy can rebuild them exactly: an inference model keeps only the packed
   * weights of its Linears, so a checkpoint is held in memory once. Views are kept.
   */
  release(restore: () => Float32Array): void {
    // A view (into FlatParameters' buffer, say) frees nothing and must stay the view the optimiser updates.
    if (!this.values || this.values.byteLength !== this.values.buffer.byteLength) return;
    this.values = null;
    this.restore = restore;
  }

  /** False while released: the values then exist only in the copy `data` rebuilds them from. */
  get resident(): boolean {
    return this.values !== null;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** `[name, parameter]` pairs with Hugging Face tensor names, each tensor once (tied weights appear under one name). */
export type NamedParameters = [string, Parameter][];

export interface FlatEntry {
  name: string;
  param: Parameter;
  /** Offset of the tensor in `data` and `grad`. */
  offset: number;
}

export class FlatParameters {
  /** Every parameter's values, concatenated in `entries` order. */
  readonly data: Float32Array;
  /** Every parameter's gradient, same layout as `data`. */
  readonly grad: Float32Array;
  readonly entries: FlatEntry[];

  /** Copies the values into one buffer and re-points each parameter's `data` and `grad` at views of it. */
  constructor(named: NamedParameters) {
    const total = named.reduce((n, [, p]) => n + p.size, 0);
    this.data = alignedFloat32Array(total);
    this.grad = alignedFloat32Array(total);
    this.entries = [];
    let offset = 0;
    for (const [name, param] of named) {
      const n = param.size;
      this.data.set(param.data, offset);
      param.data = this.data.subarray(offset, offset + n);
      param.grad = this.grad.subarray(offset, offset + n);
      this.entries.push({ name, param, offset });
      offset += n;
    }
  }

  zeroGrad(): void {
    this.grad.fill(0);
  }
}
