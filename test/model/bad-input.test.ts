// Bad checkpoints and bad inputs at the model level: each a test, each asserting the error class
// (src/errors.ts) and that the message names the file, tensor, key or value at fault; and the
// process survives: the same model then runs a valid batch correctly.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError, InputError, ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertModel, SafetensorsError, SafetensorsFile,
  Tensor, WeightError, writeSafetensors,
} from '../../src/index.js';
import type { TensorToWrite } from '../../src/safetensors/safetensors.js';
import { assertClose, expected, fixtureDir, realRows, rows2d } from '../helpers/fixtures.js';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mb-model-bad-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const mlmDir = fixtureDir('mlm');

/** A new folder in the temp dir holding the mlm config (possibly changed) and, unless `weights` is null, a copy of its weights. */
function folder(name: string, config: Record<string, unknown> | null = {}, weights: 'link' | null = 'link'): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  if (config) writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(mlmDir, 'config.json'), 'utf8')), ...config }));
  if (weights) symlinkSync(join(mlmDir, 'model.safetensors'), join(dir, 'model.safetensors'));
  return dir;
}

/** The mlm tensors as F32, for writing edited checkpoints. */
function mlmTensors(): Map<string, TensorToWrite> {
  const f = SafetensorsFile.read(join(mlmDir, 'model.safetensors'));
  return new Map([...f.tensors].map(([name, e]) => [name, { dtype: 'F32', shape: e.shape, data: f.float32(name) }]));
}

/** Asserts `promise` rejects with an instance of `cls` whose message contains every one of `parts`. */
async function rejectsWith(promise: Promise<unknown>, cls: new (...args: never[]) => Error, parts: string[]): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(p)}`);
    return true;
  });
}

function throwsWith(fn: () => unknown, cls: new (...args: never[]) => Error, parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(p)}`);
    return true;
  });
}

describe('bad checkpoints', () => {
  it('a missing model.safetensors names the folder and the file expected', async () => {
    const dir = folder('no-weights', {}, null);
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, [join(dir, 'model.safetensors')]);
    await rejectsWith(ModernBertModel.fromPretrained(dir), SafetensorsError, [join(dir, 'model.safetensors')]);
  });

  it('a missing config.json is a ConfigError naming the folder', async () => {
    const dir = folder('no-config', null);
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), ConfigError, [dir, 'config.json']);
  });

  it('a truncated model.safetensors names the file and the tensor cut off', async () => {
    const dir = folder('truncated', {}, null);
    const bytes = readFileSync(join(mlmDir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, [join(dir, 'model.safetensors'), "'model.layers.3.mlp_norm.weight'"]);
  });

  it('a tensor whose shape does not fit the config names the tensor, both shapes and the file', async () => {
    const dir = folder('wrong-intermediate', { intermediate_size: 128 });
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), WeightError,
      ["'model.layers.0.mlp.Wi.weight'", '[192,64]', '[256,64]', join(dir, 'model.safetensors')]);
    const vocab = folder('wrong-vocab', { vocab_size: 1024 });
    await rejectsWith(ModernBertModel.fromPretrained(vocab), WeightError, ["'model.embeddings.tok_embeddings.weight'", '[512,64]', '[1024,64]']);
  });

  it('a missing tensor is named', async () => {
    const dir = folder('missing-tensor', {}, null);
    const tensors = mlmTensors();
    tensors.delete('model.layers.2.mlp_norm.weight');
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), WeightError, ["'model.layers.2.mlp_norm.weight'"]);
    // A config that enables biases the checkpoint does not have.
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(folder('bias-on', { attention_bias: true })), WeightError, ["'model.layers.0.attn.Wqkv.bias'"]);
    // A classification head on an MLM checkpoint starts fresh, as in Hugging Face, with a warning naming it.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await ModernBertForSequenceClassification.fromPretrained(folder('no-classifier'));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.ok(warnings.some((w) => w.includes('classifier.weight') && w.includes('newly initialized')), `warnings: ${warnings}`);
  });

  it('a weight stored with an unknown dtype names the tensor and the dtype', async () => {
    const dir = folder('bad-dtype', {}, null);
    const bytes = readFileSync(join(mlmDir, 'model.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    const key = '"model.final_norm.weight":{"dtype":"F32"';
    assert.ok(header.includes(key), 'fixture header layout');
    // Same length, so every offset stays valid: only the dtype is wrong.
    const edited = Buffer.concat([bytes.subarray(0, 8), Buffer.from(header.replace(key, key.replace('F32', 'X32'))), bytes.subarray(8 + n)]);
    writeFileSync(join(dir, 'model.safetensors'), edited);
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, ["'model.final_norm.weight'", '"X32"', join(dir, 'model.safetensors')]);
  });

  it('an integer tensor where a float weight belongs is named', async () => {
    const dir = folder('int-weight', {}, null);
    const tensors = mlmTensors();
    tensors.set('model.final_norm.weight', { dtype: 'I32', shape: [64], data: new Int32Array(64).fill(1) });
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, ["'model.final_norm.weight'", 'I32']);
  });
});

