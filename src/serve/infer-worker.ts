/**
 * The inference thread: a packed micro-batch (ids of all sequences concatenated plus cuSeqlens) in, one
 * vector per sequence out: the pooled last hidden state of an embedding model, or a classifier's logits.
 * The native kernels run synchronously on the calling thread (with the addon's pool), so they run here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ModernBertForSequenceClassification } from '../model/heads.js';
import { nativeInfo } from '../kernels/native.js';
import type { Dtype } from '../kernels/types.js';
import { ModernBertModel } from '../model/modernbert.js';
import { serveThread } from './threads.js';

export interface InferData {
  dir: string;
  kind: 'embedding' | 'classifier';
  pooling: 'mean' | 'cls';
  threads?: number;
  dtype?: Dtype;
}

export interface InferRequest {
  inputIds: Int32Array;
  cuSeqlens: Int32Array;
}

/** [sequences, width] row-major: width = hidden size (embeddings) or number of labels (logits). */
export interface InferResponse {
  out: Float32Array;
}

/** What the thread tells once loaded: the kernels it runs. */
export interface InferInfo {
  isa: string;
  threads: number;
}

const data = workerData as InferData;

/** Mean over each sequence's tokens, or its first token ([CLS]), of packed rows x [T, H]. */
function pool(x: Float32Array, cuSeqlens: Int32Array, H: number, pooling: 'mean' | 'cls'): Float32Array {
  const B = cuSeqlens.length - 1;
  const out = new Float32Array(B * H);
  for (let b = 0; b < B; b++) {
    const [start, end] = [cuSeqlens[b], cuSeqlens[b + 1]];
    if (pooling === 'cls') {
      out.set(x.subarray(start * H, (start + 1) * H), b * H);
      continue;
    }
    for (let t = start; t < end; t++) for (let d = 0; d < H; d++) out[b * H + d] += x[t * H + d];
    for (let d = 0; d < H; d++) out[b * H + d] /= end - start;
  }
  return out;
}

const load = { numThreads: data.threads, dtype: data.dtype };
const run: (req: InferRequest) => Float32Array = data.kind === 'classifier'
  ? await ModernBertForSequenceClassification.fromPretrained(data.dir, load).then((m) => (req: InferRequest) => m.forwardPacked(req).logits.data)
  : await ModernBertModel.fromPretrained(data.dir, load).then((m) => (req: InferRequest) =>
    pool(m.forwardPacked(req).lastHiddenState.data, req.cuSeqlens, m.config.hidden_size, data.pooling));

const { isa, threads } = nativeInfo();
serveThread<InferRequest, InferResponse, InferInfo>(parentPort!, { isa, threads }, (req) => {
  const out = run(req);
  return { body: { out }, transfer: [out.buffer as ArrayBuffer] };
});
