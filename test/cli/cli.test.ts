/**
 * The `modernbert` CLI, spawned (node --import tsx src/cli/main.ts) on fixture models: each command's
 * output against the library's, files written by `embed`, `download` from a loopback fake hub, the
 * error messages and exit codes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from '../../src/pipelines/registry.js';
import { fixtureModelDir } from '../pipelines/helpers.js';
import { FakeHub } from '../hub/fake-hub.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { tinyTokenizerFiles } from '../pipelines/helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

const jsonLines = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l));

describe('modernbert CLI (spawned)', () => {
  let mlm: string;
  let cls: string;
  let tok: string;
  let tmp: string;
  before(() => {
    mlm = fixtureModelDir('mlm');
    cls = fixtureModelDir('cls-cls');
    tok = fixtureModelDir('tok');
    tmp = mkdtempSync(join(tmpdir(), 'mb-cli-'));
  });

  it('--help lists every command, and each command has its own --help', async () => {
    const [top, sub] = await Promise.all([cli(['--help']), cli(['embed', '--help'])]);
    assert.equal(top.code, 0);
    for (const c of ['fill-mask', 'embed', 'classify', 'tag', 'rerank', 'tokenize', 'download', 'info']) assert.match(top.stdout, new RegExp(`\\b${c}\\b`));
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /--pooling <kind>/);
    assert.match(sub.stdout, /--no-truncate/);
  });

  it('fill-mask prints what the pipeline returns; a text without [MASK] fails with a message', async () => {
    const [r, bad] = await Promise.all([
      cli(['fill-mask', '-m', mlm, '--json', '-k', '3', 'the cat [MASK]', 'a [MASK] b [MASK]']),
      cli(['fill-mask', '-m', mlm, 'no mask here']),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const fill = await pipeline('fill-mask', mlm);
    const lines = jsonLines(r.stdout);
    assert.deepEqual(lines[0].masks, [await fill('the cat [MASK]', { topK: 3 })]);
    assert.deepEqual(lines[1].masks, await fill('a [MASK] b [MASK]', { topK: 3 }));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /modernbert: error: input 0 has no \[MASK\] token/);
  });

  it('--dtype bf16 runs the model in bf16 (what the pipeline gives with dtype bf16); another dtype exits 2', async () => {
    const [r, bad] = await Promise.all([
      cli(['embed', '-m', mlm, '--dtype', 'bf16', 'the cat sat']),
      cli(['embed', '-m', mlm, '--dtype', 'fp16', 'the cat sat']),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [bf16, f32] = await Promise.all([pipeline('feature-extraction', mlm, { dtype: 'bf16' }), pipeline('feature-extraction', mlm)]);
    const want = Array.from((await bf16('the cat sat', { pooling: 'mean' })).data);
    const got = jsonLines(r.stdout)[0].embedding as number[];
    assert.deepEqual(got.map(Math.fround), want);
    assert.notDeepEqual(want, Array.from((await f32('the cat sat', { pooling: 'mean' })).data), 'bf16 differs from float32');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--dtype must be one of float32, bf16/);
  });

  it('embed: texts from a .jsonl file to an .npy matrix (atomic), and JSON lines from stdin', async () => {
    const input = join(tmp, 'in.jsonl');
    writeFileSync(input, ['"the cat"', '{"text": "a dog ran"}', '"x"'].join('\n'));
    const out = join(tmp, 'emb.npy');
    const r = await cli(['embed', '-m', mlm, '-i', input, '-o', out, '--normalize']);
    assert.equal(r.code, 0, r.stderr);
    const bytes = readFileSync(out);
    const headerLen = bytes.readUInt16LE(8);
    const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
    assert.equal(bytes.subarray(0, 6).toString('latin1'), '\x93NUMPY');
    assert.equal((10 + headerLen) % 64, 0);
    assert.match(header, /'descr': '<f4', 'fortran_order': False, 'shape': \(3, 64\)/);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLen, bytes.byteOffset + bytes.length));
    const embed = await pipeline('feature-extraction', mlm);
    assert.deepEqual(data, (await embed(['the cat', 'a dog ran', 'x'], { pooling: 'mean', normalize: true })).data);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
    const piped = await cli(['embed', '-m', mlm, '--pooling', 'cls'], { input: 'the cat\n\nx\n' });
    assert.equal(piped.code, 0, piped.stderr);
    const rows = jsonLines(piped.stdout);
    assert.equal(rows.length, 2);
    assert.deepEqual(Float32Array.from(rows[1].embedding), (await embed('x', { pooling: 'cls' })).data);
  });

  it('truncates over-long input with a warning, or refuses it with --no-truncate', async () => {
    const long = 'the cat '.repeat(200);
    const [warned, refused] = await Promise.all([cli(['embed', '-m', mlm, long]), cli(['embed', '-m', mlm, '--no-truncate', long])]);
    assert.equal(warned.code, 0);
    assert.match(warned.stderr, /warning: input 0 has \d+ tokens; truncated to 128/);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /more than the model's limit of 128/);
  });

  it('classify, tag and rerank print what their pipelines return', async () => {
    const [c, t, rr, noQuery] = await Promise.all([
      cli(['classify', '-m', cls, '--json', '--all', 'the cat', '--pair', 'a dog']),
      cli(['tag', '-m', tok, '--json', '-a', 'first', 'the cat saw paris']),
      cli(['rerank', '-m', cls, '--json', '-q', 'cat', 'the cat', 'a dog', 'xyz']),
      cli(['rerank', '-m', cls, 'a']),
    ]);
    assert.equal(c.code, 0, c.stderr);
    const clf = await pipeline('text-classification', cls);
    assert.deepEqual(jsonLines(c.stdout)[0].labels, await clf({ text: 'the cat', textPair: 'a dog' }, { topK: null }));
    assert.equal(t.code, 0, t.stderr);
    const tagger = await pipeline('token-classification', tok);
    assert.deepEqual(jsonLines(t.stdout)[0].entities, await tagger('the cat saw paris', { aggregationStrategy: 'first' }));
    assert.equal(rr.code, 0, rr.stderr);
    const rerank = await pipeline('rerank', cls);
    assert.deepEqual(jsonLines(rr.stdout), await rerank({ query: 'cat', documents: ['the cat', 'a dog', 'xyz'] }, { returnDocuments: true }));
    assert.equal(noQuery.code, 1);
    assert.match(noQuery.stderr, /needs --query/);
  });

  it('tokenize and info', async () => {
    const [t, i] = await Promise.all([cli(['tokenize', '-m', mlm, '--json', 'the [MASK]']), cli(['info', '-m', mlm, '--json'])]);
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(jsonLines(t.stdout)[0].ids, [501, 123, 68, 504, 502]);
    assert.equal(i.code, 0, i.stderr);
    const info = JSON.parse(i.stdout);
    assert.ok(['avx512', 'avx2', 'portable'].includes(info.isa), `isa ${info.isa}`);
    assert.ok(info.threads >= 1, `threads ${info.threads}`);
    assert.ok(['amx', 'avx512bf16', 'portable'].includes(info.bf16), `bf16 ${info.bf16}`);
    assert.equal(info.bf16Attention, info.bf16 === 'portable' ? 'float32' : info.bf16);
    // Parameters: embeddings 512·64 + norms + 4 layers + head, as the safetensors header lists them.
    const header = JSON.parse(readFileSync(join(fixtureDir('mlm'), 'model.safetensors')).subarray(8, 8 + Number(readFileSync(join(fixtureDir('mlm'), 'model.safetensors')).readBigUInt64LE(0))).toString());
    const expected = Object.entries(header).filter(([k]) => k !== '__metadata__').reduce((n, [, v]) => n + (v as { shape: number[] }).shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(info.model.parameters, expected);
    assert.equal(info.model.hidden_size, 64);
  });

  it('without --model, fill-mask and embed run the shipped default model (what the pipeline gives on it)', async () => {
    const text = 'The capital of France is [MASK].';
    const [fill, embed] = await Promise.all([cli(['fill-mask', '--json', text]), cli(['embed', 'first text', 'second'])]);
    const defaultDir = join(ROOT, 'models', 'default');
    assert.equal(fill.code, 0, fill.stderr);
    assert.deepEqual(jsonLines(fill.stdout)[0].masks, [await (await pipeline('fill-mask', defaultDir))(text)]);
    assert.equal(embed.code, 0, embed.stderr);
    const rows = jsonLines(embed.stdout);
    const want = await (await pipeline('feature-extraction', defaultDir))(['first text', 'second'], { pooling: 'mean' });
    assert.deepEqual(rows.map((r) => r.embedding.length), [want.dims[1], want.dims[1]]);
    assert.deepEqual(Float32Array.from(rows.flatMap((r) => r.embedding)), want.data);
  });

  it('clear errors: missing model, unreadable input, bad option value (exit 2)', async () => {
    const [missing, unreadable, bad] = await Promise.all([
      cli(['fill-mask', '-m', join(tmp, 'nope'), 'a [MASK]']),
      cli(['embed', '-m', mlm, '-i', join(tmp, 'missing.txt')]),
      cli(['fill-mask', '-m', mlm, '-k', 'zero', 'a [MASK]']),
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /neither an existing folder nor a Hub repo id/);
    assert.equal(unreadable.code, 1);
    assert.match(unreadable.stderr, /cannot read input file .*missing\.txt/);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--top-k must be a positive integer/);
  });

  describe('download from a fake hub, then offline use', () => {
    let hub: FakeHub;
    before(async () => {
      const config = JSON.parse(readFileSync(join(fixtureDir('mlm'), 'config.json'), 'utf8'));
      const files: Record<string, Buffer> = {
        'config.json': Buffer.from(JSON.stringify(config)),
        'model.safetensors': readFileSync(join(fixtureDir('mlm'), 'model.safetensors')),
      };
      for (const [n, j] of Object.entries(tinyTokenizerFiles(config.vocab_size, config.max_position_embeddings))) files[n] = Buffer.from(JSON.stringify(j));
      const commit = 'a'.repeat(40);
      hub = await new FakeHub({ 'org/tiny': { refs: { main: commit }, files: { [commit]: files }, lfs: new Set(['model.safetensors']) } }).start();
    });
    after(() => hub.stop());

    it('download fills the cache; fill-mask then runs with HF_HUB_OFFLINE=1', async () => {
      const home = mkdtempSync(join(tmpdir(), 'mb-cli-home-'));
      const env = { HF_HOME: home, HF_ENDPOINT: hub.endpoint, HF_HUB_OFFLINE: undefined, HF_HUB_CACHE: undefined, HUGGINGFACE_HUB_CACHE: undefined };
      const d = await cli(['download', 'org/tiny'], { env });
      assert.equal(d.code, 0, d.stderr);
      const snap = d.stdout.trim();
      assert.equal(snap, join(home, 'hub', 'models--org--tiny', 'snapshots', 'a'.repeat(40)));
      assert.ok(existsSync(join(snap, 'model.safetensors')), 'weights in the snapshot');
      const offline = await cli(['fill-mask', '-m', 'org/tiny', '--json', 'the [MASK]'], { env: { ...env, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' } });
      assert.equal(offline.code, 0, offline.stderr);
      const fill = await pipeline('fill-mask', mlm);
      assert.deepEqual(jsonLines(offline.stdout)[0].masks, [await fill('the [MASK]')]);
      const notCached = await cli(['fill-mask', '-m', 'org/other', 'the [MASK]'], { env: { ...env, HF_HUB_OFFLINE: '1' } });
      assert.equal(notCached.code, 1);
      assert.match(notCached.stderr, /offline mode.*org\/other \(revision main\) is not in the cache/);
    });
  });
});
