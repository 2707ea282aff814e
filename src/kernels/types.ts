/**
 * The kernel interface the model runs on. Two implementations share it: the native addon
 * (`native.ts`, fast) and plain TypeScript (`reference.ts`, the test oracle). Shapes are row-major.
 */
export enum Activation {
  GeluErf = 0,
  GeluTanh = 1,
  Silu = 2,
  Relu = 3,
  Identity = 4,
}

/** Inference precision: float32, or bf16 operands (Linears, attention) with float32 accumulation. */
export type Dtype = 'float32' | 'bf16';

/**
 * A Linear weight W [N, K] (PyTorch [out, in]) prepared once by `packLinear` for `linear`. `data` is opaque:
 * its layout belongs to the kernel set that packed it (float32 values, or bf16 bits for 'bf16').
 */
export type PackedLinear =
  | { readonly dtype: 'float32'; readonly N: number; readonly K: number; readonly data: Float32Array }
  | { readonly dtype: 'bf16'; readonly N: number; readonly K: number; readonly data: Uint16Array };

export interface Kernels {
  readonly name: string;
  /** C[M,N] = beta·C + op(A)·op(B) (+ bias[N]); op(A) = Aᵀ of A[K,M] when transA, op(B) = Bᵀ of B[N,K] when transB. */
  gemm(C: Float32Array, A: Float32Array, B: Float32Array, bias: Float32Array | null, M: number, N: number, K: number,
    transA: boolean, transB: boolean, beta: 0 | 1): void;
  /** Prepares W [N, K] once for `linear`; a snapshot: later changes to W are not seen. 'bf16' rounds W to nearest even. */
  packLinear(W: Float32Array, N: number, K: number, dtype: Dtype): PackedLinear;
  /** W [N, K] back from a float32 `packLinear`, exactly (bf16 packing rounds, so it has no inverse). */
  unpackLinear(W: PackedLinear & { dtype: 'float32' }): Float32Array;
  /**
   * The inference Linear: C[M,N] = beta·C + A[M,K]·Wᵀ (+ bias[N]), i.e. gemm(..., false, true, beta) from the
   * packed W. For 'bf16', A is rounded to bf16 too and products are accumulated in float32.
   */
  linear(C: Float32Array, A: Float32Array, W: PackedLinear, bias: Float32Array | null, M: number, beta: 0 | 1): void;
  /** out[T,D] = (x − mean)·rstd·w + b per row; mean/rstd [T] are written when given. */
  layernorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, T: number, D: number,
    eps: number, mean: Float32Array | null, rstd: Float32Array | null): void;
  /** out[T,I] = act(x[:, :I]) · x[:, I:] for x [T, 2I]. */
  geglu(out: Float32Array, x: Float32Array, T: number, I: number, act: Activation): void;
  /** out[n] = act(x[n]); in place allowed. */
  activation(out: Float32Array, x: Float32Array, n: number, act: Activation): void;
  /** out[T,D] = table[ids[t]]; ids outside [0, vocab) throw. */
  embedding(out: Float32Array, table: Float32Array, ids: Int32Array, T: number, D: number, vocab: number): void;
  /** Rotate-half RoPE in place on q and k of qkv [T, 3, H, Dh]; cos/sin tables [maxPos, Dh/2]. */
  rope(qkv: Float32Array, pos: Int32Array, cos: Float32Array, sin: Float32Array, T: number, H: number, Dh: number,
    maxPos: number): void;
  /**
   * Variable-length attention: out[T, H·Dh] from qkv [T, 3, H, Dh] over the sequences in cuSeqlens.
   * window < 0 is global, else |i − j| ≤ window. lse [H, T] receives the log-sum-exp when given.
   * bf16 (inference with dtype 'bf16'): q·scale·log2 e, k, v and the softmax numerators are rounded to bf16 and
   * the products accumulated in float32, on the bf16 path of the Linears (AMX or AVX512-BF16:
   * NativeInfo.bf16Attention); without one, and with bf16 false, float32 attention.
   */
  attention(out: Float32Array, lse: Float32Array | null, qkv: Float32Array, cuSeqlens: Int32Array, numSeqs: number,
    H: number, Dh: number, window: number, scale: number, bf16: boolean): void;

  // Backward kernels (training). Each overwrites its dx-like output unless it says it accumulates.
  /**
   * Gradient of `attention`: writes dq, dk, dv into dqkv [T, 3, H, Dh] from dout [T, H·Dh], the forward's qkv,
   * out and lse [H, T] (FlashAttention-2: P recomputed from lse, D_i = Σ dO·O).
   */
  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, out: Float32Array, lse: Float32Array,
    cuSeqlens: Int32Array, numSeqs: number, H: number, Dh: number, window: number, scale: number): void;
  /** dx[T,D] of `layernorm`; dw[D] += Σ_t dout·x̂ and db[D] += Σ_t dout accumulate (db may be null). */
  layernormBackward(dx: Float32Array, dw: Float32Array, db: Float32Array | null, dout: Float32Array, x: Float32Array,
    w: Float32Array, mean: Float32Array, rstd: Float32Array, T: number, D: number): void;
  /** dx[T,2I] of `geglu` from dout[T,I] and the forward's x[T,2I]. */
  gegluBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, T: number, I: number, act: Activation): void;
  /** dx[n] = dout[n]·act'(x[n]); dx may be dout. */
  activationBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, n: number, act: Activation): void;
  /** Gradient of `rope`: rotates the q and k parts of dqkv [T, 3, H, Dh] back, in place. */
  ropeBackward(dqkv: Float32Array, pos: Int32Array, cos: Float32Array, sin: Float32Array, T: number, H: number,
    Dh: number, maxPos: number): void;
  /**
   * dtable[ids[t]] += dout[t] for every t whose id is not paddingIdx (HF's padding_idx row gets no gradient;
   * paddingIdx < 0 skips nothing). ids outside [0, vocab) throw.
   */
  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, T: number, D: number, vocab: number,
    paddingIdx: number): void;
  /**
   * Cross-entropy over rows of logits [N, C] against targets [N] (each in [0, C) or ignoreIndex; others throw):
   * returns the sum over counted rows of max + log Σ exp(x − max) − x[target]; with grad (which may alias logits),
   * writes (softmax − onehot(target))·scale into counted rows and zeros into ignored ones.
   */
  crossEntropy(logits: Float32Array, targets: Int32Array, N: number, C: number, grad: Float32Array | null,
    ignoreIndex: number, scale: number): number;
  /**
   * One AdamW update of a tensor's n values, in place (Adam's t = step ≥ 1): m ← β1·m + (1−β1)·g,
   * v ← β2·v + (1−β2)·g²; with `stable` (StableAdamW) the rate lr_t is lr / max(1, sqrt(mean(g² / max(v̂, ε²))));
   * then p ← p·(1 − lr_t·weightDecay) − (lr_t / bc1)·m / (sqrt(v) / sqrt(bc2) + ε), bc the bias corrections.
   */
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number, stable: boolean): void;
  /** Σ x[i]² over n values, summed in float64 (the gradients' global norm, squared). */
  sumSquares(x: Float32Array, n: number): number;
  /** x[i] ← x[i]·factor over n values (averaging accumulated gradients, clipping them). */
  scale(x: Float32Array, n: number, factor: number): void;
  /** y[i] += x[i] over n values (the backward's residual stream gathering a branch's gradient). */
  addInto(y: Float32Array, x: Float32Array, n: number): void;
}
