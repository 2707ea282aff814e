/**
 * The backward of every non-GEMM kernel, as plain TypeScript loops over float32 buffers (sums in float64).
 * Linear layers need no function here: their backward is two `Kernels.gemm` calls (dX = dY·W, dW += dYᵀ·X),
 * plus `biasBackward` below for a bias.
 *
 * `BackwardKernels` is the seam for the native versions: its methods have the signatures and meaning of the
 * native backward kernels of the `Kernels` interface, so the model switches to them by assigning
 * `backwardKernels` below. Conventions: inputs are what the forward saw or saved; parameter gradients
 * (dw, db, dtable) are ACCUMULATED (+=), as PyTorch's `.grad`; input gradients (dx, dqkv) are written (=).
 * Shapes are row-major.
 */
import { InputError } from '../errors.js';
import { activate, erf } from '../kernels/reference.js';
import { Activation } from '../kernels/types.js';

export interface BackwardKernels {
  readonly name: string;
  /**
   * Backward of `Kernels.attention`. dqkv [T, 3, H, Dh] (written) from dout [T, H·Dh], the forward's qkv
   * [T, 3, H, Dh] (after RoPE), out [T, H·Dh] and lse [H, T] (log-sum-exp of the scaled scores).
   * cuSeqlens [numSeqs + 1]; window < 0 is global, else |i − j| ≤ window; scale as in the forward.
   */
  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, out: Float32Array, lse: Float32Array,
    cuSeqlens: Int32Array, numSeqs: number, H: number, Dh: number, window: number, scale: number): void;
  /**
   * Backward of `Kernels.layernorm` (out = (x − mean)·rstd·w + b). dx [T, D] written; dw [D] += ; db [D] +=
   * (null when there is no bias); dout [T, D]; x [T, D] the forward input; mean, rstd [T] saved by the forward.
   */
  layernormBackward(dx: Float32Array, dw: Float32Array, db: Float32Array | null, dout: Float32Array, x: Float32Array,
    w: Float32Array, mean: Float32Array, rstd: Float32Array, T: number, D: number): void;
  /** Backward of `Kernels.geglu` (out = act(x[:, :I]) · x[:, I:]). dx [T, 2I] (written), dout [T, I], x [T, 2I]. */
  gegluBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, T: number, I: number, act: Activation): void;
  /** Backward of `Kernels.activation`: dx[n] = dout[n] · act′(x[n]) (written; dx may alias dout). */
  activationBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, n: number, act: Activation): void;
  /**
   * Backward of `Kernels.rope`, in place on dqkv [T, 3, H, Dh]: the q and k parts are rotated back by their
   * position's angle (the transpose of the forward rotation); v is untouched. pos [T], cos/sin [maxPos, Dh/2].
   */
  ropeBackward(dqkv: Float32Array, pos: Int32Array, cos: Float32Array, sin: Float32Array, T: number, H: number,
    Dh: number, maxPos: number): void;
  /**
   * Backward of `Kernels.embedding`: dtable[ids[t]] += dout[t] for every t except ids equal to paddingIdx
   * (HF's padding_idx row gets no gradient from the lookup; < 0: none). ids outside [0, vocab) throw.
   */
  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, T: number, D: number, vocab: number,
    paddingIdx: number): void;
}

