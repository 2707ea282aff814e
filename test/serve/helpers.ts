/** Shared pieces of the serving tests: a model slow enough to watch a batch run, HTTP calls, a redis-server. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModernBertConfig } from '../../src/config/config.js';
import { ModernBertForMaskedLM } from '../../src/model/heads.js';
import { saveModel } from '../../src/train/checkpoint.js';
import { tinyTokenizerFiles } from '../pipelines/helpers.js';

/**
 * A random masked-LM checkpoint with the tiny tokenizer, big enough (hidden 256, 1024 positions) that a
 * request of 16 long texts keeps the inference thread busy for a good fraction of a second.
 */
export function slowModelDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mb-serve-slow-'));
  const config = new ModernBertConfig({
    vocab_size: 512, hidden_size: 256, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4,
    max_position_embeddings: 1024, local_attention: 64, pad_token_id: 503, bos_token_id: 501, eos_token_id: 502, cls_token_id: 501,
    sep_token_id: 502,
  });
  saveModel(ModernBertForMaskedLM.fromConfig(config, { seed: 7 }), dir);
  for (const [file, json] of Object.entries(tinyTokenizerFiles(512, 1024))) writeFileSync(join(dir, file), JSON.stringify(json));
  return dir;
}

/** About `tokens` tokens of the tiny tokenizer's words ("the cat" is 2 tokens plus the separators). */
export function longText(tokens: number, seed = 0): string {
  const words = ['the', 'cat', 'dog', 'ran', 'far', 'away'];
  return Array.from({ length: Math.floor(tokens / 2) }, (_, i) => words[(i + seed) % words.length]).join(' ');
}

export interface HttpResult {
  status: number;
  body: unknown;
  text: string;
}

export async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  const r = await fetch(base + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (e.g. /metrics): keep the text
  }
  return { status: r.status, body: parsed, text };
}

export async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const r = await fetch(base + path, { headers });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, body: parsed, text };
}

/** A free TCP port on loopback (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Where redis-server is, or null (the queue tests then skip, saying so). */
export function redisServerBinary(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export interface RedisServer {
  url: string;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port, without persistence; resolves once it accepts connections. */
export async function startRedis(binary: string): Promise<RedisServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${out}`)), 10000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => {
      child.removeAllListeners('exit');
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
