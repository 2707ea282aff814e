/**
 * Task heads on the encoder: masked LM, sequence classification (cls / mean pooling) and token
 * classification, with Hugging Face's module and tensor names (head.dense, head.norm, decoder, classifier).
 * Given labels, `forward` also returns the loss HF computes; in training mode (`train()`), `loss.backward()`
 * fills `.grad` on every parameter.
 */
import type { ModernBertConfig, ProblemType } from '../config/config.js';
import { InputError } from '../errors.js';
import { alignedFloat32Array } from '../kernels/native.js';
import type { Kernels } from '../kernels/types.js';
import { Tensor } from '../tensor/tensor.js';
import { biasBackward } from '../train/bias.js';
import { bceWithLogits, crossEntropy, IGNORE_INDEX, Loss, meanSquaredError, TrainingError } from '../train/losses.js';
import { applyDropoutMask } from '../train/random.js';
import {
  dataOf, dtypeFor, type EncodeResult, type EncoderOutput, type ForwardInput, gradOf, kernelsFor, type LoadOptions, loadConfig,
  ModernBertModel, normParameters, type NormWeights, type PackedInput,
} from './modernbert.js';
import { InitialWeights, WeightsWithFallback } from './init.js';
import { FlatParameters, type NamedParameters, Parameter } from './parameter.js';
import { type BatchInput, checkPacked, padOutput, positionsFor, type PackedBatch } from './unpad.js';
import { WeightStore } from './weights.js';

/** What `PredictionHead.run` keeps for its backward (training only). */
interface HeadSaved {
  N: number;
  /** Input rows [N, hidden]. */
  x: Float32Array;
  /** dense output before the activation [N, hidden]. */
  z: Float32Array;
  /** Activation output, the norm's input [N, hidden]. */
  a: Float32Array;
  mean: Float32Array;
  rstd: Float32Array;
}

function param(store: WeightStore, name: string, shape: number[]): Parameter {
  return new Parameter(store.get(name, shape), shape);
}

/** `head`: dense → activation → LayerNorm, on rows [N, hidden]. */
export class PredictionHead {
  readonly dense: Parameter;
  readonly denseBias: Parameter | null;
  readonly norm: NormWeights;

  constructor(readonly config: ModernBertConfig, store: WeightStore) {
    const H = config.hidden_size;
    this.dense = param(store, 'head.dense.weight', [H, H]);
    this.denseBias = config.classifier_bias ? param(store, 'head.dense.bias', [H]) : null;
    this.norm = { w: param(store, 'head.norm.weight', [H]), b: config.norm_bias ? param(store, 'head.norm.bias', [H]) : null };
  }

  namedParameters(): NamedParameters {
    const out: NamedParameters = [['head.dense.weight', this.dense]];
    if (this.denseBias) out.push(['head.dense.bias', this.denseBias]);
    return [...out, ...normParameters('head.norm', this.norm)];
  }

  /** out[N, hidden] = norm(act(x·denseᵀ + b)); with `save`, returns what the backward needs. */
  run(model: ModernBertModel, out: Float32Array, x: Float32Array, N: number, save = false): HeadSaved | null {
    const c = this.config;
    const k = model.kernels;
    const H = c.hidden_size;
    const z = alignedFloat32Array(N * H);
    model.linear(z, x, this.dense, this.denseBias, N, 0);
    const a = save ? alignedFloat32Array(N * H) : z; // inference activates in place
    k.activation(a, z, N * H, c.classifierActivation);
    const mean = save ? alignedFloat32Array(N) : null;
    const rstd = save ? alignedFloat32Array(N) : null;
    k.layernorm(out, a, this.norm.w.data, dataOf(this.norm.b), N, H, c.norm_eps, mean, rstd);
    return save ? { N, x, z, a, mean: mean!, rstd: rstd! } : null;
  }

