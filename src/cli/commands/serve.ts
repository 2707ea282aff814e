/** `modernbert serve`: the HTTP server (TEI-compatible routes and OpenAI /v1/embeddings) until SIGTERM or SIGINT. */
import { startServer } from '../../serve/server.js';
import { MODEL_OPTIONS, oneOf, pipelineOptions, positiveInt, type CliCommand } from '../options.js';

/** Resolves on the first SIGTERM or SIGINT (a second one falls through to Node's default: exit at once). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/** Model options that apply to a server (truncation is chosen per request). */
export const SERVER_MODEL_OPTIONS = MODEL_OPTIONS.filter((o) => o.flags !== '--no-truncate');

export const serveCommand: CliCommand = {
  name: 'serve',
  description: 'serve the model over HTTP: TEI-compatible /embed, /rerank, /predict, /health, /info, OpenAI /v1/embeddings, Prometheus /metrics',
  options: [
    ...SERVER_MODEL_OPTIONS,
    { flags: '--host <host>', description: 'interface to listen on (0.0.0.0: all)', default: '127.0.0.1' },
    { flags: '-p, --port <n>', description: 'TCP port (0: any free port)', default: 8080, parse: (v) => (v === '0' ? 0 : positiveInt('--port')(v)) },
    { flags: '--max-batch-tokens <n>', description: 'tokens per forward pass; queued requests are packed up to it (default: 1024 × cores, between 2048 and 16384); a longer input runs alone', parse: positiveInt('--max-batch-tokens') },
    { flags: '--max-concurrent-requests <n>', description: 'requests admitted at once; past it the server answers 429', default: 512, parse: positiveInt('--max-concurrent-requests') },
    { flags: '--max-client-batch-size <n>', description: 'inputs in one request; past it the server answers 413', default: 32, parse: positiveInt('--max-client-batch-size') },
    { flags: '--payload-limit <bytes>', description: 'largest request body; past it the server answers 413', default: 2097152, parse: positiveInt('--payload-limit') },
    { flags: '--no-batching', description: 'run each request on its own instead of packing concurrent requests together' },
    { flags: '--pooling <kind>', description: 'embedding pooling: mean or cls (default: 1_Pooling/config.json if present, else mean)', parse: oneOf('--pooling', ['mean', 'cls'] as const) },
    { flags: '--api-key <key>', description: 'require "Authorization: Bearer <key>" on every route but /health (default: $MODERNBERT_API_KEY)' },
    { flags: '--log', description: 'log every request (JSON lines on stdout)' },
  ],
  examplesNotTested: 'starts a server that runs until stopped',
  examples: [
    'modernbert serve -m ./my-embedder --port 8080',
    'curl -s localhost:8080/embed -H "content-type: application/json" -d \'{"inputs": ["a text", "another"]}\'',
  ],
  async run(_args, o) {
    const { model, revision, cacheDir, localFilesOnly, numThreads, dtype, progressCallback } = pipelineOptions(o);
    const server = await startServer({
      model, revision, cacheDir, localFilesOnly, progressCallback, threads: numThreads, dtype,
      host: o.host as string, port: o.port as number, maxBatchTokens: o.maxBatchTokens as number | undefined,
      maxConcurrentRequests: o.maxConcurrentRequests as number, maxClientBatchSize: o.maxClientBatchSize as number,
      payloadLimit: o.payloadLimit as number, batching: o.batching !== false, pooling: o.pooling as 'mean' | 'cls' | undefined,
      apiKey: (o.apiKey as string | undefined) ?? process.env.MODERNBERT_API_KEY, logger: o.log === true,
    });
    const i = server.engine.info;
    process.stderr.write(`modernbert: serving ${i.modelId} (${i.kind}, ${i.isa}, ${i.threads} threads) on ${server.url}\n`);
    const signal = await untilSignal();
    process.stderr.write(`modernbert: ${signal}: finishing admitted requests, then exiting\n`);
    await server.close();
  },
};
