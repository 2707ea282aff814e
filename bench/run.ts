/**
 * `npm run bench -- [options]`: end-to-end throughput, peak memory, load time and per-kernel time
 * of the ModernBERT-base encoder on the shared workloads (W1 32×512, W2 32 variable lengths,
 * W3 1×8192, T1 training step), each in a fresh child process; with --peer, ONNX Runtime on the
 * same workloads in the same session, alternating workload by workload, and the ratios.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BASE_SHAPE, randomCheckpoint, TINY_SHAPE } from './checkpoint.js';
import { peerWorkdir, runPeer, type PeerInfo } from './peer.js';
import { loadPeers, REPO_ROOT, type Peers } from './peers.js';
import { cpuName, dtypeTable, int, positive, GEMM_TARGET, gemmShare, kernelTable, mainTable, ratios, ratioTable, type Row } from './report.js';
import { ALIASES, runTraining, TRAINING_WORKLOADS } from './training.js';
import { runInference, type Unavailable, type WorkloadResult } from './workload.js';
import type { Dtype } from '../src/kernels/types.js';

const SELF = fileURLToPath(import.meta.url);

interface Options {
  workloads: string;
  threads: number;
  runs: number;
  warmup: number;
  model?: string;
  layers: number;
  tiny: boolean;
  peer?: string | boolean;
  peers?: string;
  peerSetup: boolean;
  peerWait: number;
  json?: string;
  fmaSeconds: number;
  dtype: Dtype;
  child?: string;
}

const program = new Command('bench')
  .description('ModernBERT encoder benchmark on the shared workloads, optionally side by side with ONNX Runtime')
  .option('--workloads <list>', 'comma-separated: W1 (32x512), W2 (32 variable), W3 (1x8192), T1 (training step: T1-mlm and T1-cls)', 'W1,W2,W3,T1')
  .option('--threads <n>', 'threads of our pool and of the peer (intra-op)', int(1), 2)
  .option('--runs <n>', 'timed runs per workload (the median is reported)', int(1), 3)
  .option('--warmup <n>', 'untimed runs before them', int(0), 1)
  .option('--model <dir>', 'a Hugging Face ModernBERT checkpoint folder (default: seeded random weights, base shape)')
  .option('--layers <n>', 'layers of the random model', int(1), BASE_SHAPE.layers)
  .option('--tiny', 'tiny random model (2 layers, hidden 64): checks the harness in seconds, numbers mean nothing', false)
  .option('--peer [dir]', 'also run the ONNX Runtime peer set up in dir by ../shared/peers/setup.sh (default $MODERNBERT_ORT_PEER, else <cache>/ortpeer)')
  .option('--peer-setup', 'with --peer: first run ../shared/peers/setup.sh on the peer folder (apt python3-torch, npm onnxruntime-node 1.30.0, ONNX export)', false)
  .option('--peers <dir>', 'the shared peers folder (default: ../shared/peers beside the repository, or $MODERNBERT_PEERS)')
  .option('--peer-wait <minutes>', 'how long to wait for enough free memory before a peer run (W3 needs ~10 GiB)', positive, 15)
  .option('--json <file>', 'write all results as JSON')
  .option('--fma-seconds <s>', 'duration of each FMA peak probe (before and after the timed runs) in each workload process', positive, 0.5)
  .addOption(new Option('--dtype <dtype>', 'precision of the inference Linears; bf16 runs every inference workload in float32 AND bf16 (same session) and prints both rows and their ratio')
    .choices(['float32', 'bf16']).default('float32'))
  .addOption(new Option('--child <workload>', 'internal: run one workload in this process').hideHelp());

function childArgs(name: string, opt: Options, model: string, peers: Peers, dtype: Dtype): string[] {
  return ['--import', 'tsx', SELF, '--child', name, '--model', model, '--peers', peers.dir, '--threads', String(opt.threads),
    '--runs', String(opt.runs), '--warmup', String(opt.warmup), '--fma-seconds', String(opt.fmaSeconds), '--dtype', dtype];
}

/** One of our workloads in a fresh process, so its peak RSS is its own. */
function runOurs(name: string, opt: Options, model: string, peers: Peers, dtype: Dtype): WorkloadResult | Unavailable {
  const r = spawnSync(process.execPath, childArgs(name, opt, model, peers, dtype), {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 26,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) {
    const why = r.signal ? `signal ${r.signal}${r.signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exit ${r.status}`;
    return { workload: name, engine: 'ours', available: false, reason: `child process failed (${why})` };
  }
  return JSON.parse(line.slice('RESULT '.length)) as WorkloadResult | Unavailable;
}

async function child(name: string, opt: Options, peers: Peers): Promise<void> {
  const model = opt.model!;
  const run = { model, threads: opt.threads, runs: opt.runs, warmup: opt.warmup, fmaSeconds: opt.fmaSeconds, dtype: opt.dtype };
  const result = TRAINING_WORKLOADS.includes(name) ? await runTraining(name, peers, run) : await runInference(name, peers, run);
  process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
}

async function parent(opt: Options, peers: Peers): Promise<void> {
  const names = opt.workloads.split(',').map((s) => s.trim()).filter(Boolean).flatMap((n) => ALIASES[n] ?? [n]);
  const known = [...peers.workloads.WORKLOAD_NAMES, ...TRAINING_WORKLOADS];
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) throw new InvalidArgumentError(`unknown workload(s) ${unknown.join(', ')}; expected some of ${known.join(', ')}`);
  if (opt.tiny && opt.peer) throw new InvalidArgumentError('--tiny cannot be compared with the peer (its ONNX graph is base-shaped)');

  const shape = opt.tiny ? TINY_SHAPE : { ...BASE_SHAPE, layers: opt.layers };
  const model = opt.model ?? randomCheckpoint(peers.dir, shape);
  const peerDir = opt.peer ? peerWorkdir(typeof opt.peer === 'string' ? opt.peer : undefined, peers.dir, opt.peerSetup) : undefined;
  const config = JSON.parse(readFileSync(`${model}/config.json`, 'utf8')) as Record<string, number>;
  const flopsShape = {
    hidden: config.hidden_size, inter: config.intermediate_size, layers: config.num_hidden_layers,
    globalEvery: config.global_attn_every_n_layers ?? 3, localAttention: config.local_attention ?? 128,
  };
  if (!(config.vocab_size > peers.workloads.PAD_ID))
    throw new InvalidArgumentError(`${model} has vocab_size ${config.vocab_size}; the workloads use ModernBERT token ids up to ${peers.workloads.PAD_ID}`);
  if (peerDir && config.num_hidden_layers !== BASE_SHAPE.layers)
    process.stderr.write(`warning: our model has ${config.num_hidden_layers} layers; the peer's ONNX graph was exported with PEER_LAYERS (22 by default)\n`);

  const cpu = cpuName();
  const loadAtStart = os.loadavg()[0];
  process.stderr.write(`bench: ${cpu}, ${opt.threads} thread(s), model ${model}, runs ${opt.runs} after ${opt.warmup} warm-up\n`);
  const rows: Row[] = [];
  let peerInfo: PeerInfo | undefined;
  for (const name of names) {
    process.stderr.write(`${name}: ours, fresh child process\n`);
    const row: Row = { workload: name, ours: runOurs(name, opt, model, peers, 'float32') };
    if (opt.dtype === 'bf16' && !TRAINING_WORKLOADS.includes(name)) {
      process.stderr.write(`${name}: ours in bf16, fresh child process\n`);
      row.oursBf16 = runOurs(name, opt, model, peers, 'bf16');
    }
    if (!TRAINING_WORKLOADS.includes(name)) row.flops = peers.flops.flops(peers.workloads.makeWorkload(name).lengths, flopsShape);
    if (peerDir && !TRAINING_WORKLOADS.includes(name)) {
      process.stderr.write(`${name}: onnxruntime peer\n`);
      const p = await runPeer(name, { peersDir: peers.dir, workdir: peerDir, threads: opt.threads, runs: opt.runs, warmup: opt.warmup, waitMinutes: opt.peerWait });
      row.peer = p.result;
      peerInfo ??= p.info;
    }
    rows.push(row);
  }

  const measured = rows.flatMap((r) => (r.oursBf16 ? [r.ours, r.oursBf16] : [r.ours])).filter((o): o is WorkloadResult => o.available);
  const isa = measured[0]?.isa ?? '?';
  const info = {
    cpu,
    logicalCpus: os.cpus().length,
    totalMemGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    isa,
    threads: opt.threads,
    fmaPeakGflops: measured.map((m) => m.fmaPeakGflops),
    node: process.version,
    model: opt.model ?? `random ${JSON.stringify(shape)}`,
    peer: peerInfo ? { engine: 'onnxruntime-node', ...peerInfo, graphOptimizationLevel: 'all' } : undefined,
    /** 1-minute load average when the run started and ended: other jobs on the machine skew absolute numbers. */
    loadAverage: { start: +loadAtStart.toFixed(2), end: +os.loadavg()[0].toFixed(2) },
    date: new Date().toISOString(),
  };

  const print = (lines: string[]) => console.log(lines.join('\n'));
  console.log(`\nModernBERT encoder benchmark: ${info.cpu}, ${info.logicalCpus} logical CPUs, ${info.totalMemGiB} GiB`);
  console.log(`ours: ISA ${isa}, ${opt.threads} thread(s), node ${info.node}; model: ${info.model}`);
  if (peerInfo) console.log(`peer: onnxruntime-node ${peerInfo.ortVersion} (${peerInfo.model}), ${peerInfo.threads} intra-op thread(s), graph optimisation 'all'`);
  console.log(`load average (1 min): ${info.loadAverage.start} at the start, ${info.loadAverage.end} at the end (${info.logicalCpus} CPUs)`);
  console.log('tokens/s count real tokens only; peak RSS is the workload process\'s own maxRSS; useful FLOPs = flops.mjs "minimum"\n');
  print(mainTable(rows));
  if (peerInfo) {
    console.log('\nRatios (same session, same workload, same thread count)');
    print(ratioTable(rows));
  }
  if (opt.dtype === 'bf16') {
    console.log('\nbf16 / float32, ours (same session, alternating processes)');
    print(dtypeTable(rows));
  }
  for (const m of measured) {
    console.log('');
    print(kernelTable(m));
  }
  if (measured.length) {
    console.log(`\nGEMMs' share of the measured float32 FMA peak (target >= ${GEMM_TARGET * 100}% in float32): ` +
      measured.map((m) => `${m.workload}${m.dtype === 'bf16' ? ' bf16' : ''} ${(100 * gemmShare(m).ofPeak).toFixed(1)}%`).join(', '));
  }
  if (opt.json) {
    const results = rows.map((r) => ({ ...r, ratios: ratios(r), gemm: r.ours.available ? gemmShare(r.ours) : undefined }));
    writeFileSync(opt.json, JSON.stringify({ info, results }, null, 2) + '\n');
    console.log(`wrote ${opt.json}`);
  }
  if (rows.some((r) => !r.ours.available || (r.oursBf16 && !r.oursBf16.available))) process.exitCode = 1;
}

const opt = program.parse().opts<Options>();
try {
  const peers = await loadPeers(opt.peers);
  if (opt.child) await child(opt.child, opt, peers);
  else await parent(opt, peers);
} catch (e) {
  // Setup problems (no peers folder, peer not set up, a checkpoint that does not fit the workloads) are
  // the user's to fix: the message says how; the stack would only hide it.
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  if (opt.child) process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
}
