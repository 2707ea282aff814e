/** What every pipeline shares: loading a model folder with its tokenizer, packing encodings, and the maths of scores. */
import { InputError } from '../errors.js';
import { resolveModel, type HubOptions } from '../hub/hub.js';
import type { LoadOptions } from '../model/modernbert.js';
import { PreTrainedTokenizer, type Encoding, type EncodeOptions } from '../tokenizer/tokenizer.js';

export interface PipelineOptions extends HubOptions, LoadOptions {
  /** Tokens per forward pass when a batch is packed (default 16384); longer batches run in several passes. */
  maxBatchTokens?: number;
  /** Cut inputs longer than the model's limit (default true, with a warning); false refuses them. */
  truncation?: boolean;
  /** Which end of a too-long input is cut (default 'right'). */
  truncationSide?: 'left' | 'right';
  /** Called with a warning text (default: console.warn), e.g. when an input is truncated. */
  onWarning?: (message: string) => void;
}

export interface Loaded<M> {
  dir: string;
  tokenizer: PreTrainedTokenizer;
  model: M;
}

/** A model class with HF's loader shape. */
export interface Loadable<M> {
  fromPretrained(dir: string, options?: LoadOptions): Promise<M>;
}

/** Resolves `dirOrRepoId` (downloading into the HF cache if needed) and loads the model and its tokenizer. */
export async function loadPipelineParts<M extends { config: { vocab_size: number } }>(
  modelClass: Loadable<M>, dirOrRepoId: string, options: PipelineOptions,
): Promise<Loaded<M>> {
  const dir = await resolveModel(dirOrRepoId, { ...options, files: 'all' });
  const tokenizer = PreTrainedTokenizer.fromDirectory(dir);
  const model = await modelClass.fromPretrained(dir, options);
  if (tokenizer.vocabSize > model.config.vocab_size)
    throw new InputError(`${dir}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${model.config.vocab_size}`);
  return { dir, tokenizer, model };
}

/** The longest input a model takes: its position limit, or the tokenizer's if smaller. */
export function modelMaxLength(tokenizer: PreTrainedTokenizer, config: { max_position_embeddings: number }): number {
  return Math.min(tokenizer.modelMaxLength, config.max_position_embeddings);
}

/** Encodes texts with truncation at the model's limit, warning when a text is cut (or refusing, with `truncation: false`). */
export function encodeAll(
  tokenizer: PreTrainedTokenizer, inputs: (string | [string, string])[], maxLength: number, options: PipelineOptions,
): Encoding[] {
  const encodeOptions: EncodeOptions = { maxLength, truncation: options.truncation, truncationSide: options.truncationSide };
  return inputs.map((x, i) => {
    const e = Array.isArray(x) ? tokenizer.encode(x[0], { ...encodeOptions, textPair: x[1] }) : tokenizer.encode(x, encodeOptions);
    if (options.truncation === false && e.inputIds.length > maxLength)
      throw new InputError(`input ${i} has ${e.inputIds.length} tokens, more than the model's limit of ${maxLength} (allow truncation to cut it)`);
    if (e.numTruncated > 0) (options.onWarning ?? console.warn)(`input ${i} has ${e.numTruncated + maxLength} tokens; truncated to ${maxLength}`);
    return e;
  });
}

/** Consecutive groups of encodings (or bare token ids) whose tokens fit `maxTokens` (one sequence may exceed it alone). */
export function* packedChunks(encodings: Pick<Encoding, 'inputIds'>[], maxTokens: number): Generator<{ start: number; inputIds: Int32Array; cuSeqlens: Int32Array }> {
  let start = 0;
  while (start < encodings.length) {
    let end = start;
    let tokens = 0;
    while (end < encodings.length && (end === start || tokens + encodings[end].inputIds.length <= maxTokens)) tokens += encodings[end++].inputIds.length;
    const cuSeqlens = new Int32Array(end - start + 1);
    const inputIds = new Int32Array(tokens);
    for (let i = start; i < end; i++) {
      inputIds.set(encodings[i].inputIds, cuSeqlens[i - start]);
      cuSeqlens[i - start + 1] = cuSeqlens[i - start] + encodings[i].inputIds.length;
    }
    yield { start, inputIds, cuSeqlens };
    start = end;
  }
}

export function softmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]);
  const out = new Float64Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += out[i] = Math.exp(x[i] - max);
  for (let i = 0; i < x.length; i++) out[i] /= sum;
  return out;
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** Indices of the k largest values, largest first (ties: lower index first). */
export function topKIndices(x: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((a, b) => x[b] - x[a] || a - b);
  return idx.slice(0, Math.max(0, Math.min(k, x.length)));
}

/** A callable pipeline: `await pipe(input, options)`, plus what it runs on. */
export type Pipeline<In, Opts, Out> = ((input: In, options?: Opts) => Promise<Out>) & {
  task: string;
  tokenizer: PreTrainedTokenizer;
  /** Frees the model's weights (the pipeline cannot be called afterwards). */
  dispose(): void;
};

export function makePipeline<In, Opts, Out, M>(task: string, parts: Loaded<M>, run: (model: M, input: In, options: Opts) => Out): Pipeline<In, Opts, Out> {
  let model: M | null = parts.model;
  const fn = async (input: In, options?: Opts) => {
    if (model === null) throw new InputError(`the ${task} pipeline was disposed`);
    return run(model, input, (options ?? {}) as Opts);
  };
  return Object.assign(fn, {
    task,
    tokenizer: parts.tokenizer,
    dispose: () => {
      model = null;
    },
  });
}

/** Normalizes the "one input or an array" convention: returns the list and whether to unwrap the result. */
export function asList<T>(input: T | T[], isSingle: (x: T | T[]) => x is T): { items: T[]; single: boolean } {
  if (isSingle(input)) return { items: [input], single: true };
  if (!Array.isArray(input) || input.length === 0) throw new InputError('expected a text or a non-empty array of texts');
  return { items: input, single: false };
}

export const isString = (x: unknown): x is string => typeof x === 'string';