  /** Backward of `run`: writes d loss / d x into dx [N, hidden] from dout [N, hidden]; adds the head's gradients. */
  backward(k: Kernels, dx: Float32Array, dout: Float32Array, s: HeadSaved): void {
    const c = this.config;
    const H = c.hidden_size;
    const dz = alignedFloat32Array(s.N * H);
    k.layernormBackward(dz, gradOf(this.norm.w), this.norm.b ? gradOf(this.norm.b) : null, dout, s.a, this.norm.w.data, s.mean, s.rstd, s.N, H);
    k.activationBackward(dz, dz, s.z, s.N * H, c.classifierActivation);
    k.gemm(gradOf(this.dense), dz, s.x, null, H, H, s.N, true, false, 1);
    if (this.denseBias) biasBackward(gradOf(this.denseBias), dz, s.N, H);
    k.gemm(dx, dz, this.dense.data, null, s.N, H, H, false, false, 0);
  }
}

export interface TaskOutput extends EncoderOutput {
  logits: Tensor;
  /** Present when labels were given; `loss.backward()` works after a training-mode forward. */
  loss?: Loss;
}

export interface SequenceClassifierOutput extends TaskOutput {
  /** The pooled vector fed to `head` [B, hidden] (first real token for 'cls', mean over real tokens for 'mean'). */
  pooled: Tensor;
}

/** Labels per token, padded like inputIds ([B, S]); -100 marks positions without a label. */
export type TokenLabels = BatchInput;

/**
 * Labels per sequence: class ids [B] (an Int32Array, an int32 Tensor, or a plain array: single-label),
 * 0/1 targets [B, num_labels] (rows of numbers, a Float32Array or a float32 Tensor: multi-label), or
 * values [B] / [B, num_labels] for regression.
 */
export type SequenceLabels = ArrayLike<number> | ArrayLike<number>[] | Tensor<Float32Array> | Tensor<Int32Array>;

/** The head's outputs, its logits, and (training) the backward from d loss / d logits to d loss / d last_hidden_state. */
interface HeadPass<O, L> {
  outputs: O;
  logits: Float32Array;
  backward: ((dlogits: Float32Array, labels: L) => Float32Array) | null;
  /** The labels of the logits' rows when the head ran on a subset of tokens (sparse prediction). */
  lossLabels?: L;
}

abstract class TaskModel<Out extends TaskOutput, Labels, PackedLabels> {
  /** Training mode (dropout active, activations saved for the backward); false after loading, as in PyTorch's eval(). */
  training = false;
  private flat: FlatParameters | null = null;
  /** Counts training forwards: a loss can only run its backward while its activations are the latest. */
  private forwards = 0;

  constructor(
    readonly model: ModernBertModel,
    readonly head: PredictionHead,
  ) {}

  get config(): ModernBertConfig {
    return this.model.config;
  }

  protected get kernels(): Kernels {
    return this.model.kernels;
  }

  /** `[name, parameter]` with Hugging Face names, each tensor once (a tied decoder shares the embeddings' entry). */
  namedParameters(): NamedParameters {
    return [...this.model.namedParameters('model.'), ...this.head.namedParameters(), ...this.ownParameters()];
  }

  protected abstract ownParameters(): NamedParameters;

  /** classifier_dropout on the head output, in place, in training mode; returns the keep-mask (null when off). */
  protected classifierDropout(x: Float32Array): Uint8Array | null {
    const p = this.config.classifier_dropout;
    if (!this.training || p <= 0) return null;
    const mask = new Uint8Array(x.length);
    this.model.dropout(x, mask, p);
    return mask;
  }

  /** Seeds the dropout random stream (encoder and head share it). */
  manualSeed(seed: number): void {
    this.model.manualSeed(seed);
  }

  /**
   * The parameters in one buffer with a view per tensor, and the gradients in a second buffer of the
   * same layout (allocated on the first call, which moves the weights there; then reused).
   */
  parameters(): FlatParameters {
    this.flat ??= new FlatParameters(this.namedParameters());
    return this.flat;
  }

