/**
 * `modernbert train` and `modernbert pretrain`, spawned on fixture-sized models with their tiny tokenizers:
 * each task writes a loadable Hugging Face folder and a log; a resumed pretraining run reaches the same
 * weights as the uninterrupted one; bad usage fails with a message and no model.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureModelDir } from '../pipelines/helpers.js';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification } from '../../src/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const WORDS = ['the', 'cat', 'dog', 'sat', 'ran', 'on', 'a', 'mat', 'big', 'red'];

describe('modernbert train / pretrain (spawned)', () => {
  let mlm: string;
  let tmp: string;
  let corpus: string;
  before(() => {
    mlm = fixtureModelDir('mlm');
    tmp = mkdtempSync(join(tmpdir(), 'mb-train-cli-'));
    // Texts made of the tiny tokenizer's words; the label says whether "cat" occurs (learnable, not constant).
    const rows = Array.from({ length: 40 }, (_, i) => {
      const words = Array.from({ length: 4 + (i % 5) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]);
      return { text: words.join(' '), label: words.includes('cat') ? 'yes' : 'no', tokens: words, tags: words.map((w) => (w === 'cat' || w === 'dog' ? 'ANIMAL' : 'O')) };
    });
    writeFileSync(join(tmp, 'train.jsonl'), rows.slice(0, 32).map((r) => JSON.stringify(r)).join('\n'));
    writeFileSync(join(tmp, 'eval.jsonl'), rows.slice(32).map((r) => JSON.stringify(r)).join('\n'));
    corpus = join(tmp, 'corpus.txt');
    writeFileSync(corpus, rows.map((r) => r.text).join('\n'));
  });

  it('train: sequence classification with labels found in the data, evaluation, and a loadable output', async () => {
    const out = join(tmp, 'seq');
    const r = await cli(['train', '-m', mlm, '--train', join(tmp, 'train.jsonl'), '--eval', join(tmp, 'eval.jsonl'), '--steps', '4',
      '--batch-tokens', '128', '--lr', '1e-3', '--eval-every', '2', '-o', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(summary.step, 4);
    assert.ok(summary.accuracy >= 0 && summary.accuracy <= 1);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['ModernBertForSequenceClassification']);
    assert.deepEqual(config.id2label, { 0: 'no', 1: 'yes' });
    const log = lines(join(out, 'log.jsonl'));
    assert.equal(log.filter((x) => x.type === 'train').length, 4);
    assert.equal(log.filter((x) => x.type === 'eval').length, 2);
    assert.ok(existsSync(join(out, 'tokenizer.json')));
    const model = await ModernBertForSequenceClassification.fromPretrained(out);
    assert.equal(model.config.num_labels, 2);
  });

  it('train: token classification from word/tag list columns, and MLM on a text file', async () => {
    const tokOut = join(tmp, 'tok');
    const mlmOut = join(tmp, 'mlm');
    const [t, m] = await Promise.all([
      cli(['train', '-m', mlm, '--task', 'token-classification', '--train', join(tmp, 'train.jsonl'), '--text-column', 'tokens', '--label-column', 'tags',
        '--steps', '2', '--batch-tokens', '128', '-o', tokOut, '--quiet']),
      cli(['train', '-m', mlm, '--task', 'mlm', '--train', corpus, '--epochs', '1', '--batch-tokens', '256', '--optimizer', 'stableadamw', '--schedule', 'wsd', '-o', mlmOut, '--quiet']),
    ]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(m.code, 0, m.stderr);
    const tagger = await ModernBertForTokenClassification.fromPretrained(tokOut);
    assert.deepEqual(tagger.config.id2label, { 0: 'ANIMAL', 1: 'O' });
    const log = lines(join(mlmOut, 'log.jsonl')).filter((x) => x.type === 'train');
    assert.ok(log.length >= 1 && log.every((x) => Number.isFinite(x.loss)));
    await ModernBertForMaskedLM.fromPretrained(mlmOut);
  });

  it('pretrain: from a config on a streamed corpus; resuming from a checkpoint reaches the same weights; continued with a new RoPE theta', async () => {
    const config = JSON.parse(readFileSync(join(mlm, 'config.json'), 'utf8'));
    const configFile = join(tmp, 'config.json');
    writeFileSync(configFile, JSON.stringify({ ...config, global_rope_theta: 10000 }));
    const common = ['--config', configFile, '--tokenizer', mlm, '--steps', '4', '--batch-tokens', '128', '--max-length', '32', '--warmup', '1',
      '--decay-steps', '2', '--batch-warmup', '1:2:200', '--lr', '1e-3', '--quiet'];
    const full = join(tmp, 'pre-full');
    const r = await cli(['pretrain', corpus, ...common, '--save-every', '2', '--eval', corpus, '--eval-sequences', '8', '-o', full]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout.trim()).mlm_accuracy >= 0);
    const resumed = join(tmp, 'pre-resumed');
    const again = await cli(['pretrain', corpus, ...common, '--resume', join(full, 'checkpoint-2'), '-o', resumed]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(lines(join(resumed, 'log.jsonl'))[0].step, 3, 'the resumed run starts at step 3');
    assert.deepEqual(readFileSync(join(resumed, 'model.safetensors')), readFileSync(join(full, 'model.safetensors')));
    const long = join(tmp, 'pre-long');
    const cont = await cli(['pretrain', corpus, '-m', full, '--rope-theta', '160000', '--steps', '1', '--max-length', '64', '--batch-tokens', '128', '-o', long, '--quiet']);
    assert.equal(cont.code, 0, cont.stderr);
    assert.equal(JSON.parse(readFileSync(join(long, 'config.json'), 'utf8')).global_rope_theta, 160000);
  });

  it('bad usage: a clear message, exit 1, no output folder', async () => {
    const out = join(tmp, 'bad');
    const [noSteps, both, noTrain] = await Promise.all([
      cli(['pretrain', corpus, '--config', 'tiny', '--tokenizer', mlm, '-o', out]),
      cli(['pretrain', corpus, '--config', 'tiny', '-m', mlm, '--steps', '1', '-o', out]),
      cli(['train', '-m', mlm, '-o', out]),
    ]);
    assert.match(noSteps.stderr, /--steps <n> is required/);
    assert.match(both.stderr, /exactly one of --config/);
    assert.match(noTrain.stderr, /--train <file> is required/);
    for (const x of [noSteps, both, noTrain]) assert.equal(x.code, 1);
    assert.ok(!existsSync(out));
  });
});
