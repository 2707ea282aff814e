/**
 * Deterministic randomness for training: dropout masks, MLM masking and shuffling all draw from `Rng`
 * streams seeded by the user, and a checkpoint stores their states so a resumed run draws the same numbers.
 */

/** A small, fast 32-bit PRNG (Mulberry32): one uint32 of state, so saving and restoring it is trivial. */
export class Rng {
  private s: number;

  constructor(seed = 0) {
    this.s = seed >>> 0;
  }

  /** The next uint32. */
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  get state(): number {
    return this.s;
  }

  set state(s: number) {
    this.s = s >>> 0;
  }
}

/** In-place Fisher–Yates shuffle driven by `rng`. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Draws a dropout keep-mask: mask[i] = 1 with probability 1 − p (one uint32 per element). */
export function sampleDropoutMask(mask: Uint8Array, n: number, p: number, rng: Rng): void {
  const threshold = p * 4294967296;
  for (let i = 0; i < n; i++) mask[i] = rng.nextUint32() >= threshold ? 1 : 0;
}

/**
 * x[i] ← mask[i] ? x[i] / (1 − p) : 0, in place. The dropout forward (after sampling) and its backward
 * (on the gradient, with the same mask) are this same operation.
 */
export function applyDropoutMask(x: Float32Array, mask: Uint8Array, n: number, p: number): void {
  const scale = 1 / (1 - p);
  for (let i = 0; i < n; i++) x[i] = mask[i] ? x[i] * scale : 0;
}
