/**
 * Dynamic batching: sequences of concurrent requests wait in one FIFO queue, and whenever the inference
 * thread is free the queue's head is packed (concatenated, no padding) into one micro-batch of at most
 * `maxBatchTokens` tokens. Under load the queue fills while a batch runs, so the next batch is larger:
 * many small requests cost about what one packed batch costs.
 */
import { performance } from 'node:perf_hooks';

export interface BatcherOptions {
  /** Token budget of one forward pass; a sequence longer than the budget runs alone. */
  maxBatchTokens: number;
  /** false: each batch holds sequences of one request only (the "batching off" baseline). */
  batching: boolean;
  /** Called after each forward pass (metrics). */
  onBatch?: (stats: BatchStats) => void;
}

export interface BatchStats {
  sequences: number;
  tokens: number;
  requests: number;
  seconds: number;
}

/** Runs one packed batch and returns one row per sequence ([sequences, width], row-major). */
export type Infer = (inputIds: Int32Array, cuSeqlens: Int32Array) => Promise<Float32Array>;

interface Request {
  seqs: Int32Array[];
  /** Index of the first sequence not yet given to a batch. */
  next: number;
  out: Float32Array[];
  remaining: number;
  failed: boolean;
  resolve(rows: Float32Array[]): void;
  reject(e: Error): void;
}

/** A slice [from, to) of one request's sequences inside a batch. */
interface Part {
  req: Request;
  from: number;
  to: number;
}

export class Batcher {
  private readonly queue: Request[] = [];
  private running = false;
  private waitingSequences = 0;

  constructor(private readonly infer: Infer, private readonly options: BatcherOptions) {}

  /** Sequences waiting for a batch (the queue depth). */
  get queuedSequences(): number {
    return this.waitingSequences;
  }

  /** Queues one request's token sequences; resolves with one output row per sequence, in order. */
  submit(seqs: Int32Array[]): Promise<Float32Array[]> {
    if (seqs.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ seqs, next: 0, out: new Array(seqs.length), remaining: seqs.length, failed: false, resolve, reject });
      this.waitingSequences += seqs.length;
      this.pump();
    });
  }

  /** Takes the next batch off the queue's head, within the token budget. */
  private take(): { parts: Part[]; tokens: number; sequences: number } {
    const parts: Part[] = [];
    let tokens = 0;
    let sequences = 0;
    while (this.queue.length > 0) {
      const req = this.queue[0];
      const from = req.next;
      while (req.next < req.seqs.length && (sequences === 0 || tokens + req.seqs[req.next].length <= this.options.maxBatchTokens)) {
        tokens += req.seqs[req.next++].length;
        sequences++;
      }
      if (req.next > from) parts.push({ req, from, to: req.next });
      if (req.next < req.seqs.length) break; // the budget is spent
      this.queue.shift();
      if (!this.options.batching) break;
    }
    this.waitingSequences -= sequences;
    return { parts, tokens, sequences };
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const { parts, tokens, sequences } = this.take();
    const inputIds = new Int32Array(tokens);
    const cuSeqlens = new Int32Array(sequences + 1);
    let s = 0;
    for (const p of parts)
      for (let i = p.from; i < p.to; i++, s++) {
        inputIds.set(p.req.seqs[i], cuSeqlens[s]);
        cuSeqlens[s + 1] = cuSeqlens[s] + p.req.seqs[i].length;
      }
    this.running = true;
    const start = performance.now();
    this.infer(inputIds, cuSeqlens).then((out) => {
      this.running = false;
      this.pump(); // hand the thread its next batch before spending time on replies
      this.options.onBatch?.({ sequences, tokens, requests: parts.length, seconds: (performance.now() - start) / 1000 });
      const width = out.length / sequences;
      let row = 0;
      for (const p of parts)
        for (let i = p.from; i < p.to; i++, row++) {
          p.req.out[i] = out.subarray(row * width, (row + 1) * width);
          if (--p.req.remaining === 0 && !p.req.failed) p.req.resolve(p.req.out);
        }
    }, (e: Error) => {
      this.running = false;
      for (const p of parts) this.fail(p.req, e);
      this.pump();
    });
  }

  /** Fails a request once, and drops its sequences that are still queued. */
  private fail(req: Request, e: Error): void {
    if (req.failed) return;
    req.failed = true;
    const at = this.queue.indexOf(req);
    if (at >= 0) {
      this.waitingSequences -= req.seqs.length - req.next;
      this.queue.splice(at, 1);
    }
    req.reject(e);
  }
}