  /** Training mode: the forward saves what `loss.backward()` needs; gradients are allocated (zero). */
  train(mode = true): this {
    if (mode) this.parameters();
    this.training = mode;
    this.model.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every gradient to zero (backward passes accumulate, as in PyTorch). */
  zeroGrad(): void {
    this.flat?.zeroGrad();
  }

  /** A padded batch in; logits and hidden states in the padded layout (zeros at padding); `loss` with labels. */
  forward(input: ForwardInput & { labels?: Labels }): Out {
    const batch = this.model.pack(input);
    const enc = this.model.encode(batch.inputIds, batch.cuSeqlens, batch.positions, input.outputHiddenStates ?? false);
    if (enc.tape) this.forwards++;
    const labels = input.labels === undefined ? undefined : this.packLabels(input.labels, batch);
    const pass = this.headForward(enc, batch.cuSeqlens, labels);
    const H = this.config.hidden_size;
    const out = this.padOutputs({
      ...pass.outputs,
      lastHiddenState: padOutput(enc.lastHiddenState.data, H, batch),
      hiddenStates: enc.hiddenStates?.map((h) => padOutput(h.data, H, batch)),
    } as Out, batch);
    if (labels !== undefined) out.loss = this.loss(enc, pass, pass.lossLabels ?? labels, batch.cuSeqlens);
    return out;
  }

  /** Packed input (ids + cuSeqlens) in; outputs per real token ([T, …]) or per sequence; `loss` with labels. */
  forwardPacked(input: PackedInput & { labels?: PackedLabels }): Out {
    checkPacked(input.inputIds, input.cuSeqlens, this.config.vocab_size, this.config.max_position_embeddings);
    const enc = this.model.encode(input.inputIds, input.cuSeqlens, positionsFor(input.cuSeqlens), input.outputHiddenStates ?? false);
    if (enc.tape) this.forwards++;
    const labels = input.labels === undefined ? undefined : this.checkPackedLabels(input.labels, input.cuSeqlens);
    const pass = this.headForward(enc, input.cuSeqlens, labels);
    const out = { lastHiddenState: enc.lastHiddenState, hiddenStates: enc.hiddenStates, ...pass.outputs } as Out;
    if (labels !== undefined) out.loss = this.loss(enc, pass, pass.lossLabels ?? labels, input.cuSeqlens);
    return out;
  }

  private loss(enc: EncodeResult, pass: HeadPass<Omit<Out, keyof EncoderOutput>, PackedLabels>, labels: PackedLabels, cuSeqlens: Int32Array): Loss {
    const dlogits = pass.backward ? alignedFloat32Array(pass.logits.length) : null;
    const value = this.lossOf(pass.logits, labels, dlogits, cuSeqlens);
    if (!pass.backward || !enc.tape) return new Loss(value, null);
    const forward = this.forwards;
    const tape = enc.tape;
    const headBackward = pass.backward;
    return new Loss(value, () => {
      if (forward !== this.forwards)
        throw new TrainingError('a later training forward overwrote the activations of this loss: call loss.backward() before the next forward');
      this.model.backward(tape, headBackward(dlogits!, labels));
    });
  }

  protected abstract headForward(enc: EncodeResult, cuSeqlens: Int32Array, labels?: PackedLabels): HeadPass<Omit<Out, keyof EncoderOutput>, PackedLabels>;
  protected abstract padOutputs(out: Out, batch: PackedBatch): Out;
  protected abstract packLabels(labels: Labels, batch: PackedBatch): PackedLabels;
  protected abstract checkPackedLabels(labels: PackedLabels, cuSeqlens: Int32Array): PackedLabels;
  /** The mean loss; writes d loss / d logits into `grad` when given. */
  protected abstract lossOf(logits: Float32Array, labels: PackedLabels, grad: Float32Array | null, cuSeqlens: Int32Array): number;
}

/** Loading options of the task models: the label set may differ from the checkpoint's (a new classifier). */
export interface TaskLoadOptions extends LoadOptions {
  /** Label names by id ("0" → "negative", ...); replaces the checkpoint's. */
  id2label?: Record<string, string>;
  /** Number of labels (names LABEL_0 …) when id2label is not given. */
  numLabels?: number;
  problemType?: ProblemType;
  /** Sequence classification: pool the [CLS] state or the mean of the token states (replaces the checkpoint's). */
  classifierPooling?: 'cls' | 'mean';
  /** Seed of any freshly initialised tensors (default 0). */
  seed?: number;
}

/** The config with the options' label set applied. */
function withLabels(config: ModernBertConfig, o: TaskLoadOptions): ModernBertConfig {
  const id2label = o.id2label ?? (o.numLabels !== undefined
    ? Object.fromEntries(Array.from({ length: o.numLabels }, (_, i) => [String(i), `LABEL_${i}`]))
    : undefined);
  if (id2label) {
    config.id2label = { ...id2label };
    config.label2id = Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)]));
  }
  if (o.problemType) config.problem_type = o.problemType;
  if (o.classifierPooling) config.classifier_pooling = o.classifierPooling;
  return config;
}

