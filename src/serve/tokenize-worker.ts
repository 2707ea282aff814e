/**
 * The tokenizer thread: texts (or text pairs) in, token ids out. It runs apart from the event loop
 * because a request may hold megabytes of text; the ids it returns are what the batcher counts and packs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { InputError } from '../errors.js';
import { loadConfig } from '../model/modernbert.js';
import { modelMaxLength } from '../pipelines/common.js';
import { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';
import { serveThread } from './threads.js';

export interface TokenizeRequest {
  /** The texts, or the first texts of pairs. */
  first: string[];
  /** The second text of each pair (rerank: the documents; null entries are single texts), or null for none. */
  second: (string | null)[] | null;
  /** Cut inputs over the model's limit (else report the first one that is too long). */
  truncate: boolean;
  side: 'left' | 'right';
}

export type TokenizeResponse =
  /** All ids concatenated; input i is ids[offsets[i], offsets[i + 1]). */
  | { ids: Int32Array; offsets: Int32Array; truncated: number }
  | { tooLong: { index: number; tokens: number } };

/** What the thread tells once loaded: the longest input the model takes. */
export interface TokenizerInfo {
  maxInputLength: number;
}

const { dir } = workerData as { dir: string };
const tokenizer = PreTrainedTokenizer.fromDirectory(dir);
const config = loadConfig(dir);
if (tokenizer.vocabSize > config.vocab_size)
  throw new InputError(`${dir}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${config.vocab_size}`);
const maxLength = modelMaxLength(tokenizer, config);

serveThread<TokenizeRequest, TokenizeResponse, TokenizerInfo>(parentPort!, { maxInputLength: maxLength }, (req) => {
  const n = req.first.length;
  const rows: number[][] = [];
  const offsets = new Int32Array(n + 1);
  let truncated = 0;
  for (let i = 0; i < n; i++) {
    const e = tokenizer.encode(req.first[i], { textPair: req.second?.[i] ?? null, truncation: req.truncate, truncationSide: req.side, maxLength });
    if (e.inputIds.length > maxLength) return { body: { tooLong: { index: i, tokens: e.inputIds.length } } };
    if (e.numTruncated > 0) truncated++;
    rows.push(e.inputIds);
    offsets[i + 1] = offsets[i] + e.inputIds.length;
  }
  const ids = new Int32Array(offsets[n]);
  rows.forEach((r, i) => ids.set(r, offsets[i]));
  return { body: { ids, offsets, truncated }, transfer: [ids.buffer, offsets.buffer] };
});
