/**
 * ColBERT late interaction in the PyLate layout (e.g. GTE-ModernColBERT-v1): the Transformer module, a Dense
 * projection applied to every token, per-token L2 normalisation, query/document prefix tokens inserted after
 * [CLS], queries padded with [MASK] to query_length (query expansion), documents cut at document_length with
 * punctuation (the skiplist) dropped, and MaxSim scoring. Computes what pylate's `ColBERT.encode` computes on
 * the CPU.
 */
import { join } from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import { ropeTables, dataOf, type ModernBertModel } from '../model/modernbert.js';
import { positionsFor } from '../model/unpad.js';
import type { PipelineOptions } from '../pipelines/common.js';
import { Tensor } from '../tensor/tensor.js';
import { Dense, loadTransformer, normalizeRows, readJsonFile, readModules, resolveSentenceTransformersFolder, type TransformerModule } from './folder.js';

/** Python's string.punctuation, PyLate's default skiplist. */
export const PUNCTUATION = Array.from('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

export interface ColbertSettings {
  queryPrefix: string;
  documentPrefix: string;
  /** Query tokens after expansion, prefix included (PyLate default 32). */
  queryLength: number;
  /** Longest document in tokens, prefix included (PyLate default 180). */
  documentLength: number;
  /** true: every token attends to the [MASK] expansion tokens; false (default): only the expansion tokens attend to the text. */
  attendToExpansionTokens: boolean;
  /** Pad queries with [MASK] to queryLength (PyLate's do_query_expansion, default true). */
  doQueryExpansion: boolean;
  skiplistWords: string[];
}

/** The settings of config_sentence_transformers.json, with PyLate's defaults for absent keys. */
export function readColbertSettings(cfg: Record<string, unknown>, path: string): ColbertSettings {
  const str = (k: string, def: string) => {
    const v = cfg[k] ?? def;
    if (typeof v !== 'string') throw new ConfigError(`${path}: ${k} must be a string`);
    return v;
  };
  const int = (k: string, def: number) => {
    const v = cfg[k] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 3) throw new ConfigError(`${path}: ${k} must be an integer ≥ 3, got ${JSON.stringify(v)}`);
    return v;
  };
  const skip = cfg.skiplist_words ?? PUNCTUATION;
  if (!Array.isArray(skip) || skip.some((w) => typeof w !== 'string')) throw new ConfigError(`${path}: skiplist_words must be a list of strings`);
  return {
    queryPrefix: str('query_prefix', '[Q] '),
    documentPrefix: str('document_prefix', '[D] '),
    queryLength: int('query_length', 32),
    documentLength: int('document_length', 180),
    attendToExpansionTokens: cfg.attend_to_expansion_tokens === true,
    doQueryExpansion: cfg.do_query_expansion !== false,
    skiplistWords: skip as string[],
  };
}

/** True when a Sentence-Transformers folder is a PyLate ColBERT model (MaxSim, or a Dense right after the Transformer). */
export function isColbertFolder(dir: string): boolean {
  const cfg = readJsonFile(join(dir, 'config_sentence_transformers.json'), false) ?? {};
  if (cfg.similarity_fn_name === 'MaxSim' || 'query_prefix' in cfg) return true;
  const modules = readModules(dir);
  return modules.length > 1 && modules[1].kind === 'Dense';
}

/** One text's token ids for the encoder; `real` of them are attended by all, the rest are expansion tokens. */
export interface ColbertTokens {
  ids: number[];
  real: number;
}

export interface ColbertEncodeOptions {
  /** Queries get the query prefix and [MASK] expansion; documents the document prefix, skiplist and length cut (default true, as PyLate). */
  isQuery?: boolean;
  /** Texts per packed forward pass (default 32). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface RankResult {
  index: number;
  score: number;
  document?: string;
}

export class ColBERT {
  readonly queryPrefixId: number;
  readonly documentPrefixId: number;
  readonly maskId: number;
  /** Token ids left out of document vectors. */
  readonly skiplist: Set<number>;
  /** document_length, capped by the model's limit. */
  readonly documentLength: number;