/**
 * Reads a task checkpoint. Task heads may start fresh: a classifier whose label count differs from the
 * checkpoint's, or head/classifier tensors a masked-LM or bare checkpoint lacks, are initialised (with a
 * warning naming them), as Hugging Face does.
 */
function loadTask(dir: string, options: TaskLoadOptions, freshAllowed: (name: string) => boolean, arch: string) {
  const config = withLabels(loadConfig(dir), options);
  const checkpoint = WeightStore.fromDirectory(dir);
  const store = new WeightsWithFallback(checkpoint, config, freshAllowed, options.seed ?? 0);
  const prefix = checkpoint.has('model.embeddings.tok_embeddings.weight') ? 'model.' : '';
  const model = new ModernBertModel(config, store, prefix, kernelsFor(options), dtypeFor(options), true);
  const head = new PredictionHead(config, store);
  return { config, store, model, head, warn: () => warnFresh(store.fresh, arch, dir) };
}

function warnFresh(fresh: string[], arch: string, dir: string): void {
  if (fresh.length)
    process.emitWarning(`Some weights of ${arch} were not initialized from the checkpoint at ${dir} and are newly initialized: `
      + `${fresh.join(', ')}. Train this model on a downstream task before using it for predictions.`);
}

/** Fresh weights for a config (pretraining from scratch), seeded; `tiedDecoder` for masked LM. */
function initTask(config: ModernBertConfig, options: TaskLoadOptions, tiedDecoder: boolean) {
  const store = new InitialWeights(config, options.seed ?? 0, tiedDecoder);
  return { store, model: new ModernBertModel(config, store, 'model.', kernelsFor(options), dtypeFor(options)), head: new PredictionHead(config, store) };
}

const isClassifier = (name: string) => name.startsWith('classifier.') || name.startsWith('head.');

/** Padded per-token labels [B, S] to the packed layout [T], read at each sequence's real tokens. */
function packTokenLabels(labels: TokenLabels, batch: PackedBatch): Int32Array {
  const { cuSeqlens, rowStart, batch: B, seqLen: S } = batch;
  const rowsOf = (b: number): ArrayLike<number> => (labels instanceof Tensor ? labels.data.subarray(b * S, (b + 1) * S) : labels[b]);
  if (labels instanceof Tensor ? labels.dims.length !== 2 || labels.dims[0] !== B || labels.dims[1] !== S : labels.length !== B)
    throw new InputError(`labels must be [batch ${B}, seq ${S}] like inputIds`);
  const out = new Int32Array(cuSeqlens[B]);
  for (let b = 0; b < B; b++) {
    const row = rowsOf(b);
    if (row.length !== S) throw new InputError(`labels row ${b} has length ${row.length}, inputIds rows have ${S}`);
    for (let t = cuSeqlens[b]; t < cuSeqlens[b + 1]; t++) out[t] = row[rowStart[b] + t - cuSeqlens[b]];
  }
  return out;
}

function checkTokenLabels(labels: Int32Array, cuSeqlens: Int32Array): Int32Array {
  const T = cuSeqlens[cuSeqlens.length - 1];
  if (!(labels instanceof Int32Array) || labels.length !== T)
    throw new InputError(`packed labels must be an Int32Array of ${T} entries (one per token), got ${labels.length}`);
  return labels;
}

/** Indices of the rows whose label is not -100. */
function labelledRows(labels: Int32Array): Int32Array {
  let n = 0;
  for (let t = 0; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) n++;
  const rows = new Int32Array(n);
  n = 0;
  for (let t = 0; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) rows[n++] = t;
  return rows;
}

