/**
 * Writes a ModernBERT checkpoint with seeded random weights into a folder, for tests that need a
 * shape the fixtures do not have (a base-width model, a long max_position_embeddings).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../src/safetensors/safetensors.js';

/** mulberry32: a small deterministic PRNG, so a failing test sees the same weights on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomModelSpec {
  hidden_size: number;
  num_attention_heads: number;
  intermediate_size: number;
  num_hidden_layers: number;
  vocab_size: number;
  max_position_embeddings: number;
  local_attention: number;
  global_attn_every_n_layers: number;
}

/**
 * A bare ModernBertModel checkpoint (no `model.` prefix): uniform weights scaled by 1/sqrt(fan_in)
 * so activations stay O(1), LayerNorm weights near one. Returns the config written.
 */
export function writeRandomModel(dir: string, spec: RandomModelSpec, seed = 1, dtype: 'F32' | 'BF16' = 'F32'): Record<string, unknown> {
  const rand = rng(seed);
  const H = spec.hidden_size;
  const I = spec.intermediate_size;
  const tensors = new Map<string, TensorToWrite>();
  const add = (name: string, shape: number[], scale: number, center = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = center + (rand() * 2 - 1) * scale;
    tensors.set(name, { dtype, shape, data });
  };
  add('embeddings.tok_embeddings.weight', [spec.vocab_size, H], 0.5);
  add('embeddings.norm.weight', [H], 0.25, 1);
  for (let i = 0; i < spec.num_hidden_layers; i++) {
    if (i > 0) add(`layers.${i}.attn_norm.weight`, [H], 0.25, 1);
    add(`layers.${i}.attn.Wqkv.weight`, [3 * H, H], 1 / Math.sqrt(H));
    add(`layers.${i}.attn.Wo.weight`, [H, H], 1 / Math.sqrt(H));
    add(`layers.${i}.mlp_norm.weight`, [H], 0.25, 1);
    add(`layers.${i}.mlp.Wi.weight`, [2 * I, H], 1 / Math.sqrt(H));
    add(`layers.${i}.mlp.Wo.weight`, [H, I], 1 / Math.sqrt(I));
  }
  add('final_norm.weight', [H], 0.25, 1);
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const vocab = spec.vocab_size;
  const config = {
    architectures: ['ModernBertModel'],
    model_type: 'modernbert',
    ...spec,
    pad_token_id: vocab - 9,
    cls_token_id: vocab - 11,
    bos_token_id: vocab - 11,
    sep_token_id: vocab - 10,
    eos_token_id: vocab - 10,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return config;
}
