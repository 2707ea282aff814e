/** `modernbert index build`: embed a JSONL corpus and store its vectors (and, optionally, an HNSW graph). */
import { InputError } from '../../errors.js';
import { indexSize, VectorIndex, type VectorDtype } from '../../retrieval/index.js';
import { isMulti, loadEmbedder } from '../../retrieval/embedder.js';
import { MODEL_OPTIONS, oneOf, pipelineOptions, positiveInt, type CliCommand } from '../options.js';
import { embedProgress, readCorpus } from '../retrieval-io.js';

export const indexBuildCommand: CliCommand = {
  name: 'index build',
  args: '<corpus>',
  description: 'embed a JSONL corpus ({"_id", "title", "text"} per line) in packed batches and write a search index',
  options: [
    // --dtype is the stored vectors' type here, so the model's precision is --model-dtype.
    ...MODEL_OPTIONS.map((m) => (m.flags.startsWith('--dtype')
      ? { ...m, flags: '--model-dtype <dtype>', parse: oneOf('--model-dtype', ['float32', 'bf16'] as const) }
      : m)),
    { flags: '-o, --output <file>', description: 'index file to write (an HNSW graph goes beside it as <file>.hnsw)' },
    { flags: '--vector-dtype <type>', description: 'stored vectors: float32, or int8 (per-vector scale, 4x smaller)', default: 'float32', parse: oneOf('--vector-dtype', ['float32', 'int8'] as const) },
    { flags: '--hnsw', description: 'also build an HNSW graph for approximate search (hnswlib)' },
    { flags: '--hnsw-m <n>', description: 'HNSW graph degree (M)', default: 16, parse: positiveInt('--hnsw-m') },
    { flags: '--ef-construction <n>', description: 'HNSW candidate list while building', default: 200, parse: positiveInt('--ef-construction') },
    { flags: '--batch-size <n>', description: 'texts per packed forward pass', default: 32, parse: positiveInt('--batch-size') },
    { flags: '--id-field <name>', description: 'field holding the document id (default: "_id", else "id", else the line number)' },
    { flags: '--text-field <name>', description: 'field holding the text ("title" is put before it when present)', default: 'text' },
    { flags: '--prompt-name <name>', description: 'Sentence-Transformers prompt for documents (default: "document" or "passage" when the model has one)' },
  ],
  examples: ['modernbert index build corpus.jsonl -m ./gte-modernbert-base -o corpus.mbx --hnsw'],
  async run(args, o) {
    const output = o.output as string | undefined;
    if (!output) throw new InputError('index build needs --output FILE');
    const { model, ...options } = pipelineOptions({ ...o, dtype: o.modelDtype });
    const corpus = readCorpus(args[0], { id: o.idField as string | undefined, text: o.textField as string });
    const embedder = await loadEmbedder(model, options, { documentPromptName: o.promptName as string | undefined, batchSize: o.batchSize as number });
    const started = performance.now();
    const bar = embedProgress('embedding');
    const texts = corpus.map((r) => r.text);
    const ids = corpus.map((r) => r.id);
    const dtype = o.vectorDtype as VectorDtype;
    let index: VectorIndex;
    try {
      if (isMulti(embedder)) {
        index = VectorIndex.buildMulti(await embedder.embed(texts, false, bar.update), ids, { dtype, model });
      } else {
        const v = await embedder.embed(texts, false, bar.update);
        index = VectorIndex.build(v.data, v.dims[1], ids, { dtype, similarity: embedder.similarity, model });
      }
    } finally {
      bar.stop();
    }
    const embedded = performance.now();
    if (o.hnsw) {
      const hb = embedProgress('hnsw');
      index.buildHnsw({ m: o.hnswM as number, efConstruction: o.efConstruction as number }, hb.update);
      hb.stop();
    }
    index.save(output);
    const secs = (x: number) => (x / 1000).toFixed(1);
    process.stderr.write(`modernbert: indexed ${index.count} documents (${index.rows} ${dtype} vectors of ${index.dim}; ${embedder.describe}) into ${output}: `
      + `${(indexSize(output) / 2 ** 20).toFixed(1)} MiB, embedding ${secs(embedded - started)} s${o.hnsw ? `, HNSW ${secs(performance.now() - embedded)} s` : ''}\n`);
  },
};
