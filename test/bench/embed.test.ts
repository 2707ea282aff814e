// The embedding benchmark (bench/embed.ts): the path it times must give the embeddings a plain padded forward
// plus mean pooling gives, and `npm run bench:embed -- --tiny` must run end to end on real text. Nothing here
// times anything or compares speeds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embedOurs } from '../../bench/embed-engines.js';
import { REPO_ROOT } from '../../bench/peers.js';
import { ModernBertModel } from '../../src/model/modernbert.js';
import { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';
import { TOKENIZER_DIR } from '../helpers/fixtures.js';
import { randomRealVocabModelDir } from '../pipelines/helpers.js';

describe('bench:embed', () => {
  it('embeds like a padded forward, mean pooling over real tokens and L2 normalisation, across packed chunks', async () => {
    const dir = randomRealVocabModelDir();
    try {
      const model = await ModernBertModel.fromPretrained(dir, { numThreads: 1 });
      // Lengths around the local window (16) and a budget of 200 tokens: several forwards, one text longer than the budget alone.
      let s = 7;
      const ids = [5, 130, 2, 300, 17, 64].map((n) => Array.from({ length: n }, (_, i) => (i === 0 ? 50281 : i === n - 1 ? 50282 : (s = (s * 48271) % 2147483647) % 50000)));
      const H = model.config.hidden_size;
      const got = new Float32Array(ids.length * H);
      assert.equal(embedOurs(model, ids, 200, got), 3, 'chunks [5, 130, 2], [300], [17, 64]');

      const L = Math.max(...ids.map((x) => x.length));
      const inputIds = ids.map((x) => Int32Array.from({ length: L }, (_, p) => x[p] ?? 50283));
      const attentionMask = ids.map((x) => Int32Array.from({ length: L }, (_, p) => (p < x.length ? 1 : 0)));
      const y = model.forward({ inputIds, attentionMask }).lastHiddenState;
      assert.deepEqual(y.dims, [ids.length, L, H]);
      ids.forEach((x, b) => {
        const mean = new Float64Array(H);
        for (let p = 0; p < x.length; p++) for (let d = 0; d < H; d++) mean[d] += y.data[(b * L + p) * H + d] / x.length;
        const norm = Math.hypot(...mean);
        const row = got.subarray(b * H, (b + 1) * H);
        assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5, `text ${b} is not unit-norm`);
        for (let d = 0; d < H; d++) assert.ok(Math.abs(row[d] - mean[d] / norm) < 1e-5, `text ${b} (length ${x.length}) dim ${d}: ${row[d]} vs ${mean[d] / norm}`);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--tiny runs end to end on a real-text corpus and reports its lengths', () => {
    const dir = mkdtempSync(join(tmpdir(), 'modernbert-embed-test-'));
    try {
      const json = join(dir, 'out.json');
      const corpus = join(REPO_ROOT, 'test', 'fixtures', 'pretrain-sample', 'train.jsonl');
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/embed.ts', '--tiny', '--corpus', corpus, '--docs', '6', '--tokenizer', TOKENIZER_DIR,
        '--runs', '1', '--warmup', '0', '--threads', '1', '--batch-tokens', '1024', '--json', json],
      { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, MODERNBERT_BENCH_CACHE: dir }, timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^ours \| packed/m);
      const out = JSON.parse(readFileSync(json, 'utf8'));

      // The lengths are those of the real tokenizer with special tokens, cut at 512.
      const tokenizer = PreTrainedTokenizer.fromDirectory(TOKENIZER_DIR);
      const texts = readFileSync(corpus, 'utf8').split('\n').filter(Boolean).slice(0, 6).map((l) => JSON.parse(l).text as string);
      const lengths = texts.map((t) => Math.min(512, tokenizer.encode(t, { truncation: false }).inputIds.length));
      const total = lengths.reduce((a, b) => a + b, 0);
      assert.equal(out.corpus.documents, 6);
      assert.equal(out.corpus.realTokens, total);
      assert.deepEqual([out.corpus.lengths.min, out.corpus.lengths.max], [Math.min(...lengths), Math.max(...lengths)]);
      assert.equal(out.corpus.truncated, lengths.filter((n) => n === 512).length);
      assert.ok(out.corpus.truncated > 0 && out.corpus.lengths.min < 512, 'the sample mixes long and short texts');

      assert.equal(out.results.length, 1, '--tiny runs no peer');
      const ours = out.results[0];
      assert.equal(ours.available, true);
      assert.equal(ours.texts, 6);
      assert.equal(ours.realTokens, total);
      assert.equal(ours.computedPositions, total, 'packed: no padding is computed');
      assert.ok(ours.batches >= Math.ceil(total / 1024));
      assert.ok(ours.textsPerSec.median > 0 && ours.peakRssMiB > 0 && ours.outputFinite);
      assert.ok(out.oursNormError < 1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
