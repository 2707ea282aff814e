/**
 * safetensors reading and writing. The format: u64-LE header length N, N bytes of JSON
 * ({name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}), then the data.
 * Every check names the file and the tensor, so a damaged checkpoint says what is wrong.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { SafetensorsError } from '../errors.js';

export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<Dtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Largest header we accept: real checkpoints have headers of a few hundred KB. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `length` bytes at `position` of the open file; a short read means the file changed or was cut after its header was read. */
function readExactly(fd: number, path: string, position: number, length: number, into?: Uint8Array, tensor?: string): Uint8Array {
  const out = into ?? new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) {
      const what = tensor === undefined ? '' : `tensor '${tensor}': `;
      throw new SafetensorsError(`${path}: ${what}file ends after ${position + done} bytes, expected ${position + length} (truncated or changed while reading?)`);
    }
    done += n;
  }
  return out;
}

export interface TensorEntry {
  dtype: Dtype;
  shape: number[];
  /** Where the tensor's raw little-endian bytes are in the file, and how many there are. */
  fileOffset: number;
  byteLength: number;
}

function fileIdentity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

/**
 * A safetensors file whose header has been read and checked. Tensors are read from disk one at a time when
 * asked for, so loading a checkpoint never holds the whole file in memory beside the tensors made from it.
 */
export class SafetensorsFile {
  constructor(
    readonly path: string,
    readonly tensors: Map<string, TensorEntry>,
    readonly metadata: Record<string, string>,
    /** Device, inode, size and mtime when the header was read: tensors are read later, from the same file only. */
    private readonly identity: string,
  ) {}

