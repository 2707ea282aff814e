/**
 * Task heads on the encoder: masked LM, sequence classification (cls / mean pooling) and token
 * classification, with Hugging Face's module and tensor names (head.dense, head.norm, decoder, classifier).
 */
import type { ModernBertConfig } from '../config/config.js';
import type { Kernels } from '../kernels/types.js';
import { Tensor } from '../tensor/tensor.js';
import {
  type EncoderOutput, type ForwardInput, kernelsFor, type LoadOptions, loadConfig, ModernBertModel, type NormWeights, type PackedInput,
} from './modernbert.js';
import { checkPacked, padOutput, positionsFor, type PackedBatch } from './unpad.js';
import { WeightStore } from './weights.js';

/** `head`: dense → activation → LayerNorm, on rows [N, hidden]. */
export class PredictionHead {
  readonly dense: Float32Array;
  readonly denseBias: Float32Array | null;
  readonly norm: NormWeights;

  constructor(readonly config: ModernBertConfig, store: WeightStore) {
    const H = config.hidden_size;
    this.dense = store.get('head.dense.weight', [H, H]);
    this.denseBias = store.optional('head.dense.bias', [H], config.classifier_bias);
    this.norm = { w: store.get('head.norm.weight', [H]), b: store.optional('head.norm.bias', [H], config.norm_bias) };
  }

  /** out[N, hidden] = norm(act(x·denseᵀ + b)). */
  run(k: Kernels, out: Float32Array, x: Float32Array, N: number): void {
    const H = this.config.hidden_size;
    const tmp = new Float32Array(N * H);
    k.gemm(tmp, x, this.dense, this.denseBias, N, H, H, false, true, 0);
    k.activation(tmp, tmp, N * H, this.config.classifierActivation);
    k.layernorm(out, tmp, this.norm.w, this.norm.b, N, H, this.config.norm_eps, null, null);
  }
}

export interface TaskOutput extends EncoderOutput {
  logits: Tensor;
}

export interface SequenceClassifierOutput extends TaskOutput {
  /** The pooled vector fed to `head` [B, hidden] (first real token for 'cls', mean over real tokens for 'mean'). */
  pooled: Tensor;
}

abstract class TaskModel<Out extends TaskOutput> {
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

  /** A padded batch in; logits and hidden states in the padded layout (zeros at padding). */
  forward(input: ForwardInput): Out {
    const batch = this.model.pack(input);
    const enc = this.model.encode(batch.inputIds, batch.cuSeqlens, batch.positions, input.outputHiddenStates ?? false);
    const H = this.config.hidden_size;
    return this.padOutputs({
      ...this.headForward(enc, batch.cuSeqlens),
      lastHiddenState: padOutput(enc.lastHiddenState.data, H, batch),
      hiddenStates: enc.hiddenStates?.map((h) => padOutput(h.data, H, batch)),
    } as Out, batch);
  }

  /** Packed input (ids + cuSeqlens) in; outputs per real token ([T, …]) or per sequence. */
  forwardPacked(input: PackedInput): Out {
    checkPacked(input.inputIds, input.cuSeqlens, this.config.vocab_size, this.config.max_position_embeddings);
    const enc = this.model.encode(input.inputIds, input.cuSeqlens, positionsFor(input.cuSeqlens), input.outputHiddenStates ?? false);
    return { ...enc, ...this.headForward(enc, input.cuSeqlens) } as Out;
  }

  protected abstract headForward(enc: EncoderOutput, cuSeqlens: Int32Array): Omit<Out, keyof EncoderOutput>;
  protected abstract padOutputs(out: Out, batch: PackedBatch): Out;
}

function loadTask(dir: string, options: LoadOptions) {
  const config = loadConfig(dir);
  const store = WeightStore.fromDirectory(dir);
  const model = new ModernBertModel(config, store, 'model.', kernelsFor(options));
  return { config, store, model, head: new PredictionHead(config, store) };
}

export class ModernBertForMaskedLM extends TaskModel<TaskOutput> {
  /** The decoder weight [vocab, hidden]: the token embeddings when tied. */
  readonly decoderWeight: Float32Array;
  readonly decoderBias: Float32Array | null;

