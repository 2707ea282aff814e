/**
 * 'feature-extraction': embeddings from the encoder's last hidden state. Batches of mixed lengths are
 * packed (no padding is computed); texts longer than the model can be split into overlapping windows.
 */
import { InputError } from '../errors.js';
import { ModernBertModel } from '../model/modernbert.js';
import { sentenceTransformersFolderOf } from '../retrieval/folder.js';
import { SentenceTransformer } from '../retrieval/sentence-transformers.js';
import { Tensor } from '../tensor/tensor.js';
import type { Encoding } from '../tokenizer/tokenizer.js';
import { asList, encodeAll, isString, loadPipelineParts, makePipeline, modelMaxLength, packedChunks, type Pipeline, type PipelineOptions } from './common.js';

export type Pooling = 'mean' | 'cls' | 'none';

export interface FeatureExtractionOptions {
  /** 'none' (default): every token, [n, seq, hidden] zero-padded; 'mean' over real tokens or 'cls' (first token): [n, hidden]. */
  pooling?: Pooling;
  /** Scale each pooled vector (or each token vector for 'none') to unit L2 norm (default false). */
  normalize?: boolean;
  /**
   * Split texts longer than `size` tokens (default: the model's limit) into windows with `overlap` tokens in
   * common (default 64); the text's vector is the mean of its windows' vectors weighted by their token
   * counts. Needs pooling 'mean' or 'cls'.
   */
  window?: boolean | { size?: number; overlap?: number };
  /** Sentence-Transformers models only: text put before every input (wins over promptName). */
  prompt?: string;
  /** Sentence-Transformers models only: a key of the model's prompts, e.g. 'query'. */
  promptName?: string;
}

export async function featureExtractionPipeline(dirOrRepoId: string, options: PipelineOptions = {}): Promise<Pipeline<string | string[], FeatureExtractionOptions, Tensor>> {
  const stDir = await sentenceTransformersFolderOf(dirOrRepoId, options);
  if (stDir) return sentenceTransformerPipeline(stDir, options);
  const parts = await loadPipelineParts(ModernBertModel, dirOrRepoId, options);
  const { tokenizer } = parts;
  return makePipeline('feature-extraction', parts, (model, input, callOptions) => {
    const { items } = asList(input, isString);
    if (callOptions.prompt !== undefined || callOptions.promptName !== undefined) throw new InputError('prompts need a Sentence-Transformers model (a folder with modules.json)');
    const pooling = callOptions.pooling ?? 'none';
    if (!['mean', 'cls', 'none'].includes(pooling)) throw new InputError(`pooling must be 'mean', 'cls' or 'none', got ${JSON.stringify(pooling)}`);
    const H = model.config.hidden_size;
    const limit = modelMaxLength(tokenizer, model.config);
    // Each text becomes one or more sequences ("windows"); owner[j] says which text sequence j belongs to.
    let encodings: Encoding[];
    let owner: number[];
    if (callOptions.window) {
      if (pooling === 'none') throw new InputError("window needs pooling 'mean' or 'cls' (per-token output has no single vector per text)");
      const w = callOptions.window === true ? {} : callOptions.window;
      const size = Math.min(w.size ?? limit, limit);
      const overlap = w.overlap ?? 64;
      const inner = size - tokenizer.numSpecialTokensToAdd();
      if (inner <= 0 || overlap < 0 || overlap >= inner) throw new InputError(`window size ${size} and overlap ${overlap} leave no room for tokens`);
      encodings = [];
      owner = [];
      items.forEach((text, i) => {
        const full = tokenizer.encode(text, { addSpecialTokens: false, truncation: false });
        const n = full.inputIds.length;
        for (let start = 0; ; start += inner - overlap) {
          const ids = full.inputIds.slice(start, start + inner);
          encodings.push(tokenizer.wrapWithSpecialTokens(ids));
          owner.push(i);
          if (start + inner >= n) break;
        }
      });
    } else {
      encodings = encodeAll(tokenizer, items, limit, options);
      owner = items.map((_, i) => i);
    }
    const maxSeq = Math.max(...encodings.map((e) => e.inputIds.length));
    const pooled = new Float32Array(encodings.length * H);
    const perToken = pooling === 'none' ? new Float32Array(items.length * maxSeq * H) : null;
    for (const chunk of packedChunks(encodings, options.maxBatchTokens ?? 16384)) {
      const x = model.forwardPacked({ inputIds: chunk.inputIds, cuSeqlens: chunk.cuSeqlens }).lastHiddenState.data;
      for (let s = 0; s + 1 < chunk.cuSeqlens.length; s++) {
        const j = chunk.start + s;
        const [a, b] = [chunk.cuSeqlens[s], chunk.cuSeqlens[s + 1]];
        if (perToken) {
          perToken.set(x.subarray(a * H, b * H), j * maxSeq * H);
        } else if (pooling === 'cls') {
          pooled.set(x.subarray(a * H, (a + 1) * H), j * H);
        } else {
          for (let t = a; t < b; t++) for (let d = 0; d < H; d++) pooled[j * H + d] += x[t * H + d];
          for (let d = 0; d < H; d++) pooled[j * H + d] /= b - a;
        }
      }
    }
    if (perToken) {
      if (callOptions.normalize) for (let r = 0; r < items.length * maxSeq; r++) normalizeRow(perToken, r, H);
      return new Tensor(perToken, [items.length, maxSeq, H]);
    }
    // Windows of one text → one vector, weighted by their token counts.
    const out = new Float32Array(items.length * H);
    const weight = new Float64Array(items.length);
    encodings.forEach((e, j) => {
      const n = e.inputIds.length;
      weight[owner[j]] += n;
      for (let d = 0; d < H; d++) out[owner[j] * H + d] += n * pooled[j * H + d];
    });
    for (let i = 0; i < items.length; i++) {
      for (let d = 0; d < H; d++) out[i * H + d] /= weight[i];
      if (callOptions.normalize) normalizeRow(out, i, H);
    }
    return new Tensor(out, [items.length, H]);
  });
}

