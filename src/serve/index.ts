/**
 * `modernbert/serve`: the HTTP server and the BullMQ scale-out as a library. A separate entry point, so
 * `import 'modernbert'` does not load fastify, prom-client or bullmq.
 */
export { buildApp, startServer } from './server.js';
export type { RunningServer, ServeOptions } from './server.js';
export { defaultMaxBatchTokens, Engine, InputTooLongError } from './engine.js';
export type { EngineOptions, ModelInfo, Pooling } from './engine.js';
export { Batcher } from './batcher.js';
export type { BatcherOptions, BatchStats } from './batcher.js';
export { enqueueCorpus, jobId, runQueueWorker, shardPath } from './queue.js';
export type { EmbedJobData, EnqueueOptions, ShardFormat, WorkerOptions } from './queue.js';
