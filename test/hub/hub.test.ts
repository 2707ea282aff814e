/**
 * The Hugging Face cache against a fake hub on 127.0.0.1: layout, refs, revisions, LFS redirects, resume
 * after a dropped connection (in-process and across processes), offline mode, 404 and 401, and a pipeline
 * loaded by repo id.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel, hfHubDownload, type ProgressInfo } from '../../src/hub/hub.js';
import { pipeline } from '../../src/pipelines/registry.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { tinyTokenizerFiles } from '../pipelines/helpers.js';
import { FakeHub } from './fake-hub.js';

const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);
const REPO = 'test-org/tiny-mlm';

function repoFiles(extraConfig: Record<string, unknown>): Record<string, Buffer> {
  const config = { ...JSON.parse(readFileSync(join(fixtureDir('mlm'), 'config.json'), 'utf8')), ...extraConfig };
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify(config)),
    'model.safetensors': readFileSync(join(fixtureDir('mlm'), 'model.safetensors')),
  };
  for (const [name, json] of Object.entries(tinyTokenizerFiles(config.vocab_size, config.max_position_embeddings))) files[name] = Buffer.from(JSON.stringify(json));
  return files;
}

describe('hub: the Hugging Face cache over a local fake hub', () => {
  let hub: FakeHub;
  let home: string;
  let cache: string;
  const saved = Object.fromEntries(['HF_HOME', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE'].map((k) => [k, process.env[k]]));

  before(async () => {
    const v1 = repoFiles({ note: 'v1' });
    hub = await new FakeHub({
      [REPO]: { refs: { main: C1, v1: C2 }, files: { [C1]: repoFiles({}), [C2]: v1 }, lfs: new Set(['model.safetensors']) },
      'test-org/private': { refs: { main: C1 }, files: { [C1]: repoFiles({}) }, lfs: new Set(['model.safetensors']), token: 'hf_secret' },
      'test-org/no-weights': { refs: { main: C1 }, files: { [C1]: { 'config.json': Buffer.from('{}'), 'tokenizer.json': Buffer.from('{}') } }, lfs: new Set() },
    }).start();
    process.env.HF_ENDPOINT = hub.endpoint;
    delete process.env.HF_HUB_OFFLINE;
    delete process.env.HF_TOKEN;
    delete process.env.HF_HUB_CACHE; // these would take precedence over HF_HOME
    delete process.env.HUGGINGFACE_HUB_CACHE;
  });
  after(async () => {
    await hub.stop();
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  });
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'mb-hf-home-'));
    process.env.HF_HOME = home;
    cache = join(home, 'hub', 'models--test-org--tiny-mlm');
    hub.log.length = 0;
    delete process.env.HF_HUB_OFFLINE;
  });

  it('downloads into $HF_HOME/hub in huggingface_hub\'s layout (blobs by etag, refs, relative snapshot links)', async () => {
    const events: ProgressInfo[] = [];
    const snap = await resolveModel(REPO, { progressCallback: (p) => events.push(p) });
    assert.equal(snap, join(cache, 'snapshots', C1));
    assert.equal(readFileSync(join(cache, 'refs', 'main'), 'utf8'), C1);
    const weights = readFileSync(join(fixtureDir('mlm'), 'model.safetensors'));
    const link = join(snap, 'model.safetensors');
    assert.ok(lstatSync(link).isSymbolicLink(), 'snapshot entry is a symlink');
    assert.equal(readlinkSync(link), join('..', '..', 'blobs', FakeHub.sha256(weights)));
    assert.deepEqual(readFileSync(link), weights);
    const config = readFileSync(join(snap, 'config.json'));
    assert.equal(readlinkSync(join(snap, 'config.json')), join('..', '..', 'blobs', FakeHub.gitSha1(config)));
    assert.ok(!existsSync(join(snap, 'special_tokens_map.json')), 'optional file absent from the repo is skipped');
    const weightEvents = events.filter((e) => e.file === 'model.safetensors');
    assert.deepEqual([weightEvents[0].status, weightEvents[weightEvents.length - 1].status], ['initiate', 'done']);
    assert.ok(weightEvents.some((e) => e.status === 'progress' && e.total === weights.length), 'progress events with the total');
    // Second time: metadata only, no file is fetched again.
    hub.log.length = 0;
    await resolveModel(REPO);
    assert.ok(hub.log.every((r) => r.method === 'HEAD'), JSON.stringify(hub.log));
  });

  it('resolves a revision (tag) to its own snapshot and ref', async () => {
    const snap = await resolveModel(REPO, { revision: 'v1' });
    assert.equal(snap, join(cache, 'snapshots', C2));
    assert.equal(readFileSync(join(cache, 'refs', 'v1'), 'utf8'), C2);
    assert.equal(JSON.parse(readFileSync(join(snap, 'config.json'), 'utf8')).note, 'v1');
    // The weights blob is shared between the two commits (same etag).
    await resolveModel(REPO);
    assert.equal(hub.log.filter((r) => r.url.startsWith('/cdn/') && r.method === 'GET').length, 1);
  });

  it('resumes a dropped connection with a Range request', async () => {
    const weights = readFileSync(join(fixtureDir('mlm'), 'model.safetensors'));
    const cdn = `/cdn/${FakeHub.sha256(weights)}`;
    hub.dropAfter.set(cdn, 10000);
    const snap = await resolveModel(REPO);
    assert.deepEqual(readFileSync(join(snap, 'model.safetensors')), weights);
    const gets = hub.log.filter((r) => r.url === cdn && r.method === 'GET');
    assert.equal(gets.length, 2);
    assert.equal(gets[0].range, undefined);
    assert.equal(gets[1].range, 'bytes=10000-');
  });

  it('resumes a download another process left in blobs/<etag>.incomplete (taking over its stale lock)', async () => {
    const weights = readFileSync(join(fixtureDir('mlm'), 'model.safetensors'));
    const sha = FakeHub.sha256(weights);
    mkdirSync(join(cache, 'blobs'), { recursive: true });
    writeFileSync(join(cache, 'blobs', `${sha}.incomplete`), weights.subarray(0, 4321));
    writeFileSync(join(cache, 'blobs', `${sha}.lock`), '999999999'); // left by a process that died
    const snap = await resolveModel(REPO);
    assert.deepEqual(readFileSync(join(snap, 'model.safetensors')), weights);
    assert.deepEqual(hub.log.filter((r) => r.url === `/cdn/${sha}`).map((r) => r.range), ['bytes=4321-']);
    assert.ok(!existsSync(join(cache, 'blobs', `${sha}.incomplete`)), 'the .incomplete file is renamed');
    assert.ok(!existsSync(join(cache, 'blobs', `${sha}.lock`)), 'the lock is released');
  });

  it('drops a stalled connection after HF_HUB_DOWNLOAD_TIMEOUT and resumes it', async () => {
    const weights = readFileSync(join(fixtureDir('mlm'), 'model.safetensors'));
    const cdn = `/cdn/${FakeHub.sha256(weights)}`;
    hub.stallAfter.set(cdn, 5000);
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = '0.3';
    try {
      const snap = await resolveModel(REPO);
      assert.deepEqual(readFileSync(join(snap, 'model.safetensors')), weights);
    } finally {
      delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
    }
    assert.deepEqual(hub.log.filter((r) => r.url === cdn).map((r) => r.range), [undefined, 'bytes=5000-']);
  });

  it('concurrent loads of one model fetch each file once (the blob is locked)', async () => {
    const weights = readFileSync(join(fixtureDir('mlm'), 'model.safetensors'));
    const cdn = `/cdn/${FakeHub.sha256(weights)}`;
    const [a, b] = await Promise.all([resolveModel(REPO), resolveModel(REPO)]);
    assert.equal(a, b);
    assert.deepEqual(readFileSync(join(a, 'model.safetensors')), weights);
    assert.equal(hub.log.filter((r) => r.url === cdn && r.method === 'GET').length, 1);
    assert.deepEqual(readdirSync(join(cache, 'blobs')).filter((f) => /\.(lock|incomplete)$/.test(f)), [], 'no lock or partial file left');
  });

  it('offline (HF_HUB_OFFLINE=1 or localFilesOnly) reads only the cache and names what is missing', async () => {
    await assert.rejects(resolveModel(REPO, { localFilesOnly: true }), /offline mode.*test-org\/tiny-mlm \(revision main\) is not in the cache/);
    await resolveModel(REPO, { files: 'tokenizer' });
    process.env.HF_HUB_OFFLINE = '1';
    hub.log.length = 0;
    assert.equal(await resolveModel(REPO, { files: 'tokenizer' }), join(cache, 'snapshots', C1));
    await assert.rejects(resolveModel(REPO), /lacks config\.json, model\.safetensors/);
    delete process.env.HF_HUB_OFFLINE;
    await resolveModel(REPO);
    process.env.HF_HUB_OFFLINE = '1';
    assert.equal(await resolveModel(REPO), join(cache, 'snapshots', C1));
    assert.equal(hub.log.filter((r) => r.method === 'HEAD').length, 5, 'only the online call reached the hub (5 files: 4 found, 1 optional 404)');
  });

  it('falls back to the cache when the hub cannot be reached', async () => {
    await resolveModel(REPO);
    assert.equal(await resolveModel(REPO, { endpoint: 'http://127.0.0.1:9' }), join(cache, 'snapshots', C1));
    await assert.rejects(resolveModel('test-org/other', { endpoint: 'http://127.0.0.1:9' }), /cannot reach the Hub.*not in the cache/);
  });

  it('reports 404 (file, revision) and 401 (private repo without HF_TOKEN) clearly; the token opens it', async () => {
    await assert.rejects(hfHubDownload(REPO, 'nope.bin', { revision: 'main' }, true), /required file nope\.bin not found/);
    await assert.rejects(resolveModel(REPO, { revision: 'v9' }), /revision 'v9' not found/);
    await assert.rejects(resolveModel('test-org/no-weights'), /neither model\.safetensors nor model\.safetensors\.index\.json/);
    await assert.rejects(resolveModel('test-org/private'), /access denied \(HTTP 401.*set HF_TOKEN/);
    process.env.HF_TOKEN = 'hf_secret';
    try {
      assert.ok(existsSync(join(await resolveModel('test-org/private'), 'model.safetensors')), 'private repo downloaded with the token');
    } finally {
      delete process.env.HF_TOKEN;
    }
  });

  it('rejects a name that is neither a folder nor a repo id', async () => {
    await assert.rejects(resolveModel('./no/such/folder'), /neither an existing folder nor a Hub repo id/);
  });

  it('pipeline() takes a repo id (HF_ENDPOINT) and runs from the cache', async () => {
    const fill = await pipeline('fill-mask', REPO);
    const out = (await fill('the [MASK]', { topK: 2 })) as { token: number }[];
    assert.equal(out.length, 2);
    process.env.HF_HUB_OFFLINE = '1';
    const again = await pipeline('fill-mask', REPO);
    assert.deepEqual(await again('the [MASK]', { topK: 2 }), out);
  });
});