/** A Sentence-Transformers folder: its own modules (pooling, Dense, Normalize) and prompts decide the vectors. */
async function sentenceTransformerPipeline(dir: string, options: PipelineOptions): Promise<Pipeline<string | string[], FeatureExtractionOptions, Tensor>> {
  const st = await SentenceTransformer.fromPretrained(dir, options);
  return makePipeline('feature-extraction', { dir, tokenizer: st.tokenizer, model: st }, (model, input, callOptions) => {
    const { items } = asList(input, isString);
    if (callOptions.pooling !== undefined || callOptions.window)
      throw new InputError(`${dir} is a Sentence-Transformers model: its Pooling module decides the pooling (drop the pooling and window options)`);
    return model.encode(items, { prompt: callOptions.prompt, promptName: callOptions.promptName, normalize: callOptions.normalize });
  });
}

function normalizeRow(x: Float32Array, row: number, width: number): void {
  let sq = 0;
  for (let d = 0; d < width; d++) sq += x[row * width + d] ** 2;
  const scale = sq > 0 ? 1 / Math.sqrt(sq) : 0;
  for (let d = 0; d < width; d++) x[row * width + d] *= scale;
}

/** Cosine similarity of two vectors (e.g. rows of a 'feature-extraction' output). */
export function cosineSimilarity(a: ArrayLike<number> | Tensor, b: ArrayLike<number> | Tensor): number {
  const x = a instanceof Tensor ? a.data : a;
  const y = b instanceof Tensor ? b.data : b;
  if (x.length !== y.length) throw new InputError(`cannot compare vectors of lengths ${x.length} and ${y.length}`);
  let dot = 0;
  let nx = 0;
  let ny = 0;
  for (let i = 0; i < x.length; i++) {
    dot += x[i] * y[i];
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  return nx === 0 || ny === 0 ? 0 : dot / Math.sqrt(nx * ny);
}