  static read(path: string): SafetensorsFile {
    const fail = (msg: string): never => {
      throw new SafetensorsError(`${path}: ${msg}`);
    };
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new SafetensorsError(`cannot read safetensors file ${path}: ${(e as Error).message}`);
    }
    try {
      const stat = fstatSync(fd);
      const fileSize = stat.size;
      if (fileSize < 8) fail(`file is ${fileSize} bytes, too short for the 8-byte header length (truncated?)`);
      const headerLen = Buffer.from(readExactly(fd, path, 0, 8)).readBigUInt64LE(0);
      if (headerLen > BigInt(fileSize - 8))
        fail(`header length ${headerLen} runs past the end of the file (${fileSize} bytes; truncated or not safetensors)`);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes`);
      const n = Number(headerLen);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(new TextDecoder().decode(readExactly(fd, path, 8, n)));
      } catch (e) {
        return fail(`header is not valid JSON (${(e as Error).message})`);
      }
      return SafetensorsFile.fromHeader(header, 8 + n, fileSize, path, fileIdentity(stat));
    } finally {
      closeSync(fd);
    }
  }

  private static fromHeader(header: Record<string, unknown>, dataStart: number, fileSize: number, path: string, identity: string): SafetensorsFile {
    const fail = (msg: string): never => {
      throw new SafetensorsError(`${path}: ${msg}`);
    };
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return fail('header is not a JSON object');
    const dataLen = fileSize - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    const spans: [number, number, string][] = [];
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = raw as Record<string, string>;
        continue;
      }
      const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof info !== 'object' || info === null) fail(`tensor '${name}': entry is not an object`);
      const dtype = info.dtype as Dtype;
      // hasOwn, not `in`: 'constructor' or 'toString' must not pass as a dtype.
      if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
        fail(`tensor '${name}': unknown dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
      const shape = info.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
        fail(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
      const offsets = info.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0))
        fail(`tensor '${name}': data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
      const [begin, end] = offsets as number[];
      if (begin > end) fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
      if (end > dataLen)
        fail(`tensor '${name}': data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes; file truncated?)`);
      const elements = (shape as number[]).reduce((a, b) => a * b, 1);
      const expected = elements * DTYPE_BYTES[dtype];
      if (end - begin !== expected)
        fail(`tensor '${name}': ${end - begin} bytes for ${dtype} shape [${shape}] which needs ${expected}`);
      spans.push([begin, end, name]);
      tensors.set(name, { dtype, shape: shape as number[], fileOffset: dataStart + begin, byteLength: end - begin });
    }
    // Sorted by begin, a non-empty span overlaps an earlier one exactly when it begins before the
    // furthest end seen so far (comparing only neighbours misses [0,100], [10,10], [50,60]).
    const filled = spans.filter(([b, e]) => e > b).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let furthest = filled[0];
    for (const span of filled.slice(1)) {
      if (span[0] < furthest[1])
        fail(`tensors '${furthest[2]}' and '${span[2]}' overlap (data_offsets [${furthest[0]}, ${furthest[1]}] and [${span[0]}, ${span[1]}])`);
      if (span[1] > furthest[1]) furthest = span;
    }
    return new SafetensorsFile(path, tensors, metadata, identity);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.tensors.get(name);
    if (!e) throw new SafetensorsError(`${this.path}: no tensor named '${name}'`);
    return e;
  }

  /** The tensor's raw little-endian bytes, read from the file (into `into` when given, of its byte length). */
  bytes(name: string, into?: Uint8Array): Uint8Array {
    const e = this.entry(name);
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      throw new SafetensorsError(`cannot read tensor '${name}' from ${this.path}: ${(err as Error).message}`);
    }
    try {
      // A file replaced or rewritten since its header was read would hand back other bytes at these offsets.
      if (fileIdentity(fstatSync(fd)) !== this.identity)
        throw new SafetensorsError(`${this.path} changed on disk after it was opened, so tensor '${name}' cannot be read from it; load the checkpoint again`);
      return readExactly(fd, this.path, e.fileOffset, e.byteLength, into, name);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The tensor as float32 (F32 read straight into the result; F16, BF16 and F64 converted), in `into` when
   * given (it must have the tensor's size), else in a new array.
   */
  float32(name: string, into?: Float32Array): Float32Array {
    const e = this.entry(name);
    const what = `${this.path}: tensor '${name}'`;
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (into && into.length !== n) throw new SafetensorsError(`${what} has ${n} values, the buffer for it ${into.length}`);
    const out = into ?? new Float32Array(n);
    if (e.dtype === 'F32' && LITTLE_ENDIAN) {
      this.bytes(name, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      return out;
    }
    if (!['F32', 'F64', 'F16', 'BF16'].includes(e.dtype))
      throw new SafetensorsError(`${what} has dtype ${e.dtype}, expected a float dtype (F32, F16, BF16, F64)`);
    const raw = this.bytes(name);
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    switch (e.dtype) {
      case 'F32':
        for (let i = 0; i < n; i++) out[i] = v.getFloat32(i * 4, true);
        break;
      case 'F64':
        for (let i = 0; i < n; i++) out[i] = v.getFloat64(i * 8, true);
        break;
      case 'F16':
        for (let i = 0; i < n; i++) out[i] = f16ToF32(v.getUint16(i * 2, true));
        break;
      default: {
        const bits = new Uint32Array(out.buffer, out.byteOffset, n);
        for (let i = 0; i < n; i++) bits[i] = v.getUint16(i * 2, true) << 16;
      }
    }
    return out;
  }

  /** An integer tensor (I64, I32, ...) as Int32Array; values outside int32 throw. */
  int32(name: string): Int32Array {
    const e = this.entry(name);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const out = new Int32Array(n);
    const raw = this.bytes(name);
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) {
      let x: number;
      switch (e.dtype) {
        case 'I64': x = Number(v.getBigInt64(i * 8, true)); break;
        case 'I32': x = v.getInt32(i * 4, true); break;
        case 'I16': x = v.getInt16(i * 2, true); break;
        case 'I8': x = v.getInt8(i); break;
        case 'U8': case 'BOOL': x = v.getUint8(i); break;
        default: throw new SafetensorsError(`${this.path}: tensor '${name}' is ${e.dtype}, not an integer tensor`);
      }
      if (x !== (x | 0)) throw new SafetensorsError(`${this.path}: tensor '${name}' value ${x} does not fit in int32`);
      out[i] = x;
    }
    return out;
  }
}

/** IEEE half to float, exact for normals, subnormals, infinities and NaN. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export interface TensorToWrite {
  dtype: 'F32' | 'BF16' | 'F16' | 'I64' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

function f32ToBf16(x: number, scratch: Float32Array, bits: Uint32Array): number {
  scratch[0] = x;
  const b = bits[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0; // NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}

function roundHalfEven(q: number): number {
  const floor = Math.floor(q);
  const rem = q - floor;
  return rem > 0.5 || (rem === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

function f32ToF16(x: number): number {
  // Round to nearest even through float64 arithmetic; handles subnormals and overflow.
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24); // subnormal (may round up to the smallest normal)
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--;
  const frac = a / 2 ** exp - 1;
  let mant = roundHalfEven(frac * 1024);
  if (mant === 1024) {
    mant = 0;
    exp++;
  }
  if (exp + 15 >= 31) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | mant;
}

function encode(t: TensorToWrite, what: string): Uint8Array {
  const n = t.data.length;
  if (t.dtype === 'I32' || t.dtype === 'I64') {
    // Int32Array.from would truncate 1.5 silently, BigInt64Array wraps past 2^63 and BigInt() throws a bare RangeError.
    const limit = t.dtype === 'I32' ? 2 ** 31 : 2 ** 63;
    for (let i = 0; i < n; i++) {
      const x = t.data[i];
      if (!Number.isInteger(x) || x < -limit || x >= limit)
        throw new SafetensorsError(`${what}: value ${x} at index ${i} is not representable as ${t.dtype}`);
    }
  }
  const scratch = new Float32Array(1);
  const bits = new Uint32Array(scratch.buffer);
  switch (t.dtype) {
    case 'F32':
      if (t.data instanceof Float32Array && LITTLE_ENDIAN) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      return new Uint8Array(Float32Array.from(t.data).buffer);
    case 'I32':
      return new Uint8Array(Int32Array.from(t.data).buffer);
    case 'I64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(t.data[i]);
      return new Uint8Array(out.buffer);
    }
    case 'BF16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToBf16(t.data[i], scratch, bits);
      return new Uint8Array(out.buffer);
    }
    case 'F16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF16(t.data[i]);
      return new Uint8Array(out.buffer);
    }
  }
}

/** Writes all of `bytes`: writeSync may write fewer bytes than asked (file size limit, full disk) without throwing. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Writes tensors to `path` atomically: a temporary file beside it, fsync, then rename, so a crash
 * never leaves a half-written checkpoint where a good one was. Tensors are encoded one at a time as they
 * are written. A failed write removes the temporary file and throws a SafetensorsError; the file at
 * `path`, if any, is untouched.
 */
export function writeSafetensors(path: string, tensors: Map<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new SafetensorsError(`${path}: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    const byteLength = size * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, len);
      writeAll(fd, headerBytes);
      for (const name of names) writeAll(fd, encode(tensors.get(name)!, `${path}: tensor '${name}'`));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (e instanceof SafetensorsError) throw e; // a value that cannot be encoded, already named
    throw new SafetensorsError(`cannot write safetensors file ${path}: ${(e as Error).message}`);
  }
}
