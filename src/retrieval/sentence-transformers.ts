/**
 * Sentence-Transformers models (e.g. gte-modernbert-base, modernbert-embed-base): Transformer → Pooling →
 * Dense* → Normalize? as modules.json lists them, with the prompts and similarity function of
 * config_sentence_transformers.json. Texts of a batch are packed, not padded. Computes what
 * `SentenceTransformer(dir).encode(texts)` computes in Python.
 */
import { join } from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import type { PipelineOptions } from '../pipelines/common.js';
import { packedChunks } from '../pipelines/common.js';
import { Tensor } from '../tensor/tensor.js';
import type { Encoding } from '../tokenizer/tokenizer.js';
import {
  choosePrompt, Dense, loadTransformer, normalizeRows, readJsonFile, readModules, readPrompts, resolveSentenceTransformersFolder, type TransformerModule,
} from './folder.js';

/** Pooling modes in the order Sentence-Transformers concatenates them. */
export const POOLING_MODES = ['cls', 'max', 'mean', 'mean_sqrt_len', 'weightedmean', 'lasttoken'] as const;
export type PoolingMode = (typeof POOLING_MODES)[number];

export interface PoolingConfig {
  modes: PoolingMode[];
  /** false: the prompt's tokens (and [CLS]) are left out of every mode but cls, as Sentence-Transformers does. */
  includePrompt: boolean;
}

const POOLING_KEYS: Record<PoolingMode, string> = {
  cls: 'pooling_mode_cls_token', max: 'pooling_mode_max_tokens', mean: 'pooling_mode_mean_tokens',
  mean_sqrt_len: 'pooling_mode_mean_sqrt_len_tokens', weightedmean: 'pooling_mode_weightedmean_tokens', lasttoken: 'pooling_mode_lasttoken',
};

export function readPoolingConfig(dir: string, hidden: number): PoolingConfig {
  const path = join(dir, 'config.json');
  const cfg = readJsonFile(path, true);
  if (cfg.word_embedding_dimension !== undefined && cfg.word_embedding_dimension !== hidden)
    throw new ConfigError(`${path}: word_embedding_dimension ${cfg.word_embedding_dimension} differs from the model's hidden size ${hidden}`);
  const modes = POOLING_MODES.filter((m) => cfg[POOLING_KEYS[m]] === true);
  if (modes.length === 0) throw new ConfigError(`${path}: no pooling mode is enabled (${Object.values(POOLING_KEYS).join(', ')})`);
  return { modes, includePrompt: cfg.include_prompt !== false };
}

/**
 * Pools packed token vectors x [T, H] per sequence into [n, H · modes]. `skip[s]` leading tokens of sequence
 * s are left out (the prompt with include_prompt false) of every mode but cls, as Sentence-Transformers masks
 * them in the attention mask it pools with.
 */
export function pool(x: Float32Array, cuSeqlens: Int32Array, H: number, config: PoolingConfig, skip?: ArrayLike<number>): Float32Array {
  const n = cuSeqlens.length - 1;
  const width = H * config.modes.length;
  const out = new Float32Array(n * width);
  const acc = new Float64Array(H);
  for (let s = 0; s < n; s++) {
    const a = cuSeqlens[s];
    const b = cuSeqlens[s + 1];
    const from = Math.min(b, a + (skip?.[s] ?? 0));
    const count = b - from;
    config.modes.forEach((mode, m) => {
      const o = s * width + m * H;
      acc.fill(0);
      switch (mode) {
        case 'cls':
          for (let d = 0; d < H; d++) acc[d] = x[a * H + d];
          break;
        case 'max':
          // Sentence-Transformers fills masked positions with -1e9 before the max.
          acc.fill(count > 0 ? -Infinity : -1e9);
          for (let t = from; t < b; t++) for (let d = 0; d < H; d++) acc[d] = Math.max(acc[d], x[t * H + d]);
          break;
        case 'mean':
        case 'mean_sqrt_len': {
          for (let t = from; t < b; t++) for (let d = 0; d < H; d++) acc[d] += x[t * H + d];
          // sum_mask is clamped at 1e-9 in Sentence-Transformers.
          const div = mode === 'mean' ? Math.max(count, 1e-9) : Math.sqrt(Math.max(count, 1e-9));
          for (let d = 0; d < H; d++) acc[d] /= div;
          break;
        }
        case 'weightedmean': {
          // Weights are the 1-based positions in the (right-padded) row.
          let wsum = 0;
          for (let t = from; t < b; t++) {
            const w = t - a + 1;
            wsum += w;
            for (let d = 0; d < H; d++) acc[d] += w * x[t * H + d];
          }
          for (let d = 0; d < H; d++) acc[d] /= Math.max(wsum, 1e-9);
          break;
        }
        case 'lasttoken':
          for (let d = 0; d < H; d++) acc[d] = x[(b - 1) * H + d];
          break;
      }
      for (let d = 0; d < H; d++) out[o + d] = acc[d];
    });
  }
  return out;
}

