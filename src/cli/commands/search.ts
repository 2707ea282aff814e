/** `modernbert search`: top-k documents of an index for each query. */
import { InputError } from '../../errors.js';
import { isMulti, loadEmbedder } from '../../retrieval/embedder.js';
import { VectorIndex } from '../../retrieval/index.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, OUTPUT_FORMAT, pipelineOptions, positiveInt, printJsonLines, readInputs, textOf, type CliCommand } from '../options.js';

export const searchCommand: CliCommand = {
  name: 'search',
  args: '[queries...]',
  description: 'answer queries from an index built by `index build`: exact (native GEMM) or approximate (HNSW)',
  options: [
    { flags: '--index <file>', description: 'the index file (required)' },
    ...MODEL_OPTIONS.map((m) => (m.flags.startsWith('-m,') ? { ...m, description: 'model folder or Hub repo id (default: the model the index was built with)' } : m)),
    ...INPUT_OPTIONS,
    { flags: '-k, --top-k <n>', description: 'documents per query', default: 10, parse: positiveInt('--top-k') },
    { flags: '--approximate', description: 'search the HNSW graph instead of every vector (needs index build --hnsw)' },
    { flags: '--ef <n>', description: 'HNSW search breadth (larger: better recall, slower)', default: 64, parse: positiveInt('--ef') },
    { flags: '--prompt-name <name>', description: 'Sentence-Transformers prompt for queries (default: "query" when the model has it)' },
    OUTPUT_FORMAT,
  ],
  examples: ['modernbert search --index corpus.mbx "what is late interaction?" -k 5'],
  async run(args, o) {
    if (typeof o.index !== 'string') throw new InputError('search needs --index FILE');
    const index = VectorIndex.load(o.index);
    const { model, ...options } = pipelineOptions({ ...o, model: (o.model as string | undefined) ?? index.model ?? undefined });
    const queries = readInputs(args, o).map((r, i) => textOf(r, i));
    const embedder = await loadEmbedder(model, options, { queryPromptName: o.promptName as string | undefined });
    if ((embedder.kind === 'multi') !== (index.kind === 'multi'))
      throw new InputError(`${o.index} holds ${index.kind === 'multi' ? 'ColBERT token' : 'single'} vectors, but ${model} is a ${embedder.describe}`);
    const searchOptions = { approximate: o.approximate === true, ef: o.ef as number };
    const k = o.topK as number;
    const hits = isMulti(embedder)
      ? index.searchMulti(await embedder.embed(queries, true), k, searchOptions)
      : index.search(await embedder.embed(queries, true), k, searchOptions);
    if (o.json) return printJsonLines(queries.map((query, i) => ({ query, hits: hits[i].map((h) => ({ id: h.id, score: h.score })) })));
    queries.forEach((q, i) => {
      console.log(`# ${q}`);
      hits[i].forEach((h, r) => console.log(`${r + 1}\t${h.score.toFixed(4)}\t${h.id}`));
    });
  },
};
