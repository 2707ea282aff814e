/** `modernbert fill-mask`: the likeliest words at each [MASK]. */
import { pipeline } from '../../pipelines/registry.js';
import type { FillMaskPrediction } from '../../pipelines/fill-mask.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, OUTPUT_FORMAT, pipelineOptions, positiveInt, printJsonLines, readInputs, textOf, type CliCommand } from '../options.js';

export const fillMaskCommand: CliCommand = {
  name: 'fill-mask',
  args: '[texts...]',
  description: 'predict the token at each [MASK] of each text',
  options: [
    ...MODEL_OPTIONS,
    ...INPUT_OPTIONS,
    { flags: '-k, --top-k <n>', description: 'predictions per mask', default: 5, parse: positiveInt('--top-k') },
    OUTPUT_FORMAT,
  ],
  examples: ['modernbert fill-mask -m answerdotai/ModernBERT-base "The capital of France is [MASK]."'],
  async run(args, o) {
    const { model, ...options } = pipelineOptions(o);
    const texts = readInputs(args, o).map((r, i) => textOf(r, i));
    const fill = await pipeline('fill-mask', model, options);
    const results = (await fill(texts, { topK: o.topK as number })) as (FillMaskPrediction[] | FillMaskPrediction[][])[];
    // One list per mask, whatever the count.
    const perMask = results.map((r) => (Array.isArray(r[0]) ? r : [r]) as FillMaskPrediction[][]);
    if (o.json) return printJsonLines(perMask.map((masks, i) => ({ index: i, text: texts[i], masks })));
    perMask.forEach((masks, i) => {
      console.log(texts[i]);
      masks.forEach((preds, m) => {
        if (masks.length > 1) console.log(`  [MASK] #${m + 1}`);
        for (const p of preds) console.log(`  ${p.score.toFixed(4)}  ${JSON.stringify(p.tokenStr).padEnd(14)} ${p.sequence}`);
      });
    });
  },
};
