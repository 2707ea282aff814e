/**
 * The two engines of the embedding benchmark (bench/embed.ts), each run in its own fresh process on the same
 * token ids: ours (the library's packed path: packedChunks → forwardPacked → Sentence-Transformers mean pooling
 * → L2 normalisation) and ONNX Runtime (padded batches of 32, pooled and normalised in JavaScript as
 * Transformers.js' feature-extraction does). Ids and embeddings travel between processes as raw binary files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { nativeInfo } from '../src/kernels/native.js';
import type { Dtype } from '../src/kernels/types.js';
import { ModernBertModel } from '../src/model/modernbert.js';
import { packedChunks } from '../src/pipelines/common.js';
import { normalizeRows } from '../src/retrieval/folder.js';
import { pool, type PoolingConfig } from '../src/retrieval/sentence-transformers.js';
import { PEER_MODEL_FILE } from './peer.js';
import { rssMiB, summarize, type Summary } from './workload.js';

/** The tokenized corpus: one id array per text (special tokens included), and the id padding uses. */
export interface Corpus {
  padId: number;
  ids: number[][];
}

/** Layout: Int32 [padId, n, length × n, ids of text 0, ids of text 1, …]. */
export function writeCorpus(file: string, c: Corpus): void {
  const total = c.ids.reduce((a, s) => a + s.length, 0);
  const buf = new Int32Array(2 + c.ids.length + total);
  buf[0] = c.padId;
  buf[1] = c.ids.length;
  let o = 2 + c.ids.length;
  c.ids.forEach((s, i) => {
    buf[2 + i] = s.length;
    buf.set(s, o);
    o += s.length;
  });
  writeFileSync(file, buf);
}

export function readCorpus(file: string): Corpus {
  const b = readFileSync(file);
  const buf = new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const n = buf[1];
  const ids: number[][] = [];
  let o = 2 + n;
  for (let i = 0; i < n; i++) {
    ids.push(Array.from(buf.subarray(o, o + buf[2 + i])));
    o += buf[2 + i];
  }
  return { padId: buf[0], ids };
}

export type Engine = 'ours' | 'onnxruntime' | 'onnxruntime-sorted';

export interface EngineOptions {
  threads: number;
  runs: number;
  warmup: number;
  /** ours: the model folder and the precision of its Linears. */
  model: string;
  dtype: Dtype;
  /** ours: tokens per packed forward (the library's maxBatchTokens). */
  batchTokens: number;
  /** onnxruntime: the peer folder (modernbert-base.onnx, node_modules/onnxruntime-node) and texts per batch. */
  peer?: string;
  peerBatch: number;
}

export interface EngineResult {
  engine: Engine;
  available: true;
  dtype: Dtype;
  texts: number;
  realTokens: number;
  /** Positions the engine computes: the real tokens when packed, batch × longest per padded batch. */
  computedPositions: number;
  /** Forward passes (ours) or session.run calls (peer) per pass over the corpus. */
  batches: number;
  threads: number;
  /** Our ISA, or the peer's onnxruntime-node version. */
  version: string;
  runs: number;
  warmup: number;
  warmupMs: number[];
  timesMs: number[];
  textsPerSec: Summary;
  tokensPerSec: Summary;
  peakRssMiB: number;
  peakRssAfterLoadMiB: number;
  loadMs: number;
  outputFinite: boolean;
}

export interface EngineFailed {
  engine: Engine;
  available: false;
  dtype: Dtype;
  reason: string;
}

/** Sentence-Transformers' mean pooling over every token, [CLS] and [SEP] included (no prompt to leave out). */
const MEAN: PoolingConfig = { modes: ['mean'], includePrompt: true };

/**
 * Ours: the corpus in order, packed into forwards of at most `batchTokens` tokens (no padding), each pooled and
 * normalised: the loop of SentenceTransformer.encode and of the feature-extraction pipeline, on ids. Writes the
 * [n, hidden] embeddings into `out` and returns the number of forwards.
 */
