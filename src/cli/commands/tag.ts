/** `modernbert tag`: token classification (e.g. named entities) with character offsets. */
import { pipeline } from '../../pipelines/registry.js';
import type { EntityGroup, TokenEntity } from '../../pipelines/token-classification.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, OUTPUT_FORMAT, oneOf, pipelineOptions, printJsonLines, readInputs, textOf, type CliCommand } from '../options.js';

export const tagCommand: CliCommand = {
  name: 'tag',
  args: '[texts...]',
  description: 'label tokens (token classification), optionally grouped into entity spans',
  options: [
    ...MODEL_OPTIONS,
    ...INPUT_OPTIONS,
    { flags: '-a, --aggregation <strategy>', description: 'none, simple, first, max or average (as Hugging Face)', default: 'simple', parse: oneOf('--aggregation', ['none', 'simple', 'first', 'max', 'average'] as const) },
    { flags: '--keep-o', description: "keep tokens labelled 'O'" },
    OUTPUT_FORMAT,
  ],
  async run(args, o) {
    const { model, ...options } = pipelineOptions(o);
    const texts = readInputs(args, o).map((r, i) => textOf(r, i));
    const tagger = await pipeline('token-classification', model, options);
    const results = (await tagger(texts, { aggregationStrategy: o.aggregation as never, ignoreLabels: o.keepO ? [] : ['O'] })) as (TokenEntity | EntityGroup)[][];
    if (o.json) return printJsonLines(results.map((entities, i) => ({ index: i, entities })));
    results.forEach((entities, i) => {
      console.log(texts[i]);
      for (const e of entities)
        console.log(`  ${('entity' in e ? e.entity : e.entityGroup).padEnd(10)} ${e.score.toFixed(4)}  [${e.start}, ${e.end})  ${JSON.stringify(texts[i].slice(e.start, e.end))}`);
    });
  },
};
