// Checkpoint variants: F16 and BF16 weights, a sharded checkpoint that also carries the tied
// decoder.weight, mlm-alt's untied decoder, and a bare ModernBertModel checkpoint without `model.`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModernBertForMaskedLM, ModernBertModel, SafetensorsFile, writeSafetensors } from '../../src/index.js';
import type { TensorToWrite } from '../../src/safetensors/safetensors.js';
import { expected, fixtureDir, rows2d, scaledDiff } from '../helpers/fixtures.js';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mb-checkpoints-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const mlmDir = fixtureDir('mlm');

/** A folder with `fixture`'s config.json and `weights` (a path, symlinked) as model.safetensors. */
function folderWith(name: string, fixture: string, weights: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  symlinkSync(join(fixtureDir(fixture), 'config.json'), join(dir, 'config.json'));
  symlinkSync(weights, join(dir, 'model.safetensors'));
  return dir;
}

/** Every tensor of `file` widened to float32 and written as F32, optionally renamed or edited. */
function asF32(file: SafetensorsFile, edit: (name: string, data: Float32Array) => [string, Float32Array] | null = (n, d) => [n, d]) {
  const out = new Map<string, TensorToWrite>();
  for (const [name, e] of file.tensors) {
    const r = edit(name, file.float32(name));
    if (r) out.set(r[0], { dtype: 'F32', shape: e.shape, data: r[1] });
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const exp = expected('mlm');
const input = { inputIds: rows2d(exp, 'c2.input_ids.right'), attentionMask: rows2d(exp, 'c2.attention_mask.right'), outputHiddenStates: true };

describe('F16 and BF16 checkpoints', () => {
  let f32Logits: Float32Array;
  before(async () => {
    f32Logits = (await ModernBertForMaskedLM.fromPretrained(mlmDir)).forward(input).logits.data;
  });

  // The README's max relative rounding of the weights: f16 3.7e-4, bf16 3.1e-3 (unit roundoff 2^-11, 2^-8).
  // Through 4 layers and the head the logits move by a small multiple of that; 20× is generous but
  // still far below what a decoding bug (a wrong exponent, a dropped subnormal) does.
  for (const [dtype, file, unitRoundoff] of [['F16', 'model.f16.safetensors', 2 ** -11], ['BF16', 'model.bf16.safetensors', 2 ** -8]] as const) {
    it(`${dtype}: runs, equals an F32 model of the widened weights bit for bit, and is within the rounding of the F32 model`, async () => {
      const path = join(mlmDir, file);
      const half = await ModernBertForMaskedLM.fromPretrained(folderWith(dtype, 'mlm', path));
      const out = half.forward(input).logits.data;

      const widenedDir = join(tmp, `${dtype}-widened`);
      mkdirSync(widenedDir);
      symlinkSync(join(mlmDir, 'config.json'), join(widenedDir, 'config.json'));
      writeSafetensors(join(widenedDir, 'model.safetensors'), asF32(SafetensorsFile.read(path)));
      const widened = (await ModernBertForMaskedLM.fromPretrained(widenedDir)).forward(input).logits.data;
      assert.deepEqual(out, widened, 'a 16-bit checkpoint is exactly its widened float32 weights');

      const d = scaledDiff(out, f32Logits);
      assert.ok(d > 0, `${dtype} logits identical to F32: the 16-bit weights were not used`);
      assert.ok(d < 20 * unitRoundoff, `${dtype} logits differ from F32 by ${d.toExponential(2)} (scaled), more than 20 × ${unitRoundoff.toExponential(2)}`);
    });
  }
});

describe('sharded checkpoint', () => {
  it('mlm/sharded (with a tied decoder.weight present) gives the same outputs as mlm/', async () => {
    const single = (await ModernBertForMaskedLM.fromPretrained(mlmDir)).forward(input);
    const sharded = (await ModernBertForMaskedLM.fromPretrained(join(mlmDir, 'sharded'))).forward(input);
    assert.deepEqual(sharded.logits.data, single.logits.data);
    sharded.hiddenStates!.forEach((h, i) => assert.deepEqual(h.data, single.hiddenStates![i].data, `hidden_states.${i}`));
    const encoder = (await ModernBertModel.fromPretrained(join(mlmDir, 'sharded'))).forward(input);
    assert.deepEqual(encoder.lastHiddenState.data, single.lastHiddenState.data);
  });
});

describe('untied decoder (mlm-alt)', () => {
  it("uses decoder.weight, not the embeddings: the loaded matrix is the file's, and scaling it scales the logits", async () => {
    const altDir = fixtureDir('mlm-alt');
    const file = SafetensorsFile.read(join(altDir, 'model.safetensors'));
    const model = await ModernBertForMaskedLM.fromPretrained(altDir);
    assert.equal(model.config.tie_word_embeddings, false);
    assert.deepEqual(model.decoderWeight.data, file.float32('decoder.weight'));
    assert.ok(maxAbsDiff(file.float32('decoder.weight'), file.float32('model.embeddings.tok_embeddings.weight')) > 0.1, 'fixture decoder differs from the embeddings');

    const altExp = expected('mlm-alt');
    const altInput = { inputIds: rows2d(altExp, 'c1.input_ids.right'), attentionMask: rows2d(altExp, 'c1.attention_mask.right') };
    const base = model.forward(altInput).logits.data;
    const doubledDir = join(tmp, 'alt-doubled');
    mkdirSync(doubledDir);
    symlinkSync(join(altDir, 'config.json'), join(doubledDir, 'config.json'));
    writeSafetensors(join(doubledDir, 'model.safetensors'), asF32(file, (n, d) => [n, n === 'decoder.weight' ? d.map((x) => 2 * x) : d]));
    const doubled = (await ModernBertForMaskedLM.fromPretrained(doubledDir)).forward(altInput).logits.data;
    // logits = head·Wᵀ + bias, so doubling W gives 2·logits − bias (at real and padded rows alike, pads being 0 − 0).
    const bias = file.float32('decoder.bias');
    const V = model.config.vocab_size;
    const mask = altInput.attentionMask.flat();
    let worst = 0;
    let scale = 1;
    mask.forEach((m, r) => {
      if (!m) return;
      for (let v = 0; v < V; v++) {
        const want = 2 * base[r * V + v] - bias[v];
        worst = Math.max(worst, Math.abs(doubled[r * V + v] - want));
        scale = Math.max(scale, Math.abs(want));
      }
    });
    assert.ok(worst / scale < 1e-5, `doubling decoder.weight should double the logits minus bias; scaled diff ${worst / scale}`);
  });
});

describe('bare ModernBertModel checkpoint', () => {
  it('names without the model. prefix load and give the same hidden states', async () => {
    const dir = join(tmp, 'bare');
    mkdirSync(dir);
    symlinkSync(join(mlmDir, 'config.json'), join(dir, 'config.json'));
    const file = SafetensorsFile.read(join(mlmDir, 'model.safetensors'));
    writeSafetensors(join(dir, 'model.safetensors'), asF32(file, (n, d) => (n.startsWith('model.') ? [n.slice('model.'.length), d] : null)));
    const bare = (await ModernBertModel.fromPretrained(dir)).forward(input);
    const prefixed = (await ModernBertModel.fromPretrained(mlmDir)).forward(input);
    assert.deepEqual(bare.lastHiddenState.data, prefixed.lastHiddenState.data);
  });
});
