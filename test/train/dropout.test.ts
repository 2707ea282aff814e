// Dropout: off in eval mode, deterministic under a seed in training mode, and the backward agrees with a
// finite difference of the loss (same masks: the seed is reset before every forward).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ModernBertForSequenceClassification, ModernBertForTokenClassification } from '../../src/index.js';
import { SafetensorsFile } from '../../src/safetensors/safetensors.js';
import { Rng } from '../../src/train/random.js';
import { fixtureDir, rows2d } from '../helpers/fixtures.js';

async function withDropout<M extends ModernBertForSequenceClassification | ModernBertForTokenClassification>(load: Promise<M>) {
  const model = await load;
  Object.assign(model.config, { embedding_dropout: 0.1, attention_dropout: 0.1, mlp_dropout: 0.1, classifier_dropout: 0.2 });
  return model;
}

function data(name: string) {
  const train = SafetensorsFile.read(join(fixtureDir(name), 'train.safetensors'));
  return { train, inputIds: rows2d(train, 'input_ids'), attentionMask: rows2d(train, 'attention_mask') };
}

describe('dropout', () => {
  it('is inactive in eval mode, seeded in training mode', async () => {
    const plain = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls'));
    const model = await withDropout(ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls')));
    const { train, inputIds, attentionMask } = data('cls-cls');
    const labels = Array.from(train.int32('labels'));
    const ref = plain.forward({ inputIds, attentionMask, labels }).loss!.item();
    assert.equal(model.forward({ inputIds, attentionMask, labels }).loss!.item(), ref);
    model.train();
    const run = (seed: number) => {
      model.manualSeed(seed);
      return model.forward({ inputIds, attentionMask, labels }).loss!.item();
    };
    const a = run(1);
    assert.equal(run(1), a);
    assert.notEqual(run(2), a);
    assert.notEqual(a, ref);
    model.eval();
    assert.equal(model.forward({ inputIds, attentionMask, labels }).loss!.item(), ref);
  });

  for (const [name, Cls] of [['cls-mean', ModernBertForSequenceClassification], ['tok', ModernBertForTokenClassification]] as const) {
    it(`${name}: gradients with dropout match a directional finite difference`, async () => {
      const model = (await withDropout((Cls as typeof ModernBertForSequenceClassification).fromPretrained(fixtureDir(name)))).train();
      const { train, inputIds, attentionMask } = data(name);
      const labels = name === 'tok' ? rows2d(train, 'labels') : Array.from(train.int32('labels'));
      const lossAt = () => {
        model.manualSeed(7);
        return (model as ModernBertForSequenceClassification).forward({ inputIds, attentionMask, labels: labels as number[] }).loss!;
      };
      const flat = model.parameters();
      model.zeroGrad();
      lossAt().backward();
      const rng = new Rng(3);
      // One direction per parameter tensor: catches a missing or misplaced mask anywhere.
      for (const e of flat.entries.filter((_, i) => i % 3 === 0)) {
        const n = e.param.size;
        const dir = Float32Array.from({ length: n }, () => rng.uniform() - 0.5);
        let gd = 0;
        let norm = 0;
        for (let i = 0; i < n; i++) {
          gd += e.param.grad![i] * dir[i];
          norm += dir[i] * dir[i];
        }
        // Step: small against the weights (curvature), yet moving the loss ~3e-3 (float32 noise is ~1e-6).
        const rms = Math.sqrt(e.param.data.reduce((m, v) => m + v * v, 0) / n);
        const eps = Math.min((1e-2 * Math.max(rms, 0.1)) / Math.sqrt(norm / n), 3e-3 / Math.max(Math.abs(gd), 1e-3));
        const orig = e.param.data.slice();
        for (let i = 0; i < n; i++) e.param.data[i] = orig[i] + eps * dir[i];
        const up = lossAt().item();
        for (let i = 0; i < n; i++) e.param.data[i] = orig[i] - eps * dir[i];
        const down = lossAt().item();
        e.param.data.set(orig);
        const fd = (up - down) / (2 * eps);
        assert.ok(Math.abs(fd - gd) <= 2e-2 * Math.abs(gd) + 1e-4, `${e.name}: finite difference ${fd} vs backward ${gd}`);
      }
    });
  }
});
