/** Model folders for pipeline tests: fixture models with a tiny byte-level BPE tokenizer, and a random model on the real tokenizer. */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir, TOKENIZER_DIR } from '../helpers/fixtures.js';
import { writeSafetensors, type TensorToWrite } from '../../src/safetensors/safetensors.js';

/** GPT-2's byte alphabet for the bytes the tiny vocab uses (printable ASCII is itself; space Ġ, \n Ċ, \t ĉ). */
const SPACE = 'Ġ';

/**
 * A byte-level BPE tokenizer.json for a vocab of `vocabSize`, with ModernBERT's layout of specials:
 * [UNK] [CLS] [SEP] [PAD] [MASK] at vocabSize−12 … −8 ([MASK] takes in the space before it).
 * Tokens: printable ASCII, Ġ Ċ ĉ, "Ġ" + each lowercase letter, and a few words, so tests can predict ids.
 */
export function tinyTokenizerFiles(vocabSize: number, maxLength: number): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  for (let b = 33; b <= 126; b++) add(String.fromCharCode(b));
  for (const t of [SPACE, 'Ċ', 'ĉ']) add(t);
  const merges: string[] = [];
  for (let c = 97; c <= 122; c++) {
    merges.push(`${SPACE} ${String.fromCharCode(c)}`);
    add(SPACE + String.fromCharCode(c));
  }
  for (const [a, b] of [['t', 'h'], ['Ġt', 'h'], ['Ġth', 'e'], ['Ġc', 'a'], ['Ġca', 't'], ['Ġd', 'o'], ['Ġdo', 'g']]) {
    merges.push(`${a} ${b}`);
    add(a + b);
  }
  const specials = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]'];
  specials.forEach((t, i) => (vocab[t] = vocabSize - 12 + i));
  const added = specials.map((t, i) => ({ id: vocabSize - 12 + i, content: t, single_word: false, lstrip: t === '[MASK]', rstrip: false, normalized: false, special: true }));
  const st = (t: string) => ({ id: t, ids: [vocab[t]], tokens: [t] });
  return {
    'tokenizer.json': {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      normalizer: { type: 'NFC' },
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
          { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        special_tokens: { '[CLS]': st('[CLS]'), '[SEP]': st('[SEP]') },
      },
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: '[UNK]', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
    },
    'tokenizer_config.json': {
      model_max_length: maxLength, cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', mask_token: '[MASK]', unk_token: '[UNK]',
      clean_up_tokenization_spaces: false,
    },
  };
}

/** A temp folder holding fixture `name`'s config and weights (linked) plus the tiny tokenizer. */
export function fixtureModelDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mb-${name}-`));
  const src = fixtureDir(name);
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  symlinkSync(join(src, 'config.json'), join(dir, 'config.json'));
  symlinkSync(join(src, 'model.safetensors'), join(dir, 'model.safetensors'));
  for (const [file, json] of Object.entries(tinyTokenizerFiles(config.vocab_size, config.max_position_embeddings)))
    writeFileSync(join(dir, file), JSON.stringify(json));
  return dir;
}

/** A random-weight model (MLM or a classifier) with the real vocab (50368), hidden 32, 2 layers, and the real tokenizer files. */
export function randomRealVocabModelDir(
  architecture: 'ModernBertForMaskedLM' | 'ModernBertForSequenceClassification' | 'ModernBertForTokenClassification' = 'ModernBertForMaskedLM', numLabels = 2,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'mb-real-'));
  mkdirSync(dir, { recursive: true });
  const V = 50368;
  const H = 32;
  const I = 48;
  const L = 2;
  const config: Record<string, unknown> = {
    architectures: [architecture], model_type: 'modernbert', vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: L,
    num_attention_heads: 2, max_position_embeddings: 8192, local_attention: 16, global_attn_every_n_layers: 2,
  };
  if (architecture !== 'ModernBertForMaskedLM') config.id2label = Object.fromEntries(Array.from({ length: numLabels }, (_, i) => [String(i), architecture === 'ModernBertForTokenClassification' ? ['O', 'B-PER', 'I-PER'][i % 3] : `LABEL_${i}`]));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  let seed = 42;
  const rand = (n: number, scale: number) => Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 2 ** 32 - 0.5) * 2 * scale;
  });
  const ones = (n: number) => new Float32Array(n).fill(1);
  const t = new Map<string, TensorToWrite>();
  const put = (name: string, shape: number[], data: Float32Array) => t.set(name, { dtype: 'F32', shape, data });
  put('model.embeddings.tok_embeddings.weight', [V, H], rand(V * H, 0.5));
  put('model.embeddings.norm.weight', [H], ones(H));
  for (let l = 0; l < L; l++) {
    if (l > 0) put(`model.layers.${l}.attn_norm.weight`, [H], ones(H));
    put(`model.layers.${l}.attn.Wqkv.weight`, [3 * H, H], rand(3 * H * H, 0.3));
    put(`model.layers.${l}.attn.Wo.weight`, [H, H], rand(H * H, 0.3));
    put(`model.layers.${l}.mlp_norm.weight`, [H], ones(H));
    put(`model.layers.${l}.mlp.Wi.weight`, [2 * I, H], rand(2 * I * H, 0.3));
    put(`model.layers.${l}.mlp.Wo.weight`, [H, I], rand(H * I, 0.3));
  }
  put('model.final_norm.weight', [H], ones(H));
  put('head.dense.weight', [H, H], rand(H * H, 0.3));
  put('head.norm.weight', [H], ones(H));
  if (architecture === 'ModernBertForMaskedLM') put('decoder.bias', [V], rand(V, 0.1));
  else {
    put('classifier.weight', [numLabels, H], rand(numLabels * H, 0.3));
    put('classifier.bias', [numLabels], rand(numLabels, 0.1));
  }
  writeSafetensors(join(dir, 'model.safetensors'), t);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(TOKENIZER_DIR, f), join(dir, f));
  return dir;
}
