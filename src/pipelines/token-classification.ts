/**
 * 'token-classification': a label per token with its character offsets, and Hugging Face's aggregation
 * of tokens into words and entity spans (TokenClassificationPipeline: 'simple', 'first', 'max', 'average').
 */
import { InputError } from '../errors.js';
import { ModernBertForTokenClassification } from '../model/heads.js';
import type { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';
import { asList, encodeAll, isString, loadPipelineParts, makePipeline, modelMaxLength, packedChunks, softmax, type Pipeline, type PipelineOptions } from './common.js';

export type AggregationStrategy = 'none' | 'simple' | 'first' | 'max' | 'average';

export interface TokenClassificationOptions {
  /** Default 'none': one entry per token. */
  aggregationStrategy?: AggregationStrategy;
  /** Labels left out of the result (default ['O']). */
  ignoreLabels?: string[];
}

/** One token (aggregation 'none'): HF's `entity`, `score`, `index`, `word`, `start`, `end`. */
export interface TokenEntity {
  entity: string;
  score: number;
  /** Position of the token in the encoded sequence ([CLS] is 0). */
  index: number;
  /** The token string (byte-level form, as HF). */
  word: string;
  start: number;
  end: number;
}

/** A span of tokens (any other aggregation): HF's `entity_group`, `score`, `word`, `start`, `end`. */
export interface EntityGroup {
  entityGroup: string;
  score: number;
  word: string;
  start: number;
  end: number;
}

/** A token before aggregation: probabilities over labels, offsets, and whether it continues a word. */
export interface PreEntity {
  id: number;
  word: string;
  scores: Float64Array;
  start: number;
  end: number;
  index: number;
  isSubword: boolean;
}

interface Entity {
  entity: string;
  score: number;
  ids: number[];
  word: string;
  start: number;
  end: number;
  index?: number;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** B-/I- prefix and tag of a label; a label without one counts as "I" (HF's get_tag). */
function getTag(label: string): [string, string] {
  if (label.startsWith('B-')) return ['B', label.slice(2)];
  if (label.startsWith('I-')) return ['I', label.slice(2)];
  return ['I', label];
}

/**
 * HF's aggregate(): tokens → entities. `decode` turns token ids into the text of a word or group;
 * `labels` maps a class index to its name.
 */
export function aggregate(pre: PreEntity[], strategy: AggregationStrategy, labels: (i: number) => string, decode: (ids: number[]) => string): (TokenEntity | EntityGroup)[] {
  const tokenEntity = (p: PreEntity): Entity => {
    const i = argmax(p.scores);
    return { entity: labels(i), score: p.scores[i], ids: [p.id], word: p.word, start: p.start, end: p.end, index: p.index };
  };
  if (strategy === 'none') {
    return pre.map((p) => {
      const e = tokenEntity(p);
      return { entity: e.entity, score: e.score, index: e.index!, word: e.word, start: e.start, end: e.end };
    });
  }
  let entities: Entity[];
  if (strategy === 'simple') {
    entities = pre.map(tokenEntity);
  } else {
    // Words: a token that is not a subword starts a new word.
    const words: PreEntity[][] = [];
    for (const p of pre) {
      if (words.length === 0 || !p.isSubword) words.push([p]);
      else words[words.length - 1].push(p);
    }
    entities = words.map((w) => {
      let scores: ArrayLike<number>;
      let label: number;
      if (strategy === 'first') {
        scores = w[0].scores;
        label = argmax(scores);
      } else if (strategy === 'max') {
        const best = w.reduce((a, b) => (Math.max(...b.scores) > Math.max(...a.scores) ? b : a));
        scores = best.scores;
        label = argmax(scores);
      } else {
        const avg = new Float64Array(w[0].scores.length);
        for (const p of w) p.scores.forEach((v, i) => (avg[i] += v / w.length));
        scores = avg;
        label = argmax(avg);
      }
      const ids = w.map((p) => p.id);
      return { entity: labels(label), score: scores[label], ids, word: decode(ids), start: w[0].start, end: w[w.length - 1].end };
    });
  }
  // group_entities: consecutive entities with the same tag join unless the next one is a B-.
  const groups: EntityGroup[] = [];
  let current: Entity[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const ids = current.flatMap((e) => e.ids);
    groups.push({
      entityGroup: current[0].entity.slice(current[0].entity.indexOf('-') + 1), // HF: split("-", 1)[-1]
      score: current.reduce((s, e) => s + e.score, 0) / current.length,
      word: decode(ids),
      start: current[0].start,
      end: current[current.length - 1].end,
    });
    current = [];
  };
  for (const e of entities) {
    if (current.length > 0) {
      const [bi, tag] = getTag(e.entity);
      const [, lastTag] = getTag(current[current.length - 1].entity);
      if (!(tag === lastTag && bi !== 'B')) flush();
    }
    current.push(e);
  }
  flush();
  return groups;
}

/** HF's gather_pre_entities for a tokenizer without a subword prefix (byte-level BPE): offsets-based word starts. */
export function preEntities(text: string, ids: number[], offsets: [number, number][], special: number[], probs: Float64Array[], tokenizer: PreTrainedTokenizer): PreEntity[] {
  const out: PreEntity[] = [];
  ids.forEach((id, index) => {
    if (special[index]) return;
    const [start, end] = offsets[index];
    out.push({
      id,
      word: tokenizer.idToToken(id) ?? '',
      scores: probs[index],
      start,
      end,
      index,
      // HF's heuristic: a token continues a word unless a space sits just before it or at its start.
      isSubword: start > 0 && !text.slice(start - 1, start + 1).includes(' '),
    });
  });
  return out;
}

export async function tokenClassificationPipeline(
  dirOrRepoId: string, options: PipelineOptions = {},
): Promise<Pipeline<string | string[], TokenClassificationOptions, (TokenEntity | EntityGroup)[] | (TokenEntity | EntityGroup)[][]>> {
  const parts = await loadPipelineParts(ModernBertForTokenClassification, dirOrRepoId, options);
  const { tokenizer } = parts;
  return makePipeline('token-classification', parts, (model, input, callOptions) => {
    const { items, single } = asList(input, isString);
    const strategy = callOptions.aggregationStrategy ?? 'none';
    if (!['none', 'simple', 'first', 'max', 'average'].includes(strategy))
      throw new InputError(`aggregationStrategy must be none, simple, first, max or average, got ${JSON.stringify(strategy)}`);
    const ignore = new Set(callOptions.ignoreLabels ?? ['O']);
    const L = model.config.num_labels;
    const labels = (i: number) => model.config.id2label[String(i)] ?? `LABEL_${i}`;
    const decode = (ids: number[]) => tokenizer.decode(ids, { cleanUpTokenizationSpaces: false });
    const encodings = encodeAll(tokenizer, items, modelMaxLength(tokenizer, model.config), options);
    const results: (TokenEntity | EntityGroup)[][] = [];
    for (const chunk of packedChunks(encodings, options.maxBatchTokens ?? 16384)) {
      const logits = model.forwardPacked({ inputIds: chunk.inputIds, cuSeqlens: chunk.cuSeqlens }).logits.data;
      for (let s = 0; s + 1 < chunk.cuSeqlens.length; s++) {
        const e = encodings[chunk.start + s];
        const base = chunk.cuSeqlens[s];
        const probs = e.inputIds.map((_, t) => softmax(logits.subarray((base + t) * L, (base + t + 1) * L)));
        const pre = preEntities(items[chunk.start + s], e.inputIds, e.offsets, e.specialTokensMask, probs, tokenizer);
        results.push(aggregate(pre, strategy, labels, decode).filter((x) => !ignore.has('entity' in x ? x.entity : x.entityGroup)));
      }
    }
    return single ? results[0] : results;
  });
}
