// Fresh initialisation (pretraining from scratch) and task heads started fresh on another checkpoint.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  ModernBertConfig, ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification,
} from '../../src/index.js';
import { fixtureDir } from '../helpers/fixtures.js';

const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('initialisation', () => {
  it('fromConfig follows the reference stds, truncation, ones and zeros; seeded', () => {
    const config = new ModernBertConfig({ vocab_size: 512, hidden_size: 128, intermediate_size: 192, num_hidden_layers: 8,
      num_attention_heads: 4, pad_token_id: 3, cls_token_id: 1, sep_token_id: 2 });
    const m = ModernBertForMaskedLM.fromConfig(config, { seed: 1 });
    const p = Object.fromEntries(m.namedParameters().map(([n, t]) => [n, t.data]));
    const r = 0.02;
    const out = r / Math.sqrt(16);
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a / b - 1) < 0.05, `${what}: std ${a} vs ${b}`);
    // A normal truncated at ±2σ has std 0.8796σ.
    close(std(p['model.layers.0.attn.Wqkv.weight']), 0.8796 * r, 'Wqkv');
    close(std(p['model.layers.3.mlp.Wi.weight']), 0.8796 * r, 'Wi');
    close(std(p['model.layers.3.mlp.Wo.weight']), 0.8796 * out, 'mlp Wo');
    close(std(p['model.embeddings.tok_embeddings.weight']), 0.8796 * out, 'tied embeddings (decoder init last)');
    assert.ok(maxAbs(p['model.layers.0.attn.Wqkv.weight']) <= 2 * r);
    assert.ok(p['model.final_norm.weight'].every((v) => v === 1));
    assert.ok(p['decoder.bias'].every((v) => v === 0));
    const again = ModernBertForMaskedLM.fromConfig(config, { seed: 1 });
    assert.deepEqual(again.namedParameters()[3][1].data, m.namedParameters()[3][1].data);
    const c = ModernBertForSequenceClassification.fromConfig(config, { numLabels: 4 });
    close(std(c.classifier.data), 0.8796 / Math.sqrt(128), 'classifier');
    close(std(c.model.embeddings.tok.data), 0.8796 * r, 'untied embeddings');
  });

  it('a classifier on a masked-LM checkpoint: head loaded, classifier fresh, with a warning', async () => {
    const warning = once(process, 'warning');
    const mlm = await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'));
    const cls = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('mlm'), { id2label: { 0: 'no', 1: 'yes' } });
    const [w] = await warning;
    assert.match(w.message, /newly initialized: classifier\.weight, classifier\.bias/);
    assert.deepEqual(cls.head.dense.data, mlm.head.dense.data);
    assert.deepEqual(cls.classifier.shape, [2, 64]);
    assert.equal(cls.config.label2id.yes, 1);
    assert.ok(cls.forward({ inputIds: [[1, 5, 7, 2]] }).logits.data.every(Number.isFinite));
  });

  it('another label count re-initialises the classifier; the same count keeps it', async () => {
    const warning = once(process, 'warning');
    const five = await ModernBertForTokenClassification.fromPretrained(fixtureDir('tok'), { numLabels: 7 });
    assert.match((await warning)[0].message, /classifier\.weight, classifier\.bias/);
    assert.deepEqual(five.classifier.shape, [7, 48]);
    const base = await ModernBertForTokenClassification.fromPretrained(fixtureDir('tok'));
    const same = await ModernBertForTokenClassification.fromPretrained(fixtureDir('tok'), { numLabels: 5 });
    assert.deepEqual(same.classifier.data, base.classifier.data);
  });
});
