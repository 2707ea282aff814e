/** `modernbert eval-retrieval`: nDCG@10, MRR@10 and Recall@100 of a model on a BEIR-format folder. */
import { isMulti, loadEmbedder } from '../../retrieval/embedder.js';
import { VectorIndex, type SearchHit } from '../../retrieval/index.js';
import { evaluateRun, readBeirFolder, type Run } from '../../retrieval/metrics.js';
import { MODEL_OPTIONS, OUTPUT_FORMAT, pipelineOptions, positiveInt, printJsonLines, type CliCommand } from '../options.js';
import { embedProgress } from '../retrieval-io.js';

export const evalRetrievalCommand: CliCommand = {
  name: 'eval-retrieval',
  args: '<folder>',
  description: 'evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) by exact search: nDCG@10, MRR@10, Recall@100',
  options: [
    ...MODEL_OPTIONS,
    { flags: '--split <name>', description: 'qrels file to use (qrels/<split>.tsv)', default: 'test' },
    { flags: '--batch-size <n>', description: 'texts per packed forward pass', default: 32, parse: positiveInt('--batch-size') },
    { flags: '--query-prompt-name <name>', description: 'Sentence-Transformers prompt for queries (default: "query" when the model has it)' },
    { flags: '--document-prompt-name <name>', description: 'Sentence-Transformers prompt for documents (default: "document" or "passage" when the model has one)' },
    OUTPUT_FORMAT,
  ],
  examples: ['modernbert eval-retrieval ./scifact -m ./modernbert-embed-base'],
  async run(args, o) {
    const { model, ...options } = pipelineOptions(o);
    const beir = readBeirFolder(args[0], o.split as string);
    const embedder = await loadEmbedder(model, options, {
      queryPromptName: o.queryPromptName as string | undefined, documentPromptName: o.documentPromptName as string | undefined, batchSize: o.batchSize as number,
    });
    const qids = [...beir.qrels.keys()];
    const queryTexts = qids.map((q) => beir.queries.get(q)!);
    const ids = beir.corpus.map((d) => d.id);
    const documents = beir.corpus.map((d) => d.text);
    // 101 so that dropping a document whose id equals the query's (BEIR) still leaves 100.
    const k = Math.min(101, ids.length);
    const bar = embedProgress('corpus');
    let hits: SearchHit[][];
    try {
      if (isMulti(embedder)) {
        const index = VectorIndex.buildMulti(await embedder.embed(documents, false, bar.update), ids);
        hits = index.searchMulti(await embedder.embed(queryTexts, true), k);
      } else {
        const v = await embedder.embed(documents, false, bar.update);
        hits = VectorIndex.build(v.data, v.dims[1], ids, { similarity: embedder.similarity }).search(await embedder.embed(queryTexts, true), k);
      }
    } finally {
      bar.stop();
    }
    const run: Run = new Map(qids.map((q, i) => [q, new Map(hits[i].map((h) => [h.id, h.score]))]));
    const scores = evaluateRun(beir.qrels, run);
    if (o.json) return printJsonLines([{ model, folder: args[0], split: o.split, documents: ids.length, ...scores }]);
    console.log(`${scores.queries} queries, ${ids.length} documents (${embedder.describe})`);
    for (const m of ['nDCG@10', 'MRR@10', 'Recall@100'] as const) console.log(`${m.padEnd(11)} ${scores[m].toFixed(4)}`);
  },
};
