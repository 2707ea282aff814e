/** 'text-classification' (texts or text pairs) and 'rerank' (a cross-encoder scoring query–document pairs). */
import { InputError } from '../errors.js';
import { ModernBertForSequenceClassification } from '../model/heads.js';
import { encodeAll, loadPipelineParts, makePipeline, modelMaxLength, packedChunks, sigmoid, softmax, topKIndices, type Pipeline, type PipelineOptions } from './common.js';
import type { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';

export type FunctionToApply = 'softmax' | 'sigmoid' | 'none';

export interface TextClassificationOptions {
  /** Labels per input, best first (default 1; `null` = all). */
  topK?: number | null;
  /** Default from the config: sigmoid for multi_label_classification or one label, none for regression, else softmax. */
  functionToApply?: FunctionToApply;
}

export interface TextPairInput {
  text: string;
  textPair: string;
}

export type TextClassificationInput = string | TextPairInput | (string | TextPairInput)[];

export interface LabelScore {
  label: string;
  score: number;
}

/** How HF's pipeline turns logits into scores, by problem_type and label count. */
export function defaultFunction(config: { problem_type: string | null; num_labels: number }): FunctionToApply {
  if (config.problem_type === 'regression') return 'none';
  if (config.problem_type === 'multi_label_classification' || config.num_labels === 1) return 'sigmoid';
  return 'softmax';
}

function scores(logits: Float32Array, fn: FunctionToApply): Float64Array {
  if (fn === 'softmax') return softmax(logits);
  return Float64Array.from(logits, (v) => (fn === 'sigmoid' ? sigmoid(v) : v));
}

/** Logits [n, num_labels] for texts or pairs, packed. */
function classify(
  model: ModernBertForSequenceClassification, tokenizer: PreTrainedTokenizer, inputs: (string | [string, string])[], options: PipelineOptions,
): Float32Array[] {
  const encodings = encodeAll(tokenizer, inputs, modelMaxLength(tokenizer, model.config), options);
  const L = model.config.num_labels;
  const out: Float32Array[] = [];
  for (const chunk of packedChunks(encodings, options.maxBatchTokens ?? 16384)) {
    const logits = model.forwardPacked({ inputIds: chunk.inputIds, cuSeqlens: chunk.cuSeqlens }).logits.data;
    for (let s = 0; s + 1 < chunk.cuSeqlens.length; s++) out.push(logits.slice(s * L, (s + 1) * L));
  }
  return out;
}

function toInput(x: string | TextPairInput, i: number): string | [string, string] {
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && typeof x.text === 'string' && typeof x.textPair === 'string') return [x.text, x.textPair];
  throw new InputError(`input ${i} must be a text or { text, textPair }`);
}

export async function textClassificationPipeline(
  dirOrRepoId: string, options: PipelineOptions = {},
): Promise<Pipeline<TextClassificationInput, TextClassificationOptions, LabelScore[] | LabelScore[][]>> {
  const parts = await loadPipelineParts(ModernBertForSequenceClassification, dirOrRepoId, options);
  return makePipeline('text-classification', parts, (model, input, callOptions) => {
    const single = !Array.isArray(input);
    const items = (single ? [input] : input) as (string | TextPairInput)[];
    if (items.length === 0) throw new InputError('expected a text, a { text, textPair } or a non-empty array of them');
    const fn = callOptions.functionToApply ?? defaultFunction(model.config);
    const k = callOptions.topK === null ? model.config.num_labels : (callOptions.topK ?? 1);
    const results = classify(model, parts.tokenizer, items.map(toInput), options).map((logits) => {
      const s = scores(logits, fn);
      return topKIndices(s, k).map((i) => ({ label: model.config.id2label[String(i)] ?? `LABEL_${i}`, score: s[i] }));
    });
    return single ? results[0] : results;
  });
}

export interface RerankOptions {
  /** Keep the best k documents (default: all). */
  topK?: number;
  /** Include each document's text in the result (default false). */
  returnDocuments?: boolean;
}

export interface RerankResult {
  /** Position of the document in the input array. */
  index: number;
  score: number;
  document?: string;
}

/**
 * Scores each (query, document) pair with a cross-encoder checkpoint and sorts best first. The score is
 * the sigmoid of the logit for one-label models (as sentence-transformers' CrossEncoder), else the
 * softmax probability of the last label ("relevant").
 */
export async function rerankPipeline(
  dirOrRepoId: string, options: PipelineOptions = {},
): Promise<Pipeline<{ query: string; documents: string[] }, RerankOptions, RerankResult[]>> {
  const parts = await loadPipelineParts(ModernBertForSequenceClassification, dirOrRepoId, options);
  return makePipeline('rerank', parts, (model, input, callOptions) => {
    const { query, documents } = input ?? ({} as { query: string; documents: string[] });
    if (typeof query !== 'string' || !Array.isArray(documents) || !documents.every((d) => typeof d === 'string'))
      throw new InputError('rerank takes { query: string, documents: string[] }');
    if (documents.length === 0) return [];
    const L = model.config.num_labels;
    const logits = classify(model, parts.tokenizer, documents.map((d): [string, string] => [query, d]), options);
    const results = logits.map((l, index): RerankResult => ({
      index,
      score: L === 1 ? sigmoid(l[0]) : softmax(l)[L - 1],
      ...(callOptions.returnDocuments ? { document: documents[index] } : {}),
    }));
    results.sort((a, b) => b.score - a.score || a.index - b.index);
    return results.slice(0, callOptions.topK ?? results.length);
  });
}
