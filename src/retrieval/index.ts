/**
 * Vector indexes for search: one vector per document (Sentence-Transformers) or one per token (ColBERT),
 * stored as float32 or int8 (per-vector symmetric scale). Exact search runs the native GEMM over blocks of
 * the collection; approximate search uses HNSW from hnswlib-node (for ColBERT: nearest tokens give candidate
 * documents, reranked exactly with MaxSim).
 *
 * File: "MBINDEX1" (8 bytes), the header's byte length (u64 LE), the JSON header (padded with spaces to a
 * multiple of 8), then the data: token offsets (int32 [count + 1], multi-vector only), scales (float32 [rows],
 * int8 only) and the vectors (float32 or int8 [rows, dim]). The header holds the data's length and SHA-256; an
 * HNSW graph lives beside the file (`<file>.hnsw`), its length and SHA-256 in the header too.
 */
import { createHash } from 'node:crypto';
import { existsSync, openSync, readFileSync, readSync, closeSync, renameSync, statSync, writeFileSync, fstatSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import hnswlib from 'hnswlib-node';
import { InputError, ModernBertError } from '../errors.js';
import { nativeKernels } from '../kernels/native.js';
import { Tensor } from '../tensor/tensor.js';

/** An index file that cannot be used: names the file and what is wrong. */
export class IndexError extends ModernBertError {}

export type VectorDtype = 'float32' | 'int8';
/** cosine: vectors (and queries) are normalised, then compared by dot product; maxsim: ColBERT token matrices. */
export type IndexSimilarity = 'cosine' | 'dot' | 'maxsim';

export interface HnswSettings {
  /** Graph degree (hnswlib M, default 16). */
  m?: number;
  /** Candidate list while building (default 200). */
  efConstruction?: number;
}

interface Header {
  format: 'modernbert-index';
  version: 1;
  kind: 'single' | 'multi';
  dtype: VectorDtype;
  similarity: IndexSimilarity;
  dim: number;
  /** Documents. */
  count: number;
  /** Stored vectors: count, or the total token count of a multi-vector index. */
  rows: number;
  ids: string[];
  /** The model the vectors came from (as given when building), so search can embed queries the same way. */
  model: string | null;
  dataBytes: number;
  sha256: string;
  hnsw: { bytes: number; sha256: string; m: number; efConstruction: number } | null;
}

export interface SearchHit {
  id: string;
  /** Position of the document in the index. */
  index: number;
  score: number;
}

export interface SearchOptions {
  /** Use the HNSW graph (it must have been built) instead of exact search. */
  approximate?: boolean;
  /** HNSW search breadth (hnswlib ef, default max(64, k)). */
  ef?: number;
  /** Multi-vector HNSW: nearest tokens fetched per query token to collect candidate documents (default 64). */
  tokenCandidates?: number;
}

const MAGIC = 'MBINDEX1';
/** Stored rows per GEMM block in exact search. */
const BLOCK_ROWS = 8192;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export class VectorIndex {
  private hnsw: hnswlib.HierarchicalNSW | null = null;
  private hnswSettings: Required<HnswSettings> | null = null;

  private constructor(
    readonly kind: 'single' | 'multi',
    readonly dtype: VectorDtype,
    readonly similarity: IndexSimilarity,
    readonly dim: number,
    readonly ids: string[],
    readonly model: string | null,
    /** float32 vectors [rows, dim] (float32 indexes). */
    private readonly f32: Float32Array | null,
    /** int8 vectors [rows, dim] and one scale per row (int8 indexes). */
    private readonly i8: Int8Array | null,
    private readonly scales: Float32Array | null,
    /** Multi-vector: document d's rows are [offsets[d], offsets[d + 1]). */
    readonly offsets: Int32Array | null,
  ) {}

  get count(): number {
    return this.ids.length;
  }

  get rows(): number {
    return this.offsets ? this.offsets[this.offsets.length - 1] : this.ids.length;
  }

  get hasHnsw(): boolean {
    return this.hnsw !== null;
  }

  /** A single-vector index of `vectors` [ids.length, dim]; cosine indexes store the vectors normalised. */
  static build(vectors: Float32Array, dim: number, ids: string[], options: { dtype?: VectorDtype; similarity?: 'cosine' | 'dot'; model?: string } = {}): VectorIndex {
    if (vectors.length !== ids.length * dim) throw new InputError(`${ids.length} ids need ${ids.length * dim} values of dimension ${dim}, got ${vectors.length}`);
    checkIds(ids);
    const similarity = options.similarity ?? 'cosine';
    const v = vectors.slice();
    if (similarity === 'cosine') normalize(v, ids.length, dim);
    return VectorIndex.fromFloat('single', v, dim, ids, similarity, options.dtype ?? 'float32', options.model ?? null, null);
  }

  /** A multi-vector (ColBERT) index: one [tokens, dim] matrix per document, compared by MaxSim. */
  static buildMulti(matrices: Tensor[], ids: string[], options: { dtype?: VectorDtype; model?: string } = {}): VectorIndex {
    if (matrices.length !== ids.length) throw new InputError(`${ids.length} ids but ${matrices.length} documents`);
    checkIds(ids);
    const dim = matrices[0]?.dims[1] ?? 0;
    const offsets = new Int32Array(ids.length + 1);
    matrices.forEach((m, i) => {
      if (m.dims.length !== 2 || m.dims[1] !== dim) throw new InputError(`document ${ids[i]} has vectors of shape [${m.dims}], expected [n, ${dim}]`);
      offsets[i + 1] = offsets[i] + m.dims[0];
    });
    const v = new Float32Array(offsets[ids.length] * dim);
    matrices.forEach((m, i) => v.set(m.data, offsets[i] * dim));
    return VectorIndex.fromFloat('multi', v, dim, ids, 'maxsim', options.dtype ?? 'float32', options.model ?? null, offsets);
  }

  private static fromFloat(kind: 'single' | 'multi', v: Float32Array, dim: number, ids: string[], similarity: IndexSimilarity, dtype: VectorDtype, model: string | null, offsets: Int32Array | null): VectorIndex {
    if (dtype === 'float32') return new VectorIndex(kind, dtype, similarity, dim, ids, model, v, null, null, offsets);
    const rows = v.length / dim;
    const q = new Int8Array(v.length);
    const scales = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let d = 0; d < dim; d++) max = Math.max(max, Math.abs(v[r * dim + d]));
      const s = max / 127;
      scales[r] = s;
      if (s > 0) for (let d = 0; d < dim; d++) q[r * dim + d] = Math.round(v[r * dim + d] / s);
    }
    return new VectorIndex(kind, dtype, similarity, dim, ids, model, null, q, scales, offsets);
  }

  /**
   * Stored rows [r0, r1) as float32. For int8 the values are the raw integers (converted by a typed-array
   * copy, no per-element JS): scores computed from them are scaled per row afterwards (`scaleColumns`).
   */
  private block(r0: number, r1: number, scratch?: Float32Array): Float32Array {
    const dim = this.dim;
    if (this.f32) return this.f32.subarray(r0 * dim, r1 * dim);
    const out = scratch ? scratch.subarray(0, (r1 - r0) * dim) : new Float32Array((r1 - r0) * dim);
    out.set(this.i8!.subarray(r0 * dim, r1 * dim));
    return out;
  }

  /** int8: scores C [n, r1 − r0] against raw integer rows → true scores (× each row's scale). */
  private scaleColumns(C: Float32Array, n: number, r0: number, r1: number): void {
    if (!this.scales) return;
    const nb = r1 - r0;
    for (let i = 0; i < n; i++) for (let j = 0; j < nb; j++) C[i * nb + j] *= this.scales[r0 + j];
  }

  /** Builds the HNSW graph over the stored vectors (dequantised for int8): inner-product space. */
  buildHnsw(settings: HnswSettings = {}, onProgress?: (done: number, total: number) => void): void {
    const m = settings.m ?? 16;
    const efConstruction = settings.efConstruction ?? 200;
    const index = new hnswlib.HierarchicalNSW('ip', this.dim);
    index.initIndex(Math.max(1, this.rows), m, efConstruction, 100);
    for (let r0 = 0; r0 < this.rows; r0 += BLOCK_ROWS) {
      const r1 = Math.min(this.rows, r0 + BLOCK_ROWS);
      const b = this.block(r0, r1);
      for (let r = r0; r < r1; r++) {
        const s = this.scales ? this.scales[r] : 1;
        index.addPoint(Array.from(b.subarray((r - r0) * this.dim, (r - r0 + 1) * this.dim), (x) => x * s), r);
      }
      onProgress?.(r1, this.rows);
    }
    this.hnsw = index;
    this.hnswSettings = { m, efConstruction };
  }

  private checkQueries(dim: number): void {
    if (dim !== this.dim)
      throw new InputError(`query vectors have dimension ${dim}, but the index holds ${this.dim}-dimensional vectors${this.model ? ` (built with ${this.model})` : ''}`);
  }

  /** Top-k documents for each query vector (rows of `queries` [n, dim]) of a single-vector index. */
  search(queries: Tensor, k: number, options: SearchOptions = {}): SearchHit[][] {
    if (this.kind !== 'single') throw new InputError('this is a multi-vector (ColBERT) index: search it with searchMulti');
    if (queries.dims.length !== 2) throw new InputError(`queries must be [n, dim], got [${queries.dims}]`);
    this.checkQueries(queries.dims[1]);
    checkK(k);
    const n = queries.dims[0];
    const q = queries.data.slice();
    if (this.similarity === 'cosine') normalize(q, n, this.dim);
    if (options.approximate) {
      const index = this.requireHnsw();
      index.setEf(Math.max(options.ef ?? 64, k));
      return Array.from({ length: n }, (_, i) => {
        const r = index.searchKnn(Array.from(q.subarray(i * this.dim, (i + 1) * this.dim)), Math.min(k, this.count));
        return r.neighbors.map((id, j) => ({ id: this.ids[id], index: id, score: 1 - r.distances[j] }));
      });
    }
    const tops = Array.from({ length: n }, () => new TopK(k));
    const C = new Float32Array(n * BLOCK_ROWS);
    const scratch = this.i8 ? new Float32Array(BLOCK_ROWS * this.dim) : undefined;
    for (let r0 = 0; r0 < this.count; r0 += BLOCK_ROWS) {
      const r1 = Math.min(this.count, r0 + BLOCK_ROWS);
      const nb = r1 - r0;
      nativeKernels.gemm(C, q, this.block(r0, r1, scratch), null, n, nb, this.dim, false, true, 0);
      this.scaleColumns(C, n, r0, r1);
      for (let i = 0; i < n; i++) for (let j = 0; j < nb; j++) tops[i].push(r0 + j, C[i * nb + j]);
    }
    return tops.map((t) => t.sorted().map(([index, score]) => ({ id: this.ids[index], index, score })));
  }

  /** Top-k documents by MaxSim for each query matrix ([tokens, dim]) of a multi-vector index. */
  searchMulti(queries: Tensor[], k: number, options: SearchOptions = {}): SearchHit[][] {
    if (this.kind !== 'multi') throw new InputError('this is a single-vector index: search it with search');
    checkK(k);
    return queries.map((q) => {
      if (q.dims.length !== 2) throw new InputError(`a query must be [tokens, dim], got [${q.dims}]`);
      this.checkQueries(q.dims[1]);
      let candidates: number[] | null = null;
      if (options.approximate) {
        const index = this.requireHnsw();
        const per = Math.min(options.tokenCandidates ?? 64, this.rows);
        index.setEf(Math.max(options.ef ?? 64, per));
        const docs = new Set<number>();
        for (let t = 0; t < q.dims[0]; t++)
          for (const row of index.searchKnn(Array.from(q.data.subarray(t * this.dim, (t + 1) * this.dim)), per).neighbors) docs.add(this.docOfRow(row));
        candidates = [...docs].sort((a, b) => a - b);
      }
      const top = new TopK(k);
      this.maxSimScores(q, candidates ?? null, (d, s) => top.push(d, s));
      return top.sorted().map(([index, score]) => ({ id: this.ids[index], index, score }));
    });
  }

  /** MaxSim of query q against documents `docs` (all when null), through the native GEMM over runs of documents. */
  private maxSimScores(q: Tensor, docs: number[] | null, emit: (doc: number, score: number) => void): void {
    const offsets = this.offsets!;
    const nq = q.dims[0];
    const list = docs ?? Array.from({ length: this.count }, (_, i) => i);
    const C = new Float32Array(nq * BLOCK_ROWS);
    let i = 0;
    while (i < list.length) {
      // A run of consecutive documents whose tokens fit one block (a longer document is a block alone).
      let j = i + 1;
      while (j < list.length && list[j] === list[j - 1] + 1 && offsets[list[j] + 1] - offsets[list[i]] <= BLOCK_ROWS) j++;
      const r0 = offsets[list[i]];
      const r1 = offsets[list[j - 1] + 1];
      const nb = r1 - r0;
      const out = nb > BLOCK_ROWS ? new Float32Array(nq * nb) : C;
      if (nb > 0) {
        nativeKernels.gemm(out, q.data, this.block(r0, r1), null, nq, nb, this.dim, false, true, 0);
        this.scaleColumns(out, nq, r0, r1);
      }
      for (let x = i; x < j; x++) {
        const d = list[x];
        let score = 0;
        for (let t = 0; t < nq; t++) {
          let best = -Infinity;
          for (let c = offsets[d] - r0; c < offsets[d + 1] - r0; c++) best = Math.max(best, out[t * nb + c]);
          if (best > -Infinity) score += best;
        }
        emit(d, score);
      }
      i = j;
    }
  }

  private docOfRow(row: number): number {
    const o = this.offsets!;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (o[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private requireHnsw(): hnswlib.HierarchicalNSW {
    if (!this.hnsw) throw new InputError('approximate search needs the HNSW graph: build the index with it (index build --hnsw)');
    return this.hnsw;
  }

  /** Writes the index (and its HNSW graph beside it, `<path>.hnsw`), each atomically. */
  save(path: string): void {
    const parts: Uint8Array[] = [];
    const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    if (this.offsets) parts.push(bytes(this.offsets));
    if (this.scales) parts.push(bytes(this.scales));
    parts.push(bytes(this.f32 ?? this.i8!));
    const data = Buffer.concat(parts);
    let hnsw: Header['hnsw'] = null;
    if (this.hnsw) {
      const tmp = `${path}.hnsw.tmp-${process.pid}`;
      this.hnsw.writeIndexSync(tmp);
      const graph = readFileSync(tmp);
      hnsw = { bytes: graph.length, sha256: sha256(graph), ...this.hnswSettings! };
      renameSync(tmp, `${path}.hnsw`);
    }
    const header: Header = {
      format: 'modernbert-index', version: 1, kind: this.kind, dtype: this.dtype, similarity: this.similarity, dim: this.dim,
      count: this.count, rows: this.rows, ids: this.ids, model: this.model, dataBytes: data.length, sha256: sha256(data), hnsw,
    };
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const head = Buffer.alloc(16);
    head.write(MAGIC, 0, 'latin1');
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 8);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, Buffer.concat([head, Buffer.from(json), data]));
    renameSync(tmp, path);
  }

  /** Reads an index file, checking its structure and checksums; every problem is an IndexError naming the file. */
  static load(path: string): VectorIndex {
    if (!existsSync(path)) throw new IndexError(`index file ${path} does not exist`);
    const fd = openSync(path, 'r');
    let header: Header;
    let data: Buffer;
    try {
      const size = fstatSync(fd).size;
      const head = Buffer.alloc(16);
      if (size < 16 || readSync(fd, head, 0, 16, 0) !== 16 || head.toString('latin1', 0, 8) !== MAGIC)
        throw new IndexError(`${path} is not a modernbert index (bad magic bytes)`);
      const hlen = Number(head.readBigUInt64LE(8));
      if (hlen <= 0 || 16 + hlen > size) throw new IndexError(`${path} is truncated or corrupt: header length ${hlen} does not fit the file's ${size} bytes`);
      const hbuf = Buffer.alloc(hlen);
      readSync(fd, hbuf, 0, hlen, 16);
      try {
        header = JSON.parse(hbuf.toString('utf8')) as Header;
      } catch (e) {
        throw new IndexError(`${path} is corrupt: its header is not valid JSON (${(e as Error).message})`);
      }
      checkHeader(header, path);
      if (16 + hlen + header.dataBytes !== size)
        throw new IndexError(`${path} is truncated or corrupt: ${size - 16 - hlen} data bytes, the header says ${header.dataBytes}`);
      data = Buffer.alloc(header.dataBytes);
      readSync(fd, data, 0, header.dataBytes, 16 + hlen);
    } finally {
      closeSync(fd);
    }
    if (sha256(data) !== header.sha256) throw new IndexError(`${path} is corrupt: the vectors' checksum does not match the header`);
    const h = header;
    let at = 0;
    const take = <T>(make: (buf: ArrayBuffer, off: number, n: number) => T, n: number, width: number): T => {
      // Copy into a fresh aligned buffer: Buffer.alloc may hand out unaligned pool slices.
      const buf = new ArrayBuffer(n * width);
      new Uint8Array(buf).set(data.subarray(at, at + n * width));
      at += n * width;
      return make(buf, 0, n);
    };
    const offsets = h.kind === 'multi' ? take((b, o, n) => new Int32Array(b, o, n), h.count + 1, 4) : null;
    const scales = h.dtype === 'int8' ? take((b, o, n) => new Float32Array(b, o, n), h.rows, 4) : null;
    const f32 = h.dtype === 'float32' ? take((b, o, n) => new Float32Array(b, o, n), h.rows * h.dim, 4) : null;
    const i8 = h.dtype === 'int8' ? take((b, o, n) => new Int8Array(b, o, n), h.rows * h.dim, 1) : null;
    if (offsets && (offsets[0] !== 0 || offsets[h.count] !== h.rows || offsets.some((v, i) => i > 0 && v < offsets[i - 1])))
      throw new IndexError(`${path} is corrupt: its document offsets are inconsistent`);
    const index = new VectorIndex(h.kind, h.dtype, h.similarity, h.dim, h.ids, h.model, f32, i8, scales, offsets);
    if (h.hnsw) {
      const graphPath = `${path}.hnsw`;
      if (!existsSync(graphPath)) throw new IndexError(`${path} has an HNSW graph, but ${basename(graphPath)} is missing from ${dirname(path) || '.'}`);
      const graph = readFileSync(graphPath);
      if (graph.length !== h.hnsw.bytes || sha256(graph) !== h.hnsw.sha256) throw new IndexError(`${graphPath} is corrupt or belongs to another index (checksum mismatch)`);
      const g = new hnswlib.HierarchicalNSW('ip', h.dim);
      g.readIndexSync(graphPath);
      index.hnsw = g;
      index.hnswSettings = { m: h.hnsw.m, efConstruction: h.hnsw.efConstruction };
    }
    return index;
  }
}