/** Rows `rows` of a [*, width] matrix, gathered into [rows.length, width]. */
function gatherRows(src: Float32Array, rows: Int32Array, width: number): Float32Array {
  const out = alignedFloat32Array(rows.length * width);
  for (let r = 0; r < rows.length; r++) out.set(src.subarray(rows[r] * width, (rows[r] + 1) * width), r * width);
  return out;
}

export class ModernBertForMaskedLM extends TaskModel<TaskOutput, TokenLabels, Int32Array> {
  /** The decoder weight [vocab, hidden]: the token embeddings' parameter itself when tied. */
  readonly decoderWeight: Parameter;
  readonly decoderBias: Parameter | null;
  /**
   * Hugging Face's sparse_prediction (initially the config's): with labels, the head and decoder run only at
   * the labelled tokens, and `logits` is [N, vocab] for those tokens in order (padded output is not restored).
   * Pretraining turns it on: it skips ~70 % of the decoder, the largest GEMM of a small model.
   */
  sparsePrediction: boolean;

  constructor(model: ModernBertModel, head: PredictionHead, store: WeightStore) {
    super(model, head);
    const c = model.config;
    this.sparsePrediction = c.sparse_prediction;
    // Tied checkpoints omit decoder.weight (or repeat the embeddings); either way the embeddings are used.
    this.decoderWeight = c.tie_word_embeddings ? model.embeddings.tok : param(store, 'decoder.weight', [c.vocab_size, c.hidden_size]);
    this.decoderBias = c.decoder_bias ? param(store, 'decoder.bias', [c.vocab_size]) : null;
  }

  /** Loads a masked-LM checkpoint (the head and decoder must be in it). */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<ModernBertForMaskedLM> {
    const { store, model, head } = loadTask(dir, options, () => false, 'ModernBertForMaskedLM');
    return new ModernBertForMaskedLM(model, head, store);
  }

  /** A freshly initialised model for `config` (pretraining from scratch). */
  static fromConfig(config: ModernBertConfig, options: TaskLoadOptions = {}): ModernBertForMaskedLM {
    const { store, model, head } = initTask(config, options, config.tie_word_embeddings);
    return new ModernBertForMaskedLM(model, head, store);
  }

  protected ownParameters(): NamedParameters {
    const out: NamedParameters = [];
    if (this.decoderWeight !== this.model.embeddings.tok) out.push(['decoder.weight', this.decoderWeight]);
    if (this.decoderBias) out.push(['decoder.bias', this.decoderBias]);
    return out;
  }

  /** Logits [rows, vocab] for the given rows [rows, hidden] of the final hidden state. */
  logitsFor(hiddenRows: Float32Array, rows: number): Float32Array {
    return this.decode(hiddenRows, rows, false).logits;
  }

  private decode(hiddenRows: Float32Array, rows: number, save: boolean) {
    const c = this.config;
    const headOut = alignedFloat32Array(rows * c.hidden_size);
    const saved = this.head.run(this.model, headOut, hiddenRows, rows, save);
    const logits = alignedFloat32Array(rows * c.vocab_size);
    this.model.linear(logits, headOut, this.decoderWeight, this.decoderBias, rows, 0);
    return { logits, headOut, saved };
  }

