// ModernBertConfig: the reference defaults (configuration_modernbert.py), unknown keys ignored, the
// newer layer_types + rope_parameters spelling equivalent to the legacy keys, the real
// ModernBERT-base config, and every invalid value rejected with a ConfigError naming the key.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ModernBertConfig, ModernBertForMaskedLM, ModernBertModel } from '../../src/index.js';
import { Activation } from '../../src/kernels/types.js';
import { expected, fixtureDir, rows2d } from '../helpers/fixtures.js';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mb-config-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function readFixtureConfig(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(fixtureDir(name), 'config.json'), 'utf8'));
}

/** A model folder in the temp dir: the fixture's weights (symlinked) with `config` as config.json. */
function variant(name: string, fixture: string, config: Record<string, unknown>): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  symlinkSync(join(fixtureDir(fixture), 'model.safetensors'), join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** Asserts that building a config from `values` throws a ConfigError naming `key` (and `source`). */
function rejectsKey(values: Record<string, unknown>, key: string, extra?: string): void {
  assert.throws(() => new ModernBertConfig(values, 'my/config.json'), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError for ${JSON.stringify(values)}, got ${e}`);
    assert.ok(e.message.includes(`'${key}'`), `message ${JSON.stringify(e.message)} should name '${key}'`);
    assert.ok(e.message.includes('my/config.json'), `message ${JSON.stringify(e.message)} should name the file`);
    if (extra) assert.ok(e.message.includes(extra), `message ${JSON.stringify(e.message)} should mention ${extra}`);
    return true;
  });
}

describe('ModernBertConfig defaults', () => {
  it('an empty config.json has the reference defaults', () => {
    const c = new ModernBertConfig({});
    const reference: Record<string, unknown> = {
      vocab_size: 50368, hidden_size: 768, intermediate_size: 1152, num_hidden_layers: 22, num_attention_heads: 12,
      hidden_activation: 'gelu', max_position_embeddings: 8192, initializer_range: 0.02, initializer_cutoff_factor: 2.0,
      norm_eps: 1e-5, norm_bias: false, pad_token_id: 50283, eos_token_id: 50282, bos_token_id: 50281,
      cls_token_id: 50281, sep_token_id: 50282, global_rope_theta: 160000, local_rope_theta: 10000,
      attention_bias: false, attention_dropout: 0, global_attn_every_n_layers: 3, local_attention: 128,
      embedding_dropout: 0, mlp_bias: false, mlp_dropout: 0, decoder_bias: true, classifier_pooling: 'cls',
      classifier_dropout: 0, classifier_bias: false, classifier_activation: 'gelu', sparse_prediction: false,
      sparse_pred_ignore_index: -100, tie_word_embeddings: true, problem_type: null,
    };
    for (const [key, value] of Object.entries(reference)) assert.deepEqual((c as unknown as Record<string, unknown>)[key], value, key);
    assert.equal(c.num_labels, 2); // PretrainedConfig's default id2label has two labels
    assert.equal(c.head_dim, 64);
    assert.equal(c.window, 64);
    assert.equal(c.hiddenActivation, Activation.GeluErf);
    assert.deepEqual(c.layer_types.map((t, i) => [i, t]).filter(([, t]) => t === 'full_attention').map(([i]) => i), [0, 3, 6, 9, 12, 15, 18, 21]);
  });

  it('keys absent from a fixture config take the defaults; present keys win', () => {
    const values = readFixtureConfig('mlm');
    delete values.norm_eps;
    delete values.classifier_pooling;
    delete values.local_rope_theta;
    const c = new ModernBertConfig(values);
    assert.equal(c.norm_eps, 1e-5);
    assert.equal(c.classifier_pooling, 'cls');
    assert.equal(c.local_rope_theta, 10000);
    assert.equal(c.hidden_size, 64);
    assert.equal(c.vocab_size, 512);
  });

  it('num_labels without id2label gives LABEL_i names; id2label without label2id derives it', () => {
    assert.deepEqual(new ModernBertConfig({ num_labels: 3 }).id2label, { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' });
    const c = new ModernBertConfig({ id2label: { 0: 'neg', 1: 'pos' } });
    assert.deepEqual(c.label2id, { neg: 0, pos: 1 });
    assert.equal(c.num_labels, 2);
  });
});

describe('ModernBertConfig unknown keys', () => {
  it('are ignored: the config and the model outputs are unchanged', async () => {
    const values = readFixtureConfig('mlm');
    const extra = { ...values, my_custom_key: 1, nested: { a: [1, 2] }, rope_scaling: null, _name_or_path: 'x', reference_compile: null };
    const a = new ModernBertConfig(values);
    const b = new ModernBertConfig(extra);
    const fields = (c: ModernBertConfig) => Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'raw'));
    assert.deepEqual(fields(b), fields(a));
    assert.equal(b.toJSON().my_custom_key, 1, 'kept for saving');

    const exp = expected('mlm');
    const input = { inputIds: rows2d(exp, 'c1.input_ids.right'), attentionMask: rows2d(exp, 'c1.attention_mask.right') };
    const ref = (await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'))).forward(input).logits.data;
    const got = (await ModernBertForMaskedLM.fromPretrained(variant('unknown-keys', 'mlm', extra))).forward(input).logits.data;
    assert.deepEqual(got, ref);
  });
});

describe('layer_types + rope_parameters (newer transformers)', () => {
  /** The v5 spelling of a legacy config: the theta keys and global_attn_every_n_layers replaced. */
  function newForm(values: Record<string, unknown>): Record<string, unknown> {
    const c = new ModernBertConfig(values);
    const out: Record<string, unknown> = { ...values };
    delete out.global_rope_theta;
    delete out.local_rope_theta;
    delete out.global_attn_every_n_layers;
    out.layer_types = c.layer_types;
    out.rope_parameters = {
      full_attention: { rope_type: 'default', rope_theta: c.global_rope_theta },
      sliding_attention: { rope_type: 'default', rope_theta: c.local_rope_theta },
    };
    return out;
  }

  for (const fixture of ['mlm', 'mlm-alt']) {
    it(`${fixture}: the new form gives the same config and bit-identical outputs; changing it changes them`, async () => {
      const legacy = readFixtureConfig(fixture);
      const modern = newForm(legacy);
      const a = new ModernBertConfig(legacy);
      const b = new ModernBertConfig(modern);
      assert.deepEqual(b.layer_types, a.layer_types);
      assert.equal(b.global_rope_theta, a.global_rope_theta);
      assert.equal(b.local_rope_theta, a.local_rope_theta);
      assert.ok(a.layer_types.includes('sliding_attention') && a.layer_types.includes('full_attention'));

      const exp = expected(fixture);
      const input = { inputIds: rows2d(exp, 'c2.input_ids.right'), attentionMask: rows2d(exp, 'c2.attention_mask.right'), outputHiddenStates: true };
      const run = async (name: string, values: Record<string, unknown>) =>
        (await ModernBertModel.fromPretrained(variant(`${fixture}-${name}`, fixture, values))).forward(input).lastHiddenState.data;
      const ref = await run('legacy', legacy);
      assert.deepEqual(await run('modern', modern), ref);

      // The new keys are really read: swapped thetas, or every layer global, move the outputs.
      const rp = modern.rope_parameters as Record<string, { rope_theta: number }>;
      const swapped = { ...modern, rope_parameters: { full_attention: rp.sliding_attention, sliding_attention: rp.full_attention } };
      const allGlobal = { ...modern, layer_types: a.layer_types.map(() => 'full_attention') };
      for (const [name, values] of [['swapped', swapped], ['all-global', allGlobal]] as const) {
        const out = await run(name, values);
        const diff = out.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0);
        assert.ok(diff > 1e-3, `${name}: outputs moved by only ${diff}`);
      }
    });
  }

  it('a config saved with toJSON reloads to the same values, from either form', () => {
    const fields = (c: ModernBertConfig) => Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'raw'));
    for (const values of [readFixtureConfig('mlm-alt'), newForm(readFixtureConfig('mlm-alt'))]) {
      const c = new ModernBertConfig(values);
      const again = new ModernBertConfig(JSON.parse(JSON.stringify(c.toJSON())));
      assert.deepEqual(fields(again), fields(c));
    }
  });

  it('layer_types wins over global_attn_every_n_layers when both are given', () => {
    const c = new ModernBertConfig({ num_hidden_layers: 4, global_attn_every_n_layers: 3, layer_types: ['sliding_attention', 'full_attention', 'full_attention', 'sliding_attention'] });
    assert.deepEqual([0, 1, 2, 3].map((i) => c.isGlobalLayer(i)), [false, true, true, false]);
  });
});

describe('base/config.json', () => {
  it('parses to the real ModernBERT-base values', () => {
    const c = ModernBertConfig.fromFile(join(fixtureDir('base'), 'config.json'));
    assert.equal(c.num_hidden_layers, 22);
    assert.equal(c.hidden_size, 768);
    assert.equal(c.num_attention_heads, 12);
    assert.equal(c.head_dim, 64);
    assert.equal(c.intermediate_size, 1152);
    assert.equal(c.vocab_size, 50368);
    assert.equal(c.local_attention, 128);
    assert.equal(c.window, 64);
    assert.equal(c.global_attn_every_n_layers, 3);
    assert.equal(c.global_rope_theta, 160000);
    assert.equal(c.local_rope_theta, 10000);
    assert.equal(c.max_position_embeddings, 8192);
    assert.equal(c.norm_eps, 1e-5);
    assert.equal(c.norm_bias, false);
    assert.equal(c.attention_bias, false);
    assert.equal(c.mlp_bias, false);
    assert.equal(c.classifier_bias, false);
    assert.equal(c.decoder_bias, true);
    assert.equal(c.hiddenActivation, Activation.GeluErf);
    assert.equal(c.classifierActivation, Activation.GeluErf);
    assert.equal(c.tie_word_embeddings, true);
    assert.equal(c.pad_token_id, 50283);
    assert.equal(c.cls_token_id, 50281);
    assert.equal(c.bos_token_id, 50281);
    assert.equal(c.sep_token_id, 50282);
    assert.equal(c.eos_token_id, 50282);
    assert.equal(c.classifier_pooling, 'mean');
    assert.equal(c.layer_types.filter((t) => t === 'full_attention').length, 8);
  });
});

describe('invalid config values name the key', () => {
  it('hidden_size not divisible by num_attention_heads', () => {
    rejectsKey({ hidden_size: 100, num_attention_heads: 12 }, 'hidden_size', 'num_attention_heads');
  });

  it('an odd head size (RoPE rotates halves)', () => {
    rejectsKey({ hidden_size: 36, num_attention_heads: 4 }, 'num_attention_heads');
  });

  for (const key of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
    'max_position_embeddings', 'global_attn_every_n_layers', 'local_attention']) {
    it(`non-positive or fractional ${key}`, () => {
      for (const v of [0, -4, 2.5]) rejectsKey({ [key]: v }, key, String(v));
    });
  }

  it('an unknown activation', () => {
    rejectsKey({ hidden_activation: 'gelu_quick_nonexistent' }, 'hidden_activation', 'gelu_quick_nonexistent');
    rejectsKey({ classifier_activation: 'tanhh' }, 'classifier_activation', 'tanhh');
  });

  it('values of the wrong type', () => {
    rejectsKey({ hidden_size: '768' }, 'hidden_size', '"768"');
    rejectsKey({ norm_bias: 'false' }, 'norm_bias');
    rejectsKey({ hidden_activation: 1 }, 'hidden_activation');
    rejectsKey({ id2label: ['a', 'b'] }, 'id2label');
    rejectsKey({ architectures: 'ModernBertForMaskedLM' }, 'architectures');
  });

  it('other invalid values', () => {
    rejectsKey({ norm_eps: 0 }, 'norm_eps');
    rejectsKey({ global_rope_theta: -1 }, 'global_rope_theta');
    rejectsKey({ classifier_pooling: 'max' }, 'classifier_pooling', 'max');
    rejectsKey({ problem_type: 'ranking' }, 'problem_type', 'ranking');
    rejectsKey({ vocab_size: 100, pad_token_id: 100 }, 'pad_token_id');
    rejectsKey({ num_hidden_layers: 3, layer_types: ['full_attention', 'sliding_attention'] }, 'layer_types');
    rejectsKey({ num_hidden_layers: 2, layer_types: ['full_attention', 'chunked_attention'] }, 'layer_types');
    rejectsKey({ rope_parameters: { full_attention: { rope_type: 'yarn', rope_theta: 1e6 } } }, 'rope_parameters.full_attention.rope_type', 'yarn');
    rejectsKey({ rope_parameters: { sliding_attention: { rope_theta: 'big' } } }, 'rope_parameters.sliding_attention.rope_theta');
    rejectsKey({ rope_parameters: [1] }, 'rope_parameters');
  });
});

describe('config.json files', () => {
  it('a missing config.json names the folder', async () => {
    const dir = join(tmp, 'no-config');
    mkdirSync(dir);
    symlinkSync(join(fixtureDir('mlm'), 'model.safetensors'), join(dir, 'model.safetensors'));
    await assert.rejects(ModernBertForMaskedLM.fromPretrained(dir), (e: unknown) => e instanceof ConfigError && e.message.includes(dir) && e.message.includes('config.json'));
    assert.throws(() => ModernBertConfig.fromFile(join(dir, 'config.json')), (e: unknown) => e instanceof ConfigError && e.message.includes(join(dir, 'config.json')));
  });

  it('malformed JSON names the file', async () => {
    const dir = join(tmp, 'bad-json');
    mkdirSync(dir);
    symlinkSync(join(fixtureDir('mlm'), 'model.safetensors'), join(dir, 'model.safetensors'));
    const path = join(dir, 'config.json');
    for (const text of ['{"hidden_size": 64,', '', '[1, 2]', 'null', '"modernbert"']) {
      writeFileSync(path, text);
      await assert.rejects(ModernBertForMaskedLM.fromPretrained(dir), (e: unknown) => e instanceof ConfigError && e.message.includes(path), `text ${JSON.stringify(text)}`);
    }
  });

  it('an invalid value in a real folder names the file and the key', async () => {
    const values = { ...readFixtureConfig('mlm'), num_attention_heads: 5 };
    const dir = variant('bad-heads', 'mlm', values);
    await assert.rejects(ModernBertForMaskedLM.fromPretrained(dir), (e: unknown) =>
      e instanceof ConfigError && e.message.includes(join(dir, 'config.json')) && e.message.includes("'hidden_size'") && e.message.includes('num_attention_heads'));
  });
});
