// An inference model holds each layer Linear weight once: loaded straight into its packed form, rebuilt
// exactly when training, saving or a user needs `.data` (float32: unpacked; bf16, whose packing rounds:
// read again from the checkpoint, which must not have changed on disk).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModernBertForMaskedLM } from '../../src/index.js';
import { SafetensorsFile } from '../../src/safetensors/safetensors.js';
import { saveModel } from '../../src/train/checkpoint.js';
import { fixtureDir, rows2d } from '../helpers/fixtures.js';

const dir = fixtureDir('mlm');
const train = SafetensorsFile.read(join(dir, 'train.safetensors'));
const input = { inputIds: rows2d(train, 'input_ids'), attentionMask: rows2d(train, 'attention_mask') };
const isLayerLinear = (name: string) => /^model\.layers\.\d+\.(attn\.Wqkv|attn\.Wo|mlp\.Wi|mlp\.Wo)\.weight$/.test(name);

function snapshot(model: ModernBertForMaskedLM): Map<string, Float32Array> {
  return new Map(model.namedParameters().map(([n, p]) => [n, p.data.slice()]));
}

function assertSameValues(model: ModernBertForMaskedLM, want: Map<string, Float32Array>): void {
  for (const [name, p] of model.namedParameters())
    assert.ok(p.data.every((v, i) => Object.is(v, want.get(name)![i])), `${name} came back changed`);
}

describe('inference weight memory', () => {
  it('float32: loading packs every layer Linear and keeps no float32 copy; the values come back exactly', async () => {
    const model = await ModernBertForMaskedLM.fromPretrained(dir);
    const layerLinears = model.namedParameters().filter(([n]) => isLayerLinear(n));
    assert.ok(layerLinears.length > 0);
    for (const [name, p] of layerLinears) assert.equal(p.resident, false, `${name} is held in float32 after loading`);
    assert.equal(model.model.embeddings.tok.resident, true, 'the embedding table is read by the lookup');
    // Forwards run on the packed weights alone.
    const first = model.forward(input).logits.data.slice();
    assert.deepEqual(model.forward(input).logits.data, first);
    for (const [name, p] of layerLinears) assert.equal(p.resident, false, `${name} was rebuilt by a forward`);
    // Reading .data rebuilds the checkpoint's values bit for bit; saving sees them too.
    const checkpoint = SafetensorsFile.read(join(dir, 'model.safetensors'));
    const out = mkdtempSync(join(tmpdir(), 'mb-weight-memory-'));
    try {
      saveModel(model, out);
      const saved = SafetensorsFile.read(join(out, 'model.safetensors'));
      for (const [name, p] of layerLinears) {
        const want = checkpoint.float32(name);
        assert.ok(p.data.every((v, i) => Object.is(v, want[i])), `${name} came back changed`);
        assert.deepEqual(saved.float32(name), want, `${name} saved changed`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    assert.deepEqual(model.forward(input).logits.data, first);
  });

  it('training after inference starts from the exact weights and the optimiser updates the packed-then-restored ones', async () => {
    const model = await ModernBertForMaskedLM.fromPretrained(dir);
    const before = snapshot(model);
    model.forward(input);
    model.train();
    assertSameValues(model, before);
    const labels = rows2d(train, 'labels');
    model.forward({ ...input, labels }).loss!.backward();
    const flat = model.parameters();
    for (const e of flat.entries) assert.equal(e.param.data.buffer, flat.data.buffer, `${e.name} is not a view of the flat buffer`);
    // An update to the flat buffer reaches the next inference forward, which packs the new values.
    const probe = flat.entries.find((e) => isLayerLinear(e.name))!;
    model.eval();
    const base = model.forward(input).logits.data.slice();
    assert.equal(probe.param.resident, true, 'a view into the flat buffer is never released');
    probe.param.data.fill(0);
    model.train();
    model.eval();
    assert.notDeepEqual(model.forward(input).logits.data, base);
  });

  it('bf16: loading packs every layer Linear in bf16 and keeps no float32 copy; .data reads the checkpoint again', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mb-weight-memory-bf16-'));
    try {
      for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(dir, f), join(tmp, f));
      const model = await ModernBertForMaskedLM.fromPretrained(tmp, { dtype: 'bf16' });
      const layerLinears = model.namedParameters().filter(([n]) => isLayerLinear(n));
      for (const [name, p] of layerLinears) assert.equal(p.resident, false, `${name} is held in float32 after a bf16 load`);
      const first = model.forward(input).logits.data.slice();
      // The float32 values come back bit for bit (the bf16 copy could not give them).
      const checkpoint = SafetensorsFile.read(join(tmp, 'model.safetensors'));
      const [name0, p0] = layerLinears[0];
      assert.ok(p0.data.every((v, i) => Object.is(v, checkpoint.float32(name0)[i])), `${name0} came back changed`);
      // Repacking the restored values (train, then eval) gives the same bf16 forward.
      model.train();
      model.eval();
      for (const [name, p] of layerLinears) assert.equal(p.resident, true, `${name} was not restored for training`);
      assert.deepEqual(model.forward(input).logits.data, first);
      // A checkpoint replaced on disk after loading is an error naming the file, not other weights.
      const other = await ModernBertForMaskedLM.fromPretrained(tmp, { dtype: 'bf16' });
      copyFileSync(join(tmp, 'model.safetensors'), join(tmp, 'copy.safetensors'));
      renameSync(join(tmp, 'copy.safetensors'), join(tmp, 'model.safetensors'));
      assert.throws(() => other.train(), (e: Error) => e.message.includes(join(tmp, 'model.safetensors')) && /changed on disk after it was opened/.test(e.message));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