  constructor(model: ModernBertModel, head: PredictionHead, store: WeightStore) {
    super(model, head);
    const c = model.config;
    // Tied checkpoints omit decoder.weight (or repeat the embeddings); either way the embeddings are used.
    this.decoderWeight = c.tie_word_embeddings ? model.embeddings.tok : store.get('decoder.weight', [c.vocab_size, c.hidden_size]);
    this.decoderBias = store.optional('decoder.bias', [c.vocab_size], c.decoder_bias);
  }

  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<ModernBertForMaskedLM> {
    const { store, model, head } = loadTask(dir, options);
    return new ModernBertForMaskedLM(model, head, store);
  }

  /** Logits [rows, vocab] for the given rows [rows, hidden] of the final hidden state. */
  logitsFor(hiddenRows: Float32Array, rows: number): Float32Array {
    const c = this.config;
    const headOut = new Float32Array(rows * c.hidden_size);
    this.head.run(this.kernels, headOut, hiddenRows, rows);
    const logits = new Float32Array(rows * c.vocab_size);
    this.kernels.gemm(logits, headOut, this.decoderWeight, this.decoderBias, rows, c.vocab_size, c.hidden_size, false, true, 0);
    return logits;
  }

  protected headForward(enc: EncoderOutput) {
    const T = enc.lastHiddenState.dims[0];
    return { logits: new Tensor(this.logitsFor(enc.lastHiddenState.data, T), [T, this.config.vocab_size]) };
  }

  protected padOutputs(out: TaskOutput, batch: PackedBatch): TaskOutput {
    return { ...out, logits: padOutput(out.logits.data, this.config.vocab_size, batch) };
  }
}

export class ModernBertForSequenceClassification extends TaskModel<SequenceClassifierOutput> {
  readonly classifier: Float32Array;
  readonly classifierBias: Float32Array;

  constructor(model: ModernBertModel, head: PredictionHead, store: WeightStore) {
    super(model, head);
    const c = model.config;
    this.classifier = store.get('classifier.weight', [c.num_labels, c.hidden_size]);
    this.classifierBias = store.get('classifier.bias', [c.num_labels]);
  }

  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<ModernBertForSequenceClassification> {
    const { store, model, head } = loadTask(dir, options);
    return new ModernBertForSequenceClassification(model, head, store);
  }

  protected headForward(enc: EncoderOutput, cuSeqlens: Int32Array) {
    const c = this.config;
    const H = c.hidden_size;
    const B = cuSeqlens.length - 1;
    const x = enc.lastHiddenState.data;
    const pooled = new Float32Array(B * H);
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
    const headOut = new Float32Array(B * H);
    this.head.run(this.kernels, headOut, pooled, B);
    const logits = new Float32Array(B * c.num_labels);
    this.kernels.gemm(logits, headOut, this.classifier, this.classifierBias, B, c.num_labels, H, false, true, 0);
    return { logits: new Tensor(logits, [B, c.num_labels]), pooled: new Tensor(pooled, [B, H]) };
  }

  protected padOutputs(out: SequenceClassifierOutput): SequenceClassifierOutput {
    return out; // per-sequence outputs have no padding
  }
}

export class ModernBertForTokenClassification extends TaskModel<TaskOutput> {
  readonly classifier: Float32Array;
  readonly classifierBias: Float32Array;

  constructor(model: ModernBertModel, head: PredictionHead, store: WeightStore) {
    super(model, head);
    const c = model.config;
    this.classifier = store.get('classifier.weight', [c.num_labels, c.hidden_size]);
    this.classifierBias = store.get('classifier.bias', [c.num_labels]);
  }

  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<ModernBertForTokenClassification> {
    const { store, model, head } = loadTask(dir, options);
    return new ModernBertForTokenClassification(model, head, store);
  }

  protected headForward(enc: EncoderOutput) {
    const c = this.config;
    const T = enc.lastHiddenState.dims[0];
    const headOut = new Float32Array(T * c.hidden_size);
    this.head.run(this.kernels, headOut, enc.lastHiddenState.data, T);
    const logits = new Float32Array(T * c.num_labels);
    this.kernels.gemm(logits, headOut, this.classifier, this.classifierBias, T, c.num_labels, c.hidden_size, false, true, 0);
    return { logits: new Tensor(logits, [T, c.num_labels]) };
  }

  protected padOutputs(out: TaskOutput, batch: PackedBatch): TaskOutput {
    return { ...out, logits: padOutput(out.logits.data, this.config.num_labels, batch) };
  }
}
