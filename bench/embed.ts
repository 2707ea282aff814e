/**
 * `npm run bench:embed -- [options]`: embedding throughput of a ModernBERT encoder on real text of mixed
 * lengths, ours against ONNX Runtime in the same run. The first --docs documents of a JSONL corpus are
 * tokenized once here (the real ModernBERT tokenizer, special tokens, truncated to --max-length); then each
 * engine embeds the same ids (mean pooling, L2 normalisation) in a fresh child process: ours packed by a token
 * budget, ONNX Runtime in padded batches of 32 in corpus order, and again sorted by length. Reports texts/s,
 * real tokens/s, peak RSS, load time, the ratios ours/peer, and whether the embeddings agree.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { WeightStore } from '../src/model/weights.js';
import { AutoTokenizer } from '../src/tokenizer/tokenizer.js';
import type { Dtype } from '../src/kernels/types.js';
import { BASE_SHAPE, randomCheckpoint, TINY_SHAPE } from './checkpoint.js';
import { runEngine, writeCorpus, type Engine, type EngineFailed, type EngineResult } from './embed-engines.js';
import { memAvailableGiB, PEER_MODEL_FILE, peerWorkdir, waitForMemory } from './peer.js';
import { findPeersDir, REPO_ROOT } from './peers.js';
import { cpuName, int, positive } from './report.js';
import { median } from './workload.js';

const SELF = fileURLToPath(import.meta.url);

interface Options {
  corpus: string;
  docs: number;
  tokenizer?: string;
  maxLength: number;
  threads: number;
  runs: number;
  warmup: number;
  model?: string;
  tiny: boolean;
  peer?: string | boolean;
  peers?: string;
  peerSetup: boolean;
  peerWait: number;
  batchTokens: number;
  peerBatch: number;
  dtype: Dtype;
  json?: string;
  child?: Engine;
  ids?: string;
  out?: string;
}

const program = new Command('bench:embed')
  .description('Embedding throughput (mean pooling + L2 normalisation) on a real-text corpus of mixed lengths, ours and ONNX Runtime in the same run')
  .option('--corpus <file>', 'JSONL with a "text" field (what ../shared/data/prepare.sh writes)', join(REPO_ROOT, '..', 'pretrain-data', 'corpus', 'heldout.jsonl'))
  .option('--docs <n>', 'embed the first n documents', int(1), 1000)
  .option('--tokenizer <dir>', 'tokenizer folder (default: ../shared/tokenizer/modernbert beside the peers folder)')
  .option('--max-length <n>', 'truncate each text to n tokens, special tokens included', int(3), 512)
  .option('--threads <n>', 'threads of our pool and of the peer (intra-op)', int(1), 2)
  .option('--runs <n>', 'timed passes over the corpus per engine (the median is reported)', int(1), 3)
  .option('--warmup <n>', 'untimed passes before them', int(0), 1)
  .option('--model <dir>', 'a Hugging Face ModernBERT checkpoint folder (default: seeded random weights, base shape)')
  .option('--tiny', 'tiny random model (2 layers, hidden 64), no peer: checks the harness in seconds, numbers mean nothing', false)
  .option('--peer <dir>', 'the ONNX Runtime peer folder set up by ../shared/peers/setup.sh (default $MODERNBERT_ORT_PEER, else <cache>/ortpeer)')
  .option('--no-peer', 'ours only')
  .option('--peer-setup', 'first run ../shared/peers/setup.sh on the peer folder', false)
  .option('--peers <dir>', 'the shared peers folder (default: ../shared/peers beside the repository, or $MODERNBERT_PEERS)')
  .option('--peer-wait <minutes>', 'how long to wait for enough free memory before a peer run (a 32×512 batch needs ~4.5 GiB)', positive, 15)
  .option('--batch-tokens <n>', 'ours: tokens per packed forward (the library\'s maxBatchTokens default)', int(1), 16384)
  .option('--peer-batch <n>', 'peer: texts per padded batch (Transformers.js users pass arrays; 32 is the common batch)', int(1), 32)
  .addOption(new Option('--dtype <dtype>', 'bf16 adds a row of ours with bf16 Linears (the float32 row is always run)').choices(['float32', 'bf16']).default('float32'))
  .option('--json <file>', 'write all results as JSON')
  .addOption(new Option('--child <engine>', 'internal: run one engine in this process').choices(['ours', 'onnxruntime', 'onnxruntime-sorted']).hideHelp())
  .addOption(new Option('--ids <file>', 'internal: the tokenized corpus').hideHelp())
  .addOption(new Option('--out <file>', 'internal: where the child writes its embeddings').hideHelp());

/** The first `n` documents' "text" fields (the file is read only as far as needed). */
async function readDocuments(file: string, n: number): Promise<string[]> {
  if (!existsSync(file)) throw new Error(`no corpus at ${file}: pass --corpus FILE (a JSONL file with a "text" field; ../shared/data/prepare.sh DATA writes DATA/corpus/heldout.jsonl)`);
  const texts: string[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  for await (const l of lines) {
    line++;
    if (!l.trim()) continue;
    const text = (JSON.parse(l) as { text?: unknown }).text;
    if (typeof text !== 'string') throw new Error(`${file}:${line}: no "text" string field`);
    texts.push(text);
    if (texts.length === n) break;
  }
  lines.close();
  if (texts.length === 0) throw new Error(`${file} holds no documents`);
  return texts;
}

/**
 * Whether the peer's ONNX graph was exported from our checkpoint's weights: the first 64 values of our token
 * embedding matrix must occur, byte for byte, in the .onnx file (export_onnx.py stores it as a float32
 * initializer). The default random checkpoint (make-random-model.mjs, seed 1234) and setup.sh's default export
 * (export_onnx.py's own torch init, seed 0) are different weights, so their embeddings cannot be compared.
 */
function peerHasOurWeights(modelDir: string, onnxFile: string): boolean {
  const store = WeightStore.fromDirectory(modelDir);
  const name = ['model.embeddings.tok_embeddings.weight', 'embeddings.tok_embeddings.weight'].find((n) => store.has(n));
  if (!name) return false;
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as { vocab_size: number; hidden_size: number };
  const row = store.get(name, [config.vocab_size, config.hidden_size]).subarray(0, 64);
  const needle = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
  const fd = openSync(onnxFile, 'r');
  try {
    // Chunks overlap by the needle's length, so a match across a boundary is found.
    const chunk = Buffer.alloc(64 << 20);
    for (let pos = 0; ; pos += chunk.length - needle.length) {
      const got = readSync(fd, chunk, 0, chunk.length, pos);
      if (chunk.subarray(0, got).indexOf(needle) >= 0) return true;
      if (got < chunk.length) return false;
    }
  } finally {
    closeSync(fd);
  }
}

function childArgs(engine: Engine, opt: Options, model: string, peerDir: string | undefined, ids: string, out: string, dtype: Dtype): string[] {
  const args = ['--import', 'tsx', SELF, '--child', engine, '--ids', ids, '--out', out, '--model', model, '--threads', String(opt.threads),
    '--runs', String(opt.runs), '--warmup', String(opt.warmup), '--batch-tokens', String(opt.batchTokens), '--peer-batch', String(opt.peerBatch), '--dtype', dtype];
  if (peerDir) args.push('--peer', peerDir);
  return args;
}

/** One engine in a fresh process, so its peak RSS is its own. */
function spawnEngine(engine: Engine, opt: Options, model: string, peerDir: string | undefined, ids: string, out: string, dtype: Dtype): EngineResult | EngineFailed {
  const r = spawnSync(process.execPath, childArgs(engine, opt, model, peerDir, ids, out, dtype), {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 26,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) {
    const why = r.signal ? `signal ${r.signal}${r.signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exit ${r.status}`;
    return { engine, available: false, dtype, reason: `child process failed (${why})` };
  }
  return JSON.parse(line.slice('RESULT '.length)) as EngineResult;
}

interface Row {
  label: string;
  batching: string;
  result: EngineResult | EngineFailed;
  /** The embeddings of the last timed pass, [texts, hidden]. */
  embeddings?: Float32Array;
}

/** Per-text cosine of two [n, d] matrices. */
function cosines(a: Float32Array, b: Float32Array, n: number): number[] {
  const d = a.length / n;
  return Array.from({ length: n }, (_, i) => {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let k = i * d; k < (i + 1) * d; k++) {
      dot += a[k] * b[k];
      na += a[k] * a[k];
      nb += b[k] * b[k];
    }
    return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  });
}

interface Agreement {
  pair: string;
  minCosine: number;
  meanCosine: number;
  below: number;
  /** The threshold the pair must meet, when one applies. */
  threshold?: number;
  passed?: boolean;
}

const AGREEMENT = 0.999;

function agreement(pair: string, a: Float32Array, b: Float32Array, n: number, threshold?: number): Agreement {
  const c = cosines(a, b, n);
  const minCosine = Math.min(...c);
  return {
    pair, minCosine, meanCosine: c.reduce((s, x) => s + x, 0) / n, below: c.filter((x) => x < AGREEMENT).length,
    threshold, passed: threshold === undefined ? undefined : minCosine >= threshold,
  };
}

const f1 = (x: number) => x.toFixed(1);
const summary = (s: { median: number; min: number; max: number }) => `${f1(s.median)} [${f1(s.min)}, ${f1(s.max)}]`;

async function parent(opt: Options): Promise<void> {
  if (opt.tiny && typeof opt.peer === 'string')
    throw new InvalidArgumentError('--tiny runs no peer (setup.sh exports a base-shaped graph); to compare a small model, pass --model DIR and --peer with a graph exported from DIR');
  const peersDir = findPeersDir(opt.peers);
  const tokenizerDir = resolve(opt.tokenizer ?? join(dirname(peersDir), 'tokenizer', 'modernbert'));
  const corpusFile = resolve(opt.corpus);
  const shape = opt.tiny ? TINY_SHAPE : BASE_SHAPE;
  const model = opt.model ? resolve(opt.model) : randomCheckpoint(peersDir, shape);
  const withPeer = opt.peer !== false && !opt.tiny;
  const peerDir = withPeer ? peerWorkdir(typeof opt.peer === 'string' ? opt.peer : undefined, peersDir, opt.peerSetup) : undefined;

  // Tokenize once, here: both engines get the same ids, and tokenizing is timed on its own.
  const texts = await readDocuments(corpusFile, opt.docs);
  const tokenizer = await AutoTokenizer.fromPretrained(tokenizerDir);
  const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { vocab_size: number; hidden_size: number; num_hidden_layers: number };
  if (tokenizer.vocabSize > config.vocab_size) throw new InvalidArgumentError(`${model} has vocab_size ${config.vocab_size}, but the tokenizer in ${tokenizerDir} has ${tokenizer.vocabSize} ids`);
  const t0 = performance.now();
  const encodings = texts.map((t) => tokenizer.encode(t, { maxLength: opt.maxLength, truncation: true }));
  const tokenizeMs = performance.now() - t0;
  const ids = encodings.map((e) => e.inputIds);
  const lengths = ids.map((s) => s.length);
  const realTokens = lengths.reduce((a, b) => a + b, 0);
  const corpus = {
    file: corpusFile, requested: opt.docs, documents: texts.length, tokenizer: tokenizerDir, maxLength: opt.maxLength, realTokens,
    lengths: { min: Math.min(...lengths), median: median(lengths), mean: realTokens / lengths.length, max: Math.max(...lengths) },
    truncated: encodings.filter((e) => e.numTruncated > 0).length,
  };
  const tokenization = { ms: tokenizeMs, textsPerSec: texts.length / (tokenizeMs / 1000), tokensPerSec: realTokens / (tokenizeMs / 1000) };

  const cpu = cpuName();
  const loadAtStart = os.loadavg()[0];
  process.stderr.write(`bench:embed: ${cpu}, ${opt.threads} thread(s), model ${model}, ${texts.length} texts / ${realTokens} real tokens, runs ${opt.runs} after ${opt.warmup} warm-up\n`);
  const tmp = mkdtempSync(join(os.tmpdir(), 'modernbert-embed-'));
  const rows: Row[] = [];
  let sameWeights: boolean | undefined;
  try {
    const idsFile = join(tmp, 'ids.bin');
    writeCorpus(idsFile, { padId: tokenizer.padTokenId, ids });
    const run = async (engine: Engine, dtype: Dtype, label: string, batching: string) => {
      const out = join(tmp, `${label.replace(/\W+/g, '-')}.f32`);
      if (engine !== 'ours' && !(await waitForMemory('W1', opt.peerWait))) {
        // A padded batch of 32 × 512 is W1's shape, hence W1's memory need.
        rows.push({ label, batching, result: { engine, available: false, dtype, reason: `skipped: only ${memAvailableGiB().toFixed(1)} GiB of memory available` } });
        return;
      }
      process.stderr.write(`${label}: fresh child process\n`);
      const result = spawnEngine(engine, opt, model, peerDir, idsFile, out, dtype);
      const b = result.available ? readFileSync(out) : undefined;
      rows.push({ label, batching, result, embeddings: b && new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) });
    };
    const packed = `packed, <= ${opt.batchTokens} tokens per forward`;
    await run('ours', 'float32', 'ours', packed);
    if (opt.dtype === 'bf16') await run('ours', 'bf16', 'ours bf16', packed);
    if (peerDir) {
      await run('onnxruntime', 'float32', 'onnxruntime', `${opt.peerBatch} texts per batch in corpus order, padded to the batch's longest`);
      await run('onnxruntime-sorted', 'float32', 'onnxruntime sorted', `${opt.peerBatch} texts per batch sorted by length, padded to the batch's longest`);
      sameWeights = peerHasOurWeights(model, join(peerDir, PEER_MODEL_FILE));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  // Agreement: ours against each peer row only when both hold the same weights; the peer's two orders and our
  // two dtypes run the same weights by construction.
  const n = texts.length;
  const emb = (label: string) => rows.find((r) => r.label === label)?.embeddings;
  const ours = emb('ours');
  const agreements: Agreement[] = [];
  let normError: number | undefined;
  if (ours) {
    const d = ours.length / n;
    normError = 0;
    for (let i = 0; i < n; i++) normError = Math.max(normError, Math.abs(Math.hypot(...ours.subarray(i * d, (i + 1) * d)) - 1));
    const bf16 = emb('ours bf16');
    if (bf16) agreements.push(agreement('ours bf16 vs ours float32', bf16, ours, n));
    if (sameWeights)
      for (const label of ['onnxruntime', 'onnxruntime sorted']) {
        const p = emb(label);
        if (p) agreements.push(agreement(`ours vs ${label}`, ours, p, n, AGREEMENT));
      }
  }
  const [po, ps] = [emb('onnxruntime'), emb('onnxruntime sorted')];
  if (po && ps) agreements.push(agreement('onnxruntime sorted vs corpus order', ps, po, n, AGREEMENT));

  const measured = rows.map((r) => r.result).filter((r): r is EngineResult => r.available);
  const oursResult = measured.find((r) => r.engine === 'ours' && r.dtype === 'float32');
  const ratioRows = oursResult ? rows.filter((r) => r.result.engine !== 'ours' && r.result.available).map((r) => {
    const p = r.result as EngineResult;
    return { peer: r.label, textsPerSec: oursResult.textsPerSec.median / p.textsPerSec.median, peakRss: oursResult.peakRssMiB / p.peakRssMiB, loadTime: oursResult.loadMs / p.loadMs };
  }) : [];
  const info = {
    cpu,
    logicalCpus: os.cpus().length,
    totalMemGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    threads: opt.threads,
    node: process.version,
    model: opt.model ?? `random ${JSON.stringify(shape)}`,
    layers: config.num_hidden_layers,
    ours: oursResult?.version,
    peer: measured.find((r) => r.engine !== 'ours')?.version,
    peerWeights: sameWeights === undefined ? undefined : sameWeights ? 'same as ours' : 'different from ours (agreement not checked)',
    /** 1-minute load average when the run started and ended: other jobs on the machine skew absolute numbers. */
    loadAverage: { start: +loadAtStart.toFixed(2), end: +os.loadavg()[0].toFixed(2) },
    date: new Date().toISOString(),
  };

  const print = (lines: string[]) => console.log(lines.join('\n'));
  console.log(`\nModernBERT embedding benchmark: ${info.cpu}, ${info.logicalCpus} logical CPUs, ${info.totalMemGiB} GiB`);
  console.log(`model: ${info.model} (${info.layers} layers); ${opt.threads} thread(s) per engine; node ${info.node}; ${info.ours ?? ''}${info.peer ? `; peer ${info.peer}` : ''}`);
  console.log(`load average (1 min): ${info.loadAverage.start} at the start, ${info.loadAverage.end} at the end (${info.logicalCpus} CPUs)`);
  const L = corpus.lengths;
  console.log(`corpus: ${corpus.file}, the first ${corpus.documents} documents` +
    `${corpus.documents < corpus.requested ? ` (${corpus.requested} asked for; the file holds only ${corpus.documents})` : ''}, ` +
    `tokenized with special tokens, truncated to ${corpus.maxLength}: ${realTokens} real tokens; tokens per text min ${L.min}, median ${L.median}, ` +
    `mean ${f1(L.mean)}, max ${L.max}; ${corpus.truncated} texts truncated`);
  console.log(`tokenization (${tokenizerDir}, once, in the parent, not in the rows below): ${(tokenizeMs / 1000).toFixed(2)} s, ` +
    `${f1(tokenization.textsPerSec)} texts/s, ${f1(tokenization.tokensPerSec)} tokens/s (kept tokens)`);
  console.log('each row: a fresh process, embeddings = mean pooling over real tokens + L2 normalisation; tok/s count real tokens only\n');
  const table = ['engine | batching | batches | computed positions | texts/s median [min, max] | real tok/s median [min, max] | peak RSS MiB (after load) | load s',
    '---|---|---|---|---|---|---|---'];
  for (const r of rows) {
    const x = r.result;
    if (!x.available) table.push(`${r.label} | ${r.batching} | not available: ${x.reason}`);
    else table.push(`${r.label} | ${r.batching} | ${x.batches} | ${x.computedPositions} | ${summary(x.textsPerSec)} | ${summary(x.tokensPerSec)} | ` +
      `${x.peakRssMiB.toFixed(0)} (${x.peakRssAfterLoadMiB.toFixed(0)}) | ${(x.loadMs / 1000).toFixed(2)}${x.outputFinite ? '' : ' | NON-FINITE OUTPUT'}`);
  }
  print(table);
  if (ratioRows.length) {
    console.log('\nRatios ours (float32) / peer (same run, same ids, same thread count)');
    print(['peer | texts/s (= tok/s) ours/peer | peak RSS ours/peer | load time ours/peer', '---|---|---|---',
      ...ratioRows.map((r) => `${r.peer} | ${r.textsPerSec.toFixed(2)}x | ${r.peakRss.toFixed(2)}x | ${r.loadTime.toFixed(2)}x`)]);
  }
  console.log('');
  if (normError !== undefined) console.log(`ours: every embedding has unit norm within ${normError.toExponential(1)}`);
  if (sameWeights === false)
    console.log(`agreement with the peer NOT checked: ${join(peerDir!, PEER_MODEL_FILE)} holds other weights than ${model} ` +
      `(export it from them: PEER_HF_MODEL=${model} bash ${join(peersDir, 'setup.sh')} DIR, into a folder without modernbert-base.onnx)`);
  if (agreements.length)
    print(['pair | min cosine | mean cosine | texts below 0.999 | check', '---|---|---|---|---',
      ...agreements.map((a) => `${a.pair} | ${a.minCosine.toFixed(6)} | ${a.meanCosine.toFixed(6)} | ${a.below} | ` +
        `${a.threshold === undefined ? '-' : a.passed ? `>= ${a.threshold} (ok)` : `>= ${a.threshold} (FAILED)`}`)]);
  if (opt.json) {
    const results = rows.map((r) => ({ label: r.label, batching: r.batching, ...r.result }));
    writeFileSync(opt.json, JSON.stringify({ info, corpus, tokenization, results, ratios: ratioRows, oursNormError: normError, agreement: agreements }, null, 2) + '\n');
    console.log(`wrote ${opt.json}`);
  }
  if (rows.some((r) => r.label.startsWith('ours') && !r.result.available) || agreements.some((a) => a.passed === false) || measured.some((m) => !m.outputFinite))
    process.exitCode = 1;
}

const opt = program.parse().opts<Options>();
try {
  if (opt.child) {
    const result = await runEngine(opt.child, opt.ids!, opt.out!, {
      threads: opt.threads, runs: opt.runs, warmup: opt.warmup, model: opt.model!, dtype: opt.dtype, batchTokens: opt.batchTokens,
      peer: typeof opt.peer === 'string' ? opt.peer : undefined, peerBatch: opt.peerBatch,
    });
    process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
  } else await parent(opt);
} catch (e) {
  // Setup problems (no corpus, no tokenizer, peer not set up) are the user's to fix: the message says how.
  process.stderr.write(`bench:embed: ${(e as Error).message}\n`);
  if (opt.child) process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
}
