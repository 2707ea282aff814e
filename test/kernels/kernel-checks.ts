/**
 * Native kernels against their TypeScript references on awkward random shapes. The checks run in whatever
 * process imports them, so attention.test.ts and elementwise.test.ts can also run them in child processes
 * with MODERNBERT_ISA / MODERNBERT_NUM_THREADS set (the addon reads both once per process): run-checks.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeInfo, nativeKernels } from '../../src/kernels/native.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import { Activation } from '../../src/kernels/types.js';

/** Deterministic normal(0, 1) samples (mulberry32 + Box–Muller). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

/**
 * Throws unless |got − want| ≤ atol + rtol·|want| everywhere; the message names the check, the worst index
 * and both values. Returns the largest error relative to (atol + rtol·|want|) so callers can report margins.
 */
export function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  if (got.length !== want.length) throw new Error(`${name}: length ${got.length} != ${want.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const diff = Math.abs(got[i] - want[i]);
    const err = diff === 0 ? 0 : diff / (atol + rtol * Math.abs(want[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  if (!(worst <= 1))
    throw new Error(`${name}: index ${at}: native ${got[at]} vs reference ${want[at]} (|diff| ${Math.abs(got[at] - want[at])}, allowed ${atol} + ${rtol}·|ref|)`);
  return worst;
}

export function cuSeqlensOf(lengths: number[]): Int32Array {
  const cu = new Int32Array(lengths.length + 1);
  lengths.forEach((n, i) => (cu[i + 1] = cu[i] + n));
  return cu;
}

export interface AttentionCase { lengths: number[]; H: number; Dh: number; windows: number[] }

// Lengths 0..600 mixed in one batch, shorter and longer than the windows, and every head size the fixtures use
// plus one below a vector width.
export const ATTENTION_CASES: AttentionCase[] = [
  { lengths: [1, 2, 5, 31, 33, 64, 65, 100, 129, 257, 600], H: 2, Dh: 64, windows: [-1, 0, 4, 64] },
  { lengths: [7, 1, 0, 40, 150, 301], H: 3, Dh: 12, windows: [-1, 4, 64] },
  { lengths: [1, 50, 0], H: 1, Dh: 6, windows: [-1, 3] },
  { lengths: [17, 96, 3, 200], H: 4, Dh: 16, windows: [-1, 0, 8] },
  { lengths: [250, 1, 19], H: 2, Dh: 24, windows: [-1, 8, 64] },
  { lengths: [33, 70], H: 12, Dh: 64, windows: [-1, 16] },
];

// Tolerances: float32 kernels against float64 references, outputs O(1). Scores are dot products of Dh terms,
// so the error grows with Dh a little; 1e-5 (2e-5 for gradients) is 4-20× the largest error observed.
export const ATTENTION_TOL = { out: [1e-5, 1e-5], lse: [1e-5, 1e-5], grad: [2e-5, 2e-5] } as const;

export function attentionChecks(log: (line: string) => void): void {
  for (const c of ATTENTION_CASES) {
    const cu = cuSeqlensOf(c.lengths);
    const T = cu[c.lengths.length];
    const hidden = c.H * c.Dh;
    const qkv = randn(T * 3 * hidden, 1000 + c.Dh + c.H);
    const dout = randn(T * hidden, 2000 + c.Dh);
    const scale = 1 / Math.sqrt(c.Dh);
    for (const window of c.windows) {
      const label = `attention H=${c.H} Dh=${c.Dh} window=${window} lengths=${c.lengths.join(',')}`;
      const out = new Float32Array(T * hidden);
      const lse = new Float32Array(c.H * T);
      const refOut = new Float32Array(T * hidden);
      const refLse = new Float32Array(c.H * T);
      nativeKernels.attention(out, lse, qkv, cu, c.lengths.length, c.H, c.Dh, window, scale, false);
      referenceKernels.attention(refOut, refLse, qkv, cu, c.lengths.length, c.H, c.Dh, window, scale, false);
      const e1 = expectClose(`${label}: out`, out, refOut, ...ATTENTION_TOL.out);
      const e2 = expectClose(`${label}: lse`, lse, refLse, ...ATTENTION_TOL.lse);
      const dqkv = new Float32Array(T * 3 * hidden).fill(NaN);
      const refD = new Float32Array(T * 3 * hidden);
      nativeKernels.attentionBackward(dqkv, dout, qkv, refOut, refLse, cu, c.lengths.length, c.H, c.Dh, window, scale);
      referenceKernels.attentionBackward(refD, dout, qkv, refOut, refLse, cu, c.lengths.length, c.H, c.Dh, window, scale);
      const e3 = expectClose(`${label}: dqkv`, dqkv, refD, ...ATTENTION_TOL.grad);
      log(`${label}: worst err/tol out ${e1.toFixed(3)} lse ${e2.toFixed(3)} dqkv ${e3.toFixed(3)}`);
    }
  }
}

/**
 * attention(..., bf16 = true) on ATTENTION_CASES and one more (odd sequence starts and lengths, empty sequences,
 * sequences longer than the windows and the key blocks, odd windows). With bf16 attention in use (NativeInfo.bf16Attention 'amx' or
 * 'avx512bf16'), against two references with bounds derived from bf16's unit roundoff u = 2⁻⁸ (8 significand bits, round to nearest):
 *  - the bf16 reference (same bf16 q·scale·log2 e, k, v; unrounded P): the native kernel also rounds each
 *    numerator p_j (relative error ≤ u), so |out − ref| ≤ u·Σ p_j|v_j| / Σ p_j ≤ u·max|v| over the visible keys;
 *    the lse sees the same rounded scores and keeps the float32 tolerance;
 *  - the float32 reference: rounding q·mul and k perturbs each natural-log score by at most
 *    δ_i = (2u + u² + 2⁻²⁴)·scale·max_j Σ_d |q_id·k_jd| over the keys i sees, which moves the softmax weights by a
 *    factor within e^(±2δ_i); with v and P rounded too, |out_i − ref_i| ≤ (e^(2δ_i) − 1 + 2u + u²)·max_j |v_j|
 *    and |lse_i − ref_i| ≤ δ_i (each plus the float32 tolerance). Worst cases, so loose (the log prints the margin);
 *    a lost or duplicated key still fails.
 * Without it (MODERNBERT_BF16=portable, AVX2, portable ISA), the float32 kernel bit for bit.
 */
export function attentionBf16Checks(log: (line: string) => void): void {
  const useBf16 = nativeInfo().bf16Attention !== 'float32';
  const u = 2 ** -8;
  // Plus odd windows, so key blocks start at odd offsets from their sequence, and a head size padded to 64.
  for (const c of [...ATTENTION_CASES, { lengths: [3, 77, 1, 130, 2, 41], H: 2, Dh: 48, windows: [-1, 5, 33] }]) {
    const cu = cuSeqlensOf(c.lengths);
    const S = c.lengths.length;
    const T = cu[S];
    const hidden = c.H * c.Dh;
    const qkv = randn(T * 3 * hidden, 3000 + c.Dh + c.H);
    const scale = 1 / Math.sqrt(c.Dh);
    for (const window of c.windows) {
      const label = `bf16 attention H=${c.H} Dh=${c.Dh} window=${window} lengths=${c.lengths.join(',')}`;
      const out = new Float32Array(T * hidden), lse = new Float32Array(c.H * T);
      nativeKernels.attention(out, lse, qkv, cu, S, c.H, c.Dh, window, scale, true);
      if (!useBf16) {
        const want = new Float32Array(T * hidden), wantLse = new Float32Array(c.H * T);
        nativeKernels.attention(want, wantLse, qkv, cu, S, c.H, c.Dh, window, scale, false);
        expectClose(`${label}: out (float32 fallback)`, out, want, 0, 0);
        expectClose(`${label}: lse (float32 fallback)`, lse, wantLse, 0, 0);
        continue;
      }
      const ref = new Float32Array(T * hidden), refLse = new Float32Array(c.H * T);
      referenceKernels.attention(ref, refLse, qkv, cu, S, c.H, c.Dh, window, scale, true);
      const f32 = new Float32Array(T * hidden), f32Lse = new Float32Array(c.H * T);
      referenceKernels.attention(f32, f32Lse, qkv, cu, S, c.H, c.Dh, window, scale, false);
      let worstBf16 = 0, worstF32 = 0, worstF32Lse = 0;
      const [atol, rtol] = ATTENTION_TOL.out;
      for (let s = 0; s < S; s++)
        for (let h = 0; h < c.H; h++)
          for (let i = cu[s]; i < cu[s + 1]; i++) {
            const j0 = window < 0 ? cu[s] : Math.max(cu[s], i - window);
            const j1 = window < 0 ? cu[s + 1] : Math.min(cu[s + 1], i + window + 1);
            let vmax = 0, absDot = 0;
            for (let j = j0; j < j1; j++) {
              let a = 0;
              for (let d = 0; d < c.Dh; d++) {
                a += Math.abs(qkv[i * 3 * hidden + h * c.Dh + d] * qkv[j * 3 * hidden + hidden + h * c.Dh + d]);
                vmax = Math.max(vmax, Math.abs(qkv[j * 3 * hidden + 2 * hidden + h * c.Dh + d]));
              }
              absDot = Math.max(absDot, a);
            }
            const delta = (2 * u + u * u + 2 ** -24) * scale * absDot;
            const boundBf16 = u * vmax * (1 + u), boundF32 = (Math.expm1(2 * delta) + 2 * u + u * u) * vmax;
            for (let d = 0; d < c.Dh; d++) {
              const n = i * hidden + h * c.Dh + d;
              const e1 = Math.abs(out[n] - ref[n]) / (boundBf16 + atol + rtol * Math.abs(ref[n]));
              const e2 = Math.abs(out[n] - f32[n]) / (boundF32 + atol + rtol * Math.abs(f32[n]));
              if (!(e1 <= 1) || !(e2 <= 1))
                throw new Error(`${label}: out[${i}, head ${h}, ${d}] = ${out[n]}: bf16 reference ${ref[n]} (bound ${boundBf16}), ` +
                  `float32 reference ${f32[n]} (bound ${boundF32})`);
              worstBf16 = Math.max(worstBf16, e1);
              worstF32 = Math.max(worstF32, e2);
            }
            const m = h * T + i;
            const e3 = Math.abs(lse[m] - f32Lse[m]) / (delta + ATTENTION_TOL.lse[0] + ATTENTION_TOL.lse[1] * Math.abs(f32Lse[m]));
            if (!(e3 <= 1)) throw new Error(`${label}: lse[head ${h}, ${i}] = ${lse[m]}, float32 reference ${f32Lse[m]} (bound ${delta})`);
            worstF32Lse = Math.max(worstF32Lse, e3);
          }
      const e4 = expectClose(`${label}: lse vs bf16 reference`, lse, refLse, ...ATTENTION_TOL.lse);
      log(`${label}: worst err/bound out vs bf16 ref ${worstBf16.toFixed(3)}, vs float32 ref ${worstF32.toFixed(3)}; ` +
        `lse vs bf16 ref ${e4.toFixed(3)}, vs float32 ref ${worstF32Lse.toFixed(3)}`);
    }
  }
}

export const ACTIVATIONS = [Activation.GeluErf, Activation.GeluTanh, Activation.Silu, Activation.Relu, Activation.Identity];

/** Inputs for the activations: random, a dense sweep across the polynomial ranges, and extremes. */
export function activationInputs(): Float32Array {
  const sweep = Array.from({ length: 2401 }, (_, i) => -12 + i * 0.01);
  const extremes = [0, -0, 1e-30, -1e-30, 1e-4, -1e-4, -87, 87, -89, 89, -104, 104, -1e4, 1e4];
  return Float32Array.from([...randn(1003, 7, 3), ...sweep, ...extremes]);
}

// Element-wise tolerances (absolute, relative). The activations use polynomial exp/erf with a few ulps of
// error, compared with float64 references whose erf itself is good to 1.2e-7: ~1e-7 of the output scale.
export const ELEMENTWISE_TOL = {
  act: [1e-6, 1e-6],
  layernorm: [1e-5, 1e-5],
  layernormParams: [1e-4, 1e-5],  // dw, db: sums over 300 rows
  rope: [1e-6, 1e-6],
} as const;

export function elementwiseChecks(log: (line: string) => void): void {
  const x = activationInputs();
  const n = x.length;
  const dout = randn(n, 11);
  for (const act of ACTIVATIONS) {
    const got = new Float32Array(n), want = new Float32Array(n);
    nativeKernels.activation(got, x, n, act);
    referenceKernels.activation(want, x, n, act);
    const e1 = expectClose(`activation ${Activation[act]}`, got, want, ...ELEMENTWISE_TOL.act);
    nativeKernels.activationBackward(got, dout, x, n, act);
    referenceKernels.activationBackward(want, dout, x, n, act);
    const e2 = expectClose(`activationBackward ${Activation[act]}`, got, want, ...ELEMENTWISE_TOL.act);
    for (const [T, I] of [[7, 1], [5, 15], [3, 1152], [33, 37]]) {
      const gx = randn(T * 2 * I, 12 + I, 2);
      const gd = randn(T * I, 13 + I);
      const o = new Float32Array(T * I), ro = new Float32Array(T * I);
      nativeKernels.geglu(o, gx, T, I, act);
      referenceKernels.geglu(ro, gx, T, I, act);
      expectClose(`geglu ${Activation[act]} T=${T} I=${I}`, o, ro, ...ELEMENTWISE_TOL.act);
      const dx = new Float32Array(T * 2 * I), rdx = new Float32Array(T * 2 * I);
      nativeKernels.gegluBackward(dx, gd, gx, T, I, act);
      referenceKernels.gegluBackward(rdx, gd, gx, T, I, act);
      expectClose(`gegluBackward ${Activation[act]} T=${T} I=${I}`, dx, rdx, ...ELEMENTWISE_TOL.act);
    }
    log(`activation ${Activation[act]}: worst err/tol forward ${e1.toFixed(3)} backward ${e2.toFixed(3)}`);
  }

  for (const [T, D] of [[1, 1], [37, 13], [300, 48], [5, 768]]) {
    for (const bias of [false, true]) {
      const label = `layernorm T=${T} D=${D} bias=${bias}`;
      const lx = randn(T * D, 20 + D, 3).map((v) => v + 1.5);
      const w = randn(D, 21 + D, 0.25).map((v) => v + 1);
      const b = bias ? randn(D, 22 + D) : null;
      const out = new Float32Array(T * D), mean = new Float32Array(T), rstd = new Float32Array(T);
      const rout = new Float32Array(T * D), rmean = new Float32Array(T), rrstd = new Float32Array(T);
      nativeKernels.layernorm(out, lx, w, b, T, D, 1e-5, mean, rstd);
      referenceKernels.layernorm(rout, lx, w, b, T, D, 1e-5, rmean, rrstd);
      const e = expectClose(`${label}: out`, out, rout, ...ELEMENTWISE_TOL.layernorm);
      expectClose(`${label}: mean`, mean, rmean, ...ELEMENTWISE_TOL.layernorm);
      expectClose(`${label}: rstd`, rstd, rrstd, ...ELEMENTWISE_TOL.layernorm);
      // Backward, with dw/db already holding a gradient (they accumulate).
      const dy = randn(T * D, 23 + D);
      const dx = new Float32Array(T * D), rdx = new Float32Array(T * D);
      const dw = randn(D, 24), rdw = dw.slice();
      const db = bias ? randn(D, 25) : null, rdb = db ? db.slice() : null;
      nativeKernels.layernormBackward(dx, dw, db, dy, lx, w, rmean, rrstd, T, D);
      referenceKernels.layernormBackward(rdx, rdw, rdb, dy, lx, w, rmean, rrstd, T, D);
      const eb = expectClose(`${label}: dx`, dx, rdx, ...ELEMENTWISE_TOL.layernorm);
      expectClose(`${label}: dw`, dw, rdw, ...ELEMENTWISE_TOL.layernormParams);
      if (db && rdb) expectClose(`${label}: db`, db, rdb, ...ELEMENTWISE_TOL.layernormParams);
      log(`${label}: worst err/tol out ${e.toFixed(3)} dx ${eb.toFixed(3)}`);
    }
  }

  for (const Dh of [2, 12, 16, 24, 64]) {
    const T = 29, H = 3, maxPos = 64, half = Dh / 2;
    const pos = Int32Array.from({ length: T }, (_, t) => (t * 7) % maxPos);
    const ang = Float64Array.from({ length: maxPos * half }, (_, k) => Math.floor(k / half) * 10000 ** (-(k % half) / half));
    const cos = Float32Array.from(ang, Math.cos), sin = Float32Array.from(ang, Math.sin);
    const qkv = randn(T * 3 * H * Dh, 30 + Dh);
    const got = qkv.slice(), want = qkv.slice();
    nativeKernels.rope(got, pos, cos, sin, T, H, Dh, maxPos);
    referenceKernels.rope(want, pos, cos, sin, T, H, Dh, maxPos);
    expectClose(`rope Dh=${Dh}`, got, want, ...ELEMENTWISE_TOL.rope);
    nativeKernels.ropeBackward(got, pos, cos, sin, T, H, Dh, maxPos);
    referenceKernels.ropeBackward(want, pos, cos, sin, T, H, Dh, maxPos);
    expectClose(`ropeBackward Dh=${Dh}`, got, want, ...ELEMENTWISE_TOL.rope);
    // The backward is the inverse rotation: applied to the forward's output it restores the input.
    expectClose(`ropeBackward∘rope Dh=${Dh}`, got, qkv, 1e-5, 1e-5);
  }

  for (const D of [13, 100, 768]) {
    const vocab = 50, T = 301;
    const ids = Int32Array.from({ length: T }, (_, t) => (t * t * 7 + 3 * t) % vocab);
    const dy = randn(T * D, 40 + D);
    for (const paddingIdx of [-1, 3]) {
      const got = randn(vocab * D, 41 + D), want = got.slice();
      nativeKernels.embeddingBackward(got, dy, ids, T, D, vocab, paddingIdx);
      referenceKernels.embeddingBackward(want, dy, ids, T, D, vocab, paddingIdx);
      // Same float32 additions in the same (token) order: bit-identical.
      expectClose(`embeddingBackward D=${D} paddingIdx=${paddingIdx}`, got, want, 0, 0);
    }
  }
  log('rope, embedding: ok');
}

/** Float64 copy of deterministic normal samples, for the finite-difference checks. */
export function randn64(n: number, seed: number, scale = 1): Float64Array {
  return Float64Array.from(randn(n, seed, scale));
}

/**
 * Central differences of a scalar loss against an analytic gradient, at every coordinate of x (tiny shapes):
 * throws naming the coordinate when |fd − grad| > atol + rtol·|grad|. Runs in float64, so eps = 1e-6 leaves
 * truncation and rounding errors near 1e-9.
 */
export function checkGradient(name: string, x: Float64Array, loss: () => number, grad: ArrayLike<number>, atol = 1e-6,
  rtol = 1e-5): number {
  const fd = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    const eps = 1e-6 * Math.max(1, Math.abs(x0));
    x[i] = x0 + eps;
    const up = loss();
    x[i] = x0 - eps;
    const down = loss();
    x[i] = x0;
    fd[i] = (up - down) / (2 * eps);
  }
  return expectClose(`${name} (analytic vs finite differences)`, grad, fd, atol, rtol);
}

/** Σ g·y, the scalar whose gradient with respect to y is g. */
export function dot(g: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * y[i];
  return s;
}

const runner = fileURLToPath(new URL('./run-checks.ts', import.meta.url));

/** The ISA paths the CPU can run: portable always, then AVX2 and AVX-512 when present. */
export function availableIsas(): string[] {
  const f = nativeInfo().features;
  const isas = ['portable'];
  if (f.avx2 && f.fma) isas.push('avx2');
  if (f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl) isas.push('avx512');
  return isas;
}

export function runChildChecks(suite: string, isa: string, threads: number, bf16Cap = ''): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', runner, suite], {
    env: { ...process.env, MODERNBERT_ISA: isa, MODERNBERT_NUM_THREADS: String(threads), MODERNBERT_BF16: bf16Cap },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `child (${isa}, ${threads} threads) failed:\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`^isa=${isa} threads=${threads}$`, 'm'), 'the child ran the requested ISA and thread count');
  return r.stdout;
}
