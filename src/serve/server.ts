/**
 * `modernbert serve`: an HTTP server with the request shapes of Hugging Face text-embeddings-inference
 * (TEI: /embed, /rerank, /predict, /health, /info) and OpenAI's /v1/embeddings, on fastify. Requests are
 * tokenised on a thread, queued, packed into micro-batches by a token budget and run on the inference
 * thread; the event loop only parses, validates and replies.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { defaultFunction } from '../pipelines/text-classification.js';
import { sigmoid, softmax } from '../pipelines/common.js';
import { Batcher } from './batcher.js';
import { defaultMaxBatchTokens, Engine, InputTooLongError, l2normalize, type EngineOptions } from './engine.js';
import { ServerMetrics } from './metrics.js';
import { ApiError, asBody, badRequest, optionalBool, predictInputs, requiredText, stringArray, texts, truncationSide, type Body } from './requests.js';

export interface ServeOptions extends EngineOptions {
  /** Default 127.0.0.1 (loopback); 0.0.0.0 listens on every interface. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Token budget of one forward pass (default: defaultMaxBatchTokens). */
  maxBatchTokens?: number;
  /** Requests admitted at once (tokenising, queued or running); past it, 429 (default 512). */
  maxConcurrentRequests?: number;
  /** Inputs in one request; past it, 413 (default 32, as TEI). */
  maxClientBatchSize?: number;
  /** Largest request body in bytes; past it, 413 (default 2 MiB, as TEI). */
  payloadLimit?: number;
  /** Dynamic batching across requests (default true); false runs each request alone. */
  batching?: boolean;
  /** When set, every route but /health needs `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** fastify's request log on stderr (default false). */
  logger?: boolean;
}

export interface RunningServer {
  app: FastifyInstance;
  engine: Engine;
  /** http://host:port */
  url: string;
  /** Stops accepting, answers what was admitted, stops the threads. */
  close(): Promise<void>;
}

const INFERENCE_ROUTES = ['/embed', '/v1/embeddings', '/rerank', '/predict'];

function sameKey(given: string, key: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(key));
}

/** Starts the threads, then listens. */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const engine = await Engine.start(options);
  try {
    const app = buildApp(engine, options);
    const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8080 });
    return {
      app, engine, url: address,
      close: async () => {
        await app.close();
        await engine.close();
      },
    };
  } catch (e) {
    await engine.close();
    throw e;
  }
}

