/**
 * ModernBertConfig: config.json with the Hugging Face keys and defaults (configuration_modernbert.py).
 * Reads both the legacy keys (global_rope_theta, global_attn_every_n_layers) and the newer
 * layer_types + rope_parameters form. Unknown keys are kept but ignored; invalid values throw
 * a ConfigError naming the key.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { Activation } from '../kernels/types.js';

export type ProblemType = 'regression' | 'single_label_classification' | 'multi_label_classification';
export type LayerType = 'full_attention' | 'sliding_attention';

const ACTIVATIONS: Record<string, Activation> = {
  gelu: Activation.GeluErf,
  gelu_new: Activation.GeluTanh,
  gelu_pytorch_tanh: Activation.GeluTanh,
  gelu_fast: Activation.GeluTanh,
  silu: Activation.Silu,
  swish: Activation.Silu,
  relu: Activation.Relu,
  linear: Activation.Identity,
};

export class ModernBertConfig {
  vocab_size = 50368;
  hidden_size = 768;
  intermediate_size = 1152;
  num_hidden_layers = 22;
  num_attention_heads = 12;
  hidden_activation = 'gelu';
  max_position_embeddings = 8192;
  initializer_range = 0.02;
  initializer_cutoff_factor = 2.0;
  norm_eps = 1e-5;
  norm_bias = false;
  pad_token_id = 50283;
  eos_token_id = 50282;
  bos_token_id = 50281;
  cls_token_id = 50281;
  sep_token_id = 50282;
  global_rope_theta = 160000;
  local_rope_theta = 10000;
  attention_bias = false;
  attention_dropout = 0;
  global_attn_every_n_layers = 3;
  local_attention = 128;
  embedding_dropout = 0;
  mlp_bias = false;
  mlp_dropout = 0;
  decoder_bias = true;
  classifier_pooling: 'cls' | 'mean' = 'cls';
  classifier_dropout = 0;
  classifier_bias = false;
  classifier_activation = 'gelu';
  sparse_prediction = false;
  sparse_pred_ignore_index = -100;
  tie_word_embeddings = true;
  architectures: string[] = [];
  id2label: Record<string, string> = { '0': 'LABEL_0', '1': 'LABEL_1' };
  label2id: Record<string, number> = { LABEL_0: 0, LABEL_1: 1 };
  problem_type: ProblemType | null = null;
  /** Per-layer attention kind; derived from global_attn_every_n_layers unless config.json gives it. */
  layer_types: LayerType[] = [];
  /** Every key of the source config.json, including those this library does not use (kept for saving). */
  raw: Record<string, unknown> = {};

  constructor(values: Record<string, unknown> = {}, source = 'config') {
    const fail = (key: string, msg: string): never => {
      throw new ConfigError(`${source}: '${key}' ${msg}`);
    };
    this.raw = { ...values };
    const self = this as unknown as Record<string, unknown>;
    for (const key of Object.keys(this)) {
      if (key === 'raw' || key === 'layer_types' || !(key in values)) continue;
      const v = values[key];
      const cur = self[key];
      if (v === null && key === 'problem_type') continue;
      if (typeof cur === 'number' && typeof v !== 'number') fail(key, `must be a number, got ${JSON.stringify(v)}`);
      if (typeof cur === 'boolean' && typeof v !== 'boolean') fail(key, `must be true or false, got ${JSON.stringify(v)}`);
      if (typeof cur === 'string' && typeof v !== 'string') fail(key, `must be a string, got ${JSON.stringify(v)}`);
      if (Array.isArray(cur) && !Array.isArray(v)) fail(key, `must be a list, got ${JSON.stringify(v)}`);
      if (typeof cur === 'object' && cur !== null && !Array.isArray(cur) && (typeof v !== 'object' || v === null || Array.isArray(v)))
        fail(key, `must be an object, got ${JSON.stringify(v)}`);
      self[key] = v;
    }
    // Newer transformers: rope_parameters per layer type. Only plain RoPE exists in ModernBERT; a scaled
    // rope_type (linear, yarn, ...) would change the angles, so it is refused rather than ignored.
    const rope = values.rope_parameters;
    if (rope !== undefined && rope !== null) {
      if (typeof rope !== 'object' || Array.isArray(rope)) fail('rope_parameters', `must be an object, got ${JSON.stringify(rope)}`);
      const perType = rope as Record<string, unknown>;
      for (const [layerType, target] of [['full_attention', 'global_rope_theta'], ['sliding_attention', 'local_rope_theta']] as const) {
        const p = perType[layerType];
        if (p === undefined) continue;
        const key = `rope_parameters.${layerType}`;
        if (typeof p !== 'object' || p === null || Array.isArray(p)) fail(key, `must be an object, got ${JSON.stringify(p)}`);
        const { rope_type: type, rope_theta: theta } = p as { rope_type?: unknown; rope_theta?: unknown };
        if (type !== undefined && type !== 'default') fail(`${key}.rope_type`, `${JSON.stringify(type)} is not supported (only "default")`);
        if (theta !== undefined) {
          if (typeof theta !== 'number' || !(theta > 0)) fail(`${key}.rope_theta`, `must be a positive number, got ${JSON.stringify(theta)}`);
          this[target] = theta as number;
        }
      }
    }
    if ('id2label' in values && !('label2id' in values))
      this.label2id = Object.fromEntries(Object.entries(this.id2label).map(([k, v]) => [v, Number(k)]));
    if (!('id2label' in values) && typeof values.num_labels === 'number')
      this.id2label = Object.fromEntries(Array.from({ length: values.num_labels }, (_, i) => [String(i), `LABEL_${i}`]));

    for (const key of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
      'max_position_embeddings', 'global_attn_every_n_layers', 'local_attention'] as const) {
      if (!Number.isInteger(this[key]) || this[key] <= 0) fail(key, `must be a positive integer, got ${this[key]}`);
    }
    if (this.hidden_size % this.num_attention_heads !== 0)
      fail('hidden_size', `(${this.hidden_size}) must be divisible by num_attention_heads (${this.num_attention_heads})`);
    if ((this.hidden_size / this.num_attention_heads) % 2 !== 0)
      fail('num_attention_heads', `gives an odd head size ${this.hidden_size / this.num_attention_heads}; RoPE needs an even one`);
    if (!(this.norm_eps > 0)) fail('norm_eps', `must be positive, got ${this.norm_eps}`);
    if (!(this.global_rope_theta > 0)) fail('global_rope_theta', `must be positive, got ${this.global_rope_theta}`);
    if (!(this.local_rope_theta > 0)) fail('local_rope_theta', `must be positive, got ${this.local_rope_theta}`);
    for (const key of ['hidden_activation', 'classifier_activation'] as const)
      if (!(this[key] in ACTIVATIONS)) fail(key, `'${this[key]}' is not a known activation (${Object.keys(ACTIVATIONS).join(', ')})`);
    if (this.classifier_pooling !== 'cls' && this.classifier_pooling !== 'mean')
      fail('classifier_pooling', `must be "cls" or "mean", got ${JSON.stringify(this.classifier_pooling)}`);
    if (this.problem_type !== null && !['regression', 'single_label_classification', 'multi_label_classification'].includes(this.problem_type))
      fail('problem_type', `'${this.problem_type}' is not regression, single_label_classification or multi_label_classification`);
    for (const key of ['pad_token_id', 'cls_token_id', 'sep_token_id'] as const)
      if (!Number.isInteger(this[key]) || this[key] < 0 || this[key] >= this.vocab_size)
        fail(key, `(${this[key]}) must be a token id in [0, vocab_size ${this.vocab_size})`);

    const types = values.layer_types;
    if (types !== undefined) {
      if (!Array.isArray(types) || types.length !== this.num_hidden_layers || !types.every((t) => t === 'full_attention' || t === 'sliding_attention'))
        fail('layer_types', `must list ${this.num_hidden_layers} entries of "full_attention" / "sliding_attention"`);
      this.layer_types = types as LayerType[];
    } else {
      this.layer_types = Array.from({ length: this.num_hidden_layers }, (_, i) =>
        i % this.global_attn_every_n_layers === 0 ? 'full_attention' : 'sliding_attention');
    }
  }

  static fromFile(path: string): ModernBertConfig {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
    }
    let values: unknown;
    try {
      values = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    if (values === null || typeof values !== 'object' || Array.isArray(values)) throw new ConfigError(`${path} must hold a JSON object`);
    return new ModernBertConfig(values as Record<string, unknown>, path);
  }

  get num_labels(): number {
    return Object.keys(this.id2label).length;
  }

  get head_dim(): number {
    return this.hidden_size / this.num_attention_heads;
  }

  /** Tokens each side a local layer sees: |i − j| ≤ local_attention / 2. */
  get window(): number {
    return Math.floor(this.local_attention / 2);
  }

  isGlobalLayer(i: number): boolean {
    return this.layer_types[i] === 'full_attention';
  }

  get hiddenActivation(): Activation {
    return ACTIVATIONS[this.hidden_activation];
  }

  get classifierActivation(): Activation {
    return ACTIVATIONS[this.classifier_activation];
  }

  /** The JSON to save: the source keys updated with this config's values. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.raw, model_type: 'modernbert' };
    for (const [k, v] of Object.entries(this)) if (k !== 'raw') out[k] = v;
    delete out.rope_parameters;
    return out;
  }
}
