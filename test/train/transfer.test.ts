/**
 * scripts/transfer.ts end to end on small labelled sets cut from the committed public-domain sample:
 * token classification (a list-valued text column) and sequence classification, the default model against a
 * random init, per-seed runs, mean ± sd, the majority baseline, and clear errors for a wrong label column.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Sentences of the sample corpus, as words. */
function sentences(n: number): string[][] {
  const out: string[][] = [];
  for (const line of readFileSync(join(ROOT, 'test', 'fixtures', 'pretrain-sample', 'train.jsonl'), 'utf8').split('\n')) {
    if (!line) continue;
    for (const s of (JSON.parse(line).text as string).split(/(?<=[.!?])\s+/)) {
      const words = s.split(/\s+/).filter(Boolean);
      if (words.length >= 4 && words.length <= 30) out.push(words);
      if (out.length === n) return out;
    }
  }
  return out;
}

// Word classes any encoder can learn from the word itself: what the test needs is a real, learnable labelling.
const wordClass = (w: string) => (/^[^\p{L}\p{N}]+$/u.test(w) ? 'PUNCT' : /\d/.test(w) ? 'NUM' : /^\p{Lu}/u.test(w) ? 'CAP' : 'LOW');

function writeSet(dir: string, rows: Record<string, unknown>[], labels: unknown): void {
  const cut = Math.floor(rows.length * 0.75);
  writeFileSync(join(dir, 'train.jsonl'), rows.slice(0, cut).map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(dir, 'test.jsonl'), rows.slice(cut).map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(dir, 'labels.json'), JSON.stringify(labels));
}

function transfer(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'transfer.ts'), '--model', join(ROOT, 'models', 'default'), ...args],
    { cwd: ROOT, encoding: 'utf8' });
}

it('transfer: token classification, pretrained vs random init over two seeds, report and majority baseline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mb-transfer-'));
  const rows = sentences(160).map((words) => ({ tokens: words, tags: words.map(wordClass) }));
  writeSet(dir, rows, { tags: ['PUNCT', 'NUM', 'CAP', 'LOW'] });
  const out = join(dir, 'report.json');
  const r = transfer(['--set', dir, '--text', 'tokens', '--label', 'tags', '--epochs', '3', '--batch-tokens', '512', '--lr', '1e-3', '--seeds', '0,1', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(report.task, 'token-classification');
  assert.equal(report.train, 120);
  assert.equal(report.test, 40);
  // Scored: one label per word (its first sub-token), so the majority is over the test words.
  const testWords = rows.slice(120).flatMap((x) => x.tags);
  assert.equal(report.scored, testWords.length);
  const counts = ['PUNCT', 'NUM', 'CAP', 'LOW'].map((c) => testWords.filter((t) => t === c).length);
  assert.equal(report.majority, Math.max(...counts) / testWords.length);
  assert.equal(report.runs.length, 4);
  assert.deepEqual(report.runs.map((x: { init: string; seed: number }) => `${x.init}${x.seed}`), ['pretrained0', 'random0', 'pretrained1', 'random1']);
  const accs = report.runs.filter((x: { init: string }) => x.init === 'pretrained').map((x: { metrics: { accuracy: number } }) => x.metrics.accuracy);
  assert.ok(Math.abs(report.pretrained.accuracy.mean - (accs[0] + accs[1]) / 2) < 1e-12);
  assert.ok(Math.abs(report.pretrained.accuracy.sd - Math.abs(accs[0] - accs[1]) / Math.SQRT2) < 1e-12);
  // The pretrained encoder learns the word classes in these few steps: under half the majority class's errors.
  assert.ok(1 - report.pretrained.accuracy.mean < 0.5 * (1 - report.majority), `pretrained ${report.pretrained.accuracy.mean} vs majority ${report.majority}`);
  assert.match(r.stdout, /transfer: pretrained: accuracy .* over 2 seed\(s\)/);
});

it('transfer: sequence classification with a label list, and a clear error for a missing label column', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mb-transfer-seq-'));
  const rows = sentences(80).map((words) => ({ text: words.join(' '), label: /\d/.test(words.join(' ')) || words.length > 15 ? 'long' : 'short' }));
  writeSet(dir, rows, ['short', 'long']);
  const r = transfer(['--set', dir, '--epochs', '1', '--batch-tokens', '512', '--seeds', '3']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sequence-classification .*\(60 train, 20 test, 20 scored/);
  assert.match(r.stdout, /seed 3 random: .*accuracy/);
  const bad = transfer(['--set', dir, '--label', 'stars']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /train\.jsonl: record 1 has no column 'stars'/);
  const missing = transfer(['--set', join(dir, 'nowhere')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /nowhere\/labels\.json: cannot read the label names/);
});