export function embedOurs(model: ModernBertModel, ids: number[][], batchTokens: number, out: Float32Array): number {
  const H = model.config.hidden_size;
  const seqs = ids.map((inputIds) => ({ inputIds }));
  let batches = 0;
  for (const chunk of packedChunks(seqs, batchTokens)) {
    const n = chunk.cuSeqlens.length - 1;
    const x = model.forwardPacked({ inputIds: chunk.inputIds, cuSeqlens: chunk.cuSeqlens }).lastHiddenState.data;
    const v = pool(x, chunk.cuSeqlens, H, MEAN);
    normalizeRows(v, n, H);
    out.set(v, chunk.start * H);
    batches++;
  }
  return batches;
}

/** The subset of onnxruntime-node's API used here (it is loaded from the peer folder, untyped). */
interface OrtTensor {
  data: Float32Array;
  dims: readonly number[];
  dispose?: () => void;
}
interface OrtSession {
  outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release?: () => Promise<void>;
}
interface Ort {
  Tensor: new (type: 'int64', data: BigInt64Array, dims: number[]) => unknown;
  InferenceSession: { create(path: string, options: Record<string, unknown>): Promise<OrtSession> };
  env?: { versions?: { node?: string; common?: string } };
}

/** onnxruntime-node from the peer folder, resolved as ../shared/peers/run-peer.mjs does. */
function loadOrt(dir: string): Ort {
  return createRequire(join(dir, 'noop.js'))('onnxruntime-node') as Ort;
}

/**
 * The peer: texts in `order`, `batch` at a time, each batch padded to its longest text with `padId` and
 * attention mask 0 (what Transformers.js feeds ONNX Runtime), then per text the mean of the real positions'
 * vectors, L2-normalised, written at the text's index. This pooling is the peer user's JavaScript (as
 * Transformers.js' mean_pooling and normalize), so it is written out here rather than taken from our library.
 * Returns the batches run and the positions computed.
 */
async function embedPeer(ort: Ort, session: OrtSession, c: Corpus, order: number[], batch: number, out: Float32Array): Promise<{ batches: number; positions: number }> {
  let batches = 0;
  let positions = 0;
  for (let s = 0; s < order.length; s += batch) {
    const rows = order.slice(s, s + batch);
    const L = Math.max(...rows.map((i) => c.ids[i].length));
    const inputIds = new BigInt64Array(rows.length * L).fill(BigInt(c.padId));
    const mask = new BigInt64Array(rows.length * L);
    rows.forEach((i, r) => {
      const seq = c.ids[i];
      for (let p = 0; p < seq.length; p++) {
        inputIds[r * L + p] = BigInt(seq[p]);
        mask[r * L + p] = 1n;
      }
    });
    const result = await session.run({
      input_ids: new ort.Tensor('int64', inputIds, [rows.length, L]),
      attention_mask: new ort.Tensor('int64', mask, [rows.length, L]),
    });
    const y = result[session.outputNames[0]];
    const H = y.dims[2];
    rows.forEach((i, r) => {
      const n = c.ids[i].length;
      const v = out.subarray(i * H, (i + 1) * H);
      v.fill(0);
      for (let p = 0; p < n; p++) for (let d = 0; d < H; d++) v[d] += y.data[(r * L + p) * H + d];
      let sq = 0;
      for (let d = 0; d < H; d++) sq += (v[d] /= n) ** 2;
      const scale = 1 / Math.max(Math.sqrt(sq), 1e-12);
      for (let d = 0; d < H; d++) v[d] *= scale;
    });
    for (const k of Object.keys(result)) result[k].dispose?.();
    batches++;
    positions += rows.length * L;
  }
  return { batches, positions };
}

/** The peer's output width, read from a one-token run (the graph's hidden size is not in its inputs). */
async function peerWidth(ort: Ort, session: OrtSession, c: Corpus): Promise<number> {
  const one = (x: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(x)), [1, 1]);
  const result = await session.run({ input_ids: one(c.ids[0]?.[0] ?? c.padId), attention_mask: one(1) });
  const H = result[session.outputNames[0]].dims[2];
  for (const k of Object.keys(result)) result[k].dispose?.();
  return H;
}

type Pass = (out: Float32Array) => Promise<{ batches: number; positions: number }>;

/** A loaded engine: one pass over the corpus, its output width, what it is, and how long loading took. */
interface Loaded {
  pass: Pass;
  width: number;
  version: string;
  threads: number;
  loadMs: number;
}

