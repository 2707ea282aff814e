/**
 * Models by name: a local folder, or a Hub repo id resolved into the standard Hugging Face cache
 * ($HF_HUB_CACHE, else $HF_HOME/hub: models--org--name/{blobs,refs,snapshots/<commit>/}), shared with
 * Python's huggingface_hub.
 *
 * From `@huggingface/hub` this uses the cache location and folder naming. Its `downloadFileToCacheDir`
 * does not fit: it asks the /api paths-info endpoint for metadata, rewrites `.incomplete` from byte 0
 * (no resume), reports no progress and writes no refs/<revision>. So the download follows
 * huggingface_hub's `hf_hub_download` protocol instead: HEAD on /<repo>/resolve/<revision>/<file>
 * (X-Repo-Commit, ETag or X-Linked-Etag for LFS, Location for the CDN), then a GET resumed with Range
 * into blobs/<etag>.incomplete, renamed when complete and linked from snapshots/<commit>/<file>.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import { ModernBertError } from '../errors.js';

/** A model that cannot be found, fetched or read from the cache: names the repo, revision and file. */
export class HubError extends ModernBertError {}

export interface ProgressInfo {
  status: 'initiate' | 'download' | 'progress' | 'done';
  /** Repo id. */
  name: string;
  file: string;
  /** Bytes so far and in total (when the server says). */
  loaded?: number;
  total?: number;
  /** 0–100. */
  progress?: number;
}

