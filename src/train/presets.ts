/**
 * Named ModernBERT configurations for pretraining from scratch: the real tokenizer's vocabulary and special
 * tokens, alternating global/local attention (global every third layer), GeGLU, pre-norm; only the sizes
 * differ. `base` is answerdotai/ModernBERT-base; `small` is what this machine can pretrain in a few hours
 * (measured in scripts/pretrain-default.ts); `tiny` is for smoke runs.
 */
import { ModernBertConfig } from '../config/config.js';
import { InputError } from '../errors.js';

const COMMON = {
  vocab_size: 50368, pad_token_id: 50283, bos_token_id: 50281, eos_token_id: 50282, cls_token_id: 50281, sep_token_id: 50282,
  global_attn_every_n_layers: 3, local_rope_theta: 10000, architectures: ['ModernBertForMaskedLM'],
};

export const PRESETS = {
  tiny: { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 3, num_attention_heads: 2, local_attention: 64 },
  small: { hidden_size: 256, intermediate_size: 384, num_hidden_layers: 6, num_attention_heads: 4, local_attention: 128 },
  base: { hidden_size: 768, intermediate_size: 1152, num_hidden_layers: 22, num_attention_heads: 12, local_attention: 128 },
} as const;

export type PresetName = keyof typeof PRESETS;

/** The preset's config; `overrides` (e.g. global_rope_theta, max_position_embeddings) take precedence. */
export function presetConfig(name: string, overrides: Record<string, unknown> = {}): ModernBertConfig {
  if (!(name in PRESETS)) throw new InputError(`unknown preset '${name}' (presets: ${Object.keys(PRESETS).join(', ')})`);
  return new ModernBertConfig({ ...COMMON, max_position_embeddings: 8192, global_rope_theta: 160000, ...PRESETS[name as PresetName], ...overrides });
}