/** Backward of a bias add: db[N] += Σ_t dout[t, N] for dout [T, N]. */
export function biasBackward(db: Float32Array, dout: Float32Array, T: number, N: number): void {
  const acc = new Float64Array(N);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) acc[n] += dout[t * N + n];
  for (let n = 0; n < N; n++) db[n] += acc[n];
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** d act(x) / dx, for the activations of `Kernels.activation`. */
export function activateGrad(x: number, act: Activation): number {
  switch (act) {
    case Activation.GeluErf:
      return 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
    case Activation.GeluTanh: {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
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

export const typescriptBackwardKernels: BackwardKernels = {
  name: 'typescript',

  attentionBackward(dqkv, dout, qkv, out, lse, cuSeqlens, numSeqs, H, Dh, window, scale) {
    const hidden = H * Dh;
    const row = 3 * hidden;
    const T = cuSeqlens[numSeqs];
    dqkv.fill(0, 0, T * row);
    // dK and dV of one (sequence, head) collect sums over many queries: keep them in float64.
    let dk = new Float64Array(0);
    let dv = new Float64Array(0);
    const dq = new Float64Array(Dh);
    for (let s = 0; s < numSeqs; s++) {
      const start = cuSeqlens[s];
      const end = cuSeqlens[s + 1];
      const len = end - start;
      if (dk.length < len * Dh) {
        dk = new Float64Array(len * Dh);
        dv = new Float64Array(len * Dh);
      }
      for (let h = 0; h < H; h++) {
        dk.fill(0, 0, len * Dh);
        dv.fill(0, 0, len * Dh);
        const qo = h * Dh;
        const ko = hidden + h * Dh;
        const vo = 2 * hidden + h * Dh;
        for (let i = start; i < end; i++) {
          const j0 = window < 0 ? start : Math.max(start, i - window);
          const j1 = window < 0 ? end : Math.min(end, i + window + 1);
          const qi = i * row + qo;
          const oi = i * hidden + h * Dh;
          // D_i = dO_i · O_i (= Σ_j P_ij dP_ij), the softmax backward's row term.
          let Di = 0;
          for (let d = 0; d < Dh; d++) Di += dout[oi + d] * out[oi + d];
          const L = lse[h * T + i];
          dq.fill(0);
          for (let j = j0; j < j1; j++) {
            const kj = j * row + ko;
            const vj = j * row + vo;
            let dot = 0;
            let dp = 0;
            for (let d = 0; d < Dh; d++) {
              dot += qkv[qi + d] * qkv[kj + d];
              dp += dout[oi + d] * qkv[vj + d];
            }
            const p = Math.exp(dot * scale - L);
            const ds = p * (dp - Di) * scale;
            const jl = (j - start) * Dh;
            for (let d = 0; d < Dh; d++) {
              dv[jl + d] += p * dout[oi + d];
              dk[jl + d] += ds * qkv[qi + d];
              dq[d] += ds * qkv[kj + d];
            }
          }
          for (let d = 0; d < Dh; d++) dqkv[qi + d] = dq[d];
        }
        for (let j = start; j < end; j++) {
          const jl = (j - start) * Dh;
          for (let d = 0; d < Dh; d++) {
            dqkv[j * row + ko + d] = dk[jl + d];
            dqkv[j * row + vo + d] = dv[jl + d];
          }
        }
      }
    }
  },

  layernormBackward(dx, dw, db, dout, x, w, mean, rstd, T, D) {
    const dwAcc = new Float64Array(D);
    const dbAcc = new Float64Array(D);
    for (let t = 0; t < T; t++) {
      const o = t * D;
      const mu = mean[t];
      const rs = rstd[t];
      // dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)), with ĝ = dout · w and x̂ the normalised input.
      let m1 = 0;
      let m2 = 0;
      for (let d = 0; d < D; d++) {
        const xhat = (x[o + d] - mu) * rs;
        const g = dout[o + d] * w[d];
        m1 += g;
        m2 += g * xhat;
        dwAcc[d] += dout[o + d] * xhat;
        dbAcc[d] += dout[o + d];
      }
      m1 /= D;
      m2 /= D;
      for (let d = 0; d < D; d++) {
        const xhat = (x[o + d] - mu) * rs;
        dx[o + d] = rs * (dout[o + d] * w[d] - m1 - xhat * m2);
      }
    }
    for (let d = 0; d < D; d++) dw[d] += dwAcc[d];
    if (db) for (let d = 0; d < D; d++) db[d] += dbAcc[d];
  },

  gegluBackward(dx, dout, x, T, I, act) {
    for (let t = 0; t < T; t++) {
      const xo = t * 2 * I;
      for (let i = 0; i < I; i++) {
        const a = x[xo + i];
        const g = x[xo + I + i];
        const d = dout[t * I + i];
        dx[xo + i] = d * g * activateGrad(a, act);
        dx[xo + I + i] = d * activate(a, act);
      }
    }
  },

  activationBackward(dx, dout, x, n, act) {
    for (let i = 0; i < n; i++) dx[i] = dout[i] * activateGrad(x[i], act);
  },

  ropeBackward(dqkv, pos, cos, sin, T, H, Dh, maxPos) {
    const half = Dh / 2;
    const hidden = H * Dh;
    for (let t = 0; t < T; t++) {
      const p = pos[t];
      if (p < 0 || p >= maxPos) throw new InputError(`position ${p} is outside the RoPE table [0, ${maxPos})`);
      for (let part = 0; part < 2; part++) {
        for (let h = 0; h < H; h++) {
          const base = t * 3 * hidden + part * hidden + h * Dh;
          for (let i = 0; i < half; i++) {
            const g1 = dqkv[base + i];
            const g2 = dqkv[base + i + half];
            const c = cos[p * half + i];
            const s = sin[p * half + i];
            dqkv[base + i] = g1 * c + g2 * s;
            dqkv[base + i + half] = g2 * c - g1 * s;
          }
        }
      }
    }
  },

  embeddingBackward(dtable, dout, ids, T, D, vocab, paddingIdx) {
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (id < 0 || id >= vocab) throw new InputError(`token id ${id} at position ${t} is outside the vocabulary [0, ${vocab})`);
      if (id === paddingIdx) continue; // padding_idx: the [PAD] row gets no gradient from the lookup
      const o = id * D;
      for (let d = 0; d < D; d++) dtable[o + d] += dout[t * D + d];
    }
  },
};

/** The backward kernels the model uses: the native `Kernels` (which implement this interface) can be assigned here. */
export const backwardKernels: BackwardKernels = typescriptBackwardKernels;
