/**
 * The serving engine: one model folder, a tokenizer thread and an inference thread. Both the HTTP server
 * and the queue worker use it; neither ever runs the model on its event loop.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { resolveModel, type HubOptions } from '../hub/hub.js';
import type { Dtype } from '../kernels/types.js';
import { loadConfig } from '../model/modernbert.js';
import type { InferData, InferInfo, InferRequest, InferResponse } from './infer-worker.js';
import { siblingModule, ThreadClient } from './threads.js';
import type { TokenizeRequest, TokenizeResponse, TokenizerInfo } from './tokenize-worker.js';

export type Pooling = 'mean' | 'cls';

export interface EngineOptions extends HubOptions {
  /** A model folder or a Hugging Face repo id. */
  model: string;
  /** Threads of the native pool that runs the forward passes (default: MODERNBERT_NUM_THREADS, else all cores). */
  threads?: number;
  /** Pooling of embedding models (default: the sentence-transformers 1_Pooling/config.json if present, else mean). */
  pooling?: Pooling;
  /** Precision of the forward's Linear layers (default 'float32'; see LoadOptions.dtype). */
  dtype?: Dtype;
}

/** What /info reports and what the routes need to know about the model. */
export interface ModelInfo {
  modelId: string;
  dir: string;
  /** A sequence-classification checkpoint serves /predict and /rerank; anything else serves embeddings. */
  kind: 'embedding' | 'classifier';
  /** Weights are converted to float32 at load; the Linear layers then run in this precision (LoadOptions.dtype). */
  dtype: Dtype;
  /** The kernels' instruction set and the native pool's threads. */
  isa: string;
  threads: number;
  maxInputLength: number;
  hiddenSize: number;
  pooling: Pooling;
  id2label: Record<string, string>;
  numLabels: number;
  problemType: string | null;
}

/** An input over the model's limit when truncation was not asked for. */
export class InputTooLongError extends InputError {
  constructor(readonly index: number, readonly tokens: number, readonly limit: number) {
    super(`input ${index} has ${tokens} tokens, more than the model's limit of ${limit}: shorten it or send "truncate": true`);
  }
}

export interface Tokenized {
  /** One id array per input (views into one buffer). */
  seqs: Int32Array[];
  /** How many inputs were cut to the limit. */
  truncated: number;
}

/**
 * Tokens per forward pass: 1024 per core, between 2048 and 16384. Throughput per CPU-second is flat from a
 * few hundred tokens per pass up (ModernBERT-base, 2 cores: ~630 tokens/CPU-s from 208 to 3328 tokens), so
 * a bigger pass only makes requests wait longer. A sequence longer than the budget runs alone.
 */
export function defaultMaxBatchTokens(): number {
  return Math.min(16384, Math.max(2048, 1024 * availableParallelism()));
}

/** A copy of `v` scaled to unit length (a zero vector stays zero). */
export function l2normalize(v: Float32Array): Float32Array {
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
  const scale = sq > 0 ? 1 / Math.sqrt(sq) : 0;
  return v.map((x) => x * scale);
}

/** The pooling a sentence-transformers export declares in 1_Pooling/config.json, if it is one we run. */
function declaredPooling(dir: string): Pooling | undefined {
  const path = join(dir, '1_Pooling', 'config.json');
  if (!existsSync(path)) return undefined;
  const p = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  if (p.pooling_mode_cls_token === true) return 'cls';
  if (p.pooling_mode_mean_tokens === true) return 'mean';
  return undefined;
}

export class Engine {
  private constructor(
    readonly info: ModelInfo,
    private readonly tokenizer: ThreadClient<TokenizeRequest, TokenizeResponse, TokenizerInfo>,
    private readonly inference: ThreadClient<InferRequest, InferResponse, InferInfo>,
  ) {}

  /** Resolves the model (downloading it if needed), then starts both threads and waits until they have loaded. */
  static async start(options: EngineOptions): Promise<Engine> {
    const dir = await resolveModel(options.model, { ...options, files: 'all' });
    const config = loadConfig(dir);
    const kind = config.architectures.some((a) => a.endsWith('ForSequenceClassification')) ? 'classifier' : 'embedding';
    const pooling = options.pooling ?? declaredPooling(dir) ?? 'mean';
    const tokenizer = new ThreadClient<TokenizeRequest, TokenizeResponse, TokenizerInfo>(siblingModule(import.meta.url, 'tokenize-worker'), { dir });
    const inference = new ThreadClient<InferRequest, InferResponse, InferInfo>(
      siblingModule(import.meta.url, 'infer-worker'), { dir, kind, pooling, threads: options.threads, dtype: options.dtype } satisfies InferData);
    try {
      const [{ maxInputLength }, { isa, threads }] = await Promise.all([tokenizer.ready, inference.ready]);
      return new Engine({
        modelId: options.model, dir, kind, dtype: options.dtype ?? 'float32', isa, threads, maxInputLength, hiddenSize: config.hidden_size, pooling,
        id2label: config.id2label, numLabels: config.num_labels, problemType: config.problem_type,
      }, tokenizer, inference);
    } catch (e) {
      await Promise.all([tokenizer.close(), inference.close()]);
      throw e;
    }
  }

  /** Token ids of texts, or of pairs (first[i], second[i]); throws InputTooLongError unless `truncate`. */
  async tokenize(first: string[], second: (string | null)[] | null, truncate: boolean, side: 'left' | 'right' = 'right'): Promise<Tokenized> {
    const r = await this.tokenizer.call({ first, second, truncate, side });
    if ('tooLong' in r) throw new InputTooLongError(r.tooLong.index, r.tooLong.tokens, this.info.maxInputLength);
    const seqs = Array.from({ length: first.length }, (_, i) => r.ids.subarray(r.offsets[i], r.offsets[i + 1]));
    return { seqs, truncated: r.truncated };
  }

  /** One packed forward pass: a [sequences, width] matrix of pooled embeddings or logits. */
  async infer(inputIds: Int32Array, cuSeqlens: Int32Array): Promise<Float32Array> {
    return (await this.inference.call({ inputIds, cuSeqlens }, [inputIds.buffer as ArrayBuffer, cuSeqlens.buffer as ArrayBuffer])).out;
  }

  /** Both threads are running (a dead one fails every request: /health then answers 503). */
  get healthy(): boolean {
    return this.tokenizer.alive && this.inference.alive;
  }

  /** Width of each output row. */
  get outputWidth(): number {
    return this.info.kind === 'classifier' ? this.info.numLabels : this.info.hiddenSize;
  }

  async close(): Promise<void> {
    await Promise.all([this.tokenizer.close(), this.inference.close()]);
  }
}
