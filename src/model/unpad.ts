/**
 * The API boundary between padded batches and the packed (unpadded) layout the model runs on:
 * real tokens of every sequence concatenated, with cumulative sequence lengths.
 */
import { InputError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

/** A padded batch of ids or mask values: rows of numbers, or a [batch, seq] Int32 tensor. */
export type BatchInput = ArrayLike<number>[] | Tensor<Int32Array>;

export interface PackedBatch {
  /** Real token ids, sequences concatenated [T]. */
  inputIds: Int32Array;
  /** Offsets of each sequence in the packed arrays [B + 1]. */
  cuSeqlens: Int32Array;
  /** Position of each token within its own sequence [T] (RoPE counts from the first real token). */
  positions: Int32Array;
  batch: number;
  seqLen: number;
  /** Column in the padded row where each sequence's first real token sits [B] (non-zero under left padding). */
  rowStart: Int32Array;
}

function rows(x: BatchInput, what: string): ArrayLike<number>[] {
  if (x instanceof Tensor) {
    if (x.dims.length !== 2) throw new InputError(`${what} must be [batch, seq], got dims [${x.dims}]`);
    return Array.from({ length: x.dims[0] }, (_, b) => x.data.subarray(b * x.dims[1], (b + 1) * x.dims[1]));
  }
  if (!Array.isArray(x)) throw new InputError(`${what} must be an array of rows ([batch, seq]) or a 2-d Tensor`);
  // A flat [seq] array is the common mistake: its "rows" are numbers, which have no length.
  x.forEach((row, b) => {
    if (row === null || typeof row !== 'object' || typeof row.length !== 'number')
      throw new InputError(`${what}[${b}] is ${show(row)}, not a row: ${what} must be [batch, seq] (wrap one sequence as [ids])`);
    // Transformers.js hands out BigInt64Array ids; ours are numbers (Int32Array), as STYLE.md decides.
    if (row instanceof BigInt64Array || row instanceof BigUint64Array)
      throw new InputError(`${what}[${b}] is a ${row.constructor.name}; pass numbers or an Int32Array (e.g. Int32Array.from(row, Number))`);
  });
  return x;
}

/** A value for an error message: bigint and strings are marked, so `1n` or `'1'` do not read as the number 1. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v === 'bigint' ? `${v}n (a bigint)` : JSON.stringify(v) ?? String(v);
}

/** Positions inside each sequence, [T], given cuSeqlens. */
export function positionsFor(cuSeqlens: Int32Array): Int32Array {
  const T = cuSeqlens[cuSeqlens.length - 1];
  const pos = new Int32Array(T);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) for (let t = cuSeqlens[s]; t < cuSeqlens[s + 1]; t++) pos[t] = t - cuSeqlens[s];
  return pos;
}

/**
 * Drops the padding of a [batch, seq] batch. The mask (all ones when absent) must be one
 * contiguous run of 1s per row (right or left padding); holes, empty rows and ragged rows are rejected.
 */
