/**
 * The benchmark's model: a real checkpoint (--model DIR), or a seeded random one in the Hugging
 * Face layout, written once by ../shared/peers/make-random-model.mjs into a cache folder outside
 * the repository. Cost does not depend on the weights (everything is dense float32).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface ModelShape {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  /** Must hold the workloads' CLS/SEP/PAD ids (50281–50283). */
  vocab: number;
  local: number;
}

/** answerdotai/ModernBERT-base. */
export const BASE_SHAPE: ModelShape = { layers: 22, hidden: 768, heads: 12, intermediate: 1152, vocab: 50368, local: 128 };
/** Seconds to build and run; for the harness test. Same vocabulary, so the real workloads still apply. */
export const TINY_SHAPE: ModelShape = { layers: 2, hidden: 64, heads: 4, intermediate: 128, vocab: 50368, local: 128 };

export function cacheRoot(): string {
  return process.env.MODERNBERT_BENCH_CACHE ?? join(homedir(), '.cache', 'modernbert-bench');
}

/** The folder of a random MLM checkpoint of `shape`, written on first use. */
export function randomCheckpoint(peersDir: string, shape: ModelShape): string {
  const s = shape;
  const name = `random-mlm-L${s.layers}-H${s.hidden}-A${s.heads}-I${s.intermediate}-V${s.vocab}-W${s.local}`;
  const dir = join(cacheRoot(), name);
  if (existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'config.json'))) return dir;
  mkdirSync(cacheRoot(), { recursive: true });
  // Written under a temporary name and renamed, so an interrupted run never leaves a half checkpoint.
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`writing random checkpoint ${dir} (once)\n`);
  const args = [join(peersDir, 'make-random-model.mjs'), tmp, '--arch', 'mlm', '--layers', String(s.layers), '--hidden', String(s.hidden),
    '--heads', String(s.heads), '--intermediate', String(s.intermediate), '--vocab', String(s.vocab), '--local', String(s.local)];
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`make-random-model.mjs failed (${r.signal ?? `exit ${r.status}`}) writing ${tmp}`);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}