  private constructor(
    readonly transformer: TransformerModule,
    readonly projection: Dense,
    readonly settings: ColbertSettings,
    private readonly options: PipelineOptions,
  ) {
    const tok = transformer.tokenizer;
    const id = (token: string, what: string) => {
      const v = tok.tokenToId(token);
      if (v === undefined) throw new ConfigError(`${transformer.dir}: the tokenizer has no token ${JSON.stringify(token)} (the ${what}); PyLate adds it with add_tokens`);
      return v;
    };
    this.queryPrefixId = id(settings.queryPrefix, 'query prefix');
    this.documentPrefixId = id(settings.documentPrefix, 'document prefix');
    if (tok.maskTokenId === null) throw new ConfigError(`${transformer.dir}: the tokenizer has no mask token (needed for query expansion)`);
    this.maskId = tok.maskTokenId;
    // As convert_tokens_to_ids: a word missing from the vocabulary maps to the unknown token.
    const unk = tok.unkToken === null ? undefined : tok.tokenToId(tok.unkToken);
    this.skiplist = new Set(settings.skiplistWords.flatMap((w) => {
      const v = tok.tokenToId(w) ?? unk;
      return v === undefined ? [] : [v];
    }));
    const max = transformer.model.config.max_position_embeddings;
    if (settings.queryLength > max) throw new ConfigError(`${transformer.dir}: query_length ${settings.queryLength} exceeds the model's ${max} positions`);
    // A document_length over the model's positions cuts documents there instead (sentence_bert_config's max_seq_length is
    // ignored: PyLate overwrites it with query_length − 1 or document_length − 1 on every call).
    this.documentLength = Math.min(settings.documentLength, max);
  }

  /** A PyLate folder or Hub repo id: modules.json (Transformer, Dense), config_sentence_transformers.json. */
  static async fromPretrained(dirOrRepoId: string, options: PipelineOptions = {}): Promise<ColBERT> {
    const dir = await resolveSentenceTransformersFolder(dirOrRepoId, options);
    const modules = readModules(dir);
    if (modules.length !== 2 || modules[1].kind !== 'Dense')
      throw new ConfigError(`${dir}/modules.json: a ColBERT model is a Transformer then a Dense projection, got ${modules.map((m) => m.type).join(', ')}`);
    const transformer = await loadTransformer(dir, modules[0], options);
    const projection = Dense.load(join(dir, modules[1].path), options);
    const H = transformer.model.config.hidden_size;
    if (projection.inFeatures !== H) throw new ConfigError(`${dir}/${modules[1].path}/config.json: in_features ${projection.inFeatures}, but the model's hidden size is ${H}`);
    const cfgPath = join(dir, 'config_sentence_transformers.json');
    const settings = readColbertSettings(readJsonFile(cfgPath, false) ?? {}, cfgPath);
    return new ColBERT(transformer, projection, settings, options);
  }

  get dimension(): number {
    return this.projection.outFeatures;
  }

  /** The ids PyLate feeds the encoder: [CLS] prefix text… [SEP], then (queries) [MASK]s up to query_length. */
  tokenize(text: string, isQuery: boolean): ColbertTokens {
    if (typeof text !== 'string') throw new InputError(`text must be a string, got ${typeof text}`);
    const t = this.transformer;
    const length = isQuery ? this.settings.queryLength : this.documentLength;
    // PyLate tokenizes with max_seq_length = length − 1, then inserts the prefix id after [CLS].
    const e = t.tokenizer.encode(t.doLowerCase ? text.toLowerCase() : text, { maxLength: length - 1 });
    const ids = [e.inputIds[0], isQuery ? this.queryPrefixId : this.documentPrefixId, ...e.inputIds.slice(1)];
    const real = ids.length;
    if (isQuery && this.settings.doQueryExpansion) while (ids.length < length) ids.push(this.maskId);
    return { ids, real: isQuery && this.settings.attendToExpansionTokens ? ids.length : real };
  }

