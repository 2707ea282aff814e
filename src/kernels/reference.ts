/**
 * Plain TypeScript versions of every kernel: the readable definition and the test oracle for the
 * native addon. Accumulates in float64 where that is the natural JavaScript arithmetic.
 */
import { InputError } from '../errors.js';
import { Activation, type Dtype, type Kernels, type PackedLinear } from './types.js';

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for float32 oracles. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export function activate(x: number, act: Activation): number {
  switch (act) {
    case Activation.GeluErf:
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case Activation.GeluTanh:
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    case Activation.Silu:
      return x / (1 + Math.exp(-x));
    case Activation.Relu:
      return x > 0 ? x : 0;
    case Activation.Identity:
      return x;
  }
}

/** d act(x) / dx, the derivative `activationBackward` and `gegluBackward` multiply by. */
export function activateGrad(x: number, act: Activation): number {
  switch (act) {
    case Activation.GeluErf:
      return 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    case Activation.GeluTanh: {
      const c = Math.sqrt(2 / Math.PI);
      const t = Math.tanh(c * (x + 0.044715 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
    }
    case Activation.Silu: {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 + x * (1 - s));
    }
    case Activation.Relu:
      return x > 0 ? 1 : 0;
    case Activation.Identity:
      return 1;
  }
}

/**
 * The reference kernels also accept Float64Array buffers (the `Floats` parameters), so tests can run them in
 * double precision, e.g. for finite-difference checks of the backward kernels.
 */
export type Floats = Float32Array | Float64Array;

/** Rotate-half RoPE of the q and k parts of x [T, 3, H, Dh] in place by sign · angle (−1: the backward). */
function rotateHalf(x: Floats, pos: Int32Array, cos: Floats, sin: Floats, T: number, H: number, Dh: number, maxPos: number,
  sign: 1 | -1): void {
  const half = Dh / 2;
  const hidden = H * Dh;
  for (let t = 0; t < T; t++) {
    const p = pos[t];
    if (p < 0 || p >= maxPos) throw new InputError(`position ${p} is outside the RoPE table [0, ${maxPos})`);
    for (let part = 0; part < 2; part++) {
      for (let h = 0; h < H; h++) {
        const base = t * 3 * hidden + part * hidden + h * Dh;
        for (let i = 0; i < half; i++) {
          const x1 = x[base + i];
          const x2 = x[base + i + half];
          const c = cos[p * half + i];
          const s = sign * sin[p * half + i];
          x[base + i] = x1 * c - x2 * s;
          x[base + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}

export const referenceKernels = {
  name: 'reference',

  gemm(C, A, B, bias, M, N, K, transA, transB, beta) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const a = transA ? A[k * M + i] : A[i * K + k];
          const b = transB ? B[j * K + k] : B[k * N + j];
          s += a * b;
        }
        C[i * N + j] = (beta ? C[i * N + j] : 0) + s + (bias ? bias[j] : 0);
      }
    }
  },

  // The reference "packing" is a row-major copy: float32 values, or for bf16 the rounded values' upper 16 bits.
  packLinear(W: Float32Array, N: number, K: number, dtype: Dtype): PackedLinear {
    if (dtype === 'float32') return { dtype, N, K, data: W.slice(0, N * K) };
    const rounded = W.subarray(0, N * K).map(roundBf16);
    return { dtype, N, K, data: Uint16Array.from(new Uint32Array(rounded.buffer), (u) => u >>> 16) };
  },

  unpackLinear(W: PackedLinear & { dtype: 'float32' }): Float32Array {
    return W.data.slice();
  },

  linear(C: Float32Array, A: Float32Array, W: PackedLinear, bias: Float32Array | null, M: number, beta: 0 | 1) {
    if (W.dtype === 'float32') referenceKernels.gemm(C, A, W.data, bias, M, W.N, W.K, false, true, beta);
    else referenceGemmBf16(C, A, new Float32Array(Uint32Array.from(W.data, (h) => h << 16).buffer), bias, M, W.N, W.K, beta);
  },

  layernorm(out: Floats, x: Floats, w: Floats, b: Floats | null, T: number, D: number, eps: number,
    mean: Floats | null, rstd: Floats | null) {
    for (let t = 0; t < T; t++) {
      let mu = 0;
      for (let d = 0; d < D; d++) mu += x[t * D + d];
      mu /= D;
      let v = 0;
      for (let d = 0; d < D; d++) v += (x[t * D + d] - mu) ** 2;
      const rs = 1 / Math.sqrt(v / D + eps);
      for (let d = 0; d < D; d++) out[t * D + d] = (x[t * D + d] - mu) * rs * w[d] + (b ? b[d] : 0);
      if (mean) mean[t] = mu;
      if (rstd) rstd[t] = rs;
    }
  },

  geglu(out: Floats, x: Floats, T: number, I: number, act: Activation) {
    for (let t = 0; t < T; t++)
      for (let i = 0; i < I; i++) out[t * I + i] = activate(x[t * 2 * I + i], act) * x[t * 2 * I + I + i];
  },

  activation(out: Floats, x: Floats, n: number, act: Activation) {
    for (let i = 0; i < n; i++) out[i] = activate(x[i], act);
  },

  embedding(out, table, ids, T, D, vocab) {
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (id < 0 || id >= vocab) throw new InputError(`token id ${id} at position ${t} is outside the vocabulary [0, ${vocab})`);
      out.set(table.subarray(id * D, (id + 1) * D), t * D);
    }
  },

  rope(qkv: Floats, pos: Int32Array, cos: Floats, sin: Floats, T: number, H: number, Dh: number, maxPos: number) {
    rotateHalf(qkv, pos, cos, sin, T, H, Dh, maxPos, 1);
  },

  // bf16: the native kernel's rounding points that do not depend on its tiling. Scores are formed from
  // bf16(fround(q·fround(scale·log2 e))) and bf16(k) (exactly the native operands) in base 2, and v is rounded;
  // the softmax numerators P stay unrounded (the native kernel rounds exp2(s − running max), which depends on
  // the key blocks), so native and reference differ by at most u·Σ_j p_j|v_j| / Σ_j p_j ≤ u·max|v|, u = 2⁻⁸.
  attention(out: Floats, lse: Floats | null, qkv: Floats, cuSeqlens: Int32Array, numSeqs: number, H: number, Dh: number,
    window: number, scale: number, bf16: boolean) {
    const hidden = H * Dh;
    const T = cuSeqlens[numSeqs];
    if (bf16) {
      const mul = Math.fround(Math.fround(scale) * Math.fround(Math.LOG2E));
      const rounded = Float64Array.from(qkv, (x, n) => roundBf16(n % (3 * hidden) < hidden ? Math.fround(x * mul) : x));
      referenceKernels.attention(out, lse, rounded, cuSeqlens, numSeqs, H, Dh, window, Math.LN2, false);
      return;
    }
    for (let s = 0; s < numSeqs; s++) {
      const start = cuSeqlens[s];
      const end = cuSeqlens[s + 1];
      for (let h = 0; h < H; h++) {
        for (let i = start; i < end; i++) {
          const j0 = window < 0 ? start : Math.max(start, i - window);
          const j1 = window < 0 ? end : Math.min(end, i + window + 1);
          const scores = new Float64Array(j1 - j0);
          let max = -Infinity;
          for (let j = j0; j < j1; j++) {
            let dot = 0;
            for (let d = 0; d < Dh; d++) dot += qkv[i * 3 * hidden + h * Dh + d] * qkv[j * 3 * hidden + hidden + h * Dh + d];
            scores[j - j0] = dot * scale;
            max = Math.max(max, dot * scale);
          }
          let sum = 0;
          for (let j = 0; j < scores.length; j++) sum += (scores[j] = Math.exp(scores[j] - max));
          for (let d = 0; d < Dh; d++) {
            let acc = 0;
            for (let j = j0; j < j1; j++) acc += scores[j - j0] * qkv[j * 3 * hidden + 2 * hidden + h * Dh + d];
            out[i * hidden + h * Dh + d] = acc / sum;
          }
          if (lse) lse[h * T + i] = max + Math.log(sum);
        }
      }
    }
  },

  attentionBackward(dqkv: Floats, dout: Floats, qkv: Floats, out: Floats, lse: Floats, cuSeqlens: Int32Array,
    numSeqs: number, H: number, Dh: number, window: number, scale: number) {
    const hidden = H * Dh;
    const T = cuSeqlens[numSeqs];
    const g = new Float64Array(T * 3 * hidden);
    for (let s = 0; s < numSeqs; s++) {
      const start = cuSeqlens[s];
      const end = cuSeqlens[s + 1];
      for (let h = 0; h < H; h++) {
        for (let i = start; i < end; i++) {
          const q = i * 3 * hidden + h * Dh;
          const o = i * hidden + h * Dh;
          let D = 0;
          for (let d = 0; d < Dh; d++) D += dout[o + d] * out[o + d];
          const j0 = window < 0 ? start : Math.max(start, i - window);
          const j1 = window < 0 ? end : Math.min(end, i + window + 1);
          for (let j = j0; j < j1; j++) {
            const k = j * 3 * hidden + hidden + h * Dh;
            const v = k + hidden;
            let dot = 0;
            let dp = 0;
            for (let d = 0; d < Dh; d++) {
              dot += qkv[q + d] * qkv[k + d];
              dp += dout[o + d] * qkv[v + d];
            }
            const p = Math.exp(dot * scale - lse[h * T + i]);
            const ds = p * (dp - D) * scale;
            for (let d = 0; d < Dh; d++) {
              g[v + d] += p * dout[o + d];
              g[q + d] += ds * qkv[k + d];
              g[k + d] += ds * qkv[q + d];
            }
          }
        }
      }
    }
    dqkv.set(g.subarray(0, T * 3 * hidden));
  },

  layernormBackward(dx: Floats, dw: Floats, db: Floats | null, dout: Floats, x: Floats, w: Floats, mean: Floats,
    rstd: Floats, T: number, D: number) {
    for (let t = 0; t < T; t++) {
      let a = 0;
      let c = 0;
      for (let d = 0; d < D; d++) {
        const xh = (x[t * D + d] - mean[t]) * rstd[t];
        const gw = dout[t * D + d] * w[d];
        a += gw;
        c += gw * xh;
        dw[d] += dout[t * D + d] * xh;
        if (db) db[d] += dout[t * D + d];
      }
      a /= D;
      c /= D;
      for (let d = 0; d < D; d++) {
        const xh = (x[t * D + d] - mean[t]) * rstd[t];
        dx[t * D + d] = rstd[t] * (dout[t * D + d] * w[d] - a - xh * c);
      }
    }
  },

  gegluBackward(dx: Floats, dout: Floats, x: Floats, T: number, I: number, act: Activation) {
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < I; i++) {
        const a = x[t * 2 * I + i];
        const gate = x[t * 2 * I + I + i];
        const d = dout[t * I + i];
        dx[t * 2 * I + i] = d * gate * activateGrad(a, act);
        dx[t * 2 * I + I + i] = d * activate(a, act);
      }
    }
  },

  activationBackward(dx: Floats, dout: Floats, x: Floats, n: number, act: Activation) {
    for (let i = 0; i < n; i++) dx[i] = dout[i] * activateGrad(x[i], act);
  },

  ropeBackward(dqkv: Floats, pos: Int32Array, cos: Floats, sin: Floats, T: number, H: number, Dh: number,
    maxPos: number) {
    // The transpose of the rotation: the same rotation by −angle.
    rotateHalf(dqkv, pos, cos, sin, T, H, Dh, maxPos, -1);
  },

  embeddingBackward(dtable: Floats, dout: Floats, ids: Int32Array, T: number, D: number, vocab: number,
    paddingIdx: number) {
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (id < 0 || id >= vocab) throw new InputError(`token id ${id} at position ${t} is outside the vocabulary [0, ${vocab})`);
      if (id === paddingIdx) continue;
      for (let d = 0; d < D; d++) dtable[id * D + d] += dout[t * D + d];
    }
  },

  crossEntropy(logits: Floats, targets: Int32Array, N: number, C: number, grad: Floats | null, ignoreIndex: number,
    scale: number) {
    let sum = 0;
    for (let n = 0; n < N; n++) {
      const o = n * C;
      const y = targets[n];
      if (y === ignoreIndex) {
        if (grad) grad.fill(0, o, o + C);
        continue;
      }
      if (!(y >= 0 && y < C)) throw new RangeError(`target ${y} at row ${n} is outside [0, ${C})`);
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, logits[o + c]);
      const target = logits[o + y];
      let z = 0;
      if (grad) {
        // One exp per logit: keep e^(x − max) in grad, then scale it into (softmax − onehot)·scale.
        for (let c = 0; c < C; c++) z += grad[o + c] = Math.exp(logits[o + c] - max);
        const k = scale / z;
        for (let c = 0; c < C; c++) grad[o + c] *= k;
        grad[o + y] -= scale;
      } else {
        for (let c = 0; c < C; c++) z += Math.exp(logits[o + c] - max);
      }
      sum += max + Math.log(z) - target;
    }
    return sum;
  },

  adamwStep(p: Floats, g: Floats, m: Floats, v: Floats, n: number, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, step: number, stable: boolean) {
    const bc1 = 1 - beta1 ** step;
    const bc2 = 1 - beta2 ** step;
    for (let i = 0; i < n; i++) {
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    }
    let tensorLr = lr;
    if (stable) {
      let sum = 0;
      const epsSq = eps * eps;
      for (let i = 0; i < n; i++) sum += (g[i] * g[i]) / Math.max(v[i] / bc2, epsSq);
      tensorLr = lr / Math.max(1, Math.sqrt(sum / n));
    }
    const decay = 1 - tensorLr * weightDecay;
    const stepSize = tensorLr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    for (let i = 0; i < n; i++) p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtBc2 + eps);
  },

  sumSquares(x: Floats, n: number) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i] * x[i];
    return s;
  },

  scale(x: Floats, n: number, factor: number) {
    for (let i = 0; i < n; i++) x[i] *= factor;
  },

  addInto(y: Floats, x: Floats, n: number) {
    for (let i = 0; i < n; i++) y[i] += x[i];
  },
} satisfies Kernels;

const bf16Scratch = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16Scratch.buffer);

/** x rounded to the nearest bfloat16 (ties to even), as a number: what the bf16 kernels do to their inputs. */
export function roundBf16(x: number): number {
  bf16Scratch[0] = x;
  const u = bf16Bits[0];
  if ((u & 0x7fffffff) > 0x7f800000) return x; // NaN stays NaN
  bf16Bits[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return bf16Scratch[0];
}

/**
 * The bf16 Linear (native gemmBf16): C[M,N] = beta·C + bf16(A)[M,K]·bf16(W)ᵀ (+ bias[N]) for W [N,K],
 * inputs rounded to bf16, products accumulated at full precision.
 */
export function referenceGemmBf16(C: Float32Array, A: Float32Array, W: Float32Array, bias: Float32Array | null,
  M: number, N: number, K: number, beta: 0 | 1): void {
  referenceKernels.gemm(C, A.map(roundBf16), W.map(roundBf16), bias, M, N, K, false, true, beta);
}
