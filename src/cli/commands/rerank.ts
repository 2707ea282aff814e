/** `modernbert rerank`: order documents by relevance to a query with a cross-encoder. */
import { pipeline } from '../../pipelines/registry.js';
import { InputError } from '../../errors.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, OUTPUT_FORMAT, pipelineOptions, positiveInt, printJsonLines, readInputs, textOf, type CliCommand } from '../options.js';

export const rerankCommand: CliCommand = {
  name: 'rerank',
  args: '[documents...]',
  description: 'score documents against --query with a cross-encoder (sequence classification on pairs), best first',
  options: [
    ...MODEL_OPTIONS,
    ...INPUT_OPTIONS,
    { flags: '-q, --query <text>', description: 'the query (required)' },
    { flags: '-k, --top-k <n>', description: 'keep the best n', parse: positiveInt('--top-k') },
    OUTPUT_FORMAT,
  ],
  async run(args, o) {
    if (typeof o.query !== 'string') throw new InputError('rerank needs --query TEXT');
    const { model, ...options } = pipelineOptions(o);
    const documents = readInputs(args, o).map((r, i) => textOf(r, i));
    const rr = await pipeline('rerank', model, options);
    const results = await rr({ query: o.query, documents }, { topK: o.topK as number | undefined, returnDocuments: true });
    if (o.json) return printJsonLines(results);
    for (const r of results) console.log(`${r.score.toFixed(4)}  #${r.index}  ${r.document}`);
  },
};