async function loadOurs(c: Corpus, realTokens: number, opt: EngineOptions): Promise<Loaded> {
  const t0 = performance.now();
  const model = await ModernBertModel.fromPretrained(opt.model, { numThreads: opt.threads, dtype: opt.dtype });
  const loadMs = performance.now() - t0;
  const { isa, threads } = nativeInfo();
  return { pass: async (out) => ({ batches: embedOurs(model, c.ids, opt.batchTokens, out), positions: realTokens }), width: model.config.hidden_size, version: `ISA ${isa}`, threads, loadMs };
}

async function loadPeer(engine: Engine, c: Corpus, opt: EngineOptions): Promise<Loaded> {
  const ort = loadOrt(opt.peer!);
  const t0 = performance.now();
  // run-peer.mjs's session options.
  const session = await ort.InferenceSession.create(join(opt.peer!, PEER_MODEL_FILE), {
    executionProviders: ['cpu'], intraOpNumThreads: opt.threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3,
  });
  const loadMs = performance.now() - t0;
  const order = c.ids.map((_, i) => i);
  // Stable, so equal lengths keep corpus order.
  if (engine === 'onnxruntime-sorted') order.sort((a, b) => c.ids[a].length - c.ids[b].length);
  const version = `onnxruntime-node ${ort.env?.versions?.node ?? ort.env?.versions?.common ?? 'unknown'}`;
  return { pass: (out) => embedPeer(ort, session, c, order, opt.peerBatch, out), width: await peerWidth(ort, session, c), version, threads: opt.threads, loadMs };
}

/**
 * One engine in this (fresh) process: load, `warmup` untimed passes over the whole corpus, then `runs` timed
 * passes; the last pass's embeddings go to `outFile` ([n, hidden] float32).
 */
export async function runEngine(engine: Engine, corpusFile: string, outFile: string, opt: EngineOptions): Promise<EngineResult> {
  const c = readCorpus(corpusFile);
  const realTokens = c.ids.reduce((a, s) => a + s.length, 0);
  const loaded = engine === 'ours' ? await loadOurs(c, realTokens, opt) : await loadPeer(engine, c, opt);
  return measure(engine, c, realTokens, loaded, outFile, opt);
}

async function measure(engine: Engine, c: Corpus, realTokens: number, loaded: Loaded, outFile: string, opt: EngineOptions): Promise<EngineResult> {
  const { pass, width, version, threads, loadMs } = loaded;
  const rssAfterLoad = rssMiB();
  const out = new Float32Array(c.ids.length * width);
  const once = async () => {
    const t = performance.now();
    const r = await pass(out);
    return { ...r, ms: performance.now() - t };
  };
  const tag = `${engine}${opt.dtype === 'bf16' && engine === 'ours' ? ' bf16' : ''}`;
  const warmupMs: number[] = [];
  for (let i = 0; i < opt.warmup; i++) {
    const { ms } = await once();
    warmupMs.push(ms);
    process.stderr.write(`  [${tag}] warm-up ${i + 1}: ${(ms / 1000).toFixed(2)} s\n`);
  }
  const times: number[] = [];
  let shape = { batches: 0, positions: 0 };
  for (let i = 0; i < opt.runs; i++) {
    const { ms, ...r } = await once();
    shape = r;
    times.push(ms);
    process.stderr.write(`  [${tag}] run ${i + 1}/${opt.runs}: ${(ms / 1000).toFixed(2)} s, ${(c.ids.length / (ms / 1000)).toFixed(1)} texts/s, ` +
      `${(realTokens / (ms / 1000)).toFixed(1)} real tok/s\n`);
  }
  let finite = true;
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i])) finite = false;
  writeFileSync(outFile, out);
  return {
    engine,
    available: true,
    dtype: engine === 'ours' ? opt.dtype : 'float32',
    texts: c.ids.length,
    realTokens,
    computedPositions: shape.positions,
    batches: shape.batches,
    threads,
    version,
    runs: opt.runs,
    warmup: opt.warmup,
    warmupMs,
    timesMs: times,
    textsPerSec: summarize(times.map((ms) => c.ids.length / (ms / 1000))),
    tokensPerSec: summarize(times.map((ms) => realTokens / (ms / 1000))),
    peakRssMiB: rssMiB(),
    peakRssAfterLoadMiB: rssAfterLoad,
    loadMs,
    outputFinite: finite,
  };
}
