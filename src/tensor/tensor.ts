/** A dense row-major tensor: `data` holds the values, `dims` the shape (as in Transformers.js). */
export type TensorData = Float32Array | Int32Array;

export class Tensor<D extends TensorData = Float32Array> {
  readonly type: 'float32' | 'int32';

  constructor(
    readonly data: D,
    readonly dims: number[],
  ) {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new RangeError(`Tensor data has ${data.length} elements but dims [${dims}] need ${size}`);
    this.type = data instanceof Float32Array ? 'float32' : 'int32';
  }

  get size(): number {
    return this.data.length;
  }

  /** Nested arrays, as `tolist()` in Transformers.js and PyTorch. */
  tolist(): unknown {
    const build = (offset: number, axis: number): unknown => {
      if (axis === this.dims.length) return this.data[offset];
      const stride = this.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.dims[axis] }, (_, i) => build(offset + i * stride, axis + 1));
    };
    return build(0, 0);
  }

  /** The row `i` of the first axis, as a view sharing this tensor's data. */
  row(i: number): Tensor<D> {
    const inner = this.dims.slice(1);
    const n = inner.reduce((a, b) => a * b, 1);
    return new Tensor(this.data.subarray(i * n, (i + 1) * n) as D, inner);
  }
}