function checkHeader(h: Header, path: string): void {
  const bad = (what: string) => new IndexError(`${path} is corrupt: ${what}`);
  if (h?.format !== 'modernbert-index') throw bad('not a modernbert index header');
  if (h.version !== 1) throw new IndexError(`${path} has index format version ${h.version}; this library reads version 1`);
  if (!['single', 'multi'].includes(h.kind) || !['float32', 'int8'].includes(h.dtype) || !['cosine', 'dot', 'maxsim'].includes(h.similarity)) throw bad('unknown kind, dtype or similarity');
  if (!Number.isInteger(h.dim) || h.dim <= 0 || !Number.isInteger(h.count) || !Number.isInteger(h.rows) || h.rows < 0) throw bad('bad dim, count or rows');
  if (!Array.isArray(h.ids) || h.ids.length !== h.count) throw bad(`${h.ids?.length} ids for ${h.count} documents`);
  if (h.kind === 'single' && h.rows !== h.count) throw bad('rows differ from count in a single-vector index');
  const expect = (h.kind === 'multi' ? 4 * (h.count + 1) : 0) + (h.dtype === 'int8' ? 4 * h.rows + h.rows * h.dim : 4 * h.rows * h.dim);
  if (h.dataBytes !== expect) throw bad(`data length ${h.dataBytes} does not fit ${h.rows} ${h.dtype} vectors of dimension ${h.dim}`);
}

