/** `modernbert classify`: labels for texts or text pairs (sequence classification). */
import { pipeline } from '../../pipelines/registry.js';
import type { LabelScore, TextPairInput } from '../../pipelines/text-classification.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, OUTPUT_FORMAT, oneOf, pipelineOptions, positiveInt, printJsonLines, readInputs, textOf, type CliCommand } from '../options.js';

export const classifyCommand: CliCommand = {
  name: 'classify',
  args: '[texts...]',
  description: 'classify texts (or pairs: --pair, or {"text", "text_pair"} JSON lines)',
  options: [
    ...MODEL_OPTIONS,
    ...INPUT_OPTIONS,
    { flags: '--pair <text>', description: 'second text of a pair for every input' },
    { flags: '-k, --top-k <n>', description: 'labels per input', default: 1, parse: positiveInt('--top-k') },
    { flags: '--all', description: 'every label' },
    { flags: '--function <fn>', description: 'softmax, sigmoid or none (default: from the config problem_type)', parse: oneOf('--function', ['softmax', 'sigmoid', 'none'] as const) },
    OUTPUT_FORMAT,
  ],
  async run(args, o) {
    const { model, ...options } = pipelineOptions(o);
    const records = readInputs(args, o);
    const inputs = records.map((r, i): string | TextPairInput => {
      const text = textOf(r, i);
      const pair = typeof r === 'object' && typeof r.text_pair === 'string' ? r.text_pair : (o.pair as string | undefined);
      return pair === undefined ? text : { text, textPair: pair };
    });
    const clf = await pipeline('text-classification', model, options);
    const results = (await clf(inputs, { topK: o.all ? null : (o.topK as number), functionToApply: o.function as never })) as LabelScore[][];
    if (o.json) return printJsonLines(results.map((labels, i) => ({ index: i, labels })));
    results.forEach((labels, i) => {
      const input = inputs[i];
      console.log(typeof input === 'string' ? input : `${input.text} ‖ ${input.textPair}`);
      for (const l of labels) console.log(`  ${l.score.toFixed(4)}  ${l.label}`);
    });
  },
};