describe('bad sharded checkpoints', () => {
  /** A copy of mlm/sharded whose index is `edit`ed. */
  function shardedCopy(name: string, edit: (index: { weight_map: Record<string, string> }) => unknown): string {
    const src = join(mlmDir, 'sharded');
    const dir = join(tmp, name);
    mkdirSync(dir);
    for (const f of ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) symlinkSync(join(src, f), join(dir, f));
    const index = JSON.parse(readFileSync(join(src, 'model.safetensors.index.json'), 'utf8'));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(edit(index) ?? index));
    return dir;
  }

  it('an index pointing at a missing shard names the index and the shard', async () => {
    const dir = shardedCopy('missing-shard', (i) => {
      i.weight_map['model.final_norm.weight'] = 'model-00003-of-00003.safetensors';
    });
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, ['model.safetensors.index.json', 'model-00003-of-00003.safetensors']);
  });

  it('a weight_map naming a tensor the shard lacks names the tensor and the shard', async () => {
    const dir = shardedCopy('lacking-shard', (i) => {
      i.weight_map['model.layers.9.attn.Wo.weight'] = 'model-00001-of-00002.safetensors';
    });
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, ["'model.layers.9.attn.Wo.weight'", 'model-00001-of-00002.safetensors']);
    const moved = shardedCopy('wrong-shard', (i) => {
      i.weight_map['model.final_norm.weight'] = 'model-00001-of-00002.safetensors';
    });
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(moved), SafetensorsError, ["'model.final_norm.weight'", 'model-00001-of-00002.safetensors']);
  });

  it('a malformed index, or one without a weight_map', async () => {
    const dir = shardedCopy('bad-index', () => null);
    for (const text of ['{"weight_map":', 'null', '{"metadata":{}}', '{"weight_map":[1]}']) {
      writeFileSync(join(dir, 'model.safetensors.index.json'), text);
      await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, [join(dir, 'model.safetensors.index.json')]);
    }
  });

  it('a tensor stored in two shards is rejected, naming both', async () => {
    const dir = join(tmp, 'dup-shard');
    mkdirSync(dir);
    copyFileSync(join(mlmDir, 'config.json'), join(dir, 'config.json'));
    const tensors = mlmTensors();
    const names = [...tensors.keys()];
    const part = (keep: (n: string) => boolean) => new Map(names.filter(keep).map((n) => [n, tensors.get(n)!]));
    writeSafetensors(join(dir, 'a.safetensors'), part((n) => n.startsWith('model.')));
    writeSafetensors(join(dir, 'b.safetensors'), part((n) => !n.startsWith('model.') || n === 'model.final_norm.weight'));
    const weightMap = Object.fromEntries(names.map((n) => [n, n.startsWith('model.') ? 'a.safetensors' : 'b.safetensors']));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    await rejectsWith(ModernBertForMaskedLM.fromPretrained(dir), SafetensorsError, ["'model.final_norm.weight'", 'a.safetensors', 'b.safetensors']);
  });
});

