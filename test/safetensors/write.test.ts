// writeSafetensors: bit-exact round trips for every dtype it writes (F16 subnormals and rounding
// ties included), a valid layout, and atomic replacement: the new file arrives by rename, and a
// write that fails midway leaves the old file as it was.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsError } from '../../src/errors.js';
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from '../../src/safetensors/safetensors.js';
import { rng } from '../model/random-checkpoint.js';
import { bf16Value, f16Value, f32Bits, f32ToBf16Bits, f32ToF16Bits, fromF32Bits, sameFloat } from './ieee.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'mb-st-write-'));
}

/** Awkward float32 values: signed zeros, infinities, NaN, f32 subnormals, f16 limits, subnormals and rounding ties. */
function specialFloats(): Float32Array {
  const v: number[] = [0, -0, Infinity, -Infinity, NaN, 1, -1, 1e-45, -1e-45, 3.4028234663852886e38, 1.17549435e-38];
  for (let k = 1; k <= 1023; k += 37) v.push(k * 2 ** -24, -k * 2 ** -24); // f16 subnormals, exact
  v.push(2 ** -25, 3 * 2 ** -25, 2 ** -26, 2 ** -14 - 2 ** -25, 2 ** -14, 65504, 65519, 65520, 1e6, -65520);
  v.push(1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20); // f16 / bf16 ties and near-ties
  const rand = rng(7);
  for (let i = 0; i < 2000; i++) v.push((rand() * 2 - 1) * 2 ** Math.floor(rand() * 60 - 40));
  return Float32Array.from(v);
}

