/**
 * Character offsets for tokens. `@huggingface/tokenizers` returns ids and token strings but no offsets,
 * so they are recovered here by matching each token's bytes against the normalized text, and mapping
 * normalized characters back to the original string the way the Rust `tokenizers` crate aligns them.
 * Offsets are JavaScript string indices (UTF-16), so `text.slice(start, end)` is the token's source text.
 */

/** GPT-2's byte-level alphabet: each byte 0..255 is written as one printable character. */
function byteLevelDecoder(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Map<string, number>();
  for (const b of printable) map.set(String.fromCodePoint(b), b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) map.set(String.fromCodePoint(256 + n++), b);
  return map;
}

const BYTE_LEVEL = byteLevelDecoder();
const utf8 = new TextEncoder();

/** The bytes a byte-level token stands for (token strings are in GPT-2's byte alphabet). */
export function byteLevelTokenBytes(token: string): Uint8Array | null {
  const out: number[] = [];
  for (const ch of token) {
    const b = BYTE_LEVEL.get(ch);
    if (b === undefined) return null;
    out.push(b);
  }
  return Uint8Array.from(out);
}

export function utf8Bytes(s: string): Uint8Array {
  return utf8.encode(s);
}

/** The normalized text as UTF-8 bytes, with each byte's source range [start, end) in the original (UTF-16). */
export interface AlignedText {
  bytes: Uint8Array;
  origStart: Int32Array;
  origEnd: Int32Array;
}

/**
 * Normalizes `text` piece by piece and records where each normalized character came from. Pieces are
 * grown until normalizing them alone gives the same result as in context (NFC composes a letter with its
 * combining marks, Hangul jamo into syllables). Within a piece, normalized character i maps to original
 * character min(i, m − 1), as the Rust crate's alignment does: a composed "é" points at the "e" only.
 */
export function alignNormalized(text: string, normalize: ((s: string) => string) | null): AlignedText {
  let cap = text.length * 3 + 16;
  let bytes = new Uint8Array(cap);
  let starts = new Int32Array(cap);
  let ends = new Int32Array(cap);
  let n = 0;
  const push = (b: number, s: number, e: number) => {
    if (n === cap) {
      cap *= 2;
      const grow = <T extends Uint8Array | Int32Array>(a: T, make: (k: number) => T) => {
        const g = make(cap);
        g.set(a);
        return g;
      };
      bytes = grow(bytes, (k) => new Uint8Array(k));
      starts = grow(starts, (k) => new Int32Array(k));
      ends = grow(ends, (k) => new Int32Array(k));
    }
    bytes[n] = b;
    starts[n] = s;
    ends[n] = e;
    n++;
  };
  /** UTF-8 bytes of code point `cp`, all mapped to the source range [s, e). */
  const pushCodePoint = (cp: number, s: number, e: number) => {
    if (cp < 0x80) push(cp, s, e);
    else if (cp < 0x800) {
      push(0xc0 | (cp >> 6), s, e);
      push(0x80 | (cp & 63), s, e);
    } else if (cp < 0x10000) {
      push(0xe0 | (cp >> 12), s, e);
      push(0x80 | ((cp >> 6) & 63), s, e);
      push(0x80 | (cp & 63), s, e);
    } else {
      push(0xf0 | (cp >> 18), s, e);
      push(0x80 | ((cp >> 12) & 63), s, e);
      push(0x80 | ((cp >> 6) & 63), s, e);
      push(0x80 | (cp & 63), s, e);
    }
  };
  const emit = (normalized: string, sources: [number, number][]) => {
    let i = 0;
    for (const ch of normalized) {
      const [s, e] = sources[Math.min(i, sources.length - 1)];
      pushCodePoint(ch.codePointAt(0)!, s, e);
      i++;
    }
  };
  const identity = !normalize || normalize(text) === text;
  let seg = '';
  let nseg = '';
  let sources: [number, number][] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const len = cp > 0xffff ? 2 : 1;
    const [s, e] = [i, i + len];
    i += len;
    if (identity) {
      pushCodePoint(cp, s, e);
      continue;
    }
    const ch = text.slice(s, e);
    // Fast path: an ASCII character never joins the piece before it, and stands alone unless a
    // non-ASCII character (a combining mark) follows.
    if (cp < 0x80 && (i === text.length || text.charCodeAt(i) < 0x80)) {
      if (seg !== '') emit(nseg, sources);
      emit(normalize!(ch), [[s, e]]);
      seg = '';
      nseg = '';
      sources = [];
      continue;
    }
    const nch = normalize!(ch);
    const joined = seg === '' ? nch : normalize!(seg + ch);
    if (seg !== '' && joined === nseg + nch) {
      emit(nseg, sources);
      seg = ch;
      nseg = nch;
      sources = [[s, e]];
    } else {
      seg += ch;
      nseg = joined;
      sources.push([s, e]);
    }
  }
  if (seg !== '') emit(nseg, sources);
  return { bytes: bytes.subarray(0, n), origStart: starts.subarray(0, n), origEnd: ends.subarray(0, n) };
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  if (needle.length === 0) return from;
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function isSpaceByte(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
}

export interface TokenPiece {
  /** The bytes the token stands for in the normalized text; null when unknown (e.g. [UNK]). */
  bytes: Uint8Array | null;
  /** Added tokens that take in the whitespace before / after them (the Rust offsets include it). */
  lstrip: boolean;
  rstrip: boolean;
}

/**
 * Offsets [start, end) in the original text for each token, in order. A token whose bytes cover part of a
 * character (byte-level BPE splits emoji) gets the whole character, as in Rust. A token that cannot be
 * found (an unknown token) gets the empty range at the current position.
 */
export function tokenOffsets(aligned: AlignedText, pieces: TokenPiece[], textLength: number): [number, number][] {
  const { bytes, origStart, origEnd } = aligned;
  const out: [number, number][] = [];
  let cursor = 0;
  const posAt = (byte: number) => (byte < bytes.length ? origStart[byte] : textLength);
  for (const piece of pieces) {
    const at = piece.bytes === null ? -1 : indexOfBytes(bytes, piece.bytes, cursor);
    if (at < 0 || piece.bytes === null || piece.bytes.length === 0) {
      const p = posAt(cursor);
      out.push([p, p]);
      continue;
    }
    let start = at;
    if (piece.lstrip) while (start > cursor && isSpaceByte(bytes[start - 1])) start--;
    let end = at + piece.bytes.length;
    if (piece.rstrip) while (end < bytes.length && isSpaceByte(bytes[end])) end++;
    out.push([origStart[start], origEnd[end - 1]]);
    cursor = end;
  }
  return out;
}