export type SimilarityFunction = 'cosine' | 'dot' | 'euclidean' | 'manhattan';
export const SIMILARITY_FUNCTIONS: readonly SimilarityFunction[] = ['cosine', 'dot', 'euclidean', 'manhattan'];

/**
 * Pairwise similarity of the rows of a [n, d] and b [m, d] → [n, m], as Sentence-Transformers defines them:
 * cosine, dot, and the negated euclidean and manhattan distances (so larger is always more similar).
 */
export function similarityMatrix(a: Tensor, b: Tensor, fn: SimilarityFunction = 'cosine'): Tensor {
  const [n, d] = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const [m, d2] = b.dims.length === 1 ? [1, b.dims[0]] : b.dims;
  if (a.dims.length > 2 || b.dims.length > 2) throw new InputError('similarity takes [n, dim] matrices (or single vectors)');
  if (d !== d2) throw new InputError(`cannot compare vectors of dimension ${d} and ${d2}`);
  const out = new Float32Array(n * m);
  const norm = (x: Float32Array, r: number) => Math.sqrt(x.subarray(r * d, (r + 1) * d).reduce((s, v) => s + v * v, 0));
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const x = a.data[i * d + k];
        const y = b.data[j * d + k];
        s += fn === 'euclidean' ? (x - y) ** 2 : fn === 'manhattan' ? Math.abs(x - y) : x * y;
      }
      if (fn === 'cosine') s /= Math.max(norm(a.data, i), 1e-8) * Math.max(norm(b.data, j), 1e-8);
      else if (fn === 'euclidean') s = -Math.sqrt(s);
      else if (fn === 'manhattan') s = -s;
      out[i * m + j] = s;
    }
  return new Tensor(out, [n, m]);
}

export interface EncodeOptions {
  /** Text put before every input (wins over promptName). */
  prompt?: string;
  /** A key of the model's prompts (config_sentence_transformers.json), e.g. 'query'. */
  promptName?: string;
  /** Scale each output to unit length (normalize_embeddings); a Normalize module does it regardless. */
  normalize?: boolean;
  /** Texts per packed forward pass (default 32). */
  batchSize?: number;
  /** Called after each batch with the number of texts done. */
  onProgress?: (done: number, total: number) => void;
}

export class SentenceTransformer {
  private constructor(
    readonly transformer: TransformerModule,
    readonly pooling: PoolingConfig,
    readonly dense: Dense[],
    readonly normalizeOutput: boolean,
    readonly prompts: Record<string, string>,
    readonly defaultPromptName: string | null,
    readonly similarityFnName: SimilarityFunction,
    private readonly options: PipelineOptions,
  ) {}