  protected headForward(enc: EncodeResult, _cuSeqlens: Int32Array, labels?: Int32Array): HeadPass<{ logits: Tensor }, Int32Array> {
    const c = this.config;
    const H = c.hidden_size;
    const V = c.vocab_size;
    const T = enc.lastHiddenState.dims[0];
    // Sparse prediction: decode only the labelled tokens (`picked`, token indices); else every token.
    const picked = this.sparsePrediction && labels ? labelledRows(labels) : null;
    const M = picked ? picked.length : T;
    const x = picked ? gatherRows(enc.lastHiddenState.data, picked, H) : enc.lastHiddenState.data;
    const { logits, headOut, saved } = this.decode(x, M, enc.tape !== null);
    const backward = (dlogits: Float32Array, rowLabels: Int32Array): Float32Array => {
      // Only labelled rows have a gradient: run the decoder and head backward on those rows alone.
      const rows = labelledRows(rowLabels);
      const N = rows.length;
      // Sparse prediction labels every row already: use the buffers as they are, no copies.
      const all = N === M;
      const pick = (src: Float32Array, width: number) => (all ? src : gatherRows(src, rows, width));
      const dl = pick(dlogits, V);
      const k = this.kernels;
      k.gemm(gradOf(this.decoderWeight), dl, pick(headOut, H), null, V, H, N, true, false, 1);
      if (this.decoderBias) biasBackward(gradOf(this.decoderBias), dl, N, V);
      const dHead = alignedFloat32Array(N * H);
      k.gemm(dHead, dl, this.decoderWeight.data, null, N, H, V, false, false, 0);
      const s = saved!;
      const dRows = alignedFloat32Array(N * H);
      this.head.backward(k, dRows, dHead, {
        N, x: pick(s.x, H), z: pick(s.z, H), a: pick(s.a, H), mean: pick(s.mean, 1), rstd: pick(s.rstd, 1),
      });
      const dLast = alignedFloat32Array(T * H);
      for (let r = 0; r < N; r++) dLast.set(dRows.subarray(r * H, (r + 1) * H), (picked ? picked[rows[r]] : rows[r]) * H);
      return dLast;
    };
    return {
      outputs: { logits: new Tensor(logits, [M, V]) },
      logits,
      backward: saved ? backward : null,
      lossLabels: picked && labels ? Int32Array.from(picked, (t) => labels[t]) : undefined,
    };
  }

  protected padOutputs(out: TaskOutput, batch: PackedBatch): TaskOutput {
    if (out.logits.dims[0] !== batch.inputIds.length) return out; // sparse prediction: labelled tokens only
    return { ...out, logits: padOutput(out.logits.data, this.config.vocab_size, batch) };
  }

  protected packLabels(labels: TokenLabels, batch: PackedBatch): Int32Array {
    return packTokenLabels(labels, batch);
  }

  protected checkPackedLabels(labels: Int32Array, cuSeqlens: Int32Array): Int32Array {
    return checkTokenLabels(labels, cuSeqlens);
  }

  /** Cross-entropy over the labelled tokens of the whole batch (-100 elsewhere). */
  protected lossOf(logits: Float32Array, labels: Int32Array, grad: Float32Array | null): number {
    return crossEntropy(logits, labels, labels.length, this.config.vocab_size, grad, IGNORE_INDEX, this.model.kernels).loss;
  }
}

/** Sequence labels normalised: values in batch order, and whether they came as integers (class ids). */
interface PackedSequenceLabels {
  values: Float64Array;
  integer: boolean;
}

function normaliseSequenceLabels(labels: SequenceLabels): PackedSequenceLabels {
  if (labels instanceof Tensor) return { values: Float64Array.from(labels.data), integer: labels.type === 'int32' };
  if (labels instanceof Float32Array || labels instanceof Float64Array) return { values: Float64Array.from(labels), integer: false };
  const list: ArrayLike<number | ArrayLike<number>> = labels;
  if (list.length > 0 && typeof list[0] === 'object')
    return { values: Float64Array.from(Array.from(list as ArrayLike<ArrayLike<number>>).flatMap((r) => Array.from(r))), integer: false };
  return { values: Float64Array.from(list as ArrayLike<number>), integer: true };
}

/** A task model whose last layer is `classifier` [num_labels, hidden] with its bias (sequence and token classification). */
abstract class ClassifierModel<Out extends TaskOutput, Labels, PackedLabels> extends TaskModel<Out, Labels, PackedLabels> {
  readonly classifier: Parameter;
  readonly classifierBias: Parameter;

  constructor(model: ModernBertModel, head: PredictionHead, store: WeightStore) {
    super(model, head);
    const c = model.config;
    this.classifier = param(store, 'classifier.weight', [c.num_labels, c.hidden_size]);
    this.classifierBias = param(store, 'classifier.bias', [c.num_labels]);
  }

  protected ownParameters(): NamedParameters {
    return [['classifier.weight', this.classifier], ['classifier.bias', this.classifierBias]];
  }
}

