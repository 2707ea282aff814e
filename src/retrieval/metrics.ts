/**
 * Retrieval metrics as BEIR reports them (pytrec_eval / trec_eval definitions), and the BEIR folder format.
 *
 * For one query with judgements rel(d) (qrels; missing = 0) and a ranking d_1, d_2, … of the retrieved documents:
 * - nDCG@k = DCG@k / IDCG@k, DCG@k = Σ_{i ≤ k} max(rel(d_i), 0) / log2(i + 1) (linear gain, as trec_eval's
 *   ndcg_cut), IDCG@k the same sum over the judged grades sorted descending; 0 when IDCG is 0.
 * - MRR@k = 1 / (rank of the first document with rel ≥ 1 among the first k), else 0.
 * - Recall@k = |{d_i : i ≤ k, rel(d_i) ≥ 1}| / |{d : rel(d) ≥ 1}|; 0 when the query has no relevant document.
 * The ranking orders by score, descending; equal scores by document id, descending (trec_eval's order). Each
 * metric is the mean over the queries that have judgements and were run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';

/** query id → document id → relevance grade. */
export type Qrels = Map<string, Map<string, number>>;
/** query id → document id → score. */
export type Run = Map<string, Map<string, number>>;

/** Document ids by score (descending), ties by id (descending), as trec_eval ranks them. */
export function rankDocuments(scores: Map<string, number>): string[] {
  return [...scores.keys()].sort((a, b) => scores.get(b)! - scores.get(a)! || (a < b ? 1 : a > b ? -1 : 0));
}

export function ndcgAtK(ranking: string[], rel: Map<string, number>, k: number): number {
  let dcg = 0;
  ranking.slice(0, k).forEach((d, i) => (dcg += Math.max(rel.get(d) ?? 0, 0) / Math.log2(i + 2)));
  const ideal = [...rel.values()].map((g) => Math.max(g, 0)).sort((a, b) => b - a).slice(0, k);
  const idcg = ideal.reduce((s, g, i) => s + g / Math.log2(i + 2), 0);
  return idcg > 0 ? dcg / idcg : 0;
}

export function mrrAtK(ranking: string[], rel: Map<string, number>, k: number): number {
  const i = ranking.slice(0, k).findIndex((d) => (rel.get(d) ?? 0) >= 1);
  return i < 0 ? 0 : 1 / (i + 1);
}

export function recallAtK(ranking: string[], rel: Map<string, number>, k: number): number {
  const relevant = [...rel.values()].filter((g) => g >= 1).length;
  if (relevant === 0) return 0;
  return ranking.slice(0, k).filter((d) => (rel.get(d) ?? 0) >= 1).length / relevant;
}

export interface RetrievalScores {
  'nDCG@10': number;
  'MRR@10': number;
  'Recall@100': number;
  /** Queries averaged over. */
  queries: number;
}

/**
 * The paper's metrics over a run. With `ignoreIdenticalIds` (default true, as BEIR) a document whose id equals
 * the query's is dropped from that query's results first.
 */
export function evaluateRun(qrels: Qrels, run: Run, options: { ignoreIdenticalIds?: boolean } = {}): RetrievalScores {
  let n = 0;
  const sum = { ndcg: 0, mrr: 0, recall: 0 };
  for (const [q, rel] of qrels) {
    const scores = run.get(q);
    if (!scores) continue;
    const filtered = options.ignoreIdenticalIds === false ? scores : new Map([...scores].filter(([d]) => d !== q));
    const ranking = rankDocuments(filtered);
    sum.ndcg += ndcgAtK(ranking, rel, 10);
    sum.mrr += mrrAtK(ranking, rel, 10);
    sum.recall += recallAtK(ranking, rel, 100);
    n++;
  }
  const mean = (x: number) => (n ? x / n : 0);
  return { 'nDCG@10': mean(sum.ndcg), 'MRR@10': mean(sum.mrr), 'Recall@100': mean(sum.recall), queries: n };
}

export interface BeirDocument {
  id: string;
  /** BEIR's text for a document: title and text joined by a space, trimmed. */
  text: string;
}

export interface BeirFolder {
  corpus: BeirDocument[];
  queries: Map<string, string>;
  qrels: Qrels;
}

function readJsonl(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) throw new InputError(`${path} is missing (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/<split>.tsv)`);
  return readFileSync(path, 'utf8').split(/\r?\n/).flatMap((line, i) => {
    if (line.trim() === '') return [];
    try {
      const r = JSON.parse(line);
      if (r === null || typeof r !== 'object') throw new Error('not an object');
      return [r as Record<string, unknown>];
    } catch (e) {
      throw new InputError(`${path}:${i + 1}: not a JSON object: ${(e as Error).message}`);
    }
  });
}

const idOf = (r: Record<string, unknown>, path: string, i: number): string => {
  const id = r._id ?? r.id;
  if (typeof id !== 'string' && typeof id !== 'number') throw new InputError(`${path}: record ${i + 1} has no "_id"`);
  return String(id);
};

/** corpus.jsonl, queries.jsonl and qrels/<split>.tsv (query-id, corpus-id, score; a header line is skipped). */
export function readBeirFolder(dir: string, split = 'test'): BeirFolder {
  const cPath = join(dir, 'corpus.jsonl');
  const corpus = readJsonl(cPath).map((r, i) => ({
    id: idOf(r, cPath, i),
    text: `${typeof r.title === 'string' ? r.title : ''} ${typeof r.text === 'string' ? r.text : ''}`.trim(),
  }));
  const qPath = join(dir, 'queries.jsonl');
  const queries = new Map(readJsonl(qPath).map((r, i) => {
    if (typeof r.text !== 'string') throw new InputError(`${qPath}: record ${i + 1} has no "text"`);
    return [idOf(r, qPath, i), r.text] as [string, string];
  }));
  const rPath = join(dir, 'qrels', `${split}.tsv`);
  if (!existsSync(rPath)) throw new InputError(`${rPath} is missing (qrels for split '${split}')`);
  const qrels: Qrels = new Map();
  readFileSync(rPath, 'utf8').split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const [q, d, s] = line.split('\t');
    const grade = Number(s);
    if (i === 0 && (s === undefined || Number.isNaN(grade))) return; // the header
    if (d === undefined || !Number.isFinite(grade)) throw new InputError(`${rPath}:${i + 1}: expected query-id<TAB>corpus-id<TAB>score`);
    if (!qrels.has(q)) qrels.set(q, new Map());
    qrels.get(q)!.set(d, grade);
  });
  for (const q of qrels.keys()) if (!queries.has(q)) throw new InputError(`${rPath}: query ${q} is not in ${qPath}`);
  return { corpus, queries, qrels };
}