  /** One [tokens, dimension] matrix of unit vectors per text. */
  encode(texts: string | string[], options: ColbertEncodeOptions = {}): Tensor[] {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list)) throw new InputError('encode takes a text or an array of texts');
    const isQuery = options.isQuery ?? true;
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
    const out: Tensor[] = [];
    const dim = this.dimension;
    for (let start = 0; start < list.length; start += batchSize) {
      const toks = list.slice(start, start + batchSize).map((t) => this.tokenize(t, isQuery));
      const { rows, rowOf } = encodeWithExpansion(this.transformer.model, toks);
      const projected = this.projection.apply(rows, rows.length / this.transformer.model.config.hidden_size);
      toks.forEach((tk, s) => {
        // Documents drop skiplist tokens; queries keep every token, expansion included.
        const keep = tk.ids.flatMap((id, p) => (isQuery || !this.skiplist.has(id) ? [p] : []));
        const m = new Float32Array(keep.length * dim);
        keep.forEach((p, i) => m.set(projected.subarray(rowOf[s][p] * dim, (rowOf[s][p] + 1) * dim), i * dim));
        normalizeRows(m, keep.length, dim);
        out.push(new Tensor(m, [keep.length, dim]));
      });
      options.onProgress?.(Math.min(start + batchSize, list.length), list.length);
    }
    return out;
  }

  /** Documents ordered by MaxSim against the query, best first. */
  rank(query: string, documents: string[], options: { topK?: number; batchSize?: number; returnDocuments?: boolean } = {}): RankResult[] {
    const [q] = this.encode(query, { isQuery: true });
    const docs = this.encode(documents, { isQuery: false, batchSize: options.batchSize });
    const scores = docs.map((d) => maxSim(q, d));
    const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
    return order.slice(0, options.topK ?? order.length).map((i) => ({ index: i, score: scores[i], ...(options.returnDocuments ? { document: documents[i] } : {}) }));
  }
}

/** MaxSim: Σ over query vectors of the largest dot product with any document vector (0 for an empty document). */
export function maxSim(query: Tensor, document: Tensor): number {
  const [nq, d] = query.dims;
  const [nd, d2] = document.dims;
  if (d !== d2) throw new InputError(`MaxSim: query vectors have dimension ${d}, document vectors ${d2}`);
  if (nd === 0) return 0;
  let total = 0;
  for (let i = 0; i < nq; i++) {
    let best = -Infinity;
    for (let j = 0; j < nd; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += query.data[i * d + k] * document.data[j * d + k];
      if (dot > best) best = dot;
    }
    total += best;
  }
  return total;
}

/** Float32 rounding of the additive mask value HF uses (finfo(float32).min): adding it to a score gives it back. */
const MASKED = -3.4028234663852886e38;

/**
 * The encoder on sequences whose last `ids.length − real` tokens are expansion tokens: they attend to the real
 * tokens, nothing attends to them. That is Hugging Face's padded (sdpa/eager) ModernBERT with attention mask 0
 * at the expansion tokens, which is what PyLate runs on a CPU; the packed kernels cannot express it, so the
 * expansion rows' attention is computed here, and everything else by the model's kernels on all rows at once.
 * Returns the last hidden states of all rows [rows, hidden] and, per sequence, the row of each of its tokens.
 */
