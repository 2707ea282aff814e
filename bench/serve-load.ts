/**
 * Load test of `modernbert serve` on loopback (bounded: N clients for a fixed time per run).
 *
 *   node --import tsx bench/serve-load.ts [--model DIR] [--layers 22 --hidden 768 --intermediate 1152 --heads 12]
 *     [--connections 64] [--seconds 10] [--threads N]
 *
 * Without --model it writes (once, into the OS temp folder) a ModernBERT-base-sized checkpoint with random
 * weights and the real tokenizer: cost does not depend on the weights. For each workload (queries, short
 * texts, mixed lengths) it starts two servers, with dynamic batching and with --no-batching, and drives them
 * in turn (on, off, off, on) with autocannon (one text per request, a different text each time); then an
 * overload run with a small --max-concurrent-requests. It reports texts/s and tokens/s (from the server's own token counter),
 * p50/p99 latency, status codes, the server's peak RSS, and the batching gain (texts/s on / off).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { ModernBertConfig } from '../src/config/config.js';
import { ModernBertForMaskedLM } from '../src/model/heads.js';
import { saveModel } from '../src/train/checkpoint.js';
import { findPeersDir } from './peers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, fallback: number): number;
function arg(name: string, fallback: string | undefined): string | undefined;
function arg(name: string, fallback: number | string | undefined) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  return typeof fallback === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const dims = { layers: arg('layers', 22), hidden: arg('hidden', 768), intermediate: arg('intermediate', 1152), heads: arg('heads', 12) };
const connections = arg('connections', 64);
const seconds = arg('seconds', 10);
const threads = arg('threads', undefined);

function modelDir(): string {
  const given = arg('model', undefined);
  if (given) return given;
  const dir = join(tmpdir(), `modernbert-serve-load-${dims.layers}x${dims.hidden}x${dims.intermediate}`);
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  process.stderr.write(`writing a random ${dims.layers}-layer, ${dims.hidden}-wide checkpoint to ${dir} ...\n`);
  const config = new ModernBertConfig({
    num_hidden_layers: dims.layers, hidden_size: dims.hidden, intermediate_size: dims.intermediate, num_attention_heads: dims.heads,
  });
  // The real tokenizer, from the shared folder beside the repository (as the peers benchmark finds it).
  saveModel(ModernBertForMaskedLM.fromConfig(config, { seed: 1 }), dir, join(dirname(findPeersDir()), 'tokenizer', 'modernbert'));
  return dir;
}

/** Deterministic texts of `minWords`..`maxWords` words (mulberry32). */
function corpus(n: number, minWords: number, maxWords: number, seed: number): string[] {
  const words = ('the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but '
    + 'not what all were we when your can said there use an each which she do how their if will up other about out many then them '
    + 'retrieval embedding server batching latency throughput encoder document query ranking vector search').split(' ');
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => {
    const len = minWords + Math.floor(rand() * (maxWords - minWords + 1));
    return Array.from({ length: len }, () => words[Math.floor(rand() * words.length)]).join(' ');
  });
}

interface Server {
  child: ChildProcess;
  url: string;
}

async function startServer(model: string, extra: string[]): Promise<Server> {
  const args = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve', '-m', model, '--port', '0', ...(threads ? ['--threads', threads] : []), ...extra];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((ok, fail) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
      const m = /on (http:\/\/[\d.:]+)/.exec(err);
      if (m) ok(m[1]);
    });
    child.on('exit', (code) => fail(new Error(`server exited (${code}):\n${err}`)));
  });
  return { child, url };
}

