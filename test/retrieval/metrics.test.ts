/** The retrieval metrics on hand-computed cases, and the BEIR folder reader. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateRun, mrrAtK, ndcgAtK, rankDocuments, readBeirFolder, recallAtK, type Qrels, type Run } from '../../src/retrieval/metrics.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);

describe('retrieval metrics', () => {
  // q1: judged d1 = 2, d2 = 1, d3 = 0, d4 = 1; ranked d3, d1, d5, d2 (d4 not retrieved).
  const rel1 = new Map([['d1', 2], ['d2', 1], ['d3', 0], ['d4', 1]]);
  const ranking1 = ['d3', 'd1', 'd5', 'd2'];

  it('nDCG@k: linear gain over log2(rank + 1), ideal from the judged grades', () => {
    const dcg = 2 / Math.log2(3) + 1 / Math.log2(5); // d1 at rank 2, d2 at rank 4
    const idcg = 2 / Math.log2(2) + 1 / Math.log2(3) + 1 / Math.log2(4); // grades 2, 1, 1
    close(ndcgAtK(ranking1, rel1, 10), dcg / idcg);
    close(ndcgAtK(ranking1, rel1, 2), (2 / Math.log2(3)) / (2 + 1 / Math.log2(3)));
    close(ndcgAtK(['x'], new Map([['y', 0]]), 10), 0);
  });

  it('MRR@k: first document with grade ≥ 1 within the cutoff', () => {
    close(mrrAtK(ranking1, rel1, 10), 1 / 2);
    close(mrrAtK(ranking1, rel1, 1), 0);
    close(mrrAtK(['a', 'b', 'c'], new Map([['c', 1]]), 10), 1 / 3);
  });

  it('Recall@k: relevant retrieved within the cutoff over all relevant', () => {
    close(recallAtK(ranking1, rel1, 100), 2 / 3);
    close(recallAtK(ranking1, rel1, 2), 1 / 3);
    close(recallAtK(ranking1, new Map([['d3', 0]]), 100), 0);
  });

  it('ranks by score, equal scores by id descending (trec_eval), and averages over judged queries that were run', () => {
    assert.deepEqual(rankDocuments(new Map([['a', 1], ['b', 1], ['c', 2]])), ['c', 'b', 'a']);
    const scores = new Map(ranking1.map((d, i) => [d, 1 - i / 10] as [string, number]));
    const qrels: Qrels = new Map([['q1', rel1], ['q2', new Map([['d9', 1]])], ['q3', new Map([['d1', 1]])]]);
    // q2's own id among its results is dropped (BEIR's ignore_identical_ids); q3 was not run.
    const run: Run = new Map([['q1', scores], ['q2', new Map([['q2', 5], ['d9', 1]])]]);
    const r = evaluateRun(qrels, run);
    assert.equal(r.queries, 2);
    close(r['nDCG@10'], (ndcgAtK(ranking1, rel1, 10) + 1) / 2);
    close(r['MRR@10'], (0.5 + 1) / 2);
    close(r['Recall@100'], (2 / 3 + 1) / 2);
    close(evaluateRun(qrels, run, { ignoreIdenticalIds: false })['MRR@10'], (0.5 + 0.5) / 2);
  });

  it('reads a BEIR folder: title + text, qrels with a header, and says what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mb-beir-'));
    writeFileSync(join(dir, 'corpus.jsonl'), '{"_id": "d1", "title": "Cats", "text": "purr."}\n{"_id": 7, "text": "no title"}\n');
    writeFileSync(join(dir, 'queries.jsonl'), '{"_id": "q1", "text": "what purrs"}\n');
    assert.throws(() => readBeirFolder(dir), /qrels\/test\.tsv is missing/);
    mkdirSync(join(dir, 'qrels'));
    writeFileSync(join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t1\n');
    const f = readBeirFolder(dir);
    assert.deepEqual(f.corpus, [{ id: 'd1', text: 'Cats purr.' }, { id: '7', text: 'no title' }]);
    assert.equal(f.queries.get('q1'), 'what purrs');
    assert.deepEqual([...f.qrels.get('q1')!], [['d1', 1]]);
    writeFileSync(join(dir, 'qrels', 'test.tsv'), 'q2\td1\t1\n');
    assert.throws(() => readBeirFolder(dir), /query q2 is not in/);
  });
});
