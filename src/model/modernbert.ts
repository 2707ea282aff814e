/**
 * The ModernBERT encoder (embeddings → layers → final_norm) on the packed layout: every kernel
 * runs over the T real tokens of the batch, never over padding. Tensor names are Hugging Face's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModernBertConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { alignedFloat32Array, nativeKernels, setNumThreads } from '../kernels/native.js';
import { referenceKernels } from '../kernels/reference.js';
import type { Dtype, Kernels, PackedLinear } from '../kernels/types.js';
import { Tensor } from '../tensor/tensor.js';
import { biasBackward } from '../train/bias.js';
import { TrainingError } from '../train/losses.js';
import { applyDropoutMask, Rng, sampleDropoutMask } from '../train/random.js';
import { type NamedParameters, Parameter } from './parameter.js';
import { type BatchInput, checkPacked, packBatch, padOutput, positionsFor, type PackedBatch } from './unpad.js';
import { WeightStore } from './weights.js';

export interface LoadOptions {
  /** 'native' (default) runs the addon; 'reference' the plain TypeScript kernels (slow; for tests). */
  kernels?: 'native' | 'reference';
  /** Threads of the native pool (default: MODERNBERT_NUM_THREADS, else all cores). */
  numThreads?: number;
  /**
   * Precision of the Linear layers and attention at inference (default 'float32'). 'bf16' rounds weights and
   * activations (and attention's q, k, v and softmax numerators) to bfloat16 and accumulates in float32: AMX or
   * AVX512-BF16 where the CPU has them (several times faster), else a portable path for the Linears that gives
   * the same results slowly, with float32 attention. Training always runs in float32.
   */
  dtype?: Dtype;
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

/** `encode`'s result: the outputs, plus the saved activations when the model is in training mode. */
export interface EncodeResult extends EncoderOutput {
  tape: EncoderTape | null;
}

interface LayerWeights {
  attnNorm: NormWeights | null;
  Wqkv: Parameter;
  bqkv: Parameter | null;
  Wo: Parameter;
  bo: Parameter | null;
  mlpNorm: NormWeights;
  Wi: Parameter;
  bi: Parameter | null;
  Wo2: Parameter;
  bo2: Parameter | null;
}

export interface NormWeights {
  w: Parameter;
  b: Parameter | null;
}

/** The values of an optional parameter (a bias), or null. */
export function dataOf(p: Parameter | null): Float32Array | null {
  return p ? p.data : null;
}

/** The gradient of a parameter; the model must be in training mode (gradients allocated). */
export function gradOf(p: Parameter): Float32Array {
  if (!p.grad) throw new TrainingError('parameter has no gradient buffer: call model.train() before the forward');
  return p.grad;
}

/** `[name, parameter]` pairs of a norm (weight, then bias when present). */
export function normParameters(name: string, n: NormWeights): NamedParameters {
  const out: NamedParameters = [[`${name}.weight`, n.w]];
  if (n.b) out.push([`${name}.bias`, n.b]);
  return out;
}

/** What a training forward saves of one layer for the backward (views of the model's workspace). */
interface LayerSaved {
  /** Residual stream entering the layer [T, hidden]. */
  hIn: Float32Array;
  /** attn_norm statistics [T] (absent on layer 0, which has no attn_norm). */
  attnMean: Float32Array | null;
  attnRstd: Float32Array | null;
  /** Wqkv output after RoPE [T, 3·hidden]. */
  qkv: Float32Array;
  /** Attention log-sum-exp [heads, T]. */
  lse: Float32Array;
  /** Attention output before Wo [T, hidden]. */
  attn: Float32Array;
  /** Residual stream after the attention block [T, hidden]. */
  hMid: Float32Array;
  mlpMean: Float32Array;
  mlpRstd: Float32Array;
  /** Wi output [T, 2·intermediate]. */
  wi: Float32Array;
  /** Dropout keep-masks of the attention output [T, hidden] and the GeGLU output [T, intermediate] (null when p = 0). */
  attnMask: Uint8Array | null;
  mlpMask: Uint8Array | null;
}

/**
 * The activations a training forward keeps for `backward`. The LayerNorm outputs and the GeGLU output are
 * not kept: the backward recomputes them from the saved inputs (cheap next to the GEMMs, and it saves
 * [T, hidden] + [T, intermediate] floats per layer).
 */
