/** `modernbert enqueue`: split a corpus into embedding jobs on a BullMQ queue for `modernbert worker`. */
import { InputError } from '../../errors.js';
import { enqueueCorpus } from '../../serve/queue.js';
import { oneOf, positiveInt, type CliCommand } from '../options.js';

export const enqueueCommand: CliCommand = {
  name: 'enqueue',
  description: 'split a corpus (JSONL or one text per line) into embedding jobs on a BullMQ queue; shards land in --output as <name>-<job>.<format>',
  options: [
    { flags: '-q, --queue <name>', description: 'queue name (required)' },
    { flags: '--redis <url>', description: 'Redis URL', default: 'redis://127.0.0.1:6379' },
    { flags: '-i, --input <file>', description: 'the corpus: .jsonl (strings or {"text": ...}) or text, one per line (required)' },
    { flags: '-o, --output <dir>', description: 'folder of the shard files, as the workers see it (required)' },
    { flags: '--job-size <n>', description: 'texts per job', default: 256, parse: positiveInt('--job-size') },
    { flags: '--name <name>', description: 'prefix of job ids and shard names (default: the corpus file name)' },
    { flags: '--format <fmt>', description: 'shard format: jsonl ({"index", "embedding"} lines) or npy (float32 [n, hidden])', default: 'jsonl', parse: oneOf('--format', ['jsonl', 'npy'] as const) },
    { flags: '--normalize', description: 'scale each vector to unit length' },
    { flags: '--no-truncate', description: 'fail a job holding a text over the model limit instead of truncating it' },
  ],
  examplesNotTested: 'needs a Redis server',
  examples: ['modernbert enqueue --queue corpus -i corpus.jsonl -o /shared/embeddings --normalize'],
  async run(_args, o) {
    for (const k of ['queue', 'input', 'output'] as const) if (typeof o[k] !== 'string') throw new InputError(`enqueue needs --${k}`);
    const r = await enqueueCorpus({
      queue: o.queue as string, redis: o.redis as string, input: o.input as string, output: o.output as string, jobSize: o.jobSize as number,
      name: o.name as string | undefined, format: o.format as 'jsonl' | 'npy', normalize: o.normalize === true, truncate: o.truncate !== false,
    });
    console.log(`queued ${r.jobs} jobs (${r.texts} texts${r.skipped ? `; ${r.skipped} jobs already have their shard` : ''}) on ${o.queue}`);
  },
};
