// The Trainer on tiny fixture models: it learns a synthetic task, logs, evaluates, writes loadable HF
// checkpoints, resumes to bit-identical weights, and reports a non-finite loss with its step.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification } from '../../src/index.js';
import { encodeExamples, readExamples, type Sequence } from '../../src/train/data.js';
import { Rng } from '../../src/train/random.js';
import { latestCheckpoint } from '../../src/train/checkpoint.js';
import { Trainer, type TrainerOptions } from '../../src/train/trainer.js';
import { fixtureDir } from '../helpers/fixtures.js';

const CLS = 245;
const SEP = 246;

/** A "topic" task: label c ∈ {0, 1, 2}; the content tokens are drawn from ids [10c, 10c + 10). */
function classification(n: number, seed: number): Sequence[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => {
    const label = r.int(3);
    const len = 4 + r.int(12);
    const ids = Int32Array.from({ length: len + 2 }, (_, i) => (i === 0 ? CLS : i === len + 1 ? SEP : 10 * label + r.int(10)));
    return { ids, label };
  });
}

const tmp = () => mkdtempSync(join(tmpdir(), 'mb-train-'));
const readLog = (dir: string) => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('Trainer', () => {
  it('fine-tunes a classifier: loss falls, eval metrics logged, final model loadable', async () => {
    const model = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls'));
    const out = tmp();
    const trainer = new Trainer(model, classification(96, 1), classification(48, 2), {
      outputDir: out, epochs: 12, maxTokensPerBatch: 160, lr: 2e-3, schedule: { type: 'linear', warmupSteps: 5 }, evalEvery: 20, progress: false,
      saveEvery: 20, saveTotalLimit: 2,
    });
    const before = trainer.evaluate();
    await trainer.fit();
    const log = readLog(out);
    const train = log.filter((r) => r.type === 'train');
    const evals = log.filter((r) => r.type === 'eval');
    assert.ok(evals.length >= 2);
    const mean = (rs: { loss: number }[]) => rs.reduce((s, r) => s + r.loss, 0) / rs.length;
    assert.ok(mean(train.slice(-10)) < 0.6 * mean(train.slice(0, 10)), `loss ${mean(train.slice(0, 10))} → ${mean(train.slice(-10))}`);
    const last = evals[evals.length - 1];
    assert.ok(last.accuracy > before.accuracy + 0.2, `accuracy ${before.accuracy} → ${last.accuracy}`);
    for (const k of ['f1_macro', 'f1_micro', 'matthews', 'eval_loss']) assert.equal(typeof last[k], 'number');
    const kept = readdirSync(out).filter((n) => n.startsWith('checkpoint-'));
    const saved = [...new Set([...train.map((r) => r.step).filter((st) => st % 20 === 0), train.length])];
    assert.deepEqual(kept.sort(), saved.slice(-2).map((st) => `checkpoint-${st}`).sort());
    // The final model is an HF folder this library loads, with the same outputs.
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['ModernBertForSequenceClassification']);
    assert.deepEqual(config.id2label, model.config.id2label);
    const loaded = await ModernBertForSequenceClassification.fromPretrained(out);
    model.eval();
    const ids = [[CLS, 5, 9, 12, SEP]];
    assert.deepEqual(loaded.forward({ inputIds: ids }).logits.data, model.forward({ inputIds: ids }).logits.data);
  });

  it('resuming from a checkpoint reaches the same weights as an uninterrupted run (dropout on)', async () => {
    const load = async () => {
      const m = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-mean'));
      Object.assign(m.config, { embedding_dropout: 0.1, mlp_dropout: 0.1, attention_dropout: 0.1, classifier_dropout: 0.1 });
      return m;
    };
    const data = classification(40, 3);
    const opts = (outputDir: string, extra: Partial<TrainerOptions> = {}): TrainerOptions => ({
      outputDir, maxSteps: 8, maxTokensPerBatch: 64, gradAccumulation: 2, optimizer: 'stable-adamw', lr: 1e-3,
      schedule: { type: 'wsd', warmupSteps: 2, decaySteps: 3 }, saveEvery: 3, progress: false, seed: 11, ...extra,
    });
    const a = tmp();
    const full = await load();
    await new Trainer(full, data, null, opts(a)).fit();
    assert.ok(existsSync(join(a, 'checkpoint-3', 'optimizer.safetensors')));
    const b = tmp();
    const resumed = await load();
    await new Trainer(resumed, data, null, opts(b, { resumeFrom: join(a, 'checkpoint-3') })).fit();
    assert.equal(latestCheckpoint(a), join(a, 'checkpoint-8'));
    assert.deepEqual(resumed.parameters().data, full.parameters().data);
    assert.equal(readLog(b)[0].step, 4);
  });

  it('pretrains MLM with StableAdamW: loss falls, perplexity reported', async () => {
    const model = await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'));
    const r = new Rng(4);
    // A repetitive "language": counting sequences with a random start, easy to predict from context.
    const corpus: Sequence[] = Array.from({ length: 64 }, () => {
      const start = r.int(400);
      const len = 10 + r.int(20);
      return { ids: Int32Array.from({ length: len }, (_, i) => 10 + ((start + i) % 480)) };
    });
    const out = tmp();
    const trainer = new Trainer(model, corpus, corpus.slice(0, 16), {
      outputDir: out, epochs: 6, maxTokensPerBatch: 256, optimizer: 'stable-adamw', lr: 3e-3,
      schedule: { type: 'wsd', warmupSteps: 3 }, progress: false, masking: { maskTokenId: 4, specialIds: [1, 2, 3] },
    });
    const before = trainer.evaluate();
    model.sparsePrediction = false; // the full decoder gives the same metrics
    const dense = trainer.evaluate();
    model.sparsePrediction = true;
    assert.ok(Math.abs(dense.eval_loss - before.eval_loss) < 1e-5 && dense.mlm_accuracy === before.mlm_accuracy);
    await trainer.fit();
    const after = readLog(out).filter((x) => x.type === 'eval').pop();
    assert.ok(after.eval_loss < before.eval_loss - 1, `eval loss ${before.eval_loss} → ${after.eval_loss}`);
    assert.ok(Math.abs(after.perplexity - Math.exp(after.eval_loss)) < 1e-9 * after.perplexity);
    assert.ok(after.mlm_accuracy >= 0 && after.mlm_accuracy <= 1);
  });

  it('a non-finite loss stops with the step (no checkpoint written), or is skipped on request', async () => {
    const model = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls'));
    model.classifierBias.data[0] = NaN;
    const out = tmp();
    const t = new Trainer(model, classification(8, 5), null, { outputDir: out, maxSteps: 3, progress: false });
    await assert.rejects(t.fit(), /loss is NaN at step 1 .*onNonFinite/);
    assert.ok(!readdirSync(out).some((n) => n.startsWith('checkpoint')));
    const skipped = new Trainer(model, classification(8, 5), null, { outputDir: tmp(), maxSteps: 2, progress: false, onNonFinite: 'skip' });
    await skipped.fit();
    assert.ok(Number.isNaN(model.classifierBias.data[0])); // weights were never updated with NaN gradients
    assert.ok(Number.isFinite(model.classifier.data[0]));
  });

  it('MLM micro-batches with nothing masked are skipped, not fatal', async () => {
    const model = await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'));
    const onlySpecials = Array.from({ length: 4 }, () => ({ ids: Int32Array.from([1, 2]) }));
    const out = tmp();
    await new Trainer(model, onlySpecials, null, { outputDir: out, maxSteps: 2, progress: false, masking: { maskTokenId: 4, specialIds: [1, 2] } }).fit();
    assert.ok(readLog(out).every((r) => r.skipped === true));
  });

  it('streams a corpus from a JSONL file (shuffle buffer, packing on the fly) and resumes by replaying it', async () => {
    const dir = tmp();
    const file = join(dir, 'corpus.jsonl');
    const r = new Rng(9);
    const alphabet = 'abcdefghij';
    writeFileSync(file, Array.from({ length: 30 }, () => {
      const start = r.int(10);
      return JSON.stringify({ text: Array.from({ length: 8 + r.int(30) }, (_, i) => alphabet[(start + i) % 10]).join('') });
    }).join('\n'));
    // A character tokenizer: ids 10..19; [CLS] 1, [SEP] 2.
    const tok = { encode: (text: string) => ({ ids: Array.from(text, (ch) => 10 + alphabet.indexOf(ch)) }) };
    const source = () => encodeExamples(readExamples(file, { label: null }), tok, { task: 'mlm', maxLength: 24, clsTokenId: 1, sepTokenId: 2 });
    const opts = (outputDir: string, extra: Partial<TrainerOptions> = {}): TrainerOptions => ({
      outputDir, maxSteps: 12, maxTokensPerBatch: 96, shuffleBuffer: 16, lr: 3e-3, saveEvery: 5, progress: false, seed: 2,
      masking: { maskTokenId: 4, specialIds: [1, 2] }, ...extra,
    });
    const full = await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'));
    const a = join(dir, 'a');
    await new Trainer(full, source, null, opts(a)).fit();
    const log = readLog(a);
    assert.ok(log.some((x) => x.epoch === 1), 'the stream was reopened for a second epoch');
    assert.ok(log[log.length - 1].loss < log[0].loss - 1, `loss ${log[0].loss} → ${log[log.length - 1].loss}`);
    const resumed = await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'));
    await new Trainer(resumed, source, null, opts(join(dir, 'b'), { resumeFrom: join(a, 'checkpoint-5') })).fit();
    assert.deepEqual(resumed.parameters().data, full.parameters().data);
    assert.throws(() => new Trainer(full, source, null, { outputDir: dir, masking: { maskTokenId: 4, specialIds: [] } }), /needs maxSteps/);
  });

  it('rejects an empty training set and over-long sequences', async () => {
    const model = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls'));
    assert.throws(() => new Trainer(model, [], null, { outputDir: tmp() }), /training set is empty/);
    const long = [{ ids: new Int32Array(300).fill(7), label: 0 }];
    assert.throws(() => new Trainer(model, long, null, { outputDir: tmp() }), /sequence 0 has 300 tokens/);
  });
});
