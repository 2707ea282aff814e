/**
 * The retrieval commands, spawned: `index build` → `search` round trips (Sentence-Transformers and ColBERT
 * folders around fixture checkpoints, float32 / int8, exact / HNSW), `eval-retrieval` on a tiny BEIR folder
 * against the library's own search and metrics, `embed` on a Sentence-Transformers folder, and the errors.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomValues, stFolder } from './helpers.js';
import { SentenceTransformer, similarityMatrix } from '../../src/retrieval/sentence-transformers.js';
import { ColBERT, maxSim } from '../../src/retrieval/colbert.js';
import { evaluateRun, type Run } from '../../src/retrieval/metrics.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin!.end();
  });
}

const jsonLines = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l));

/** 40 documents of the word-level vocabulary: doc i has words w(i), w(i+1), …, varied lengths. */
const DOCS = Array.from({ length: 40 }, (_, i) => ({ _id: `d${i}`, title: `w${(i * 5) % 200}`, text: Array.from({ length: 3 + (i % 9) }, (_, j) => `w${(i * 7 + j * 3) % 230}`).join(' ') }));
const QUERIES = ['w7 w10 w13', 'w35 w38', 'w100 w103 w106 w109'];

describe('retrieval CLI (spawned)', () => {
  let st: string;
  let cb: string;
  let tmp: string;
  before(() => {
    st = stFolder({
      fixture: 'tok',
      modules: [
        { type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': { pooling_mode_mean_tokens: true } } },
        { type: 'sentence_transformers.models.Normalize', path: '2_Normalize' },
      ],
      stConfig: { prompts: { query: 'w1 ', document: 'w2 ' }, default_prompt_name: null },
    });
    cb = stFolder({
      fixture: 'tok',
      modules: [{ type: 'pylate.models.Dense.Dense', path: '1_Dense', files: { 'config.json': { in_features: 48, out_features: 8, bias: false } }, dense: { weight: randomValues(8 * 48, 0.3), in: 48, out: 8 } }],
      stConfig: { similarity_fn_name: 'MaxSim', query_prefix: 'w0', document_prefix: 'w1', query_length: 12, document_length: 20 },
    });
    tmp = mkdtempSync(join(tmpdir(), 'mb-rcli-'));
    writeFileSync(join(tmp, 'corpus.jsonl'), DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n');
  });

  it('index build → search (Sentence-Transformers, float32 and HNSW): the hits of the model\'s own similarity, with its prompts', async () => {
    const model = await SentenceTransformer.fromPretrained(st);
    const d = model.encode(DOCS.map((x) => `${x.title} ${x.text}`), { promptName: 'document' });
    const q = model.encode(QUERIES, { promptName: 'query' });
    const sim = similarityMatrix(q, d);
    const path = join(tmp, 'st.mbx');
    const built = await cli(['index', 'build', join(tmp, 'corpus.jsonl'), '-m', st, '-o', path, '--hnsw', '--batch-size', '7']);
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stderr, /indexed 40 documents \(40 float32 vectors of 48; Sentence-Transformers model/);
    for (const extra of [[], ['--approximate', '--ef', '100']]) {
      const r = await cli(['search', '--index', path, ...QUERIES, '-k', '5', '--json', ...extra]);
      assert.equal(r.code, 0, r.stderr);
      jsonLines(r.stdout).forEach((line, i) => {
        const order = DOCS.map((_, j) => j).sort((a, b) => sim.data[i * 40 + b] - sim.data[i * 40 + a]).slice(0, 5);
        assert.equal(line.query, QUERIES[i]);
        assert.deepEqual(line.hits.map((h: { id: string }) => h.id), order.map((j) => `d${j}`));
        line.hits.forEach((h: { score: number }, r: number) => assert.ok(Math.abs(h.score - sim.data[i * 40 + order[r]]) < 1e-4));
      });
    }
  });

  it('index build → search (ColBERT, int8): MaxSim ranking', async () => {
    const model = await ColBERT.fromPretrained(cb);
    const d = model.encode(DOCS.map((x) => `${x.title} ${x.text}`), { isQuery: false });
    const q = model.encode(QUERIES);
    const path = join(tmp, 'cb.mbx');
    const built = await cli(['index', 'build', join(tmp, 'corpus.jsonl'), '-m', cb, '-o', path, '--vector-dtype', 'int8']);
    assert.equal(built.code, 0, built.stderr);
    const r = await cli(['search', '--index', path, ...QUERIES, '-k', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    jsonLines(r.stdout).forEach((line, i) => {
      const scores = d.map((x) => maxSim(q[i], x));
      const best = Math.max(...scores);
      // int8 storage: the top hit's exact score is within quantisation error of the best.
      assert.ok(Math.abs(scores[Number(line.hits[0].id.slice(1))] - best) < 0.05);
      assert.ok(Math.abs(line.hits[0].score - best) < 0.05);
    });
  });

  it('eval-retrieval on a BEIR folder reports the metrics of the exact run', async () => {
    const beir = join(tmp, 'beir');
    mkdirSync(join(beir, 'qrels'), { recursive: true });
    writeFileSync(join(beir, 'corpus.jsonl'), DOCS.map((d) => JSON.stringify(d)).join('\n'));
    writeFileSync(join(beir, 'queries.jsonl'), QUERIES.map((t, i) => JSON.stringify({ _id: `q${i}`, text: t })).join('\n'));
    writeFileSync(join(beir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq0\td1\t1\nq0\td2\t2\nq1\td5\t1\nq2\td14\t1\nq2\td30\t1\n');
    const r = await cli(['eval-retrieval', beir, '-m', st, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [got] = jsonLines(r.stdout);
    const model = await SentenceTransformer.fromPretrained(st);
    const sim = similarityMatrix(model.encode(QUERIES, { promptName: 'query' }), model.encode(DOCS.map((x) => `${x.title} ${x.text}`), { promptName: 'document' }));
    const run: Run = new Map(QUERIES.map((_, i) => [`q${i}`, new Map(DOCS.map((d, j) => [d._id, sim.data[i * 40 + j]]))]));
    const want = evaluateRun(new Map([['q0', new Map([['d1', 1], ['d2', 2]])], ['q1', new Map([['d5', 1]])], ['q2', new Map([['d14', 1], ['d30', 1]])]]), run);
    for (const m of ['nDCG@10', 'MRR@10', 'Recall@100'] as const) assert.ok(Math.abs(got[m] - want[m]) < 1e-6, `${m}: ${got[m]} vs ${want[m]}`);
    assert.equal(got.queries, 3);
  });

  it('embed on a Sentence-Transformers folder uses its modules and prompts', async () => {
    const r = await cli(['embed', '-m', st, '--prompt-name', 'query', 'w5 w6']);
    assert.equal(r.code, 0, r.stderr);
    const model = await SentenceTransformer.fromPretrained(st);
    const want = model.encode('w5 w6', { promptName: 'query' }).data;
    jsonLines(r.stdout)[0].embedding.forEach((v: number, i: number) => assert.ok(Math.abs(v - want[i]) < 1e-5));
  });

  it('a corrupt index, a model of another dimension and a missing graph are clear errors', async () => {
    const path = join(tmp, 'st.mbx');
    const other = await cli(['search', '--index', path, '-m', cb, 'w1']);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /holds single vectors, but .* is a ColBERT/);
    const bad = join(tmp, 'bad.mbx');
    const head = Buffer.alloc(16);
    head.write('MBINDEX1', 0, 'latin1');
    head.writeBigUInt64LE(100n, 8);
    writeFileSync(bad, Buffer.concat([head, Buffer.from('{"format": "modernbert-index"')]));
    const r = await cli(['search', '--index', bad, 'w1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /modernbert: error: .*bad\.mbx is truncated or corrupt/);
    const noGraph = await cli(['search', '--index', join(tmp, 'cb.mbx'), '--approximate', 'w1']);
    assert.match(noGraph.stderr, /approximate search needs the HNSW graph/);
  });
});
