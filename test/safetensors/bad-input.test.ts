// Damaged safetensors files: each is rejected with a SafetensorsError naming the file and, where
// one is at fault, the tensor; a good file read afterwards still works.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError } from '../../src/errors.js';
import { SafetensorsFile, writeSafetensors } from '../../src/safetensors/safetensors.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mb-st-bad-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file from a header object and data bytes, written by hand (no validation). */
function handMade(name: string, header: Record<string, unknown>, data: Uint8Array, headerLen?: bigint): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

/** A valid two-tensor file written by the library. */
function good(name: string): string {
  const path = join(dir, name);
  writeSafetensors(path, new Map([
    ['alpha', { dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) }],
    ['beta', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
  ]));
  return path;
}

/** Asserts reading `path` throws a SafetensorsError whose message contains every one of `parts`. */
function rejects(path: string, parts: string[]): void {
  assert.throws(() => SafetensorsFile.read(path), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${e}`);
    for (const p of [path, ...parts]) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should name ${JSON.stringify(p)}`);
    return true;
  });
}

const f32 = (n: number) => new Uint8Array(n * 4);

describe('bad safetensors files', () => {
  it('a missing file', () => {
    rejects(join(dir, 'nope.safetensors'), ['cannot read']);
  });

  it('a file shorter than the 8-byte header length', () => {
    const path = join(dir, 'tiny.safetensors');
    writeFileSync(path, Buffer.from([1, 0, 0]));
    rejects(path, ['3 bytes']);
  });

  it('a file truncated in the data names the tensor that runs past the end', () => {
    const path = good('cut-data.safetensors');
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 5));
    rejects(path, ["'beta'", 'past the end']);
  });

  it('a file truncated in the header', () => {
    const path = good('cut-header.safetensors');
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    writeFileSync(path, bytes.subarray(0, 8 + Math.floor(n / 2)));
    rejects(path, [`header length ${n}`, 'past the end']);
  });

  it('a header length past the end of the file (small and absurd values)', () => {
    rejects(handMade('len.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1), 1000n), ['header length 1000', 'past the end']);
    rejects(handMade('len2.safetensors', {}, f32(1), 2n ** 63n), [`header length ${2n ** 63n}`]);
  });

  it('a header that is not JSON, or not an object', () => {
    const path = join(dir, 'json.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    writeFileSync(path, Buffer.concat([len, Buffer.from('{"a":')]));
    rejects(path, ['not valid JSON']);
    rejects(handMade('array.safetensors', [1, 2] as unknown as Record<string, unknown>, f32(0)), ['not a JSON object']);
  });

  it('overlapping data offsets name both tensors', () => {
    rejects(handMade('overlap.safetensors', {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    }, f32(6)), ["'a'", "'b'", 'overlap']);
  });

  it('an overlap hidden behind an empty tensor between the two', () => {
    rejects(handMade('overlap-empty.safetensors', {
      big: { dtype: 'F32', shape: [25], data_offsets: [0, 100] },
      empty: { dtype: 'F32', shape: [0], data_offsets: [40, 40] },
      inner: { dtype: 'F32', shape: [4], data_offsets: [50, 66] },
    }, f32(25)), ["'big'", "'inner'", 'overlap']);
  });

  it('out-of-range offsets, and offsets that end before they begin', () => {
    rejects(handMade('range.safetensors', {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [4], data_offsets: [1000, 1016] },
    }, f32(4)), ["'b'", '[1000, 1016]', 'past the end']);
    rejects(handMade('reversed.safetensors', { a: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } }, f32(4)), ["'a'", '[16, 0]']);
    rejects(handMade('negative.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, f32(4)), ["'a'", 'data_offsets']);
  });

  it('offsets whose size does not match dtype × shape', () => {
    rejects(handMade('size.safetensors', { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, f32(4)), ["'w'", '12 bytes', '16']);
  });

  it('an unknown dtype is named (including names of Object.prototype members)', () => {
    for (const dtype of ['F8_E4M3', 'Q4_0', 'constructor', 'toString']) {
      rejects(handMade(`dtype-${dtype}.safetensors`, { w: { dtype, shape: [4], data_offsets: [0, 4] } }, f32(1)), ["'w'", `unknown dtype "${dtype}"`]);
    }
  });

  it('a malformed shape or entry', () => {
    for (const [i, shape] of [[-1], [1.5], 'abc', null].entries())
      rejects(handMade(`shape-${i}.safetensors`, { w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, f32(1)), ["'w'", 'shape']);
    rejects(handMade('entry.safetensors', { w: 7 }, f32(1)), ["'w'", 'not an object']);
    rejects(handMade('offsets.safetensors', { w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f32(1)), ["'w'", 'data_offsets']);
  });

  it('asking for a missing tensor or the wrong kind names the tensor', () => {
    const file = SafetensorsFile.read(good('ok.safetensors'));
    assert.throws(() => file.float32('gamma'), (e: unknown) => e instanceof SafetensorsError && e.message.includes("'gamma'") && e.message.includes(file.path));
    assert.throws(() => file.int32('alpha'), (e: unknown) => e instanceof SafetensorsError && e.message.includes("'alpha'") && e.message.includes('F32'));
    const ints = join(dir, 'ints.safetensors');
    writeSafetensors(ints, new Map([['ids', { dtype: 'I64', shape: [2], data: Int32Array.from([1, 2]) }]]));
    assert.throws(() => SafetensorsFile.read(ints).float32('ids'), (e: unknown) => e instanceof SafetensorsError && e.message.includes("'ids'") && e.message.includes('I64'));
  });

  it('an I64 value outside int32 is rejected by int32(), naming the tensor and value', () => {
    const path = handMade('big-int.safetensors', { ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } },
      new Uint8Array(new BigInt64Array([2n ** 40n]).buffer));
    assert.throws(() => SafetensorsFile.read(path).int32('ids'), (e: unknown) => e instanceof SafetensorsError && e.message.includes("'ids'") && e.message.includes(String(2 ** 40)));
  });

  it('the process survives: a good file reads correctly after all of the above', () => {
    const file = SafetensorsFile.read(good('after.safetensors'));
    assert.deepEqual([...file.float32('beta')], [1, 2, 3, 4, 5, 6]);
  });
});
