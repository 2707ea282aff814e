/**
 * The ModernBERT encoder (embeddings → layers → final_norm) on the packed layout: every kernel
 * runs over the T real tokens of the batch, never over padding. Tensor names are Hugging Face's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModernBertConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { nativeKernels, setNumThreads } from '../kernels/native.js';
import { referenceKernels } from '../kernels/reference.js';
import type { Kernels } from '../kernels/types.js';
import { Tensor } from '../tensor/tensor.js';
import { type BatchInput, checkPacked, packBatch, padOutput, positionsFor, type PackedBatch } from './unpad.js';
import { WeightStore } from './weights.js';

export interface LoadOptions {
  /** 'native' (default) runs the addon; 'reference' the plain TypeScript kernels (slow; for tests). */
  kernels?: 'native' | 'reference';
  /** Threads of the native pool (default: MODERNBERT_NUM_THREADS, else all cores). */
  numThreads?: number;
}

export interface ForwardInput {
  inputIds: BatchInput;
  attentionMask?: BatchInput;
  outputHiddenStates?: boolean;
}

export interface PackedInput {
  inputIds: Int32Array;
  cuSeqlens: Int32Array;
  outputHiddenStates?: boolean;
}

export interface EncoderOutput {
  /** After final_norm: [T, hidden] packed, or [B, S, hidden] padded. */
  lastHiddenState: Tensor;
  /** Embedding output, then every layer's output (the last before final_norm): L + 1 tensors. */
  hiddenStates?: Tensor[];
}

interface LayerWeights {
  attnNorm: { w: Float32Array; b: Float32Array | null } | null;
  Wqkv: Float32Array;
  bqkv: Float32Array | null;
  Wo: Float32Array;
  bo: Float32Array | null;
  mlpNorm: { w: Float32Array; b: Float32Array | null };
  Wi: Float32Array;
  bi: Float32Array | null;
  Wo2: Float32Array;
  bo2: Float32Array | null;
}

export interface NormWeights {
  w: Float32Array;
  b: Float32Array | null;
}

/** cos/sin tables [maxPos, head_dim/2] in float32, computed as the reference does (float32 inv_freq and angles). */
export function ropeTables(theta: number, headDim: number, maxPos: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const f = Math.fround;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = f(1 / f(Math.pow(theta, f(f(2 * i) / headDim))));
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++)
    for (let i = 0; i < half; i++) {
      const angle = f(p * invFreq[i]);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  return { cos, sin };
}

/** Reads a config.json from a model folder. */
export function loadConfig(dir: string): ModernBertConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new ConfigError(`${dir} has no config.json (is it a Hugging Face model folder?)`);
  return ModernBertConfig.fromFile(path);
}

/** Resolves load options to a kernel set, applying the thread count. */
export function kernelsFor(options: LoadOptions): Kernels {
  if (options.numThreads !== undefined) setNumThreads(options.numThreads);
  return options.kernels === 'reference' ? referenceKernels : nativeKernels;
}

/** Growable scratch: one buffer per role, reused across calls and layers. */
class Workspace {
  private buffers = new Map<string, Float32Array>();

  get(role: string, size: number): Float32Array {
    let b = this.buffers.get(role);
    if (!b || b.length < size) {
      b = new Float32Array(size);
      this.buffers.set(role, b);
    }
    return b.subarray(0, size);
  }
}

export class ModernBertModel {
  readonly embeddings: { tok: Float32Array; norm: NormWeights };
  readonly layers: LayerWeights[];
  readonly finalNorm: NormWeights;
  private readonly rope: { global: { cos: Float32Array; sin: Float32Array }; local: { cos: Float32Array; sin: Float32Array } };
  private readonly ws = new Workspace();

