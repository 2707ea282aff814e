/**
 * The shared benchmark definitions in ../shared/peers: the workload generator (workloads.mjs),
 * the FLOP counts (flops.mjs), the random checkpoint writer and the ONNX Runtime peer. They are
 * imported at run time, never copied, so our benchmark and the peer process the same token ids.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface Workload {
  name: string;
  lengths: number[];
  ids: number[][];
  realTokens: number;
}

export interface WorkloadsModule {
  WORKLOAD_NAMES: string[];
  PAD_ID: number;
  makeWorkload(name: string): Workload;
  checksum(w: Workload): number;
  mulberry32(seed: number): () => number;
}

/** The encoder shape flops.mjs counts with. */
export interface FlopsShape {
  hidden: number;
  inter: number;
  layers: number;
  globalEvery: number;
  localAttention: number;
}

export interface FlopCount {
  real: number;
  padded: number;
  /** GEMM FLOPs per token over all layers. */
  gemmPerTok: number;
  /** What a padded dense graph computes, per real token. */
  paddedDensePerReal: number;
  /** Unpadded, local layers only over their window: the useful work, per real token. */
  minimumPerReal: number;
}

export interface FlopsModule {
  flops(lengths: number[], shape: FlopsShape): FlopCount;
}

export interface Peers {
  dir: string;
  workloads: WorkloadsModule;
  flops: FlopsModule;
}

const MARKER = 'workloads.mjs';

/**
 * The peers folder: `explicit`, else $MODERNBERT_PEERS, else the first `shared/peers` beside the
 * repository or beside one of its parents (CI puts ../shared next to the checkout; a git worktree
 * may sit one level deeper).
 */
export function findPeersDir(explicit?: string): string {
  const given = explicit ?? process.env.MODERNBERT_PEERS;
  if (given) {
    const dir = resolve(given);
    if (!existsSync(join(dir, MARKER))) throw new Error(`${dir} has no ${MARKER}: --peers must name the shared peers folder`);
    return dir;
  }
  let dir = REPO_ROOT;
  for (let up = 0; up < 4; up++) {
    const parent = dirname(dir);
    const candidate = join(parent, 'shared', 'peers');
    if (existsSync(join(candidate, MARKER))) return candidate;
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`no shared/peers/${MARKER} found beside ${REPO_ROOT} or its parents: pass --peers DIR or set MODERNBERT_PEERS`);
}

export async function loadPeers(explicit?: string): Promise<Peers> {
  const dir = findPeersDir(explicit);
  const load = async (file: string): Promise<unknown> => import(pathToFileURL(join(dir, file)).href);
  return {
    dir,
    workloads: (await load('workloads.mjs')) as WorkloadsModule,
    flops: (await load('flops.mjs')) as FlopsModule,
  };
}