/** The fastify app over a started engine (routes, limits, auth, metrics); `startServer` listens with it. */
export function buildApp(engine: Engine, options: ServeOptions): FastifyInstance {
  const info = engine.info;
  const maxBatchTokens = options.maxBatchTokens ?? defaultMaxBatchTokens();
  const maxConcurrent = options.maxConcurrentRequests ?? 512;
  const maxClientBatch = options.maxClientBatchSize ?? 32;
  const batching = options.batching ?? true;
  const apiKey = options.apiKey || undefined;
  const metrics = new ServerMetrics(() => batcher.queuedSequences);
  const batcher = new Batcher((ids, cu) => engine.infer(ids, cu), { maxBatchTokens, batching, onBatch: (s) => metrics.onBatch(s) });

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: options.payloadLimit ?? 2 * 1024 * 1024 });

  // Errors in TEI's shape ({ error, error_type }), or OpenAI's ({ error: { message, type } }) under /v1.
  const sendError = (req: FastifyRequest, reply: FastifyReply, status: number, type: string, message: string) => {
    const body = req.url.startsWith('/v1/') ? { error: { message, type, code: status } } : { error: message, error_type: type };
    return reply.code(status).send(body);
  };
  app.setErrorHandler((err: Error, req, reply) => {
    if (err instanceof ApiError) return sendError(req, reply, err.status, err.type, err.message);
    if (err instanceof InputTooLongError) return sendError(req, reply, 413, 'Validation', err.message);
    const status = (err as { statusCode?: number }).statusCode;
    // fastify's own: malformed JSON (400), body over the limit (413), unsupported content type (415), ...
    if (status !== undefined && status >= 400 && status < 500) return sendError(req, reply, status, 'Validation', err.message);
    req.log.error(err);
    return sendError(req, reply, 500, 'Backend', `inference failed: ${err.message}`);
  });
  app.setNotFoundHandler((req, reply) => sendError(req, reply, 404, 'NotFound', `no route ${req.method} ${req.url.split('?')[0]}`));

  app.addHook('onRequest', async (req, reply) => {
    if (!apiKey || req.routeOptions.url === '/health') return;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!m || !sameKey(m[1], apiKey)) return sendError(req, reply, 401, 'Unauthorized', 'missing or invalid API key: send "Authorization: Bearer <key>"');
  });
  // While closing, answer admitted requests with `Connection: close`, so keep-alive clients do not hold
  // the server open until their idle timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: reply.statusCode });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });

  // Back-pressure: a request holds one of `maxConcurrent` slots from arrival (before its body is read) until
  // its handler is done, even if the client went away meanwhile, so queued work is bounded by the slots.
  let inFlight = 0;
  const slot = new WeakMap<FastifyRequest, 'admitted' | 'handling'>();
  const release = (req: FastifyRequest) => {
    if (slot.delete(req)) metrics.inFlight.set(--inFlight);
  };
  const admit = async (req: FastifyRequest, reply: FastifyReply) => {
    if (inFlight >= maxConcurrent)
      return sendError(req, reply, 429, 'Overloaded', `the server is at its limit of ${maxConcurrent} concurrent requests: retry later`);
    slot.set(req, 'admitted');
    metrics.inFlight.set(++inFlight);
  };
  const releaseUnhandled = async (req: FastifyRequest) => {
    if (slot.get(req) === 'admitted') release(req);
  };
  app.addHook('onRoute', (route) => {
    if (!INFERENCE_ROUTES.includes(route.url)) return;
    route.onRequest = [...[route.onRequest ?? []].flat(), admit];
    route.onResponse = [...[route.onResponse ?? []].flat(), releaseUnhandled];
    route.onRequestAbort = [...[route.onRequestAbort ?? []].flat(), releaseUnhandled];
  });
  const inference = <T>(handler: (b: Body, req: FastifyRequest) => Promise<T>) => async (req: FastifyRequest): Promise<T> => {
    slot.set(req, 'handling');
    try {
      return await handler(asBody(req.body), req);
    } finally {
      release(req);
    }
  };

  const requireKind = (kind: 'embedding' | 'classifier', route: string) => {
    if (info.kind !== kind)
      throw badRequest(`${route} needs ${kind === 'embedding' ? 'an embedding' : 'a sequence-classification'} model; this server runs ${info.modelId} (${info.kind})`);
  };
  const checkBatchSize = (n: number) => {
    if (n > maxClientBatch) throw new ApiError(413, 'Validation', `${n} inputs in one request; the limit is ${maxClientBatch} (--max-client-batch-size)`);
  };
  /** Tokenises, queues and runs; one output row per input, plus the token count. */
  const run = async (first: string[], second: (string | null)[] | null, truncate: boolean, side: 'left' | 'right') => {
    const { seqs, truncated } = await engine.tokenize(first, second, truncate, side);
    if (truncated) metrics.truncated.inc(truncated);
    const rows = await batcher.submit(seqs);
    return { rows, tokens: seqs.reduce((n, s) => n + s.length, 0) };
  };

  app.get('/health', async (_req, reply) => (engine.healthy ? { status: 'ok' } : reply.code(503).send({ status: 'unhealthy', error: 'a worker thread died' })));
  app.get('/info', async () => ({
    model_id: info.modelId,
    model_dtype: info.dtype,
    model_type: info.kind === 'embedding' ? { embedding: { pooling: info.pooling } } : { classifier: { id2label: info.id2label } },
    max_input_length: info.maxInputLength,
    max_batch_tokens: maxBatchTokens,
    max_concurrent_requests: maxConcurrent,
    max_client_batch_size: maxClientBatch,
    dynamic_batching: batching,
    tokenization_workers: 1,
    isa: info.isa,
    threads: info.threads,
  }));
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  app.post('/embed', inference(async (b) => {
    requireKind('embedding', '/embed');
    const inputs = texts(b, 'inputs');
    checkBatchSize(inputs.length);
    const normalize = optionalBool(b, 'normalize', true);
    const { rows } = await run(inputs, null, optionalBool(b, 'truncate', false), truncationSide(b));
    return rows.map((r) => Array.from(normalize ? l2normalize(r) : r));
  }));

  app.post('/v1/embeddings', inference(async (b) => {
    requireKind('embedding', '/v1/embeddings');
    const inputs = texts(b, 'input');
    checkBatchSize(inputs.length);
    if (b.model !== undefined && typeof b.model !== 'string') throw badRequest('"model" must be a string');
    const format = b.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') throw badRequest(`"encoding_format" must be "float" or "base64", got ${JSON.stringify(format)}`);
    if (b.dimensions !== undefined && b.dimensions !== info.hiddenSize)
      throw badRequest(`"dimensions" must be ${info.hiddenSize} (the model's size) when given, got ${JSON.stringify(b.dimensions)}`);
    const { rows, tokens } = await run(inputs, null, false, 'right');
    const data = rows.map((r, index) => {
      const v = l2normalize(r);
      return { object: 'embedding', index, embedding: format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v) };
    });
    return { object: 'list', data, model: typeof b.model === 'string' ? b.model : info.modelId, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  }));

  // Cross-encoder score as the rerank pipeline computes it: sigmoid of a single logit, else the softmax
  // probability of the last label; raw_scores gives that logit itself.
  const rerankScore = (l: Float32Array, raw: boolean) => (raw ? l[l.length - 1] : l.length === 1 ? sigmoid(l[0]) : softmax(l)[l.length - 1]);

  app.post('/rerank', inference(async (b) => {
    requireKind('classifier', '/rerank');
    const query = requiredText(b, 'query');
    const docs = stringArray(b, 'texts');
    checkBatchSize(docs.length);
    const raw = optionalBool(b, 'raw_scores', false);
    const returnText = optionalBool(b, 'return_text', false);
    const { rows } = await run(docs.map(() => query), docs, optionalBool(b, 'truncate', false), truncationSide(b));
    const ranked = rows.map((l, index) => ({ index, score: rerankScore(l, raw), ...(returnText ? { text: docs[index] } : {}) }));
    return ranked.sort((x, y) => y.score - x.score || x.index - y.index);
  }));

  app.post('/predict', inference(async (b) => {
    requireKind('classifier', '/predict');
    const { items, single } = predictInputs(b);
    checkBatchSize(items.length);
    const fn = optionalBool(b, 'raw_scores', false) ? 'none' : defaultFunction({ problem_type: info.problemType, num_labels: info.numLabels });
    const first = items.map((x) => (typeof x === 'string' ? x : x[0]));
    const second = items.some((x) => typeof x !== 'string') ? items.map((x) => (typeof x === 'string' ? null : x[1])) : null;
    const { rows } = await run(first, second, optionalBool(b, 'truncate', false), truncationSide(b));
    const results = rows.map((l) => {
      const s = fn === 'softmax' ? softmax(l) : fn === 'sigmoid' ? Array.from(l, sigmoid) : Array.from(l);
      return Array.from(s, (score, i) => ({ label: info.id2label[String(i)] ?? `LABEL_${i}`, score })).sort((x, y) => y.score - x.score);
    });
    return single ? results[0] : results;
  }));

  return app;
}
