/**
 * Independent IEEE oracles for the 16-bit float tests: float32 → f16 / bf16 round to nearest even
 * in integer arithmetic on the float32 bits, and the exact decoded value of a 16-bit pattern. They
 * share no code with src/safetensors (which rounds through float64 arithmetic), so a bug in one
 * does not hide in the other.
 */
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

export function f32Bits(x: number): number {
  scratch[0] = x;
  return scratchBits[0];
}

export function fromF32Bits(bits: number): number {
  scratchBits[0] = bits >>> 0;
  return scratch[0];
}

/** float32 → IEEE half bits, round to nearest even (NaN → quiet NaN, overflow → ±inf). */
export function f32ToF16Bits(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Result is subnormal (or zero, or rounds up to the smallest normal 0x400): drop 14 − e bits.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const half = 2 ** (shift - 1);
    const rem = full % (2 * half);
    let r = Math.floor(full / (2 * half));
    if (rem > half || (rem === half && r % 2 === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // a carry into the exponent is the right answer (up to inf)
  return sign | r;
}

/** float32 → bfloat16 bits, round to nearest even, by comparing the two neighbouring bf16 values. */
export function f32ToBf16Bits(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) & 0x8000) | 0x7fc0;
  const lo = b >>> 16;
  if ((b & 0xffff) === 0) return lo;
  const hi = lo + 1;
  // Past the largest finite bf16 the upper neighbour is inf; for rounding it stands at 2^128.
  const hiValue = (hi & 0x7fff) === 0x7f80 ? Math.sign(x) * 2 ** 128 : bf16Value(hi);
  const dLo = Math.abs(x - bf16Value(lo));
  const dHi = Math.abs(hiValue - x);
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return lo % 2 === 0 ? lo : hi;
}

/** The value of an IEEE half bit pattern, from the definition. */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  if (exp === 0) return sign * frac * 2 ** -24;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** The value of a bfloat16 bit pattern: the top half of a float32. */
export function bf16Value(h: number): number {
  return fromF32Bits((h & 0xffff) << 16);
}

export function isF16Subnormal(h: number): boolean {
  return ((h >> 10) & 0x1f) === 0 && (h & 0x3ff) !== 0;
}

/** Same value, and the same sign of zero and NaN-ness: what "exactly equal" means for decoded floats. */
export function sameFloat(a: number, b: number): boolean {
  return Object.is(a, b);
}