export class ModernBertForSequenceClassification extends ClassifierModel<SequenceClassifierOutput, SequenceLabels, SequenceLabels> {
  /** Loads a checkpoint; a missing or differently sized head/classifier is initialised with a warning. */
  static async fromPretrained(dir: string, options: TaskLoadOptions = {}): Promise<ModernBertForSequenceClassification> {
    const { store, model, head, warn } = loadTask(dir, options, isClassifier, 'ModernBertForSequenceClassification');
    const m = new ModernBertForSequenceClassification(model, head, store);
    warn();
    return m;
  }

  /** A freshly initialised model for `config`. */
  static fromConfig(config: ModernBertConfig, options: TaskLoadOptions = {}): ModernBertForSequenceClassification {
    const { store, model, head } = initTask(withLabels(config, options), options, false);
    return new ModernBertForSequenceClassification(model, head, store);
  }

  protected headForward(enc: EncodeResult, cuSeqlens: Int32Array): HeadPass<{ logits: Tensor; pooled: Tensor }, SequenceLabels> {
    const c = this.config;
    const k = this.kernels;
    const H = c.hidden_size;
    const C = c.num_labels;
    const B = cuSeqlens.length - 1;
    const T = enc.lastHiddenState.dims[0];
    const x = enc.lastHiddenState.data;
    const pooled = alignedFloat32Array(B * H);
    for (let b = 0; b < B; b++) {
      const start = cuSeqlens[b];
      const end = cuSeqlens[b + 1];
      if (c.classifier_pooling === 'cls') {
        pooled.set(x.subarray(start * H, (start + 1) * H), b * H); // the first REAL token, also under left padding
      } else {
        for (let t = start; t < end; t++) for (let d = 0; d < H; d++) pooled[b * H + d] += x[t * H + d];
        for (let d = 0; d < H; d++) pooled[b * H + d] /= end - start;
      }
    }
    const headOut = alignedFloat32Array(B * H);
    const saved = this.head.run(this.model, headOut, pooled, B, enc.tape !== null);
    const mask = this.classifierDropout(headOut);
    const logits = alignedFloat32Array(B * C);
    this.model.linear(logits, headOut, this.classifier, this.classifierBias, B, 0);
    const backward = (dlogits: Float32Array): Float32Array => {
      k.gemm(gradOf(this.classifier), dlogits, headOut, null, C, H, B, true, false, 1);
      biasBackward(gradOf(this.classifierBias), dlogits, B, C);
      const dHead = alignedFloat32Array(B * H);
      k.gemm(dHead, dlogits, this.classifier.data, null, B, H, C, false, false, 0);
      if (mask) applyDropoutMask(dHead, mask, B * H, c.classifier_dropout);
      const dPooled = alignedFloat32Array(B * H);
      this.head.backward(k, dPooled, dHead, saved!);
      const dLast = alignedFloat32Array(T * H);
      for (let b = 0; b < B; b++) {
        const start = cuSeqlens[b];
        const end = cuSeqlens[b + 1];
        if (c.classifier_pooling === 'cls') {
          dLast.set(dPooled.subarray(b * H, (b + 1) * H), start * H);
        } else {
          const inv = 1 / (end - start);
          for (let t = start; t < end; t++) for (let d = 0; d < H; d++) dLast[t * H + d] = dPooled[b * H + d] * inv;
        }
      }
      return dLast;
    };
    return {
      outputs: { logits: new Tensor(logits, [B, C]), pooled: new Tensor(pooled, [B, H]) },
      logits,
      backward: saved ? backward : null,
    };
  }

  protected padOutputs(out: SequenceClassifierOutput): SequenceClassifierOutput {
    return out; // per-sequence outputs have no padding
  }

  protected packLabels(labels: SequenceLabels): SequenceLabels {
    return labels;
  }

  protected checkPackedLabels(labels: SequenceLabels): SequenceLabels {
    return labels;
  }

  /** The problem type: the config's, else inferred as Hugging Face does from num_labels and the labels' type. */
  problemType(integerLabels: boolean): ProblemType {
    if (this.config.problem_type) return this.config.problem_type;
    if (this.config.num_labels === 1) return 'regression';
    return integerLabels ? 'single_label_classification' : 'multi_label_classification';
  }

