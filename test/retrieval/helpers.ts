/**
 * Sentence-Transformers and PyLate folders around the fixture checkpoints. The fixtures' inputs are random
 * ids, so the test tokenizer is word-level: the text "w17 w3" is the ids [17, 3], and a fixture sequence
 * [CLS] x1 … xn [SEP] is the text of its inner ids — the expected vectors then come from the fixture's
 * reference hidden states (cK.last_hidden_state), not from our forward.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir } from '../helpers/fixtures.js';
import { writeSafetensors, type TensorToWrite } from '../../src/safetensors/safetensors.js';

/** tokenizer.json + tokenizer_config.json: "w<i>" → i for every non-special id, ModernBERT's specials at vocab−12 … −8. */
export function wordTokenizerFiles(vocabSize: number, maxLength: number, extraTokens: string[] = []): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (let i = 0; i < vocabSize - 12; i++) vocab[`w${i}`] = i;
  const specials = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]'];
  specials.forEach((t, i) => (vocab[t] = vocabSize - 12 + i));
  const added = specials.map((t, i) => ({ id: vocabSize - 12 + i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  // Extra added tokens (PyLate's prefixes) take the ids after the specials, as add_tokens does after a resize.
  extraTokens.forEach((t, i) => {
    vocab[t] = vocabSize - 7 + i;
    added.push({ id: vocabSize - 7 + i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
  });
  const st = (t: string) => ({ id: t, ids: [vocab[t]], tokens: [t] });
  return {
    'tokenizer.json': {
      version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
          { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        special_tokens: { '[CLS]': st('[CLS]'), '[SEP]': st('[SEP]') },
      },
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
    },
    'tokenizer_config.json': { model_max_length: maxLength, cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', mask_token: '[MASK]', unk_token: '[UNK]' },
  };
}

/** The text whose word-level tokens are `ids`. */
export const textOf = (ids: ArrayLike<number>): string => Array.from(ids, (i) => `w${i}`).join(' ');

export interface FolderSpec {
  /** Fixture whose config and weights are the Transformer module. */
  fixture: string;
  /** modules.json entries after the Transformer: [type suffix, folder, files]. */
  modules: { type: string; path: string; files?: Record<string, unknown>; dense?: { weight: Float32Array; bias?: Float32Array; out: number; in: number } }[];
  stConfig?: Record<string, unknown>;
  sentenceBertConfig?: Record<string, unknown>;
  extraTokens?: string[];
}

/** A Sentence-Transformers / PyLate folder: the fixture's config and weights (linked) at the root plus the modules. */
export function stFolder(spec: FolderSpec): string {
  const dir = mkdtempSync(join(tmpdir(), 'mb-st-'));
  const src = fixtureDir(spec.fixture);
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  symlinkSync(join(src, 'config.json'), join(dir, 'config.json'));
  symlinkSync(join(src, 'model.safetensors'), join(dir, 'model.safetensors'));
  for (const [file, json] of Object.entries(wordTokenizerFiles(config.vocab_size, config.max_position_embeddings, spec.extraTokens)))
    writeFileSync(join(dir, file), JSON.stringify(json));
  const modules = [{ idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' }];
  spec.modules.forEach((m, i) => {
    modules.push({ idx: i + 1, name: String(i + 1), path: m.path, type: m.type });
    if (m.path) mkdirSync(join(dir, m.path), { recursive: true });
    for (const [file, json] of Object.entries(m.files ?? {})) writeFileSync(join(dir, m.path, file), JSON.stringify(json));
    if (m.dense) {
      const t = new Map<string, TensorToWrite>([['linear.weight', { dtype: 'F32', shape: [m.dense.out, m.dense.in], data: m.dense.weight }]]);
      if (m.dense.bias) t.set('linear.bias', { dtype: 'F32', shape: [m.dense.out], data: m.dense.bias });
      writeSafetensors(join(dir, m.path, 'model.safetensors'), t);
    }
  });
  writeFileSync(join(dir, 'modules.json'), JSON.stringify(modules));
  writeFileSync(join(dir, 'sentence_bert_config.json'), JSON.stringify(spec.sentenceBertConfig ?? { max_seq_length: 128, do_lower_case: false }));
  if (spec.stConfig) writeFileSync(join(dir, 'config_sentence_transformers.json'), JSON.stringify(spec.stConfig));
  return dir;
}

/** Deterministic values in (−scale, scale). */
export function randomValues(n: number, scale: number, seed = 7): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}
