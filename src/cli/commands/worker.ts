/** `modernbert worker`: consume embedding jobs from a BullMQ queue on Redis until SIGTERM (or an empty queue). */
import { InputError } from '../../errors.js';
import { runQueueWorker } from '../../serve/queue.js';
import { oneOf, pipelineOptions, positiveInt, type CliCommand } from '../options.js';
import { SERVER_MODEL_OPTIONS, untilSignal } from './serve.js';

export const workerCommand: CliCommand = {
  name: 'worker',
  description: 'embed jobs from a BullMQ queue (made by `modernbert enqueue`), writing one shard file per job; run as many as you like',
  options: [
    ...SERVER_MODEL_OPTIONS,
    { flags: '-q, --queue <name>', description: 'queue name (required)' },
    { flags: '--redis <url>', description: 'Redis URL', default: 'redis://127.0.0.1:6379' },
    { flags: '--max-batch-tokens <n>', description: 'tokens per forward pass (default: as serve)', parse: positiveInt('--max-batch-tokens') },
    { flags: '--pooling <kind>', description: 'mean or cls (default: 1_Pooling/config.json if present, else mean)', parse: oneOf('--pooling', ['mean', 'cls'] as const) },
    { flags: '--lock-duration <ms>', description: 'a job whose worker stops renewing its lock this long goes to another worker', default: 30000, parse: positiveInt('--lock-duration') },
    { flags: '--stalled-interval <ms>', description: 'how often to look for such stalled jobs', default: 30000, parse: positiveInt('--stalled-interval') },
    { flags: '--exit-when-empty', description: 'exit once no job is waiting, delayed or running' },
  ],
  examplesNotTested: 'needs a Redis server',
  examples: ['modernbert worker -m ./my-embedder --queue corpus --redis redis://10.0.0.5:6379'],
  async run(_args, o) {
    if (typeof o.queue !== 'string') throw new InputError('worker needs --queue NAME');
    const { model, revision, cacheDir, localFilesOnly, numThreads, dtype, progressCallback } = pipelineOptions(o);
    const log = (line: string) => process.stderr.write(`modernbert worker ${process.pid}: ${line}\n`);
    const done = await runQueueWorker({
      model, revision, cacheDir, localFilesOnly, progressCallback, threads: numThreads, dtype, pooling: o.pooling as 'mean' | 'cls' | undefined,
      queue: o.queue, redis: o.redis as string, maxBatchTokens: o.maxBatchTokens as number | undefined,
      lockDuration: o.lockDuration as number, stalledInterval: o.stalledInterval as number, exitWhenEmpty: o.exitWhenEmpty === true,
      log, stop: untilSignal().then((s) => log(`${s}: finishing the running job, then exiting`)),
    });
    log(`stopped after ${done.jobs} jobs (${done.texts} texts)`);
  },
};