  protected lossOf(logits: Float32Array, labels: SequenceLabels, grad: Float32Array | null, cuSeqlens: Int32Array): number {
    const B = cuSeqlens.length - 1;
    const C = this.config.num_labels;
    const { values, integer } = normaliseSequenceLabels(labels);
    const type = this.problemType(integer);
    if (type === 'single_label_classification') {
      if (values.length !== B) throw new InputError(`single-label classification needs ${B} labels (one class id per sequence), got ${values.length}`);
      if (!values.every((v) => Number.isInteger(v))) throw new InputError('single-label classification needs integer class ids as labels');
      return crossEntropy(logits, Int32Array.from(values), B, C, grad, IGNORE_INDEX, this.model.kernels).loss;
    }
    if (values.length !== B * C)
      throw new InputError(`${type} needs ${B}×${C} label values ([batch, num_labels]), got ${values.length}`);
    const targets = Float32Array.from(values);
    if (type === 'multi_label_classification') return bceWithLogits(logits, targets, B * C, grad);
    return meanSquaredError(logits, targets, B * C, grad);
  }
}

export class ModernBertForTokenClassification extends ClassifierModel<TaskOutput, TokenLabels, Int32Array> {
  /** Loads a checkpoint; a missing or differently sized head/classifier is initialised with a warning. */
  static async fromPretrained(dir: string, options: TaskLoadOptions = {}): Promise<ModernBertForTokenClassification> {
    const { store, model, head, warn } = loadTask(dir, options, isClassifier, 'ModernBertForTokenClassification');
    const m = new ModernBertForTokenClassification(model, head, store);
    warn();
    return m;
  }

  /** A freshly initialised model for `config`. */
  static fromConfig(config: ModernBertConfig, options: TaskLoadOptions = {}): ModernBertForTokenClassification {
    const { store, model, head } = initTask(withLabels(config, options), options, false);
    return new ModernBertForTokenClassification(model, head, store);
  }

  protected headForward(enc: EncodeResult): HeadPass<{ logits: Tensor }, Int32Array> {
    const c = this.config;
    const k = this.kernels;
    const H = c.hidden_size;
    const C = c.num_labels;
    const T = enc.lastHiddenState.dims[0];
    const headOut = alignedFloat32Array(T * H);
    const saved = this.head.run(this.model, headOut, enc.lastHiddenState.data, T, enc.tape !== null);
    const mask = this.classifierDropout(headOut);
    const logits = alignedFloat32Array(T * C);
    this.model.linear(logits, headOut, this.classifier, this.classifierBias, T, 0);
    const backward = (dlogits: Float32Array): Float32Array => {
      k.gemm(gradOf(this.classifier), dlogits, headOut, null, C, H, T, true, false, 1);
      biasBackward(gradOf(this.classifierBias), dlogits, T, C);
      const dHead = alignedFloat32Array(T * H);
      k.gemm(dHead, dlogits, this.classifier.data, null, T, H, C, false, false, 0);
      if (mask) applyDropoutMask(dHead, mask, T * H, c.classifier_dropout);
      const dLast = alignedFloat32Array(T * H);
      this.head.backward(k, dLast, dHead, saved!);
      return dLast;
    };
    return { outputs: { logits: new Tensor(logits, [T, C]) }, logits, backward: saved ? backward : null };
  }

  protected padOutputs(out: TaskOutput, batch: PackedBatch): TaskOutput {
    return { ...out, logits: padOutput(out.logits.data, this.config.num_labels, batch) };
  }

  protected packLabels(labels: TokenLabels, batch: PackedBatch): Int32Array {
    return packTokenLabels(labels, batch);
  }

  protected checkPackedLabels(labels: Int32Array, cuSeqlens: Int32Array): Int32Array {
    return checkTokenLabels(labels, cuSeqlens);
  }

  /** Cross-entropy over the labelled tokens of the whole batch (-100 elsewhere). */
  protected lossOf(logits: Float32Array, labels: Int32Array, grad: Float32Array | null): number {
    return crossEntropy(logits, labels, labels.length, this.config.num_labels, grad, IGNORE_INDEX, this.model.kernels).loss;
  }
}