export function packBatch(inputIds: BatchInput, attentionMask: BatchInput | undefined, vocabSize: number, maxLen: number): PackedBatch {
  const idRows = rows(inputIds, 'inputIds');
  const maskRows = attentionMask === undefined ? undefined : rows(attentionMask, 'attentionMask');
  const B = idRows.length;
  if (B === 0) throw new InputError('empty batch: inputIds has no rows');
  const S = idRows[0].length;
  if (S === 0) throw new InputError('inputIds rows are empty (sequence length 0)');
  if (maskRows && maskRows.length !== B) throw new InputError(`attentionMask has ${maskRows.length} rows, inputIds has ${B}`);
  const cuSeqlens = new Int32Array(B + 1);
  const rowStart = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    if (idRows[b].length !== S) throw new InputError(`ragged batch: inputIds row ${b} has length ${idRows[b].length}, row 0 has ${S}`);
    const m = maskRows?.[b];
    if (m && m.length !== S) throw new InputError(`attentionMask row ${b} has length ${m.length}, inputIds rows have ${S}`);
    let first = -1;
    let last = -1;
    for (let s = 0; s < S; s++) {
      const v = m ? m[s] : 1;
      if (v !== 0 && v !== 1) throw new InputError(`attentionMask[${b}][${s}] is ${show(v)}; mask values must be 0 or 1`);
      if (v === 1) {
        if (first < 0) first = s;
        else if (last !== s - 1) throw new InputError(`attentionMask row ${b} has a hole at position ${last + 1} (0 between 1s); only left or right padding is supported`);
        last = s;
      }
    }
    if (first < 0) throw new InputError(`attentionMask row ${b} has no real tokens (all zeros)`);
    const len = last - first + 1;
    if (len > maxLen) throw new InputError(`sequence ${b} has ${len} tokens, more than max_position_embeddings (${maxLen})`);
    rowStart[b] = first;
    cuSeqlens[b + 1] = cuSeqlens[b] + len;
  }
  const T = cuSeqlens[B];
  const ids = new Int32Array(T);
  for (let b = 0; b < B; b++) {
    const row = idRows[b];
    for (let t = 0; t < cuSeqlens[b + 1] - cuSeqlens[b]; t++) {
      const id = row[rowStart[b] + t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new InputError(`inputIds[${b}][${rowStart[b] + t}] = ${show(id)} is not a token id in [0, ${vocabSize})`);
      ids[cuSeqlens[b] + t] = id;
    }
  }
  return { inputIds: ids, cuSeqlens, positions: positionsFor(cuSeqlens), batch: B, seqLen: S, rowStart };
}

/** Packed rows [T, width] back to a padded [B, S, width] tensor, zeros at padding. */
export function padOutput(packed: Float32Array, width: number, batch: PackedBatch): Tensor {
  const { cuSeqlens, rowStart, batch: B, seqLen: S } = batch;
  const out = new Float32Array(B * S * width);
  for (let b = 0; b < B; b++) {
    const len = cuSeqlens[b + 1] - cuSeqlens[b];
    out.set(packed.subarray(cuSeqlens[b] * width, (cuSeqlens[b] + len) * width), (b * S + rowStart[b]) * width);
  }
  return new Tensor(out, [B, S, width]);
}

/** Checks a caller-packed batch: ids in range, cuSeqlens from 0, non-decreasing, ending at T, lengths ≤ maxLen. */
export function checkPacked(inputIds: Int32Array, cuSeqlens: Int32Array, vocabSize: number, maxLen: number): void {
  // The kernels read these as int32 buffers; a plain array would fail there with a less useful message.
  if (!(inputIds instanceof Int32Array)) throw new InputError('packed inputIds must be an Int32Array');
  if (!(cuSeqlens instanceof Int32Array)) throw new InputError('cuSeqlens must be an Int32Array');
  if (cuSeqlens.length < 2) throw new InputError('cuSeqlens needs at least 2 entries (one sequence)');
  if (cuSeqlens[0] !== 0) throw new InputError(`cuSeqlens[0] must be 0, got ${cuSeqlens[0]}`);
  for (let s = 1; s < cuSeqlens.length; s++) {
    const len = cuSeqlens[s] - cuSeqlens[s - 1];
    if (len <= 0) throw new InputError(`cuSeqlens must be strictly increasing: sequence ${s - 1} has length ${len}`);
    if (len > maxLen) throw new InputError(`sequence ${s - 1} has ${len} tokens, more than max_position_embeddings (${maxLen})`);
  }
  if (cuSeqlens[cuSeqlens.length - 1] !== inputIds.length)
    throw new InputError(`cuSeqlens ends at ${cuSeqlens[cuSeqlens.length - 1]} but there are ${inputIds.length} token ids`);
  for (let t = 0; t < inputIds.length; t++)
    if (inputIds[t] < 0 || inputIds[t] >= vocabSize) throw new InputError(`inputIds[${t}] = ${inputIds[t]} is not a token id in [0, ${vocabSize})`);
}