export interface HubOptions {
  /** Branch, tag or commit hash (default 'main'). */
  revision?: string;
  /** The hub cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Read only the cache, never the network (also: HF_HUB_OFFLINE=1). */
  localFilesOnly?: boolean;
  /** Access token for private or gated repos (default: $HF_TOKEN). */
  token?: string;
  /** Hub URL (default: $HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  progressCallback?: (info: ProgressInfo) => void;
}

export type FileSet = 'tokenizer' | 'model' | 'all';

const TOKENIZER_FILES: [string, boolean][] = [['tokenizer.json', true], ['tokenizer_config.json', false], ['special_tokens_map.json', false]];
const COMMIT = /^[0-9a-f]{40}$/;
const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
const MAX_ATTEMPTS = 5;

function isOffline(options: HubOptions): boolean {
  return options.localFilesOnly === true || ['1', 'true', 'yes', 'on'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

function cacheRoot(options: HubOptions): string {
  return options.cacheDir ?? getHFHubCachePath();
}

function repoFolder(repoId: string, options: HubOptions): string {
  return join(cacheRoot(options), getRepoFolderName({ name: repoId, type: 'model' }));
}

/**
 * A local folder as is; otherwise a Hub repo id whose files (`files`: the tokenizer's, the model's, or
 * both) are fetched into the cache. Returns the folder holding them (a cache snapshot for a repo id).
 */
export async function resolveModel(dirOrRepoId: string, options: HubOptions & { files?: FileSet } = {}): Promise<string> {
  if (existsSync(dirOrRepoId)) {
    if (!statSync(dirOrRepoId).isDirectory()) throw new HubError(`${dirOrRepoId} is a file; pass the model folder (with config.json) or a Hub repo id`);
    return dirOrRepoId;
  }
  if (!REPO_ID.test(dirOrRepoId) || dirOrRepoId.startsWith('.'))
    throw new HubError(`model '${dirOrRepoId}' is neither an existing folder nor a Hub repo id (org/name)`);
  try {
    return await snapshotFiles(dirOrRepoId, options.files ?? 'all', options);
  } catch (e) {
    // "org/name" may also have been meant as a relative folder: say that none exists.
    if (e instanceof HubError && !(e instanceof NetworkError)) throw new HubError(`${e.message} (and there is no local folder '${dirOrRepoId}')`);
    throw e;
  }
}

/** Fetches (or, offline, finds) the files a task needs; returns snapshots/<commit>. */
export async function snapshotFiles(repoId: string, files: FileSet, options: HubOptions = {}): Promise<string> {
  const revision = options.revision ?? 'main';
  const wanted: [string, boolean][] = [];
  if (files !== 'tokenizer') wanted.push(['config.json', true]);
  if (files !== 'model') wanted.push(...TOKENIZER_FILES);
  if (isOffline(options)) return fromCache(repoId, revision, files, options, 'offline mode (HF_HUB_OFFLINE=1 or localFilesOnly)');
  let snapshot: string | null = null;
  try {
    for (const [file, required] of wanted) {
      const path = await hfHubDownload(repoId, file, { ...options, revision }, required);
      if (path) snapshot = dirname(path);
    }
    if (files !== 'tokenizer') {
      const single = await hfHubDownload(repoId, 'model.safetensors', { ...options, revision }, false);
      if (single) {
        snapshot = dirname(single);
      } else {
        const index = await hfHubDownload(repoId, 'model.safetensors.index.json', { ...options, revision }, false);
        if (!index) throw new HubError(`${repoId}@${revision} has neither model.safetensors nor model.safetensors.index.json`);
        for (const shard of shardsOf(index)) await hfHubDownload(repoId, shard, { ...options, revision }, true);
        snapshot = dirname(index);
      }
    }
  } catch (e) {
    // Like huggingface_hub: when the Hub cannot be reached, fall back to what the cache holds.
    if (e instanceof NetworkError) return fromCache(repoId, revision, files, options, e.message);
    throw e;
  }
  return snapshot!;
}

function shardsOf(indexPath: string): string[] {
  let map: unknown;
  try {
    map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(`${indexPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (!map || typeof map !== 'object') throw new HubError(`${indexPath} has no weight_map`);
  return [...new Set(Object.values(map as Record<string, string>))];
}

/** The cached snapshot for `revision`, checked to hold the needed files; else an error naming what is missing. */
function fromCache(repoId: string, revision: string, files: FileSet, options: HubOptions, why: string): string {
  const folder = repoFolder(repoId, options);
  let commit: string | null = COMMIT.test(revision) ? revision : null;
  const ref = join(folder, 'refs', revision);
  if (!commit && existsSync(ref)) commit = readFileSync(ref, 'utf8').trim();
  if (!commit || !existsSync(join(folder, 'snapshots', commit)))
    throw new HubError(`${why}: ${repoId} (revision ${revision}) is not in the cache ${cacheRoot(options)}; run \`modernbert download ${repoId}\` while online`);
  const snap = join(folder, 'snapshots', commit);
  const missing: string[] = [];
  if (files !== 'tokenizer' && !existsSync(join(snap, 'config.json'))) missing.push('config.json');
  if (files !== 'model' && !existsSync(join(snap, 'tokenizer.json'))) missing.push('tokenizer.json');
  if (files !== 'tokenizer') {
    const index = join(snap, 'model.safetensors.index.json');
    if (existsSync(join(snap, 'model.safetensors'))) {
      // complete
    } else if (existsSync(index)) {
      for (const shard of shardsOf(index)) if (!existsSync(join(snap, shard))) missing.push(shard);
    } else {
      missing.push('model.safetensors');
    }
  }
  if (missing.length > 0)
    throw new HubError(`${why}: the cached snapshot ${snap} of ${repoId}@${revision} lacks ${missing.join(', ')}; run \`modernbert download ${repoId}\` while online`);
  return snap;
}

/** The Hub could not be reached (as opposed to answering with an error). */
class NetworkError extends HubError {}

interface FileMetadata {
  commit: string;
  etag: string;
  size: number | null;
  url: string;
}

function headers(options: HubOptions): Record<string, string> {
  const token = options.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

function describeStatus(repoId: string, file: string, revision: string, res: Response): HubError {
  const code = res.headers.get('x-error-code');
  if (res.status === 401 || res.status === 403)
    return new HubError(`${repoId}: access denied (HTTP ${res.status}${code ? `, ${code}` : ''}): the repo does not exist, or it is private or gated; set HF_TOKEN (or the token option) to a token that can read it`);
  if (res.status === 404) {
    if (code === 'RevisionNotFound') return new HubError(`${repoId}: revision '${revision}' not found`);
    if (code === 'RepositoryNotFound') return new HubError(`${repoId}: repository not found`);
    return new HubError(`${repoId}@${revision}: file ${file} not found`);
  }
  return new HubError(`${repoId}@${revision}: ${file}: HTTP ${res.status} ${res.statusText}`);
}

/** Seconds from the environment, as huggingface_hub reads HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT (default 10). */
function timeoutMs(variable: string): number {
  const v = Number(process.env[variable] ?? 10);
  return (Number.isFinite(v) && v > 0 ? v : 10) * 1000;
}

async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const reason = (e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError' ? 'timed out' : (cause?.code ?? cause?.message ?? (e as Error).message);
    throw new NetworkError(`cannot reach the Hub for ${what} (${reason})`);
  }
}

/** HEAD on the resolve URL, following same-host redirects (renamed repos) but not the CDN's. */
async function fileMetadata(repoId: string, file: string, revision: string, options: HubOptions): Promise<FileMetadata | null> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  let url = `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  for (let hop = 0; hop < 5; hop++) {
    const res = await request(url, {
      method: 'HEAD', redirect: 'manual', headers: { ...headers(options), 'accept-encoding': 'identity' }, signal: AbortSignal.timeout(timeoutMs('HF_HUB_ETAG_TIMEOUT')),
    }, `${repoId}/${file}`);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const target = new URL(location, url);
      if (target.origin === new URL(url).origin && !res.headers.get('x-linked-etag')) {
        url = target.href;
        continue;
      }
    } else if (res.status === 404 && !['RepositoryNotFound', 'RevisionNotFound'].includes(res.headers.get('x-error-code') ?? '')) {
      return null;
    } else if (!res.ok) {
      throw describeStatus(repoId, file, revision, res);
    }
    const commit = res.headers.get('x-repo-commit');
    const etag = (res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (!commit || !etag) throw new HubError(`${repoId}@${revision}: ${file}: the server sent no X-Repo-Commit / ETag headers (is HF_ENDPOINT a Hugging Face hub?)`);
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? NaN);
    return { commit, etag, size: Number.isFinite(size) ? size : null, url: location ? new URL(location, url).href : url };
  }
  throw new HubError(`${repoId}: too many redirects for ${file}`);
}

function link(blob: string, pointer: string): void {
  mkdirSync(dirname(pointer), { recursive: true });
  try {
    if (lstatSync(pointer)) unlinkSync(pointer);
  } catch {
    // no previous pointer
  }
  symlinkSync(relative(dirname(pointer), blob), pointer); // relative, as huggingface_hub writes them
}

/**
 * One file into the cache; returns its snapshot path, or null when an optional file does not exist.
 * Interrupted downloads resume from blobs/<etag>.incomplete with a Range request, here (up to 5
 * attempts) or in a later process.
 */
export async function hfHubDownload(repoId: string, file: string, options: HubOptions & { revision: string }, required: boolean): Promise<string | null> {
  const { revision } = options;
  const meta = await fileMetadata(repoId, file, revision, options);
  const folder = repoFolder(repoId, options);
  if (!meta) {
    if (required) throw new HubError(`${repoId}@${revision}: required file ${file} not found in the repo`);
    return null;
  }
  if (revision !== meta.commit) {
    mkdirSync(join(folder, 'refs', dirname(revision)), { recursive: true });
    writeFileSync(join(folder, 'refs', revision), meta.commit);
  }
  const pointer = join(folder, 'snapshots', meta.commit, file);
  const blob = join(folder, 'blobs', meta.etag);
  const progress = options.progressCallback ?? (() => {});
  if (existsSync(blob)) {
    if (!existsSync(pointer)) link(blob, pointer);
    progress({ status: 'done', name: repoId, file });
    return pointer;
  }
  mkdirSync(dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  const release = await lockBlob(blob);
  try {
    // Another process (or call) may have finished the blob while this one waited for the lock.
    if (existsSync(blob)) {
      link(blob, pointer);
      progress({ status: 'done', name: repoId, file });
      return pointer;
    }
    progress({ status: 'initiate', name: repoId, file });
    for (let attempt = 1; ; attempt++) {
      try {
        await downloadTo(partial, meta, repoId, file, revision, options, progress);
        break;
      } catch (e) {
        if (!(e instanceof NetworkError) || attempt >= MAX_ATTEMPTS) throw e;
      }
    }
    const got = statSync(partial).size;
    if (meta.size !== null && got !== meta.size)
      throw new HubError(`${repoId}@${revision}: ${file}: downloaded ${got} bytes, the server announced ${meta.size}`);
    renameSync(partial, blob);
    link(blob, pointer);
    progress({ status: 'done', name: repoId, file, loaded: got, total: got, progress: 100 });
    return pointer;
  } finally {
    release();
  }
}

const heldLocks = new Map<string, Promise<void>>();

/**
 * Exclusive right to write `blob` (huggingface_hub locks blobs too): `<blob>.lock` holds the owner's pid,
 * so concurrent processes wait, and a lock left by a dead process is taken over. Calls within one process
 * queue on a promise.
 */
async function lockBlob(blob: string): Promise<() => void> {
  while (heldLocks.has(blob)) await heldLocks.get(blob);
  let release!: () => void;
  heldLocks.set(blob, new Promise<void>((r) => (release = r)));
  const lock = `${blob}.lock`;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSync(lock, 'utf8'));
      let alive = Number.isInteger(owner) && owner > 0;
      try {
        if (alive) process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (!alive) unlinkSync(lock);
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  return () => {
    try {
      unlinkSync(lock);
    } finally {
      heldLocks.delete(blob);
      release();
    }
  };
}

async function downloadTo(
  partial: string, meta: FileMetadata, repoId: string, file: string, revision: string, options: HubOptions, progress: (p: ProgressInfo) => void,
): Promise<void> {
  const have = existsSync(partial) ? statSync(partial).size : 0;
  if (meta.size !== null && have === meta.size) return;
  // A stalled connection is dropped after HF_HUB_DOWNLOAD_TIMEOUT seconds without data (then resumed).
  const abort = new AbortController();
  const idle = timeoutMs('HF_HUB_DOWNLOAD_TIMEOUT');
  let timer = setTimeout(() => abort.abort(), idle);
  const res = await request(meta.url, {
    headers: { ...headers(options), 'accept-encoding': 'identity', ...(have > 0 ? { range: `bytes=${have}-` } : {}) }, signal: abort.signal,
  }, `${repoId}/${file}`).finally(() => clearTimeout(timer));
  if (!res.ok || !res.body) throw describeStatus(repoId, file, revision, res);
  const resumed = res.status === 206;
  let loaded = resumed ? have : 0;
  const total = meta.size ?? (Number(res.headers.get('content-length')) + loaded || undefined);
  const out = createWriteStream(partial, { flags: resumed ? 'a' : 'w' });
  progress({ status: 'download', name: repoId, file, loaded, total });
  try {
    timer = setTimeout(() => abort.abort(), idle);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      clearTimeout(timer);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      loaded += chunk.length;
      progress({ status: 'progress', name: repoId, file, loaded, total, progress: total ? (100 * loaded) / total : undefined });
      timer = setTimeout(() => abort.abort(), idle);
    }
  } catch (e) {
    const why = abort.signal.aborted ? `no data for ${idle / 1000} s` : (e as Error).message;
    throw new NetworkError(`the connection dropped while downloading ${repoId}/${file} at byte ${loaded} (${why})`);
  } finally {
    clearTimeout(timer);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  if (meta.size !== null && loaded < meta.size) throw new NetworkError(`the connection closed early while downloading ${repoId}/${file} (${loaded} of ${meta.size} bytes)`);
}