  /** A Sentence-Transformers folder or Hub repo id (modules.json, module folders, config_sentence_transformers.json). */
  static async fromPretrained(dirOrRepoId: string, options: PipelineOptions = {}): Promise<SentenceTransformer> {
    const dir = await resolveSentenceTransformersFolder(dirOrRepoId, options);
    const modules = readModules(dir);
    const transformer = await loadTransformer(dir, modules[0], options);
    let width = transformer.model.config.hidden_size;
    let pooling: PoolingConfig | null = null;
    const dense: Dense[] = [];
    let normalize = false;
    for (const m of modules.slice(1)) {
      const where = join(dir, m.path);
      if (normalize) throw new ConfigError(`${dir}/modules.json: a Normalize module must come last (found ${m.type} after it)`);
      if (m.kind === 'Pooling') {
        if (pooling) throw new ConfigError(`${dir}/modules.json: more than one Pooling module`);
        pooling = readPoolingConfig(where, width);
        width *= pooling.modes.length;
      } else if (m.kind === 'Dense') {
        if (!pooling) throw new ConfigError(`${dir}/modules.json: Dense module ${m.path} comes before Pooling (a ColBERT/PyLate model? load it with ColBERT)`);
        const d = Dense.load(where, options);
        if (d.inFeatures !== width) throw new ConfigError(`${where}/config.json: in_features ${d.inFeatures}, but the previous module gives ${width}`);
        width = d.outFeatures;
        dense.push(d);
      } else {
        normalize = true;
      }
    }
    if (!pooling) throw new ConfigError(`${dir}/modules.json has no Pooling module (a ColBERT/PyLate model? load it with ColBERT)`);
    const cfgPath = join(dir, 'config_sentence_transformers.json');
    const cfg = readJsonFile(cfgPath, false) ?? {};
    const { prompts, defaultPromptName } = readPrompts(cfg, cfgPath);
    const sim = cfg.similarity_fn_name ?? 'cosine';
    if (!SIMILARITY_FUNCTIONS.includes(sim as SimilarityFunction))
      throw new ConfigError(`${cfgPath}: similarity_fn_name ${JSON.stringify(sim)} is not one of ${SIMILARITY_FUNCTIONS.join(', ')}`);
    return new SentenceTransformer(transformer, pooling, dense, normalize, prompts, defaultPromptName, sim as SimilarityFunction, options);
  }

  get tokenizer() {
    return this.transformer.tokenizer;
  }

  /** Width of the output vectors. */
  get dimension(): number {
    return this.dense.length ? this.dense[this.dense.length - 1].outFeatures : this.transformer.model.config.hidden_size * this.pooling.modes.length;
  }

  /** The encoding the Transformer module runs (lower-cased if do_lower_case, cut at max_seq_length). */
  tokenize(text: string, index = 0): Encoding {
    const t = this.transformer;
    const e = t.tokenizer.encode(t.doLowerCase ? text.toLowerCase() : text, { maxLength: t.maxSeqLength, truncation: this.options.truncation });
    if (this.options.truncation === false && e.inputIds.length > t.maxSeqLength)
      throw new InputError(`input ${index} has ${e.inputIds.length} tokens, more than the model's max_seq_length ${t.maxSeqLength}`);
    return e;
  }

  /** One vector per text: [n, dimension]. */
  encode(texts: string | string[], options: EncodeOptions = {}): Tensor {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) throw new InputError('encode takes a text or an array of texts');
    const prompt = this.promptFor(options);
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
    // As Sentence-Transformers: the prompt's length is that of the prompt tokenized alone, minus its final [SEP].
    const promptLength = prompt === null || this.pooling.includePrompt ? 0 : this.tokenize(prompt, -1).inputIds.length - 1;
    const H = this.transformer.model.config.hidden_size;
    const dim = this.dimension;
    const out = new Float32Array(list.length * dim);
    for (let start = 0; start < list.length; start += batchSize) {
      const batch = list.slice(start, start + batchSize).map((t, i) => this.tokenize(prompt === null ? t : prompt + t, start + i));
      for (const chunk of packedChunks(batch, this.options.maxBatchTokens ?? 16384)) {
        const n = chunk.cuSeqlens.length - 1;
        const x = this.transformer.model.forwardPacked({ inputIds: chunk.inputIds, cuSeqlens: chunk.cuSeqlens }).lastHiddenState.data;
        let v = pool(x, chunk.cuSeqlens, H, this.pooling, new Int32Array(n).fill(promptLength));
        for (const d of this.dense) v = d.apply(v, n);
        if (this.normalizeOutput || options.normalize) normalizeRows(v, n, dim);
        out.set(v, (start + chunk.start) * dim);
      }
      options.onProgress?.(Math.min(start + batchSize, list.length), list.length);
    }
    return new Tensor(out, [list.length, dim]);
  }

  /** The prompt text `encode` puts before each text, or null. */
  promptFor(options: Pick<EncodeOptions, 'prompt' | 'promptName'>): string | null {
    return choosePrompt(this.prompts, this.defaultPromptName, options.prompt, options.promptName);
  }

  /** The model's similarity function (similarity_fn_name, default cosine) between the rows of a and b: [n, m]. */
  similarity(a: Tensor, b: Tensor): Tensor {
    return similarityMatrix(a, b, this.similarityFnName);
  }
}
