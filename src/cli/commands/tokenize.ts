/** `modernbert tokenize`: token ids, strings and offsets of texts. */
import { PreTrainedTokenizer } from '../../tokenizer/tokenizer.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, OUTPUT_FORMAT, pipelineOptions, positiveInt, printJsonLines, readInputs, textOf, type CliCommand } from '../options.js';

export const tokenizeCommand: CliCommand = {
  name: 'tokenize',
  args: '[texts...]',
  description: "show a model's tokens for texts (ids, tokens, character offsets)",
  options: [
    ...MODEL_OPTIONS.filter((m) => !m.flags.startsWith('--dtype')), // tokenizing runs no model
    ...INPUT_OPTIONS,
    { flags: '--max-length <n>', description: 'truncate to n tokens (default: the model limit)', parse: positiveInt('--max-length') },
    { flags: '--no-special', description: 'without [CLS]/[SEP]' },
    OUTPUT_FORMAT,
  ],
  async run(args, o) {
    const { model, ...options } = pipelineOptions(o);
    const texts = readInputs(args, o).map((r, i) => textOf(r, i));
    const tok = await PreTrainedTokenizer.fromPretrained(model, options);
    const encodings = texts.map((t, i) => {
      const e = tok.encode(t, { maxLength: o.maxLength as number | undefined, addSpecialTokens: o.special !== false, truncation: options.truncation });
      if (options.truncation === false && e.inputIds.length > tok.modelMaxLength)
        process.stderr.write(`modernbert: warning: input ${i} has ${e.inputIds.length} tokens, over the limit ${tok.modelMaxLength}\n`);
      else if (e.numTruncated > 0) process.stderr.write(`modernbert: warning: input ${i} truncated (${e.numTruncated} tokens dropped)\n`);
      return e;
    });
    if (o.json) return printJsonLines(encodings.map((e, i) => ({ index: i, ids: e.inputIds, tokens: e.tokens, offsets: e.offsets })));
    encodings.forEach((e, i) => {
      console.log(`${texts[i]}  (${e.inputIds.length} tokens)`);
      console.log(e.inputIds.map((id, t) => `${id}:${e.tokens[t]}`).join(' '));
    });
  },
};
