/** Prometheus metrics of one server (its own registry, so several servers in one process do not collide). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchStats } from './batcher.js';

const pow2 = (from: number, count: number) => Array.from({ length: count }, (_, i) => from * 2 ** i);

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'modernbert_requests_total', help: 'HTTP requests answered, by route and status code', labelNames: ['route', 'status'] as const, registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'modernbert_request_duration_seconds', help: 'time from request to response, by route', labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry],
  });
  readonly inFlight = new Gauge({ name: 'modernbert_requests_in_flight', help: 'inference requests admitted and not yet answered', registers: [this.registry] });
  readonly batchSequences = new Histogram({
    name: 'modernbert_batch_sequences', help: 'sequences per forward pass', buckets: pow2(1, 11), registers: [this.registry],
  });
  readonly batchTokens = new Histogram({
    name: 'modernbert_batch_tokens', help: 'tokens per forward pass', buckets: pow2(16, 11), registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'modernbert_batch_duration_seconds', help: 'time of one forward pass', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly tokens = new Counter({ name: 'modernbert_tokens_total', help: 'tokens run through the model (rate() gives tokens/s)', registers: [this.registry] });
  readonly tokensPerSecond = new Gauge({ name: 'modernbert_batch_tokens_per_second', help: 'throughput of the last forward pass', registers: [this.registry] });
  readonly truncated = new Counter({ name: 'modernbert_truncated_inputs_total', help: 'inputs cut to the model limit (truncate: true)', registers: [this.registry] });

  /** `queueDepth` is read at each scrape. */
  constructor(queueDepth: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'modernbert_' });
    new Gauge({
      name: 'modernbert_queue_sequences', help: 'sequences waiting for a batch (queue depth)', registers: [this.registry],
      collect() {
        this.set(queueDepth());
      },
    });
  }

  onBatch(s: BatchStats): void {
    this.batchSequences.observe(s.sequences);
    this.batchTokens.observe(s.tokens);
    this.batchSeconds.observe(s.seconds);
    this.tokens.inc(s.tokens);
    if (s.seconds > 0) this.tokensPerSecond.set(s.tokens / s.seconds);
  }
}