  /** Reads the encoder's tensors from `store`; `prefix` is 'model.' inside task checkpoints, '' for a bare one. */
  constructor(
    readonly config: ModernBertConfig,
    store: WeightStore,
    prefix: string,
    readonly kernels: Kernels = nativeKernels,
  ) {
    const c = config;
    const H = c.hidden_size;
    const I = c.intermediate_size;
    const norm = (name: string): NormWeights => ({
      w: store.get(`${prefix}${name}.weight`, [H]),
      b: store.optional(`${prefix}${name}.bias`, [H], c.norm_bias),
    });
    this.embeddings = { tok: store.get(`${prefix}embeddings.tok_embeddings.weight`, [c.vocab_size, H]), norm: norm('embeddings.norm') };
    this.layers = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `${prefix}layers.${i}.`;
      this.layers.push({
        attnNorm: i === 0 ? null : norm(`layers.${i}.attn_norm`),
        Wqkv: store.get(`${p}attn.Wqkv.weight`, [3 * H, H]),
        bqkv: store.optional(`${p}attn.Wqkv.bias`, [3 * H], c.attention_bias),
        Wo: store.get(`${p}attn.Wo.weight`, [H, H]),
        bo: store.optional(`${p}attn.Wo.bias`, [H], c.attention_bias),
        mlpNorm: norm(`layers.${i}.mlp_norm`),
        Wi: store.get(`${p}mlp.Wi.weight`, [2 * I, H]),
        bi: store.optional(`${p}mlp.Wi.bias`, [2 * I], c.mlp_bias),
        Wo2: store.get(`${p}mlp.Wo.weight`, [H, I]),
        bo2: store.optional(`${p}mlp.Wo.bias`, [H], c.mlp_bias),
      });
    }
    this.finalNorm = norm('final_norm');
    this.rope = {
      global: ropeTables(c.global_rope_theta, c.head_dim, c.max_position_embeddings),
      local: ropeTables(c.local_rope_theta, c.head_dim, c.max_position_embeddings),
    };
  }

  /** Loads a bare ModernBertModel checkpoint, or the encoder inside a task checkpoint (the `model.` prefix). */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<ModernBertModel> {
    const config = loadConfig(dir);
    const store = WeightStore.fromDirectory(dir);
    const prefix = store.has('model.embeddings.tok_embeddings.weight') ? 'model.' : '';
    return new ModernBertModel(config, store, prefix, kernelsFor(options));
  }

  /** A padded batch in, padded [B, S, hidden] outputs out (zeros at padding). */
  forward(input: ForwardInput): EncoderOutput {
    const batch = this.pack(input);
    const out = this.encode(batch.inputIds, batch.cuSeqlens, batch.positions, input.outputHiddenStates ?? false);
    return {
      lastHiddenState: padOutput(out.lastHiddenState.data, this.config.hidden_size, batch),
      hiddenStates: out.hiddenStates?.map((h) => padOutput(h.data, this.config.hidden_size, batch)),
    };
  }

  /** Packed entry point: token ids of all sequences concatenated plus cuSeqlens; outputs [T, hidden]. */
  forwardPacked(input: PackedInput): EncoderOutput {
    checkPacked(input.inputIds, input.cuSeqlens, this.config.vocab_size, this.config.max_position_embeddings);
    return this.encode(input.inputIds, input.cuSeqlens, positionsFor(input.cuSeqlens), input.outputHiddenStates ?? false);
  }

  pack(input: ForwardInput): PackedBatch {
    return packBatch(input.inputIds, input.attentionMask, this.config.vocab_size, this.config.max_position_embeddings);
  }

  /** The encoder on validated packed input. */
  encode(ids: Int32Array, cuSeqlens: Int32Array, positions: Int32Array, outputHiddenStates: boolean): EncoderOutput {
    const c = this.config;
    const k = this.kernels;
    const T = ids.length;
    const H = c.hidden_size;
    const I = c.intermediate_size;
    const heads = c.num_attention_heads;
    const Dh = c.head_dim;
    const numSeqs = cuSeqlens.length - 1;
    const maxPos = c.max_position_embeddings;
    const scale = 1 / Math.sqrt(Dh);

    const h = new Float32Array(T * H); // the residual stream
    const normed = this.ws.get('normed', T * H);
    const qkv = this.ws.get('qkv', T * 3 * H);
    const attn = this.ws.get('attn', T * H);
    const wi = this.ws.get('wi', T * 2 * I);
    const act = this.ws.get('act', T * I);
    const hidden: Tensor[] = [];
    const keep = () => {
      if (outputHiddenStates) hidden.push(new Tensor(h.slice(), [T, H]));
    };

    k.embedding(normed, this.embeddings.tok, ids, T, H, c.vocab_size);
    k.layernorm(h, normed, this.embeddings.norm.w, this.embeddings.norm.b, T, H, c.norm_eps, null, null);
    keep();
    for (let i = 0; i < this.layers.length; i++) {
      const L = this.layers[i];
      const global = c.isGlobalLayer(i);
      const rope = global ? this.rope.global : this.rope.local;
      let attnIn: Float32Array = h;
      if (L.attnNorm) {
        k.layernorm(normed, h, L.attnNorm.w, L.attnNorm.b, T, H, c.norm_eps, null, null);
        attnIn = normed;
      }
      k.gemm(qkv, attnIn, L.Wqkv, L.bqkv, T, 3 * H, H, false, true, 0);
      k.rope(qkv, positions, rope.cos, rope.sin, T, heads, Dh, maxPos);
      k.attention(attn, null, qkv, cuSeqlens, numSeqs, heads, Dh, global ? -1 : c.window, scale);
      k.gemm(h, attn, L.Wo, L.bo, T, H, H, false, true, 1); // residual add fused: h += attn·Woᵀ
      k.layernorm(normed, h, L.mlpNorm.w, L.mlpNorm.b, T, H, c.norm_eps, null, null);
      k.gemm(wi, normed, L.Wi, L.bi, T, 2 * I, H, false, true, 0);
      k.geglu(act, wi, T, I, c.hiddenActivation);
      k.gemm(h, act, L.Wo2, L.bo2, T, H, I, false, true, 1);
      keep();
    }
    const last = new Float32Array(T * H);
    k.layernorm(last, h, this.finalNorm.w, this.finalNorm.b, T, H, c.norm_eps, null, null);
    return { lastHiddenState: new Tensor(last, [T, H]), hiddenStates: outputHiddenStates ? hidden : undefined };
  }
}
