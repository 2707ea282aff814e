/**
 * Scale-out on BullMQ (Redis): a producer splits a JSONL corpus into jobs of a few hundred texts, and any
 * number of worker processes on any number of machines embed them. Each job writes one shard file named
 * by its job id, atomically (a temporary file, then a rename), and a job whose shard exists is skipped:
 * a worker killed mid-job loses nothing, since BullMQ hands the stalled job to another worker, which
 * writes the same bytes.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { InputError } from '../errors.js';
import { npyBytes, readInputs, textOf, writeAtomic } from '../cli/options.js';
import { Batcher } from './batcher.js';
import { defaultMaxBatchTokens, Engine, l2normalize, type EngineOptions } from './engine.js';

export type ShardFormat = 'jsonl' | 'npy';

/** One job: a slice of the corpus and where its shard goes. */
export interface EmbedJobData {
  texts: string[];
  /** Line number (0-based) of the first text in the corpus. */
  start: number;
  /** Folder of the shards (shared by the workers, e.g. a network file system). */
  output: string;
  format: ShardFormat;
  normalize: boolean;
  /** Cut texts over the model limit (else the job fails naming the text). */
  truncate: boolean;
}

export interface EnqueueOptions {
  queue: string;
  /** redis://host:port[/db] */
  redis: string;
  /** A .jsonl corpus (strings or {"text": ...} per line) or a text file, one text per line. */
  input: string;
  /** Folder of the shard files. */
  output: string;
  /** Texts per job (default 256). */
  jobSize?: number;
  /** Prefix of the job ids and shard names (default: the corpus file name without its extension). */
  name?: string;
  format?: ShardFormat;
  normalize?: boolean;
  truncate?: boolean;
}

/** `name-000042`: zero-padded so shard files sort in corpus order. */
export function jobId(name: string, index: number): string {
  return `${name}-${String(index).padStart(6, '0')}`;
}

export function shardPath(output: string, id: string, format: ShardFormat): string {
  return join(output, `${id}.${format}`);
}

function connect(url: string): Redis {
  // BullMQ's workers block on Redis and must retry forever rather than fail a command.
  return new Redis(url, { maxRetriesPerRequest: null });
}

/**
 * Splits the corpus into jobs and adds them to the queue. Job ids are deterministic, so enqueueing the
 * same corpus twice adds nothing BullMQ still holds, and slices whose shard is already written are skipped.
 */
export async function enqueueCorpus(o: EnqueueOptions): Promise<{ jobs: number; texts: number; skipped: number }> {
  const jobSize = o.jobSize ?? 256;
  const name = o.name ?? basename(o.input).replace(/\.[^.]*$/, '');
  if (!/^[\w.-]+$/.test(name)) throw new InputError(`job name '${name}' may hold only letters, digits, '.', '_' and '-' (pass --name)`);
  const texts = readInputs([], { input: o.input }).map((r, i) => textOf(r, i));
  const output = resolve(o.output);
  mkdirSync(output, { recursive: true });
  const format = o.format ?? 'jsonl';
  const jobs: { name: string; data: EmbedJobData; opts: { jobId: string; attempts: number; backoff: { type: 'exponential'; delay: number }; removeOnComplete: boolean } }[] = [];
  let skipped = 0;
  for (let start = 0, index = 0; start < texts.length; start += jobSize, index++) {
    const id = jobId(name, index);
    if (existsSync(shardPath(output, id, format))) {
      skipped++;
      continue;
    }
    jobs.push({
      name: 'embed',
      data: { texts: texts.slice(start, start + jobSize), start, output, format, normalize: o.normalize ?? false, truncate: o.truncate ?? true },
      opts: { jobId: id, attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true },
    });
  }
  const connection = connect(o.redis);
  const queue = new Queue<EmbedJobData>(o.queue, { connection });
  try {
    if (jobs.length) await queue.addBulk(jobs);
  } finally {
    await queue.close();
    connection.disconnect();
  }
  return { jobs: jobs.length, texts: texts.length, skipped };
}

