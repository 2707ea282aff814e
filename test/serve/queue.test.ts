/**
 * Scale-out on BullMQ against a real redis-server (started here on a free loopback port): `modernbert
 * enqueue` splits a corpus, `modernbert worker` processes embed it into per-job shards. One worker alone
 * gives the reference; then two workers share the queue and one is killed (SIGKILL) in the middle of a
 * job: its job goes to the other worker and the shards are byte-for-byte the reference's.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from '../../src/pipelines/registry.js';
import { longText, redisServerBinary, slowModelDir, startRedis, type RedisServer } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
const REDIS = redisServerBinary();

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Every worker started, so `after` can kill any left running by a failed test (a hang must not stall the suite). */
const started: ChildProcess[] = [];

/** A worker process whose log lines (stderr) the test can wait on. */
class WorkerProcess {
  readonly child: ChildProcess;
  log = '';
  readonly exited: Promise<number | null>;
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [...CLI, 'worker', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    started.push(this.child);
    this.child.stderr!.on('data', (d: Buffer) => {
      this.log += d;
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(this.log);
        if (m) w.resolve(m);
        return !m;
      });
    });
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  waitFor(re: RegExp): Promise<RegExpExecArray> {
    const m = re.exec(this.log);
    return m ? Promise.resolve(m) : new Promise((resolve) => this.waiters.push({ re, resolve }));
  }
}

const shards = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();

describe('queue: BullMQ workers on a real redis-server', { skip: REDIS ? false : 'redis-server is not installed (apt-get install redis-server; .ci/run installs it)' }, () => {
  let redis: RedisServer;
  let model: string;
  let tmp: string;
  let corpus: string;
  const texts = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? `short text ${i}` : longText(1100, i)));
  // Stalled jobs are found within about a second (BullMQ's defaults are 30 s).
  const workerArgs = (queue: string) => ['-m', model, '--queue', queue, '--redis', redis.url, '--lock-duration', '1000', '--stalled-interval', '1000', '--exit-when-empty'];

  before(async () => {
    redis = await startRedis(REDIS!);
    model = slowModelDir();
    tmp = mkdtempSync(join(tmpdir(), 'mb-queue-'));
    corpus = join(tmp, 'corpus.jsonl');
    writeFileSync(corpus, texts.map((t, i) => JSON.stringify(i % 2 ? { text: t } : t)).join('\n') + '\n');
  });
  after(() => {
    for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    redis?.stop();
  });

  it('one worker embeds every job into its shard, as the pipeline does; enqueueing again adds nothing', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'ref');
    const q = await cli(['enqueue', '--queue', 'ref', '--redis', redis.url, '-i', corpus, '-o', out, '--job-size', '2']);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /queued 6 jobs \(12 texts\) on ref/);
    const w = new WorkerProcess(workerArgs('ref'));
    assert.equal(await w.exited, 0, w.log);
    assert.deepEqual(shards(out), Array.from({ length: 6 }, (_, i) => `corpus-00000${i}.jsonl`));
    const rows = shards(out).flatMap((f) => readFileSync(join(out, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { index: number; embedding: number[] }));
    assert.deepEqual(rows.map((r) => r.index), texts.map((_, i) => i));
    const embed = await pipeline('feature-extraction', model, { onWarning: () => {} });
    const want = await embed(texts, { pooling: 'mean' });
    const H = want.dims[1];
    rows.forEach((r, i) => r.embedding.forEach((v, d) => assert.ok(Math.abs(v - want.data[i * H + d]) < 1e-4, `text ${i} [${d}]: ${v} vs ${want.data[i * H + d]}`)));
    const again = await cli(['enqueue', '--queue', 'ref', '--redis', redis.url, '-i', corpus, '-o', out, '--job-size', '2']);
    assert.match(again.stdout, /queued 0 jobs \(12 texts; 6 jobs already have their shard\)/);
  });

  it('two workers, one killed in the middle of a job: the job is retried and the shards equal the single-worker run', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'two');
    const q = await cli(['enqueue', '--queue', 'two', '--redis', redis.url, '-i', corpus, '-o', out, '--job-size', '2']);
    assert.equal(q.code, 0, q.stderr);
    const a = new WorkerProcess(workerArgs('two'));
    const b = new WorkerProcess(workerArgs('two'));
    // Kill A as soon as it has started a job of two long texts (it takes a good fraction of a second).
    const [, job] = await a.waitFor(/job (corpus-00000[1-5]) started/);
    a.child.kill('SIGKILL');
    assert.equal(await a.exited, null, 'killed by the signal');
    assert.doesNotMatch(a.log, new RegExp(`job ${job} done`), 'A died in the middle of the job');
    assert.equal(await b.exited, 0, b.log);
    assert.match(b.log, new RegExp(`job ${job} done`), 'B took over the stalled job');
    const ref = join(tmp, 'ref');
    assert.deepEqual(shards(out), shards(ref));
    for (const f of shards(ref)) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(ref, f))), `${f} differs from the single-worker run`);
    assert.deepEqual(readdirSync(out).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
  });
});
