/**
 * A Hugging Face hub stand-in on 127.0.0.1 for tests (no test touches the internet): the resolve URL scheme
 * /<repo>/resolve/<revision>/<file>, X-Repo-Commit and ETag headers, LFS files answered with a 302 to a
 * CDN path (X-Linked-Etag, X-Linked-Size) that honours Range, 404 with X-Error-Code, 401 for a private repo
 * without the right token, and connections that can be made to drop or stall mid-file.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  /** Revision name (branch or tag) → commit hash. */
  refs: Record<string, string>;
  /** Commit → file → content. */
  files: Record<string, Record<string, Buffer>>;
  /** Files served as LFS (redirect to the CDN). */
  lfs: Set<string>;
  /** Token required (Bearer) when set. */
  token?: string;
}

export interface RequestLog {
  method: string;
  url: string;
  range?: string;
  status: number;
}

export class FakeHub {
  readonly log: RequestLog[] = [];
  /** CDN paths whose next GET sends only this many bytes then drops the connection. */
  readonly dropAfter = new Map<string, number>();
  /** CDN paths whose next GET sends only this many bytes then goes silent (the connection stays open). */
  readonly stallAfter = new Map<string, number>();
  private server: Server;
  private readonly blobs = new Map<string, Buffer>();
  endpoint = '';

  constructor(readonly repos: Record<string, FakeRepo>) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  static sha256(b: Buffer): string {
    return createHash('sha256').update(b).digest('hex');
  }

  /** Git's blob id, the ETag the Hub sends for non-LFS files. */
  static gitSha1(b: Buffer): string {
    return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer) {
    this.log.push({ method: req.method!, url: req.url!, range: req.headers.range, status });
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const url = decodeURIComponent(req.url!);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url);
    if (cdn) return this.serveBlob(req, res, cdn[1]);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    if (!m) return this.send(req, res, 404, { 'x-error-code': 'EntryNotFound' });
    const [, repoId, revision, file] = m;
    const repo = this.repos[repoId];
    if (!repo) return this.send(req, res, 401, { 'x-error-code': 'RepositoryNotFound' });
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return this.send(req, res, 401, { 'x-error-code': 'GatedRepo' });
    const commit = repo.refs[revision] ?? (repo.files[revision] ? revision : undefined);
    if (!commit) return this.send(req, res, 404, { 'x-error-code': 'RevisionNotFound' });
    const content = repo.files[commit][file];
    if (!content) return this.send(req, res, 404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit });
    if (repo.lfs.has(file)) {
      const sha = FakeHub.sha256(content);
      this.blobs.set(sha, content);
      return this.send(req, res, 302, {
        location: `${this.endpoint}/cdn/${sha}`, 'x-repo-commit': commit, 'x-linked-etag': `"${sha}"`, 'x-linked-size': content.length, etag: '"pointer"',
      });
    }
    this.send(req, res, 200, { 'x-repo-commit': commit, etag: `"${FakeHub.gitSha1(content)}"`, 'content-length': content.length }, content);
  }

  private serveBlob(req: IncomingMessage, res: ServerResponse, sha: string) {
    const content = this.blobs.get(sha);
    if (!content) return this.send(req, res, 404, {});
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) start = Number(range[1]);
    const body = content.subarray(start);
    const headers = { 'content-length': body.length, 'accept-ranges': 'bytes', ...(range ? { 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` } : {}) };
    const drop = this.dropAfter.get(`/cdn/${sha}`);
    if (drop !== undefined && req.method === 'GET') {
      this.dropAfter.delete(`/cdn/${sha}`);
      this.log.push({ method: 'GET', url: req.url!, range: req.headers.range, status: range ? 206 : 200 });
      res.writeHead(range ? 206 : 200, headers);
      res.write(body.subarray(0, drop), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const stall = this.stallAfter.get(`/cdn/${sha}`);
    if (stall !== undefined && req.method === 'GET') {
      this.stallAfter.delete(`/cdn/${sha}`);
      this.log.push({ method: 'GET', url: req.url!, range: req.headers.range, status: range ? 206 : 200 });
      res.writeHead(range ? 206 : 200, headers);
      res.write(body.subarray(0, stall));
      return;
    }
    this.send(req, res, range ? 206 : 200, headers, body);
  }
}