describe('bad inputs', () => {
  let model: ModernBertForMaskedLM;
  before(async () => {
    model = await ModernBertForMaskedLM.fromPretrained(mlmDir);
  });
  const V = 512;
  const maxLen = 128;

  it('input ids negative, >= vocab size, fractional or NaN name the row, column and value', () => {
    throwsWith(() => model.forward({ inputIds: [[501, 7, -1, 502]] }), InputError, ['inputIds[0][2]', '-1', '512']);
    throwsWith(() => model.forward({ inputIds: [[501, 7, 502], [501, V, 502]] }), InputError, ['inputIds[1][1]', String(V)]);
    throwsWith(() => model.forward({ inputIds: [[501, 7.5, 502]] }), InputError, ['inputIds[0][1]', '7.5']);
    throwsWith(() => model.forward({ inputIds: [[501, NaN, 502]] }), InputError, ['inputIds[0][1]', 'NaN']);
    throwsWith(() => model.forward({ inputIds: new Tensor(Int32Array.from([501, 70000]), [1, 2]) }), InputError, ['inputIds[0][1]', '70000']);
  });

  it('an id out of range under padding is only checked where the mask is 1', () => {
    // Pad positions are dropped before the embeddings, so their content does not matter.
    const out = model.forward({ inputIds: [[501, 7, 502, -5]], attentionMask: [[1, 1, 1, 0]] });
    assert.deepEqual(out.logits.dims, [1, 4, V]);
  });

  it('a sequence longer than max_position_embeddings names the sequence and the limit', () => {
    const long = Array.from({ length: maxLen + 1 }, (_, i) => i % 400);
    throwsWith(() => model.forward({ inputIds: [long] }), InputError, ['sequence 0', String(maxLen + 1), String(maxLen)]);
    throwsWith(() => model.forward({ inputIds: [long, long], attentionMask: [long.map(() => 1), long.map((_, i) => (i < 5 ? 1 : 0))] }), InputError, ['sequence 0', `(${maxLen})`]);
    // A padded row wider than the limit is fine when its real tokens fit.
    const ok = model.forward({ inputIds: [long], attentionMask: [long.map((_, i) => (i < maxLen ? 1 : 0))] });
    assert.deepEqual(ok.logits.dims, [1, maxLen + 1, V]);
  });

  it('an empty batch, and empty rows', () => {
    throwsWith(() => model.forward({ inputIds: [] }), InputError, ['empty batch']);
    throwsWith(() => model.forward({ inputIds: [[]] }), InputError, ['length 0']);
    throwsWith(() => model.forward({ inputIds: new Tensor(new Int32Array(0), [0, 4]) }), InputError, ['empty batch']);
  });

  it('ragged rows name the row and both lengths', () => {
    throwsWith(() => model.forward({ inputIds: [[501, 7, 502], [501, 502]] }), InputError, ['row 1', 'length 2', '3']);
    throwsWith(() => model.forward({ inputIds: [[501, 7, 502]], attentionMask: [[1, 1]] }), InputError, ['attentionMask row 0', 'length 2']);
    throwsWith(() => model.forward({ inputIds: [[501, 7, 502]], attentionMask: [[1, 1, 1], [1, 1, 1]] }), InputError, ['2 rows', '1']);
  });

  it('a flat array instead of [batch, seq] rows says so', () => {
    throwsWith(() => model.forward({ inputIds: [501, 7, 502] as unknown as number[][] }), InputError, ['inputIds[0]', '[batch, seq]']);
    throwsWith(() => model.forward({ inputIds: new Tensor(Int32Array.from([501, 7, 502]), [3]) }), InputError, ['inputIds', 'dims [3]']);
  });

  it('bigint ids (Transformers.js style) are refused with a hint, not misread', () => {
    throwsWith(() => model.forward({ inputIds: [new BigInt64Array([501n, 7n, 502n])] as unknown as number[][] }), InputError, ['inputIds[0]', 'BigInt64Array', 'Int32Array']);
    throwsWith(() => model.forward({ inputIds: [[501n, 7n, 502n]] as unknown as number[][] }), InputError, ['inputIds[0][0]', '501n (a bigint)']);
    throwsWith(() => model.forward({ inputIds: [[501, 7, 502]], attentionMask: [[1n, 1n, 1n]] as unknown as number[][] }), InputError, ['attentionMask[0][0]', '1n (a bigint)']);
    throwsWith(() => model.forward({ inputIds: [['501', '7']] as unknown as number[][] }), InputError, ['inputIds[0][0]', '"501"']);
  });

  it('a mask with a hole names the row and position', () => {
    throwsWith(() => model.forward({ inputIds: [[501, 7, 8, 502]], attentionMask: [[1, 0, 1, 1]] }), InputError, ['row 0', 'hole', 'position 1']);
    throwsWith(() => model.forward({ inputIds: [[501, 7, 8, 9, 502], [501, 7, 8, 9, 502]], attentionMask: [[1, 1, 1, 1, 1], [0, 1, 1, 0, 1]] }), InputError, ['row 1', 'hole', 'position 3']);
  });

  it('mask values other than 0/1, and all-zero rows, are named', () => {
    for (const v of [2, -1, 0.5, NaN]) throwsWith(() => model.forward({ inputIds: [[501, 7, 502]], attentionMask: [[1, v, 1]] }), InputError, ['attentionMask[0][1]', String(v)]);
    throwsWith(() => model.forward({ inputIds: [[501, 7, 502]], attentionMask: [[0, 0, 0]] }), InputError, ['row 0', 'no real tokens']);
  });

  it('forwardPacked rejects bad cuSeqlens and ids, naming the value', () => {
    const ids = Int32Array.from([501, 7, 502, 501, 502]);
    const bad: [Int32Array, string[]][] = [
      [Int32Array.from([1, 3, 5]), ['cuSeqlens[0]', '1']],
      [Int32Array.from([0, 3, 2, 5]), ['sequence 1', '-1']],
      [Int32Array.from([0, 3, 3, 5]), ['sequence 1', 'length 0']],
      [Int32Array.from([0, 3, 4]), ['ends at 4', '5 token ids']],
      [Int32Array.from([0, 3, 6]), ['ends at 6']],
      [Int32Array.from([0]), ['at least 2']],
    ];
    for (const [cu, parts] of bad) throwsWith(() => model.forwardPacked({ inputIds: ids, cuSeqlens: cu }), InputError, parts);
    throwsWith(() => model.forwardPacked({ inputIds: Int32Array.from([501, 600]), cuSeqlens: Int32Array.from([0, 2]) }), InputError, ['inputIds[1]', '600']);
    throwsWith(() => model.forwardPacked({ inputIds: new Int32Array(maxLen + 1), cuSeqlens: Int32Array.from([0, maxLen + 1]) }), InputError, [String(maxLen + 1), `(${maxLen})`]);
    throwsWith(() => model.forwardPacked({ inputIds: [501, 502] as unknown as Int32Array, cuSeqlens: Int32Array.from([0, 2]) }), InputError, ['Int32Array']);
    throwsWith(() => model.forwardPacked({ inputIds: Int32Array.from([501, 502]), cuSeqlens: [0, 2] as unknown as Int32Array }), InputError, ['cuSeqlens', 'Int32Array']);
    const encoder = model.model;
    throwsWith(() => encoder.forwardPacked({ inputIds: ids, cuSeqlens: Int32Array.from([0, 2, 4]) }), InputError, ['ends at 4']);
  });

  it('the process survives: after every error above the same model still matches the fixture', () => {
    const exp = expected('mlm');
    const mask = rows2d(exp, 'c2.attention_mask.left');
    const out = model.forward({ inputIds: rows2d(exp, 'c2.input_ids.left'), attentionMask: mask });
    assertClose(realRows(out.logits.data, mask, V), exp.float32('c2.logits'), 'logits after errors');
  });
});