export interface EncoderTape {
  ids: Int32Array;
  cuSeqlens: Int32Array;
  positions: Int32Array;
  embMean: Float32Array;
  embRstd: Float32Array;
  /** Embedding dropout keep-mask [T, hidden] (null when embedding_dropout = 0). */
  embMask: Uint8Array | null;
  layers: LayerSaved[];
  /** Output of the last layer, before final_norm [T, hidden]. */
  hFinal: Float32Array;
  finalMean: Float32Array;
  finalRstd: Float32Array;
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

const DTYPES: readonly Dtype[] = ['float32', 'bf16'];

/** The load options' dtype, checked (JavaScript callers can pass anything). */
export function dtypeFor(options: LoadOptions): Dtype {
  const d = options.dtype ?? 'float32';
  if (!DTYPES.includes(d)) throw new ConfigError(`dtype must be one of ${DTYPES.join(', ')}, got ${JSON.stringify(d)}`);
  return d;
}

/** Resolves load options to a kernel set, applying the thread count. */
export function kernelsFor(options: LoadOptions): Kernels {
  if (options.numThreads !== undefined) setNumThreads(options.numThreads);
  return options.kernels === 'reference' ? referenceKernels : nativeKernels;
}

/** Growable scratch: one buffer per role, reused across calls and layers. */
class Workspace {
  private buffers = new Map<string, Float32Array>();
  private masks = new Map<string, Uint8Array>();

  get(role: string, size: number): Float32Array {
    let b = this.buffers.get(role);
    if (!b || b.length < size) {
      b = alignedFloat32Array(size);
      this.buffers.set(role, b);
    }
    return b.subarray(0, size);
  }

  /** A byte buffer (dropout masks), same reuse rules. */
  bytes(role: string, size: number): Uint8Array {
    let b = this.masks.get(role);
    if (!b || b.length < size) {
      b = new Uint8Array(size);
      this.masks.set(role, b);
    }
    return b.subarray(0, size);
  }
}

export class ModernBertModel {
  readonly embeddings: { tok: Parameter; norm: NormWeights };
  readonly layers: LayerWeights[];
  readonly finalNorm: NormWeights;
  /**
   * Inference Linears run on weights packed once (in `dtype`), on first use after loading or after leaving
   * training mode; training runs on the parameters' `.data`, which the optimiser changes every step.
   */
  private packed = new Map<Parameter, PackedLinear>();
  private isTraining = false;
  /** Draws every dropout mask (the encoder's and the heads'); seed it with `manualSeed` for reproducible runs. */
  readonly rng = new Rng(0);
  private readonly rope: { global: { cos: Float32Array; sin: Float32Array }; local: { cos: Float32Array; sin: Float32Array } };
  private readonly ws = new Workspace();

