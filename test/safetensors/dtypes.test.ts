// F16 and BF16 checkpoints decode EXACTLY to the widened 16-bit values (fixtures README: f16/bf16
// loading), including the f16 subnormals, checked against decoded_samples.safetensors and, for every
// tensor, against the F32 file rounded to nearest even by an independent oracle.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { f16ToF32, SafetensorsFile } from '../../src/safetensors/safetensors.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { bf16Value, f16Value, f32ToBf16Bits, f32ToF16Bits, isF16Subnormal, sameFloat } from './ieee.js';

const mlm = join(FIXTURES, 'mlm');
const f32File = SafetensorsFile.read(join(mlm, 'model.safetensors'));
const f16File = SafetensorsFile.read(join(mlm, 'model.f16.safetensors'));
const bf16File = SafetensorsFile.read(join(mlm, 'model.bf16.safetensors'));

/** The raw 16-bit patterns of a tensor. */
function bits16(file: SafetensorsFile, name: string): Uint16Array {
  const raw = file.bytes(name);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Uint16Array.from({ length: raw.byteLength / 2 }, (_, i) => v.getUint16(2 * i, true));
}

function assertSame(actual: Float32Array, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    if (!sameFloat(actual[i], expected[i])) assert.fail(`${what}[${i}]: decoded ${actual[i]}, expected exactly ${expected[i]}`);
}

describe('16-bit float decoding', () => {
  it('matches decoded_samples.safetensors exactly (f32, f16 and bf16 samples)', () => {
    const samples = SafetensorsFile.read(join(mlm, 'decoded_samples.safetensors'));
    const names = [...samples.tensors.keys()].filter((n) => n.startsWith('f32.')).map((n) => n.slice(4));
    assert.deepEqual(names.sort(), ['model.embeddings.tok_embeddings.weight', 'model.layers.1.attn.Wqkv.weight']);
    for (const name of names) {
      const n = samples.entry(`f32.${name}`).shape[0];
      assertSame(f32File.float32(name).subarray(0, n), samples.float32(`f32.${name}`), `f32 ${name}`);
      assertSame(f16File.float32(name).subarray(0, n), samples.float32(`f16.${name}`), `f16 ${name}`);
      assertSame(bf16File.float32(name).subarray(0, n), samples.float32(`bf16.${name}`), `bf16 ${name}`);
    }
  });

  it('every F16 tensor is the F32 tensor rounded to nearest even, decoded exactly (59 subnormals)', () => {
    assert.deepEqual([...f16File.tensors.keys()].sort(), [...f32File.tensors.keys()].sort());
    let subnormals = 0;
    for (const name of f32File.tensors.keys()) {
      assert.equal(f16File.entry(name).dtype, 'F16');
      assert.deepEqual(f16File.entry(name).shape, f32File.entry(name).shape);
      const ref = f32File.float32(name);
      const stored = bits16(f16File, name);
      const decoded = f16File.float32(name);
      for (let i = 0; i < ref.length; i++) {
        const want = f32ToF16Bits(ref[i]);
        if (stored[i] !== want) assert.fail(`${name}[${i}]: file holds f16 0x${stored[i].toString(16)}, RNE of ${ref[i]} is 0x${want.toString(16)}`);
        if (!sameFloat(decoded[i], f16Value(want))) assert.fail(`${name}[${i}]: decoded ${decoded[i]}, f16 0x${want.toString(16)} is ${f16Value(want)}`);
        if (isF16Subnormal(want)) {
          subnormals++;
          assert.ok(decoded[i] !== 0 && Math.abs(decoded[i]) < 2 ** -14, `${name}[${i}] subnormal decoded as ${decoded[i]}`);
        }
      }
    }
    assert.equal(subnormals, 59, 'the fixtures README promises 59 f16 subnormals');
  });

  it('every BF16 tensor is the F32 tensor rounded to nearest even, decoded exactly', () => {
    assert.deepEqual([...bf16File.tensors.keys()].sort(), [...f32File.tensors.keys()].sort());
    for (const name of f32File.tensors.keys()) {
      assert.equal(bf16File.entry(name).dtype, 'BF16');
      const ref = f32File.float32(name);
      const stored = bits16(bf16File, name);
      const decoded = bf16File.float32(name);
      for (let i = 0; i < ref.length; i++) {
        const want = f32ToBf16Bits(ref[i]);
        if (stored[i] !== want) assert.fail(`${name}[${i}]: file holds bf16 0x${stored[i].toString(16)}, RNE of ${ref[i]} is 0x${want.toString(16)}`);
        if (!sameFloat(decoded[i], bf16Value(want))) assert.fail(`${name}[${i}]: decoded ${decoded[i]}, bf16 is ${bf16Value(want)}`);
      }
    }
  });

  it('f16ToF32 decodes all 65536 half patterns exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const got = f16ToF32(h);
      const want = f16Value(h);
      if (!sameFloat(got, want)) assert.fail(`f16 0x${h.toString(16)}: ${got}, expected ${want}`);
    }
  });
});