export function encodeWithExpansion(model: ModernBertModel, seqs: ColbertTokens[]): { rows: Float32Array; rowOf: number[][] } {
  const c = model.config;
  const H = c.hidden_size;
  const realCu = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => (realCu[i + 1] = realCu[i] + s.real));
  const Treal = realCu[seqs.length];
  const T = seqs.reduce((n, s) => n + s.ids.length, 0);
  // Layout: every sequence's real tokens packed first, then every sequence's expansion tokens.
  const ids = new Int32Array(T);
  const positions = new Int32Array(T);
  const rowOf: number[][] = [];
  positions.set(positionsFor(realCu));
  let e = Treal;
  seqs.forEach((s, i) => {
    const rows: number[] = [];
    for (let p = 0; p < s.ids.length; p++) {
      const r = p < s.real ? realCu[i] + p : e++;
      ids[r] = s.ids[p];
      positions[r] = p;
      rows.push(r);
    }
    rowOf.push(rows);
  });
  if (T === Treal) return { rows: model.forwardPacked({ inputIds: ids, cuSeqlens: realCu }).lastHiddenState.data, rowOf };
  for (let r = 0; r < T; r++)
    if (ids[r] < 0 || ids[r] >= c.vocab_size) throw new InputError(`token id ${ids[r]} is outside the vocabulary (${c.vocab_size})`);

  const k = model.kernels;
  const I = c.intermediate_size;
  const heads = c.num_attention_heads;
  const Dh = c.head_dim;
  const scale = 1 / Math.sqrt(Dh);
  const maxPos = c.max_position_embeddings;
  const rope = { global: ropeTables(c.global_rope_theta, Dh, maxPos), local: ropeTables(c.local_rope_theta, Dh, maxPos) };
  const h = new Float32Array(T * H);
  const normed = new Float32Array(T * H);
  const qkv = new Float32Array(T * 3 * H);
  const attn = new Float32Array(T * H);
  const wi = new Float32Array(T * 2 * I);
  const act = new Float32Array(T * I);
  k.embedding(normed, model.embeddings.tok.data, ids, T, H, c.vocab_size);
  k.layernorm(h, normed, model.embeddings.norm.w.data, dataOf(model.embeddings.norm.b), T, H, c.norm_eps, null, null);
  model.layers.forEach((L, i) => {
    const global = c.isGlobalLayer(i);
    const tables = global ? rope.global : rope.local;
    let attnIn = h;
    if (L.attnNorm) {
      k.layernorm(normed, h, L.attnNorm.w.data, dataOf(L.attnNorm.b), T, H, c.norm_eps, null, null);
      attnIn = normed;
    }
    model.linear(qkv, attnIn, L.Wqkv, L.bqkv, T, 0);
    k.rope(qkv, positions, tables.cos, tables.sin, T, heads, Dh, maxPos);
    k.attention(attn.subarray(0, Treal * H), null, qkv.subarray(0, Treal * 3 * H), realCu, seqs.length, heads, Dh, global ? -1 : c.window, scale,
      !model.training && model.dtype === 'bf16');
    expansionAttention(attn, qkv, seqs, rowOf, positions, heads, Dh, global ? -1 : c.window, scale);
    model.linear(h, attn, L.Wo, L.bo, T, 1);
    k.layernorm(normed, h, L.mlpNorm.w.data, dataOf(L.mlpNorm.b), T, H, c.norm_eps, null, null);
    model.linear(wi, normed, L.Wi, L.bi, T, 0);
    k.geglu(act, wi, T, I, c.hiddenActivation);
    model.linear(h, act, L.Wo2, L.bo2, T, 1);
  });
  const out = new Float32Array(T * H);
  k.layernorm(out, h, model.finalNorm.w.data, dataOf(model.finalNorm.b), T, H, c.norm_eps, null, null);
  return { rows: out, rowOf };
}

/**
 * Attention of the expansion rows over their sequence's real tokens (within the window on local layers).
 * A row that sees no real token gets, as in HF's padded path where every score is then the same masked
 * value, the plain mean of the values of all the sequence's rows.
 */
function expansionAttention(attn: Float32Array, qkv: Float32Array, seqs: ColbertTokens[], rowOf: number[][], positions: Int32Array,
  heads: number, Dh: number, window: number, scale: number): void {
  const hidden = heads * Dh;
  seqs.forEach((s, si) => {
    const rows = rowOf[si];
    const scores = new Float64Array(rows.length);
    for (let p = s.real; p < s.ids.length; p++) {
      const i = rows[p];
      for (let hd = 0; hd < heads; hd++) {
        let max = -Infinity;
        for (let j = 0; j < rows.length; j++) {
          const visible = j < s.real && (window < 0 || Math.abs(positions[rows[j]] - positions[i]) <= window);
          let dot = 0;
          if (visible) for (let d = 0; d < Dh; d++) dot += qkv[i * 3 * hidden + hd * Dh + d] * qkv[rows[j] * 3 * hidden + hidden + hd * Dh + d];
          scores[j] = visible ? dot * scale : MASKED;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < rows.length; j++) sum += scores[j] = max === MASKED ? 1 : scores[j] === MASKED ? 0 : Math.exp(scores[j] - max);
        for (let d = 0; d < Dh; d++) {
          let acc = 0;
          for (let j = 0; j < rows.length; j++) if (scores[j] !== 0) acc += scores[j] * qkv[rows[j] * 3 * hidden + 2 * hidden + hd * Dh + d];
          attn[i * hidden + hd * Dh + d] = acc / sum;
        }
      }
    }
  });
}