  /** Reads the encoder's tensors from `store`; `prefix` is 'model.' inside task checkpoints, '' for a bare one. */
  constructor(
    readonly config: ModernBertConfig,
    store: WeightStore,
    prefix: string,
    readonly kernels: Kernels = nativeKernels,
    /** Precision of the inference Linears and attention (LoadOptions.dtype). */
    readonly dtype: Dtype = 'float32',
    /**
     * Read each layer's Linear weights through one scratch buffer straight into their packed form (`dtype`),
     * so loading holds a checkpoint once; `.data` brings the float32 values back on first use (training,
     * saving): unpacked exactly from float32, read again from the checkpoint under bf16 (its packing rounds).
     * Off for fresh weights (training from scratch).
     */
    packOnLoad = false,
  ) {
    const c = config;
    const H = c.hidden_size;
    const I = c.intermediate_size;
    const param = (name: string, shape: number[]) => new Parameter(store.get(name, shape), shape);
    const scratch = packOnLoad ? new Float32Array(Math.max(3 * H * H, 2 * I * H)) : null;
    const linear = (name: string, shape: [number, number]): Parameter => {
      if (!scratch) return param(name, shape);
      const [N, K] = shape;
      const packed = this.kernels.packLinear(store.get(name, shape, scratch.subarray(0, N * K)), N, K, dtype);
      const W = Parameter.released(shape, packed.dtype === 'float32'
        ? () => this.kernels.unpackLinear(packed as PackedLinear & { dtype: 'float32' })
        : () => store.get(name, shape));
      this.packed.set(W, packed);
      return W;
    };
    const optional = (name: string, shape: number[], enabled: boolean) => (enabled ? param(name, shape) : null);
    const norm = (name: string): NormWeights => ({
      w: param(`${prefix}${name}.weight`, [H]),
      b: optional(`${prefix}${name}.bias`, [H], c.norm_bias),
    });
    this.embeddings = { tok: param(`${prefix}embeddings.tok_embeddings.weight`, [c.vocab_size, H]), norm: norm('embeddings.norm') };
    this.layers = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `${prefix}layers.${i}.`;
      this.layers.push({
        attnNorm: i === 0 ? null : norm(`layers.${i}.attn_norm`),
        Wqkv: linear(`${p}attn.Wqkv.weight`, [3 * H, H]),
        bqkv: optional(`${p}attn.Wqkv.bias`, [3 * H], c.attention_bias),
        Wo: linear(`${p}attn.Wo.weight`, [H, H]),
        bo: optional(`${p}attn.Wo.bias`, [H], c.attention_bias),
        mlpNorm: norm(`layers.${i}.mlp_norm`),
        Wi: linear(`${p}mlp.Wi.weight`, [2 * I, H]),
        bi: optional(`${p}mlp.Wi.bias`, [2 * I], c.mlp_bias),
        Wo2: linear(`${p}mlp.Wo.weight`, [H, I]),
        bo2: optional(`${p}mlp.Wo.bias`, [H], c.mlp_bias),
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
    return new ModernBertModel(config, store, prefix, kernelsFor(options), dtypeFor(options), true);
  }

  /** Training mode: the forward saves activations for the backward (set by the task model's train()/eval()). */
  get training(): boolean {
    return this.isTraining;
  }

  /**
   * Entering training mode drops the packed weights (after rebuilding the float32 values they replaced): the
   * next inference forward repacks the trained values.
   */
  set training(mode: boolean) {
    if (mode) {
      for (const W of this.packed.keys()) void W.data;
      this.packed.clear();
    }
    this.isTraining = mode;
  }

  /** The packed inference copy of Linear weight W, if it has one now (profiles and memory accounting read it). */
  packedWeight(W: Parameter): PackedLinear | undefined {
    return this.packed.get(W);
  }

  /**
   * C[M,N] = beta·C + A[M,K]·Wᵀ (+ bias) for a Linear weight W [N, K]: in inference from W packed once in
   * `dtype` (kept until training mode), in training by gemm on `W.data` in float32. Heads use it too.
   */
  linear(C: Float32Array, A: Float32Array, W: Parameter, bias: Parameter | null, M: number, beta: 0 | 1): void {
    const [N, K] = W.shape;
    if (this.isTraining) {
      this.kernels.gemm(C, A, W.data, dataOf(bias), M, N, K, false, true, beta);
      return;
    }
    let p = this.packed.get(W);
    if (!p) {
      const packed = this.kernels.packLinear(W.data, N, K, this.dtype);
      this.packed.set(W, packed);
      // A float32 packing holds the same values, so the weight is kept once; the tied embedding table stays,
      // the embedding lookup reads it. bf16 rounds, so its float32 source stays for training and saving.
      if (packed.dtype === 'float32' && W !== this.embeddings.tok) W.release(() => this.kernels.unpackLinear(packed));
      p = packed;
    }
    this.kernels.linear(C, A, p, dataOf(bias), M, beta);
  }

  /** The encoder's parameters with Hugging Face names, `prefix` prepended ('model.' inside a task model). */
  namedParameters(prefix = ''): NamedParameters {
    const out: NamedParameters = [[`${prefix}embeddings.tok_embeddings.weight`, this.embeddings.tok]];
    out.push(...normParameters(`${prefix}embeddings.norm`, this.embeddings.norm));
    this.layers.forEach((L, i) => {
      const p = `${prefix}layers.${i}.`;
      if (L.attnNorm) out.push(...normParameters(`${p}attn_norm`, L.attnNorm));
      out.push([`${p}attn.Wqkv.weight`, L.Wqkv]);
      if (L.bqkv) out.push([`${p}attn.Wqkv.bias`, L.bqkv]);
      out.push([`${p}attn.Wo.weight`, L.Wo]);
      if (L.bo) out.push([`${p}attn.Wo.bias`, L.bo]);
      out.push(...normParameters(`${p}mlp_norm`, L.mlpNorm));
      out.push([`${p}mlp.Wi.weight`, L.Wi]);
      if (L.bi) out.push([`${p}mlp.Wi.bias`, L.bi]);
      out.push([`${p}mlp.Wo.weight`, L.Wo2]);
      if (L.bo2) out.push([`${p}mlp.Wo.bias`, L.bo2]);
    });
    out.push(...normParameters(`${prefix}final_norm`, this.finalNorm));
    return out;
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
    const out = this.encode(input.inputIds, input.cuSeqlens, positionsFor(input.cuSeqlens), input.outputHiddenStates ?? false);
    return { lastHiddenState: out.lastHiddenState, hiddenStates: out.hiddenStates };
  }

  pack(input: ForwardInput): PackedBatch {
    return packBatch(input.inputIds, input.attentionMask, this.config.vocab_size, this.config.max_position_embeddings);
  }

  /** Seeds the dropout random stream. */
  manualSeed(seed: number): void {
    this.rng.state = seed;
  }

  /** Workspace views for a training forward's saved activations (reused across steps, grown on demand). */
  private newTape(ids: Int32Array, cuSeqlens: Int32Array, positions: Int32Array, h: Float32Array): EncoderTape {
    const c = this.config;
    const T = ids.length;
    const H = c.hidden_size;
    const ws = this.ws;
    const mask = (role: string, p: number, n: number) => (p > 0 ? ws.bytes(role, n) : null);
    return {
      ids, cuSeqlens, positions,
      embMean: ws.get('save.embMean', T),
      embRstd: ws.get('save.embRstd', T),
      embMask: mask('save.embMask', c.embedding_dropout, T * H),
      layers: this.layers.map((L, i) => ({
        hIn: ws.get(`save.${i}.hIn`, T * H),
        attnMean: L.attnNorm ? ws.get(`save.${i}.attnMean`, T) : null,
        attnRstd: L.attnNorm ? ws.get(`save.${i}.attnRstd`, T) : null,
        qkv: ws.get(`save.${i}.qkv`, T * 3 * H),
        lse: ws.get(`save.${i}.lse`, c.num_attention_heads * T),
        attn: ws.get(`save.${i}.attn`, T * H),
        hMid: ws.get(`save.${i}.hMid`, T * H),
        mlpMean: ws.get(`save.${i}.mlpMean`, T),
        mlpRstd: ws.get(`save.${i}.mlpRstd`, T),
        wi: ws.get(`save.${i}.wi`, T * 2 * c.intermediate_size),
        attnMask: mask(`save.${i}.attnMask`, c.attention_dropout, T * H),
        mlpMask: mask(`save.${i}.mlpMask`, c.mlp_dropout, T * c.intermediate_size),
      })),
      hFinal: h,
      finalMean: ws.get('save.finalMean', T),
      finalRstd: ws.get('save.finalRstd', T),
    };
  }

  /**
   * The encoder on validated packed input. In training mode it also returns the tape of saved activations
   * for `backward`; the tape lives in the model's workspace, so the next training forward overwrites it.
   */
  encode(ids: Int32Array, cuSeqlens: Int32Array, positions: Int32Array, outputHiddenStates: boolean): EncodeResult {
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

    const h = alignedFloat32Array(T * H); // the residual stream
    const last = alignedFloat32Array(T * H);
    const tape = this.training ? this.newTape(ids, cuSeqlens, positions, h) : null;
    const normed = this.ws.get('normed', T * H);
    const act = this.ws.get('act', T * I);
    // Inference: one scratch buffer per role for all layers. Training: per-layer saved buffers (below).
    const qkvScratch = tape ? null : this.ws.get('qkv', T * 3 * H);
    const attnScratch = tape ? null : this.ws.get('attn', T * H);
    const wiScratch = tape ? null : this.ws.get('wi', T * 2 * I);
    const hidden: Tensor[] = [];
    const keep = () => {
      if (outputHiddenStates) hidden.push(new Tensor(h.slice(), [T, H]));
    };

    k.embedding(normed, this.embeddings.tok.data, ids, T, H, c.vocab_size);
    const en = this.embeddings.norm;
    k.layernorm(h, normed, en.w.data, dataOf(en.b), T, H, c.norm_eps, tape?.embMean ?? null, tape?.embRstd ?? null);
    if (tape?.embMask) this.dropout(h, tape.embMask, c.embedding_dropout);
    keep();
    for (let i = 0; i < this.layers.length; i++) {
      const L = this.layers[i];
      const s = tape?.layers[i] ?? null;
      const global = c.isGlobalLayer(i);
      const rope = global ? this.rope.global : this.rope.local;
      const qkv = s ? s.qkv : qkvScratch!;
      const attn = s ? s.attn : attnScratch!;
      const wi = s ? s.wi : wiScratch!;
      if (s) s.hIn.set(h);
      let attnIn: Float32Array = h;
      if (L.attnNorm) {
        k.layernorm(normed, h, L.attnNorm.w.data, dataOf(L.attnNorm.b), T, H, c.norm_eps, s?.attnMean ?? null, s?.attnRstd ?? null);
        attnIn = normed;
      }
      this.linear(qkv, attnIn, L.Wqkv, L.bqkv, T, 0);
      k.rope(qkv, positions, rope.cos, rope.sin, T, heads, Dh, maxPos);
      // bf16 attention in inference only: training keeps float32 (its backward recomputes P from a float32 lse).
      k.attention(attn, s ? s.lse : null, qkv, cuSeqlens, numSeqs, heads, Dh, global ? -1 : c.window, scale, !s && this.dtype === 'bf16');
      if (s?.attnMask) {
        // Dropout on the attention output (HF's out_drop) before the residual add.
        const o = this.ws.get('attnOut', T * H);
        this.linear(o, attn, L.Wo, L.bo, T, 0);
        this.dropout(o, s.attnMask, c.attention_dropout);
        k.addInto(h, o, T * H);
      } else {
        this.linear(h, attn, L.Wo, L.bo, T, 1); // residual add fused: h += attn·Woᵀ
      }
      if (s) s.hMid.set(h);
      k.layernorm(normed, h, L.mlpNorm.w.data, dataOf(L.mlpNorm.b), T, H, c.norm_eps, s?.mlpMean ?? null, s?.mlpRstd ?? null);
      this.linear(wi, normed, L.Wi, L.bi, T, 0);
      k.geglu(act, wi, T, I, c.hiddenActivation);
      if (s?.mlpMask) this.dropout(act, s.mlpMask, c.mlp_dropout);
      this.linear(h, act, L.Wo2, L.bo2, T, 1);
      keep();
    }
    const fn = this.finalNorm;
    k.layernorm(last, h, fn.w.data, dataOf(fn.b), T, H, c.norm_eps, tape?.finalMean ?? null, tape?.finalRstd ?? null);
    return { lastHiddenState: new Tensor(last, [T, H]), hiddenStates: outputHiddenStates ? hidden : undefined, tape };
  }

  /** Training dropout in place: draws a keep-mask from the model's stream into `mask`, then applies it. */
  dropout(x: Float32Array, mask: Uint8Array, p: number): void {
    sampleDropoutMask(mask, x.length, p, this.rng);
    applyDropoutMask(x, mask, x.length, p);
  }

  /**
   * Backward of `encode`: given d loss / d last_hidden_state [T, hidden] (dLast, left unchanged), adds the
   * gradient of every encoder parameter into its `.grad`. Recomputes the LayerNorm and GeGLU outputs it needs.
   */
  backward(tape: EncoderTape, dLast: Float32Array): void {
    const c = this.config;
    const k = this.kernels;
    const bk = this.kernels;
    const ws = this.ws;
    const T = tape.ids.length;
    const H = c.hidden_size;
    const I = c.intermediate_size;
    const heads = c.num_attention_heads;
    const Dh = c.head_dim;
    const numSeqs = tape.cuSeqlens.length - 1;
    const maxPos = c.max_position_embeddings;
    const scale = 1 / Math.sqrt(Dh);
    const act = c.hiddenActivation;

    const dh = ws.get('grad.dh', T * H); // d loss / d residual stream, walking backwards
    const dnormed = ws.get('grad.dnormed', T * H);
    const dx = ws.get('grad.dx', T * H); // a LayerNorm's input gradient, before it joins the residual
    const dattn = ws.get('grad.dattn', T * H);
    const dqkv = ws.get('grad.dqkv', T * 3 * H);
    const dact = ws.get('grad.dact', T * I);
    const dwi = ws.get('grad.dwi', T * 2 * I);
    const normed = ws.get('normed', T * H);
    const actOut = ws.get('act', T * I);

    const fn = this.finalNorm;
    bk.layernormBackward(dh, gradOf(fn.w), fn.b ? gradOf(fn.b) : null, dLast, tape.hFinal, fn.w.data, tape.finalMean, tape.finalRstd, T, H);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const L = this.layers[i];
      const s = tape.layers[i];
      const global = c.isGlobalLayer(i);
      const rope = global ? this.rope.global : this.rope.local;

      // MLP block: hOut = hMid + Wo2(drop(act(Wi_in) · Wi_gate)), Wi over mlp_norm(hMid).
      k.geglu(actOut, s.wi, T, I, act);
      if (s.mlpMask) applyDropoutMask(actOut, s.mlpMask, T * I, c.mlp_dropout);
      k.gemm(gradOf(L.Wo2), dh, actOut, null, H, I, T, true, false, 1);
      if (L.bo2) biasBackward(gradOf(L.bo2), dh, T, H);
      k.gemm(dact, dh, L.Wo2.data, null, T, I, H, false, false, 0);
      if (s.mlpMask) applyDropoutMask(dact, s.mlpMask, T * I, c.mlp_dropout);
      bk.gegluBackward(dwi, dact, s.wi, T, I, act);
      k.layernorm(normed, s.hMid, L.mlpNorm.w.data, dataOf(L.mlpNorm.b), T, H, c.norm_eps, null, null);
      k.gemm(gradOf(L.Wi), dwi, normed, null, 2 * I, H, T, true, false, 1);
      if (L.bi) biasBackward(gradOf(L.bi), dwi, T, 2 * I);
      k.gemm(dnormed, dwi, L.Wi.data, null, T, H, 2 * I, false, false, 0);
      const mn = L.mlpNorm;
      bk.layernormBackward(dx, gradOf(mn.w), mn.b ? gradOf(mn.b) : null, dnormed, s.hMid, mn.w.data, s.mlpMean, s.mlpRstd, T, H);
      bk.addInto(dh, dx, T * H);

      // Attention block: hMid = hIn + drop(Wo(attention(rope(Wqkv(attn_norm(hIn)))))).
      let dOut = dh;
      if (s.attnMask) {
        dOut = ws.get('grad.dout', T * H);
        dOut.set(dh);
        applyDropoutMask(dOut, s.attnMask, T * H, c.attention_dropout);
      }
      k.gemm(gradOf(L.Wo), dOut, s.attn, null, H, H, T, true, false, 1);
      if (L.bo) biasBackward(gradOf(L.bo), dOut, T, H);
      k.gemm(dattn, dOut, L.Wo.data, null, T, H, H, false, false, 0);
      bk.attentionBackward(dqkv, dattn, s.qkv, s.attn, s.lse, tape.cuSeqlens, numSeqs, heads, Dh, global ? -1 : c.window, scale);
      bk.ropeBackward(dqkv, tape.positions, rope.cos, rope.sin, T, heads, Dh, maxPos);
      let attnIn = s.hIn;
      if (L.attnNorm) {
        k.layernorm(normed, s.hIn, L.attnNorm.w.data, dataOf(L.attnNorm.b), T, H, c.norm_eps, null, null);
        attnIn = normed;
      }
      k.gemm(gradOf(L.Wqkv), dqkv, attnIn, null, 3 * H, H, T, true, false, 1);
      if (L.bqkv) biasBackward(gradOf(L.bqkv), dqkv, T, 3 * H);
      if (L.attnNorm) {
        const an = L.attnNorm;
        k.gemm(dnormed, dqkv, L.Wqkv.data, null, T, H, 3 * H, false, false, 0);
        bk.layernormBackward(dx, gradOf(an.w), an.b ? gradOf(an.b) : null, dnormed, s.hIn, an.w.data, s.attnMean!, s.attnRstd!, T, H);
        bk.addInto(dh, dx, T * H);
      } else {
        k.gemm(dh, dqkv, L.Wqkv.data, null, T, H, 3 * H, false, false, 1); // layer 0: straight into the residual
      }
    }

    // Embeddings: h0 = drop(norm(tok_embeddings[ids])).
    if (tape.embMask) applyDropoutMask(dh, tape.embMask, T * H, c.embedding_dropout);
    const emb = ws.get('normed', T * H);
    k.embedding(emb, this.embeddings.tok.data, tape.ids, T, H, c.vocab_size);
    const demb = ws.get('grad.dnormed', T * H);
    const en = this.embeddings.norm;
    bk.layernormBackward(demb, gradOf(en.w), en.b ? gradOf(en.b) : null, dh, emb, en.w.data, tape.embMean, tape.embRstd, T, H);
    bk.embeddingBackward(gradOf(this.embeddings.tok), demb, tape.ids, T, H, c.vocab_size, c.pad_token_id);
  }
}
