/** `modernbert embed`: one vector per text, as JSON lines or a .npy matrix. */
import { pipeline } from '../../pipelines/registry.js';
import { InputError } from '../../errors.js';
import { sentenceTransformersFolderOf } from '../../retrieval/folder.js';
import { INPUT_OPTIONS, MODEL_OPTIONS, npyBytes, oneOf, pipelineOptions, positiveInt, readInputs, textOf, writeAtomic, type CliCommand } from '../options.js';

export const embedCommand: CliCommand = {
  name: 'embed',
  args: '[texts...]',
  description: 'embed texts (pooled last hidden state, or a Sentence-Transformers model\'s own modules); texts of a batch are packed, not padded',
  options: [
    ...MODEL_OPTIONS,
    ...INPUT_OPTIONS,
    { flags: '-o, --output <file>', description: 'write to FILE: .npy (float32 [n, hidden]) or .jsonl; written atomically (default: JSON lines on stdout)' },
    { flags: '--pooling <kind>', description: 'mean or cls (default: mean; a Sentence-Transformers model uses its Pooling module)', parse: oneOf('--pooling', ['mean', 'cls'] as const) },
    { flags: '--prompt-name <name>', description: 'Sentence-Transformers models: a prompt of the model, e.g. query' },
    { flags: '--normalize', description: 'scale each vector to unit length' },
    { flags: '--window', description: 'split texts over the model limit into overlapping windows and average them' },
    { flags: '--window-size <n>', description: 'tokens per window (default: the model limit)', parse: positiveInt('--window-size') },
    { flags: '--window-overlap <n>', description: 'tokens shared by consecutive windows', default: 64, parse: (v) => (v === '0' ? 0 : positiveInt('--window-overlap')(v)) },
  ],
  examples: ['modernbert embed -m ./my-model -i docs.jsonl -o docs.npy --normalize'],
  async run(args, o) {
    const { model, ...options } = pipelineOptions(o);
    const records = readInputs(args, o);
    const texts = records.map((r, i) => textOf(r, i));
    const output = o.output as string | undefined;
    if (output && !/\.(npy|jsonl)$/.test(output)) throw new InputError(`--output must end in .npy or .jsonl, got ${output}`);
    const embed = await pipeline('feature-extraction', model, options);
    const window = o.window ? { size: o.windowSize as number | undefined, overlap: o.windowOverlap as number } : undefined;
    const st = (await sentenceTransformersFolderOf(model, options)) !== null;
    if (!st && o.promptName !== undefined) throw new InputError('--prompt-name needs a Sentence-Transformers model (a folder with modules.json)');
    const normalize = o.normalize === true;
    const out = st
      ? await embed(texts, { pooling: o.pooling as 'mean' | 'cls' | undefined, promptName: o.promptName as string | undefined, normalize, window })
      : await embed(texts, { pooling: (o.pooling as 'mean' | 'cls' | undefined) ?? 'mean', normalize, window });
    if (output?.endsWith('.npy')) return writeAtomic(output, npyBytes(out.data, out.dims));
    const H = out.dims[1];
    const lines = texts.map((_, i) => JSON.stringify({ index: i, embedding: Array.from(out.data.subarray(i * H, (i + 1) * H)) })).join('\n') + '\n';
    if (output) writeAtomic(output, lines);
    else process.stdout.write(lines);
  },
};
