/**
 * `modernbert serve` against real servers on loopback: every route, status code and error; outputs against
 * the pipelines; the API key; back-pressure (429) and batching while the inference thread is busy;
 * /health during a batch; graceful SIGTERM of the spawned CLI.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { pipeline } from '../../src/pipelines/registry.js';
import { softmax } from '../../src/pipelines/common.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { fixtureModelDir } from '../pipelines/helpers.js';
import { get, longText, post, slowModelDir } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quiet = { onWarning: () => {} };

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

/** Samples of one metric (name and labels as in the exposition text). */
function metric(text: string, name: string): number[] {
  return text.split('\n').filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{')).map((l) => Number(l.split(' ').pop()));
}

describe('serve: an embedding model', () => {
  let dir: string;
  let s: RunningServer;
  let url: string;
  before(async () => {
    dir = fixtureModelDir('mlm');
    s = await startServer({ model: dir, port: 0, maxClientBatchSize: 4, payloadLimit: 16384 });
    url = s.url;
  });
  after(() => s.close());

  it('/embed returns the pipeline\'s mean-pooled vectors, normalized by default', async () => {
    const texts = ['the cat', 'a dog ran far away', 'x'];
    const embed = await pipeline('feature-extraction', dir);
    const want = await embed(texts, { pooling: 'mean', normalize: true });
    const raw = await embed(texts, { pooling: 'mean' });
    const r = await post(url, '/embed', { inputs: texts });
    assert.equal(r.status, 200, r.text);
    const H = want.dims[1];
    (r.body as number[][]).forEach((v, i) => assertClose(v, want.data.subarray(i * H, (i + 1) * H), 1e-5, `text ${i}`));
    const one = await post(url, '/embed', { inputs: 'the cat', normalize: false });
    assert.equal(one.status, 200);
    assert.equal((one.body as number[][]).length, 1, 'one string: still a list of vectors (TEI)');
    assertClose((one.body as number[][])[0], raw.data.subarray(0, H), 1e-5, 'unnormalized');
  });

  it('/embed: over the limit is 413 naming the length and the limit; truncate cuts it (either side)', async () => {
    const long = longText(300);
    const r = await post(url, '/embed', { inputs: ['ok', long] });
    assert.equal(r.status, 413);
    assert.match((r.body as { error: string }).error, /input 1 has \d+ tokens, more than the model's limit of 128.*"truncate": true/);
    const embed = await pipeline('feature-extraction', dir, quiet);
    for (const side of ['right', 'left'] as const) {
      const cut = await post(url, '/embed', { inputs: long, truncate: true, truncation_direction: side === 'left' ? 'Left' : 'Right' });
      assert.equal(cut.status, 200, cut.text);
      const want = await (await pipeline('feature-extraction', dir, { ...quiet, truncationSide: side }))(long, { pooling: 'mean', normalize: true });
      assertClose((cut.body as number[][])[0], want.data, 1e-5, `truncated ${side}`);
    }
    embed.dispose();
  });

  it('/v1/embeddings (OpenAI): float and base64, usage.prompt_tokens, OpenAI error shape', async () => {
    const texts = ['the cat', 'a dog'];
    const f = await post(url, '/v1/embeddings', { input: texts, model: 'mine' });
    assert.equal(f.status, 200, f.text);
    const body = f.body as { object: string; model: string; data: { object: string; index: number; embedding: number[] }[]; usage: { prompt_tokens: number; total_tokens: number } };
    assert.equal(body.object, 'list');
    assert.equal(body.model, 'mine');
    const embed = await pipeline('feature-extraction', dir);
    const tokens = texts.reduce((n, t) => n + embed.tokenizer.encode(t).inputIds.length, 0);
    assert.deepEqual(body.usage, { prompt_tokens: tokens, total_tokens: tokens });
    const b64 = await post(url, '/v1/embeddings', { input: texts, encoding_format: 'base64' });
    const data = (b64.body as typeof body).data as unknown as { index: number; embedding: string }[];
    data.forEach((d, i) => {
      assert.equal(d.index, i);
      const buf = Buffer.from(d.embedding, 'base64');
      const v = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      assert.deepEqual(Array.from(v), body.data[i].embedding.map(Math.fround));
    });
    const bad = await post(url, '/v1/embeddings', { input: 'x', encoding_format: 'hex' });
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: { message: string } }).error.message, /"encoding_format" must be "float" or "base64"/);
    const ids = await post(url, '/v1/embeddings', { input: [[1, 2, 3]] });
    assert.equal(ids.status, 400);
  });

  it('400 for malformed JSON, wrong types and empty input; 413 for big bodies and batches; 404, 415', async () => {
    const cases: [unknown, RegExp][] = [
      ['{bad', /not valid JSON/],
      [[1, 2], /must be a JSON object/],
      [{}, /"inputs" is required/],
      [{ inputs: 5 }, /"inputs" must be a string or an array of strings/],
      [{ inputs: [] }, /"inputs" is an empty array/],
      [{ inputs: '' }, /"inputs" is empty/],
      [{ inputs: ['a', 3] }, /"inputs"\[1\] must be a string, got number/],
      [{ inputs: 'a', normalize: 'yes' }, /"normalize" must be true or false/],
      [{ inputs: 'a', truncation_direction: 'up' }, /"truncation_direction" must be "Right" or "Left"/],
    ];
    for (const [body, message] of cases) {
      const r = await post(url, '/embed', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.text}`);
      assert.equal((r.body as { error_type: string }).error_type, 'Validation');
      assert.match((r.body as { error: string }).error, message);
    }
    const many = await post(url, '/embed', { inputs: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(many.status, 413);
    assert.match((many.body as { error: string }).error, /5 inputs in one request; the limit is 4/);
    const big = await post(url, '/embed', { inputs: 'x'.repeat(20000) });
    assert.equal(big.status, 413, 'body over --payload-limit');
    const wrongRoute = await post(url, '/rerank', { query: 'q', texts: ['a'] });
    assert.equal(wrongRoute.status, 400);
    assert.match((wrongRoute.body as { error: string }).error, /\/rerank needs a sequence-classification model/);
    assert.equal((await post(url, '/nope', {})).status, 404);
    const r = await fetch(`${url}/embed`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<inputs/>' });
    assert.equal(r.status, 415);
    assert.equal((await get(url, '/health')).status, 200, 'still serving after all of that');
  });

  it('/health, /info and /metrics', async () => {
    assert.deepEqual((await get(url, '/health')).body, { status: 'ok' });
    const info = (await get(url, '/info')).body as Record<string, unknown>;
    assert.equal(info.model_id, dir);
    assert.equal(info.model_dtype, 'float32');
    assert.deepEqual(info.model_type, { embedding: { pooling: 'mean' } });
    assert.equal(info.max_input_length, 128);
    assert.equal(typeof info.max_batch_tokens, 'number');
    assert.equal(info.max_client_batch_size, 4);
    const m = (await get(url, '/metrics')).text;
    assert.ok(metric(m, 'modernbert_requests_total{route="/embed",status="200"}')[0] >= 3);
    assert.ok(metric(m, 'modernbert_requests_total{route="/embed",status="400"}')[0] >= 9);
    assert.ok(metric(m, 'modernbert_requests_total{route="/embed",status="413"}')[0] >= 2);
    assert.ok(metric(m, 'modernbert_tokens_total')[0] > 0);
    assert.ok(metric(m, 'modernbert_batch_sequences_count')[0] > 0);
    assert.ok(metric(m, 'modernbert_request_duration_seconds_count{route="/embed"}')[0] > 0);
    assert.deepEqual(metric(m, 'modernbert_queue_sequences'), [0]);
    assert.deepEqual(metric(m, 'modernbert_requests_in_flight'), [0]);
    assert.ok(metric(m, 'modernbert_process_resident_memory_bytes')[0] > 0);
  });

  it('a short autocannon run (16 clients, 64 requests of varied texts): every request answered 200', async () => {
    let i = 0;
    const r = await autocannon({
      url: `${url}/embed`, connections: 16, amount: 64, method: 'POST', headers: { 'content-type': 'application/json' },
      requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ inputs: longText(2 + (i++ % 40), i) }) }) }],
    });
    assert.equal(r['2xx'], 64);
    assert.equal(r.non2xx + r.errors + r.timeouts, 0);
  });

  it('a dead inference thread: /health answers 503 and requests 500, the process stays up', async () => {
    await (s.engine as unknown as { inference: { worker: { terminate(): Promise<number> } } }).inference.worker.terminate();
    const h = await get(url, '/health');
    assert.equal(h.status, 503);
    assert.deepEqual(h.body, { status: 'unhealthy', error: 'a worker thread died' });
    const r = await post(url, '/embed', { inputs: 'the cat' });
    assert.equal(r.status, 500);
    assert.equal((r.body as { error_type: string }).error_type, 'Backend');
  });
});

describe('serve: a classifier, behind an API key', () => {
  let dir: string;
  let s: RunningServer;
  let url: string;
  const auth = { authorization: 'Bearer sekret' };
  before(async () => {
    dir = fixtureModelDir('cls-cls');
    s = await startServer({ model: dir, port: 0, apiKey: 'sekret' });
    url = s.url;
  });
  after(() => s.close());

  it('401 without a valid key on every route but /health', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'sekret' }] as Record<string, string>[]) {
      const r = await post(url, '/predict', { inputs: 'the cat' }, headers);
      assert.equal(r.status, 401);
      assert.equal((r.body as { error_type: string }).error_type, 'Unauthorized');
    }
    assert.equal((await get(url, '/info')).status, 401);
    assert.equal((await get(url, '/metrics')).status, 401);
    assert.equal((await get(url, '/health')).status, 200);
    assert.equal((await get(url, '/info', auth)).status, 200);
  });

  it('/predict: a text, a pair, a batch; scores as the text-classification pipeline; raw_scores', async () => {
    const clf = await pipeline('text-classification', dir);
    const one = await post(url, '/predict', { inputs: 'the cat' }, auth);
    assert.equal(one.status, 200, one.text);
    const want = (await clf('the cat', { topK: null })) as { label: string; score: number }[];
    assert.deepEqual((one.body as { label: string }[]).map((l) => l.label), want.map((l) => l.label));
    assertClose((one.body as { score: number }[]).map((l) => l.score), want.map((l) => l.score), 1e-5, 'single');
    const pair = await post(url, '/predict', { inputs: ['the cat', 'a dog'] }, auth);
    const wantPair = (await clf({ text: 'the cat', textPair: 'a dog' }, { topK: null })) as { label: string; score: number }[];
    assertClose((pair.body as { score: number }[]).map((l) => l.score), wantPair.map((l) => l.score), 1e-5, 'pair');
    const batch = await post(url, '/predict', { inputs: ['the cat', ['the cat', 'a dog'], 'x'] }, auth);
    assert.equal((batch.body as unknown[]).length, 3);
    assert.deepEqual((batch.body as { label: string; score: number }[][])[1].map((l) => l.label), wantPair.map((l) => l.label));
    const raw = await post(url, '/predict', { inputs: 'the cat', raw_scores: true }, auth);
    const logits = raw.body as { label: string; score: number }[];
    const byLabel = new Map(logits.map((l) => [l.label, l.score]));
    const labels = ['negative', 'neutral', 'positive'];
    const probs = softmax(labels.map((l) => byLabel.get(l)!));
    labels.forEach((l, i) => assertClose([probs[i]], [want.find((w) => w.label === l)!.score], 1e-5, `softmax of raw ${l}`));
    const bad = await post(url, '/predict', { inputs: [['a']] }, auth);
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: string }).error, /"inputs"\[0\] must be a string or a \[text, text_pair\] pair/);
  });

  it('/rerank: sorted as the rerank pipeline, with return_text and raw_scores', async () => {
    const rr = await pipeline('rerank', dir);
    const texts = ['the cat', 'a dog ran', 'x y z', 'the the the'];
    const want = await rr({ query: 'cat', documents: texts });
    const r = await post(url, '/rerank', { query: 'cat', texts, return_text: true }, auth);
    assert.equal(r.status, 200, r.text);
    const got = r.body as { index: number; score: number; text: string }[];
    assert.deepEqual(got.map((g) => g.index), want.map((w) => w.index));
    assertClose(got.map((g) => g.score), want.map((w) => w.score), 1e-5, 'rerank scores');
    got.forEach((g) => assert.equal(g.text, texts[g.index]));
    const raw = (await post(url, '/rerank', { query: 'cat', texts, raw_scores: true }, auth)).body as { index: number; score: number }[];
    assert.ok(raw.every((g) => !('text' in g)));
    for (const g of raw) {
      const logits = (await post(url, '/predict', { inputs: ['cat', texts[g.index]], raw_scores: true }, auth)).body as { label: string; score: number }[];
      assertClose([g.score], [logits.find((l) => l.label === 'positive')!.score], 1e-5, `raw score of text ${g.index} = logit of the last label`);
    }
    for (let i = 1; i < raw.length; i++) assert.ok(raw[i - 1].score >= raw[i].score, 'sorted by raw score');
    for (const [body, message] of [[{ texts }, /"query" is required/], [{ query: 'q', texts: [] }, /"texts" is an empty array/], [{ query: 'q', texts: 'a' }, /"texts" is required: an array/]] as const) {
      const e = await post(url, '/rerank', body, auth);
      assert.equal(e.status, 400);
      assert.match((e.body as { error: string }).error, message);
    }
    const emb = await post(url, '/embed', { inputs: 'x' }, auth);
    assert.equal(emb.status, 400);
    assert.match((emb.body as { error: string }).error, /\/embed needs an embedding model/);
    const info = (await get(url, '/info', auth)).body as { model_type: unknown };
    assert.deepEqual(info.model_type, { classifier: { id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' } } });
  });
});

describe('serve: load, back-pressure and batching on a busy inference thread', () => {
  let dir: string;
  let s: RunningServer;
  let url: string;
  const slow = () => post(url, '/embed', { inputs: Array.from({ length: 6 }, (_, i) => longText(1100, i)), truncate: true });
  before(async () => {
    dir = slowModelDir();
    s = await startServer({ model: dir, port: 0, maxConcurrentRequests: 4, maxBatchTokens: 8192 });
    url = s.url;
  });
  after(() => s.close());

  it('/health answers while a batch runs', async () => {
    let slowDone = false;
    const big = slow().then((r) => {
      slowDone = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 150));
    const t0 = performance.now();
    const h = await get(url, '/health');
    const ms = performance.now() - t0;
    assert.equal(h.status, 200);
    assert.equal(slowDone, false, 'the batch was still running when /health answered');
    assert.ok(ms < 1000, `/health took ${ms.toFixed(0)} ms during a batch`);
    assert.equal((await big).status, 200);
  });

  it('past --max-concurrent-requests: 429 with a clear body; the admitted ones are batched together; then it recovers', async () => {
    const before = (await get(url, '/metrics')).text;
    const batchesBefore = metric(before, 'modernbert_batch_sequences_count')[0];
    const big = slow();
    await new Promise((r) => setTimeout(r, 100));
    const small = await Promise.all(Array.from({ length: 10 }, (_, i) => post(url, '/embed', { inputs: `the cat ${i}` })));
    const codes = small.map((r) => r.status);
    assert.equal(codes.filter((c) => c === 200).length, 3, `one slot is the big request's, three are left: ${codes}`);
    assert.equal(codes.filter((c) => c === 429).length, 7);
    const rejected = small.find((r) => r.status === 429)!.body as { error: string; error_type: string };
    assert.equal(rejected.error_type, 'Overloaded');
    assert.match(rejected.error, /limit of 4 concurrent requests/);
    assert.equal((await big).status, 200);
    const m = (await get(url, '/metrics')).text;
    assert.equal(metric(m, 'modernbert_batch_sequences_count')[0] - batchesBefore, 2, 'the big request, then the three small ones in one pass');
    assert.deepEqual(metric(m, 'modernbert_requests_in_flight'), [0]);
    assert.equal((await post(url, '/embed', { inputs: 'the cat' })).status, 200);
  });
});

describe('serve: the CLI, stopped by SIGTERM', () => {
  it('finishes the admitted request, refuses new ones, exits 0', async () => {
    const dir = slowModelDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve', '-m', dir, '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d;
        const m = /on (http:\/\/[\d.:]+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`serve exited early:\n${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const big = post(url, '/embed', { inputs: Array.from({ length: 6 }, (_, i) => longText(1100, i)), truncate: true });
    let answered = false;
    void big.then(() => (answered = true));
    while (!answered && metric((await get(url, '/metrics')).text, 'modernbert_requests_in_flight')[0] !== 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal(answered, false, 'SIGTERM comes while the request runs');
    child.kill('SIGTERM');
    const r = await big;
    assert.equal(r.status, 200, r.text);
    assert.equal((r.body as number[][]).length, 6);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: finishing admitted requests/);
    await assert.rejects(fetch(`${url}/health`), 'nothing listens any more');
  });
});
