/** 'fill-mask': the most likely tokens at each [MASK], with Hugging Face's output shape. */
import { InputError } from '../errors.js';
import { ModernBertForMaskedLM } from '../model/heads.js';
import {
  asList, encodeAll, isString, loadPipelineParts, makePipeline, modelMaxLength, packedChunks, softmax, topKIndices, type Pipeline, type PipelineOptions,
} from './common.js';

export interface FillMaskOptions {
  /** Predictions per mask (default 5). */
  topK?: number;
}

export interface FillMaskPrediction {
  score: number;
  token: number;
  /** The predicted token as text, without the byte-level leading space. */
  tokenStr: string;
  /** The input with this mask filled in (special tokens and other masks dropped, as in HF). */
  sequence: string;
}

/** One text with one mask → predictions; several masks → one list per mask; an array of texts → one entry per text. */
export type FillMaskOutput = FillMaskPrediction[] | FillMaskPrediction[][];

export async function fillMaskPipeline(dirOrRepoId: string, options: PipelineOptions = {}): Promise<Pipeline<string | string[], FillMaskOptions, FillMaskOutput | FillMaskOutput[]>> {
  const parts = await loadPipelineParts(ModernBertForMaskedLM, dirOrRepoId, options);
  const { tokenizer } = parts;
  const maskId = tokenizer.maskTokenId;
  if (maskId === null) throw new InputError(`${parts.dir}: the tokenizer has no mask token`);
  return makePipeline('fill-mask', parts, (model, input, callOptions) => {
    const { items, single } = asList(input, isString);
    const topK = callOptions.topK ?? 5;
    const encodings = encodeAll(tokenizer, items, modelMaxLength(tokenizer, model.config), options);
    encodings.forEach((e, i) => {
      if (!e.inputIds.includes(maskId)) throw new InputError(`input ${i} has no ${tokenizer.maskToken} token: ${JSON.stringify(items[i].slice(0, 80))}`);
    });
    const results: FillMaskOutput[] = [];
    const H = model.config.hidden_size;
    const V = model.config.vocab_size;
    for (const chunk of packedChunks(encodings, options.maxBatchTokens ?? 16384)) {
      const hidden = model.model.forwardPacked({ inputIds: chunk.inputIds, cuSeqlens: chunk.cuSeqlens }).lastHiddenState.data;
      // The decoder (hidden × vocab per row) runs only at the masks.
      const rows: number[] = [];
      for (let t = 0; t < chunk.inputIds.length; t++) if (chunk.inputIds[t] === maskId) rows.push(t);
      const selected = new Float32Array(rows.length * H);
      rows.forEach((t, r) => selected.set(hidden.subarray(t * H, (t + 1) * H), r * H));
      const logits = model.logitsFor(selected, rows.length);
      let r = 0;
      for (let s = 0; s + 1 < chunk.cuSeqlens.length; s++) {
        const ids = encodings[chunk.start + s].inputIds;
        const perMask: FillMaskPrediction[][] = [];
        ids.forEach((id, pos) => {
          if (id !== maskId) return;
          const probs = softmax(logits.subarray(r * V, (r + 1) * V));
          r++;
          perMask.push(topKIndices(probs, topK).map((token) => {
            const filled = ids.slice();
            filled[pos] = token;
            return {
              score: probs[token],
              token,
              tokenStr: tokenizer.decode([token], { cleanUpTokenizationSpaces: false }).trim(),
              sequence: tokenizer.decode(filled, { skipSpecialTokens: true }),
            };
          }));
        });
        results.push(perMask.length === 1 ? perMask[0] : perMask);
      }
    }
    return single ? results[0] : results;
  });
}