async function stopServer(s: Server): Promise<void> {
  s.child.removeAllListeners('exit');
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

async function scrape(url: string): Promise<{ tokens: number; rss: number; inFlight: number; cpu: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
  return {
    tokens: value('modernbert_tokens_total'), rss: value('modernbert_process_resident_memory_bytes'), inFlight: value('modernbert_requests_in_flight'),
    cpu: value('modernbert_process_cpu_seconds_total'),
  };
}

/** Waits until the server has answered every admitted request (clients that gave up leave work behind). */
async function drain(url: string): Promise<void> {
  while ((await scrape(url)).inFlight > 0) await new Promise((r) => setTimeout(r, 200));
}

/**
 * One bounded autocannon run; the server's RSS is sampled every 200 ms. Besides texts per wall-clock
 * second, texts per CPU-second of the server process: the machine is shared, and CPU time is what a
 * neighbour's load changes least.
 */
async function drive(url: string, texts: string[], conns: number, duration: number) {
  let next = 0;
  let peakRss = 0;
  const sampler = setInterval(() => scrape(url).then((m) => (peakRss = Math.max(peakRss, m.rss)), () => {}), 200);
  const before = await scrape(url);
  const r = await autocannon({
    url: `${url}/embed`, connections: conns, duration, method: 'POST', headers: { 'content-type': 'application/json' }, timeout: 60,
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ inputs: texts[next++ % texts.length], truncate: true }) }) }],
  });
  clearInterval(sampler);
  const after = await scrape(url);
  const codes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([c, v]) => [c, v.count ?? 0]));
  return {
    textsPerSec: r['2xx'] / r.duration,
    textsPerCpuSec: r['2xx'] / (after.cpu - before.cpu),
    tokensPerSec: (after.tokens - before.tokens) / r.duration,
    p50: r.latency.p50, p99: r.latency.p99, codes, errors: r.errors, timeouts: r.timeouts, peakRssMiB: Math.max(peakRss, after.rss) / 2 ** 20,
  };
}

const fmt = (x: number, d = 0) => x.toFixed(d);

async function main() {
  const model = modelDir();
  const workloads = [
    { name: 'queries (2–8 words)', texts: corpus(4096, 2, 8, 3), seconds },
    { name: 'short (4–16 words)', texts: corpus(4096, 4, 16, 1), seconds },
    // A pass of 64 such texts takes seconds on a busy machine: longer runs, so each holds several passes.
    { name: 'mixed (4–100 words)', texts: corpus(4096, 4, 100, 2), seconds: 2 * seconds },
  ];
  console.log(`model ${model}; ${connections} clients, loopback; runs in the order on, off, off, on (drift cancels)`);
  console.log('| workload | batching | run | s | texts/s | tokens/s | texts/CPU-s | p50 ms | p99 ms | statuses | peak RSS MiB |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const gains: string[] = [];
  for (const w of workloads) {
    // Both servers stay up (an idle one costs no CPU) and take turns, so a change in the machine's load
    // between runs hits both modes alike.
    const servers = { on: await startServer(model, []), off: await startServer(model, ['--no-batching']) };
    for (const s of Object.values(servers)) {
      await drive(s.url, w.texts, Math.min(16, connections), 2); // warm-up (first passes size the workspaces)
      await drain(s.url);
    }
    const texts = { on: 0, off: 0 };
    const perCpu = { on: 0, off: 0 };
    for (const [i, mode] of (['on', 'off', 'off', 'on'] as const).entries()) {
      const r = await drive(servers[mode].url, w.texts, connections, w.seconds);
      await drain(servers[mode].url);
      texts[mode] += r.textsPerSec;
      perCpu[mode] += r.textsPerCpuSec;
      console.log(`| ${w.name} | ${mode} | ${i + 1} | ${w.seconds} | ${fmt(r.textsPerSec, 1)} | ${fmt(r.tokensPerSec)} | ${fmt(r.textsPerCpuSec, 1)} | ${fmt(r.p50)} | ${fmt(r.p99)} | `
        + `${JSON.stringify(r.codes)}${r.errors ? ` errors ${r.errors}` : ''} | ${fmt(r.peakRssMiB)} |`);
    }
    await Promise.all(Object.values(servers).map(stopServer));
    gains.push(`${w.name}: ${fmt(texts.on / texts.off, 2)}× per second, ${fmt(perCpu.on / perCpu.off, 2)}× per CPU-second`);
  }
  console.log(`\nbatching gain (texts/s with dynamic batching / without, both runs): ${gains.join('; ')}`);
  // Overload: fewer admission slots than clients. Expect 200s and 429s only, and a flat RSS.
  const limit = Math.max(1, connections >> 2);
  const s = await startServer(model, ['--max-concurrent-requests', String(limit)]);
  const r = await drive(s.url, workloads[1].texts, connections, seconds);
  await stopServer(s);
  console.log(`\noverload (--max-concurrent-requests ${limit}, ${connections} clients, short texts): statuses ${JSON.stringify(r.codes)}, connection errors ${r.errors}, `
    + `${fmt(r.textsPerSec, 1)} texts/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, peak RSS ${fmt(r.peakRssMiB)} MiB`);
}

await main();