export interface WorkerOptions extends EngineOptions {
  queue: string;
  redis: string;
  /** Token budget of one forward pass (default: as the server's). */
  maxBatchTokens?: number;
  /** A job whose worker stops renewing its lock for this long is handed to another worker (ms, default 30000). */
  lockDuration?: number;
  /** How often this worker looks for such stalled jobs (ms, default 30000). */
  stalledInterval?: number;
  /** Stop once the queue has no job waiting, delayed or running. */
  exitWhenEmpty?: boolean;
  /** Progress lines (job started/done/failed). */
  log?: (line: string) => void;
  /** Resolves to stop: the running job is finished first. */
  stop?: Promise<unknown>;
}

/** Embeds one job's texts and writes its shard; returns the number of texts (0 when the shard was already there). */
async function runJob(engine: Engine, batcher: Batcher, job: Job<EmbedJobData>): Promise<number> {
  const d = job.data;
  const path = shardPath(d.output, job.id!, d.format);
  if (existsSync(path)) return 0;
  const { seqs } = await engine.tokenize(d.texts, null, d.truncate);
  const rows = (await batcher.submit(seqs)).map((r) => (d.normalize ? l2normalize(r) : r));
  mkdirSync(d.output, { recursive: true });
  if (d.format === 'npy') {
    const H = rows[0].length;
    const m = new Float32Array(rows.length * H);
    rows.forEach((r, i) => m.set(r, i * H));
    writeAtomic(path, npyBytes(m, [rows.length, H]));
  } else {
    writeAtomic(path, rows.map((r, i) => JSON.stringify({ index: d.start + i, embedding: Array.from(r) })).join('\n') + '\n');
  }
  return rows.length;
}

/** Consumes embedding jobs until `stop` resolves (or the queue is empty, with `exitWhenEmpty`). */
export async function runQueueWorker(o: WorkerOptions): Promise<{ jobs: number; texts: number }> {
  const log = o.log ?? (() => {});
  const engine = await Engine.start(o);
  if (engine.info.kind !== 'embedding') {
    await engine.close();
    throw new InputError(`the queue worker embeds texts; ${o.model} is a sequence-classification model`);
  }
  const batcher = new Batcher((ids, cu) => engine.infer(ids, cu), {
    maxBatchTokens: o.maxBatchTokens ?? defaultMaxBatchTokens(), batching: true,
  });
  const connection = connect(o.redis);
  const done = { jobs: 0, texts: 0 };
  const worker = new Worker<EmbedJobData>(o.queue, async (job) => {
    log(`job ${job.id} started (${job.data.texts.length} texts)`);
    const n = await runJob(engine, batcher, job);
    done.jobs++;
    done.texts += n;
    log(n ? `job ${job.id} done` : `job ${job.id} skipped: its shard exists`);
  }, {
    connection, concurrency: 1, lockDuration: o.lockDuration ?? 30000, stalledInterval: o.stalledInterval ?? 30000, maxStalledCount: 5,
  });
  worker.on('failed', (job, err) => log(`job ${job?.id} failed: ${err.message}`));
  worker.on('error', (err) => log(`queue error: ${err.message}`));
  const stops: Promise<unknown>[] = [];
  if (o.stop) stops.push(o.stop);
  let poll: NodeJS.Timeout | undefined;
  const queue = new Queue(o.queue, { connection });
  if (o.exitWhenEmpty)
    stops.push(new Promise<void>((resolveEmpty) => {
      // A job held by a dead worker counts as active until the stalled check puts it back: no early exit.
      poll = setInterval(() => {
        queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children').then((c) => {
          if (Object.values(c).every((n) => n === 0)) resolveEmpty();
        }, (e: Error) => log(`queue error: ${e.message}`));
      }, 250);
    }));
  try {
    await worker.waitUntilReady();
    await Promise.race(stops);
  } finally {
    clearInterval(poll);
    await worker.close();
    await queue.close();
    connection.disconnect();
    await engine.close();
  }
  return done;
}