function checkIds(ids: string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (typeof id !== 'string') throw new InputError(`document ids must be strings, got ${JSON.stringify(id)}`);
    if (seen.has(id)) throw new InputError(`document id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k <= 0) throw new InputError(`k must be a positive integer, got ${k}`);
}

function normalize(v: Float32Array, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += v[r * dim + d] ** 2;
    const s = 1 / Math.max(Math.sqrt(sq), 1e-12);
    for (let d = 0; d < dim; d++) v[r * dim + d] *= s;
  }
}

/** The k best (index, score) pairs seen, kept as a min-heap; ties keep the lower index. */
class TopK {
  private readonly idx: number[] = [];
  private readonly val: number[] = [];
  constructor(private readonly k: number) {}

  /** a ranks below b. */
  private worse(i: number, j: number): boolean {
    return this.val[i] < this.val[j] || (this.val[i] === this.val[j] && this.idx[i] > this.idx[j]);
  }

  private swap(i: number, j: number): void {
    [this.idx[i], this.idx[j]] = [this.idx[j], this.idx[i]];
    [this.val[i], this.val[j]] = [this.val[j], this.val[i]];
  }

  push(index: number, score: number): void {
    if (this.idx.length < this.k) {
      this.idx.push(index);
      this.val.push(score);
      for (let i = this.idx.length - 1; i > 0 && this.worse(i, (i - 1) >> 1); i = (i - 1) >> 1) this.swap(i, (i - 1) >> 1);
      return;
    }
    if (score < this.val[0] || (score === this.val[0] && index > this.idx[0])) return;
    this.idx[0] = index;
    this.val[0] = score;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.idx.length && this.worse(l, m)) m = l;
      if (r < this.idx.length && this.worse(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  sorted(): [number, number][] {
    return this.idx.map((x, i) => [x, this.val[i]] as [number, number]).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  }
}

/** Bytes on disk of an index file and its HNSW graph. */
export const indexSize = (path: string): number => statSync(path).size + (existsSync(`${path}.hnsw`) ? statSync(`${path}.hnsw`).size : 0);
