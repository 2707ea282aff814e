/**
 * One interface over the three kinds of model a collection can be embedded with, for index building, search
 * and evaluation: a Sentence-Transformers model (one vector per text, its prompts for queries and documents),
 * a PyLate ColBERT model (one matrix per text, MaxSim), or a plain ModernBERT checkpoint (mean pooling).
 */
import { ConfigError } from '../errors.js';
import type { PipelineOptions } from '../pipelines/common.js';
import { pipeline } from '../pipelines/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { ColBERT, isColbertFolder } from './colbert.js';
import { sentenceTransformersFolderOf } from './folder.js';
import type { IndexSimilarity } from './index.js';
import { SentenceTransformer } from './sentence-transformers.js';

export interface EmbedderOptions {
  /** Prompt name for queries (default: 'query' when the model has it). */
  queryPromptName?: string;
  /** Prompt name for documents (default: 'document', else 'passage', when the model has one; else its default prompt). */
  documentPromptName?: string;
  batchSize?: number;
}

export type Progress = (done: number, total: number) => void;

export type Embedder =
  | { kind: 'single'; similarity: 'cosine' | 'dot'; describe: string; embed(texts: string[], isQuery: boolean, onProgress?: Progress): Promise<Tensor> }
  | { kind: 'multi'; similarity: 'maxsim'; describe: string; embed(texts: string[], isQuery: boolean, onProgress?: Progress): Promise<Tensor[]> };

export function isMulti(e: Embedder): e is Extract<Embedder, { kind: 'multi' }> {
  return e.kind === 'multi';
}

export async function loadEmbedder(model: string, options: PipelineOptions, settings: EmbedderOptions = {}): Promise<Embedder> {
  const stDir = await sentenceTransformersFolderOf(model, options);
  const batchSize = settings.batchSize;
  if (stDir && isColbertFolder(stDir)) {
    const cb = await ColBERT.fromPretrained(stDir, options);
    return {
      kind: 'multi', similarity: 'maxsim', describe: `ColBERT (PyLate) model, ${cb.dimension}-dimensional token vectors`,
      embed: async (texts, isQuery, onProgress) => cb.encode(texts, { isQuery, batchSize, onProgress }),
    };
  }
  if (stDir) {
    const st = await SentenceTransformer.fromPretrained(stDir, options);
    const sim = st.similarityFnName;
    if (sim !== 'cosine' && sim !== 'dot') throw new ConfigError(`${model}: similarity_fn_name ${sim} cannot be searched by an index (cosine or dot only)`);
    const has = (name: string | undefined) => name !== undefined && name in st.prompts;
    const queryPrompt = settings.queryPromptName ?? (has('query') ? 'query' : undefined);
    const documentPrompt = settings.documentPromptName ?? ['document', 'passage'].find(has);
    return {
      kind: 'single', similarity: sim, describe: `Sentence-Transformers model, ${st.dimension}-dimensional vectors, ${sim} similarity`,
      embed: async (texts, isQuery, onProgress) => st.encode(texts, { promptName: isQuery ? queryPrompt : documentPrompt, batchSize, onProgress }),
    };
  }
  if (settings.queryPromptName || settings.documentPromptName) throw new ConfigError(`${model}: prompt names need a Sentence-Transformers model (modules.json)`);
  const fe = await pipeline('feature-extraction', model, options);
  return {
    kind: 'single', similarity: 'cosine', describe: 'plain ModernBERT checkpoint, mean pooling, cosine similarity',
    embed: async (texts, _isQuery, onProgress) => {
      const size = batchSize ?? 32;
      const parts: Tensor[] = [];
      for (let i = 0; i < texts.length; i += size) {
        parts.push(await fe(texts.slice(i, i + size), { pooling: 'mean' }));
        onProgress?.(Math.min(i + size, texts.length), texts.length);
      }
      const dim = parts[0]?.dims[1] ?? 0;
      const out = new Float32Array(texts.length * dim);
      parts.forEach((p, i) => out.set(p.data, i * size * dim));
      return new Tensor(out, [texts.length, dim]);
    },
  };
}
