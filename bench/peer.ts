/**
 * The ONNX Runtime peer (../shared/peers/run-peer.mjs), run one workload at a time through its
 * public command line (--workloads W --json OUT), which itself measures in a fresh child process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cacheRoot } from './checkpoint.js';
import type { Summary } from './workload.js';

export const PEER_MODEL_FILE = 'modernbert-base.onnx';

export interface PeerResult {
  workload: string;
  engine: 'onnxruntime';
  available: true;
  sequences: number;
  realTokens: number;
  paddedPositions: number;
  checksum: string;
  timesMs: number[];
  tokensPerSec: Summary;
  peakRssMiB: number;
  peakRssAfterLoadMiB: number;
  loadMs: number;
  outputFinite: boolean;
}

export interface PeerSkipped {
  workload: string;
  engine: 'onnxruntime';
  available: false;
  reason: string;
}

export interface PeerInfo {
  ortVersion: string;
  node: string;
  model: string;
  threads: number;
}

/**
 * What must be free before a peer run: its peak RSS plus a margin. W1/W2 from its README (3.6 / 2.7 GiB);
 * W3 reached 16 GiB on the README's AMD machine but 8.4 GiB on this Intel one (ONNX Runtime picks other
 * kernels and arena sizes), so the wait asks for 10 GiB and an out-of-memory kill is reported as a skip.
 */
const PEER_NEEDS_GIB: Record<string, number> = { W1: 4.5, W2: 3.5, W3: 10 };

/**
 * The peer work folder: `explicit`, else $MODERNBERT_ORT_PEER, else <cache>/ortpeer. With `setup`,
 * ../shared/peers/setup.sh prepares it first (idempotent; apt python3-torch, npm onnxruntime-node,
 * the ONNX export); otherwise it must already hold the model and onnxruntime-node.
 */
export function peerWorkdir(explicit: string | undefined, peersDir: string, setup: boolean): string {
  const dir = resolve(explicit ?? process.env.MODERNBERT_ORT_PEER ?? join(cacheRoot(), 'ortpeer'));
  if (setup) {
    const r = spawnSync('bash', [join(peersDir, 'setup.sh'), dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`${join(peersDir, 'setup.sh')} ${dir} failed (${r.signal ?? `exit ${r.status}`})`);
  }
  const missing = [PEER_MODEL_FILE, 'node_modules/onnxruntime-node/package.json'].filter((f) => !existsSync(join(dir, f)));
  if (missing.length)
    throw new Error(`the ONNX Runtime peer is not set up in ${dir} (missing ${missing.join(', ')}): run \`bash ${join(peersDir, 'setup.sh')} ${dir}\` first (or add --peer-setup)`);
  return dir;
}

export function memAvailableGiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 2 ** 20 : Infinity;
}

/** Waits (up to waitMinutes) until the workload's peer run fits in free memory; false when it never does. */
export async function waitForMemory(name: string, waitMinutes: number): Promise<boolean> {
  const need = PEER_NEEDS_GIB[name] ?? 4;
  const deadline = Date.now() + waitMinutes * 60_000;
  for (;;) {
    const free = memAvailableGiB();
    if (free >= need) return true;
    if (Date.now() >= deadline) return false;
    process.stderr.write(`  [${name}] peer needs ~${need} GiB, ${free.toFixed(1)} GiB available: waiting\n`);
    await new Promise((r) => setTimeout(r, 20_000));
  }
}

export interface PeerOptions {
  peersDir: string;
  workdir: string;
  threads: number;
  runs: number;
  warmup: number;
  waitMinutes: number;
}

export async function runPeer(name: string, opt: PeerOptions): Promise<{ result: PeerResult | PeerSkipped; info?: PeerInfo }> {
  const skip = (reason: string) => ({ result: { workload: name, engine: 'onnxruntime' as const, available: false as const, reason } });
  if (!(await waitForMemory(name, opt.waitMinutes)))
    return skip(`skipped: needs ~${PEER_NEEDS_GIB[name]} GiB free, only ${memAvailableGiB().toFixed(1)} GiB available`);
  const out = mkdtempSync(join(tmpdir(), 'modernbert-peer-'));
  try {
    const json = join(out, 'peer.json');
    const args = [join(opt.peersDir, 'run-peer.mjs'), join(opt.workdir, PEER_MODEL_FILE), '--ort', opt.workdir, '--threads', String(opt.threads),
      '--runs', String(opt.runs), '--warmup', String(opt.warmup), '--workloads', name, '--json', json];
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (!existsSync(json)) return skip(`run-peer.mjs failed (${r.signal ?? `exit ${r.status}`})`);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { info: PeerInfo; results: Record<string, unknown>[] };
    const p = parsed.results[0];
    if (p.error) return skip(`run-peer.mjs child failed: ${String(p.error)}`);
    const result: PeerResult = {
      workload: name,
      engine: 'onnxruntime',
      available: true,
      sequences: p.sequences as number,
      realTokens: p.realTokens as number,
      paddedPositions: p.paddedPositions as number,
      checksum: p.checksum as string,
      timesMs: p.timesMs as number[],
      tokensPerSec: p.tokensPerSec as Summary,
      peakRssMiB: p.peakRssMiB as number,
      peakRssAfterLoadMiB: p.peakRssAfterLoadMiB as number,
      loadMs: p.sessionLoadMs as number,
      outputFinite: p.outputFinite as boolean,
    };
    const { ortVersion, node, model, threads } = parsed.info;
    return { result, info: { ortVersion, node, model, threads } };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