describe('writeSafetensors round trip', () => {
  it('F32, BF16, F16 (subnormals, ties, overflow), I64 and I32 read back bit-exactly', () => {
    const dir = tempDir();
    try {
      const floats = specialFloats();
      const ints = Int32Array.from([0, 1, -1, 2147483647, -2147483648, 123456789, -42, 50283]);
      const tensors = new Map<string, TensorToWrite>([
        ['f32', { dtype: 'F32', shape: [floats.length], data: floats }],
        ['bf16', { dtype: 'BF16', shape: [floats.length], data: floats }],
        ['f16', { dtype: 'F16', shape: [floats.length], data: floats }],
        ['i64', { dtype: 'I64', shape: [2, 4], data: ints }],
        ['i32', { dtype: 'I32', shape: [4, 2], data: ints }],
        ['i64.from.f32', { dtype: 'I64', shape: [3], data: Float32Array.from([-5, 0, 2 ** 40]) }],
        ['empty', { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) }],
        ['scalar', { dtype: 'F32', shape: [], data: Float32Array.from([2.5]) }],
      ]);
      const path = join(dir, 'rt.safetensors');
      writeSafetensors(path, tensors, { format: 'pt', note: 'round trip' });
      const back = SafetensorsFile.read(path);
      assert.deepEqual(back.metadata, { format: 'pt', note: 'round trip' });
      assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
      for (const [name, t] of tensors) {
        assert.equal(back.entry(name).dtype, t.dtype, name);
        assert.deepEqual(back.entry(name).shape, t.shape, name);
      }

      // F32: the very same bits (NaN payload, -0 and subnormals included).
      const f32 = new Uint32Array(Uint8Array.from(back.bytes('f32')).buffer);
      floats.forEach((x, i) => assert.equal(f32[i], f32Bits(x), `f32[${i}] = ${x}`));

      // 16-bit: the stored bits are the RNE of the input and decode to exactly that value.
      for (const [name, round, value] of [['f16', f32ToF16Bits, f16Value], ['bf16', f32ToBf16Bits, bf16Value]] as const) {
        const stored = new Uint16Array(Uint8Array.from(back.bytes(name)).buffer);
        const decoded = back.float32(name);
        floats.forEach((x, i) => {
          const want = round(x);
          if (Number.isNaN(x)) assert.ok(Number.isNaN(decoded[i]), `${name}[${i}] NaN`);
          else if (stored[i] !== want) assert.fail(`${name}[${i}]: ${x} stored as 0x${stored[i].toString(16)}, RNE is 0x${want.toString(16)}`);
          else if (!sameFloat(decoded[i], value(want))) assert.fail(`${name}[${i}]: decoded ${decoded[i]}, expected ${value(want)}`);
        });
      }
      // Spot checks that pin the oracle too: ties to even, subnormal, overflow.
      const f16 = back.float32('f16');
      const at = (x: number) => f16[floats.indexOf(Math.fround(x))];
      assert.equal(at(2 ** -25), 0); // half the smallest subnormal: tie to even (0)
      assert.equal(at(3 * 2 ** -25), 2 ** -23); // 1.5 subnormal units: tie to even (2 units)
      assert.equal(at(1 + 2 ** -11), 1); // tie between 1 and 1 + 2^-10: even is 1
      assert.equal(at(1 + 3 * 2 ** -11), 1 + 2 * 2 ** -10);
      assert.equal(at(65519), 65504);
      assert.equal(at(65520), Infinity);
      assert.equal(back.float32('bf16')[floats.indexOf(Math.fround(1 + 2 ** -8))], 1);

      assert.deepEqual([...back.int32('i64')], [...ints]);
      assert.deepEqual([...back.int32('i32')], [...ints]);
      const i64 = new BigInt64Array(Uint8Array.from(back.bytes('i64.from.f32')).buffer);
      assert.deepEqual([...i64], [-5n, 0n, 2n ** 40n]);
      assert.deepEqual([...back.float32('scalar')], [2.5]);
      assert.equal(back.float32('empty').length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes the layout readers expect: 8-byte aligned header, sorted contiguous data offsets', () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'layout.safetensors');
      writeSafetensors(path, new Map<string, TensorToWrite>([
        ['b', { dtype: 'F16', shape: [3], data: Float32Array.from([1, 2, 3]) }],
        ['a', { dtype: 'I64', shape: [1], data: Int32Array.from([7]) }],
      ]));
      const buf = readFileSync(path);
      const n = Number(buf.readBigUInt64LE(0));
      assert.equal(n % 8, 0);
      const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
      assert.deepEqual(header.a.data_offsets, [0, 8]);
      assert.deepEqual(header.b.data_offsets, [8, 14]);
      assert.equal(buf.length, 8 + n + 14);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects values the integer dtypes cannot hold, naming the tensor', () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'bad.safetensors');
      for (const [dtype, v] of [['I32', 1.5], ['I32', 2 ** 31], ['I64', NaN], ['I64', 2 ** 64]] as const) {
        assert.throws(
          () => writeSafetensors(path, new Map([['ids', { dtype, shape: [2], data: Float32Array.from([1, v]) }]])),
          (e: unknown) => e instanceof SafetensorsError && e.message.includes("'ids'") && e.message.includes(dtype),
          `${dtype} ${v}`,
        );
      }
      assert.throws(
        () => writeSafetensors(path, new Map([['w', { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]])),
        (e: unknown) => e instanceof SafetensorsError && e.message.includes("'w'"),
      );
      assert.deepEqual(readdirSync(dir), [], 'nothing written for rejected tensors');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('writeSafetensors is atomic', () => {
  const oldTensors = new Map<string, TensorToWrite>([['w', { dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) }]]);

  it('replaces the file by rename: a hard link to the old file still holds the old bytes', () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'model.safetensors');
      writeSafetensors(path, oldTensors);
      const oldBytes = readFileSync(path);
      const oldInode = statSync(path).ino;
      linkSync(path, join(dir, 'old-link'));
      writeSafetensors(path, new Map([['w', { dtype: 'F32', shape: [2], data: Float32Array.from([9, 8]) }]]));
      assert.notEqual(statSync(path).ino, oldInode, 'a new inode: the file was renamed into place, not rewritten');
      assert.deepEqual(readFileSync(join(dir, 'old-link')), oldBytes);
      assert.deepEqual([...SafetensorsFile.read(path).float32('w')], [9, 8]);
      assert.deepEqual(readdirSync(dir).sort(), ['model.safetensors', 'old-link'], 'no temporary file left');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a write cut short (file size limit) throws, keeps the old file intact and removes the temporary file', () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'model.safetensors');
      writeSafetensors(path, oldTensors);
      const oldBytes = readFileSync(path);
      // A child process with a 64 KB file size limit (ulimit -f, in KB blocks) writes 1 MB over it:
      // writeSync then writes only part of a buffer and the next write fails with EFBIG.
      const script = [
        `import { writeSafetensors } from ${JSON.stringify(join(repoRoot, 'src/safetensors/safetensors.ts'))};`,
        `try { writeSafetensors(${JSON.stringify(path)}, new Map([['w', { dtype: 'F32', shape: [262144], data: new Float32Array(262144).fill(7) }]])); console.log('WROTE'); }`,
        `catch (e) { console.log('THREW ' + e.name + ': ' + e.message); }`,
      ].join('\n');
      const r = spawnSync('bash', ['-c', 'ulimit -f 64 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script], {
        cwd: repoRoot, encoding: 'utf8',
      });
      assert.equal(r.status, 0, `child failed: ${r.stderr}`);
      assert.match(r.stdout, /^THREW SafetensorsError: .*model\.safetensors/m, `the short write must throw; child said: ${r.stdout}`);
      assert.deepEqual(readFileSync(path), oldBytes, 'the old file is intact');
      assert.deepEqual(readdirSync(dir), ['model.safetensors'], 'the temporary file is removed');
      assert.deepEqual([...SafetensorsFile.read(path).float32('w')], [1, 2, 3, 4]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The bit helpers are exercised through the round trip; this pins them on known patterns.
describe('IEEE oracles used by these tests', () => {
  it('round and decode known patterns', () => {
    assert.equal(f32ToF16Bits(1), 0x3c00);
    assert.equal(f32ToF16Bits(-2), 0xc000);
    assert.equal(f32ToF16Bits(2 ** -24), 0x0001);
    assert.equal(f32ToF16Bits(65504), 0x7bff);
    assert.equal(f16Value(0x0001), 2 ** -24);
    assert.equal(f16Value(0x3555), fromF32Bits(0x3eaaa000));
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(fromF32Bits(0x3f808000)), 0x3f80); // tie → even
    assert.equal(f32ToBf16Bits(fromF32Bits(0x3f818000)), 0x3f82); // tie → even (up)
  });
});
