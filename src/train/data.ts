/**
 * Training data: streaming readers (JSONL, CSV/TSV, plain text), the MLM masking collator, greedy
 * sequence packing into micro-batches by token budget, and seeded shuffling. Everything is an async
 * iterator or a plain function over token ids, so a corpus larger than memory streams through.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { extname } from 'node:path';
import { InputError } from '../errors.js';
import { IGNORE_INDEX } from './losses.js';
import { Rng, shuffle } from './random.js';

/** A data file that cannot be used: names the file, the line and what is wrong. */
export class DataError extends InputError {}

function checkReadable(path: string): void {
  if (!existsSync(path)) throw new DataError(`data file ${path} does not exist`);
}

async function* lines(path: string): AsyncGenerator<string> {
  checkReadable(path);
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } catch (e) {
    throw new DataError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** JSON Lines: one object per non-empty line. */
export async function* readJsonl(path: string): AsyncGenerator<Record<string, unknown>> {
  let n = 0;
  for await (const line of lines(path)) {
    n++;
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${path}:${n}: not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${path}:${n}: each line must be a JSON object`);
    yield v as Record<string, unknown>;
  }
}

/**
 * CSV (RFC 4180: quoted fields may hold the delimiter, doubled quotes and newlines); the first row is the
 * header. TSV with delimiter '\t'. Rows are objects keyed by the header.
 */
export async function* readCsv(path: string, delimiter = ','): AsyncGenerator<Record<string, string>> {
  checkReadable(path);
  type State = 'start' | 'plain' | 'quoted' | 'quote';
  let state: State = 'start';
  let header: string[] | null = null;
  let row: string[] = [];
  let field = '';
  let line = 1;
  let rowLine = 1;
  const fail = (msg: string): never => {
    throw new DataError(`${path}:${line}: ${msg}`);
  };
  const endField = () => {
    row.push(state === 'plain' && field.endsWith('\r') ? field.slice(0, -1) : field);
    field = '';
    state = 'start';
  };
  function* endRow(): Generator<Record<string, string>> {
    endField();
    const r = row;
    row = [];
    if (r.length === 1 && r[0] === '') return; // blank line
    if (!header) {
      header = r.map((h) => h.trim());
      return;
    }
    if (r.length !== header.length) throw new DataError(`${path}:${rowLine}: row has ${r.length} fields, the header has ${header.length}`);
    const h = header;
    yield Object.fromEntries(h.map((name, k) => [name, r[k]]));
  }
  try {
    for await (const chunk of createReadStream(path, { encoding: 'utf8' }) as AsyncIterable<string>) {
      for (let i = 0; i < chunk.length; i++) {
        const ch = chunk[i];
        if (state === 'quoted') {
          if (ch === '"') state = 'quote';
          else {
            if (ch === '\n') line++;
            field += ch;
          }
        } else if (state === 'quote' && ch === '"') {
          field += '"'; // a doubled quote inside a quoted field
          state = 'quoted';
        } else if (ch === delimiter) {
          endField();
        } else if (ch === '\n') {
          yield* endRow();
          line++;
          rowLine = line;
        } else if (state === 'start' && ch === '"') {
          state = 'quoted';
        } else if (state === 'quote') {
          if (ch !== '\r') fail(`unexpected '${ch}' after a closing quote`);
        } else if (ch === '"') {
          fail('a quote inside an unquoted field (quote the whole field and double inner quotes)');
        } else {
          field += ch;
          state = 'plain';
        }
      }
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (state === 'quoted') throw new DataError(`${path}:${rowLine}: quoted field never closed`);
  if (field !== '' || row.length > 0 || state === 'quote') yield* endRow();
}

/** Plain text: each non-empty line is one document ('line'), or blocks separated by blank lines ('paragraph'). */
export async function* readText(path: string, unit: 'line' | 'paragraph' = 'line'): AsyncGenerator<string> {
  let block: string[] = [];
  for await (const line of lines(path)) {
    if (unit === 'line') {
      if (line.trim() !== '') yield line;
    } else if (line.trim() === '') {
      if (block.length) yield block.join('\n');
      block = [];
    } else {
      block.push(line);
    }
  }
  if (block.length) yield block.join('\n');
}

export interface ColumnOptions {
  /** Column with the text (default 'text'). */
  text?: string;
  /** Column with the second text of a pair (sentence-pair tasks). */
  textPair?: string;
  /** Column with the label (default 'label'; absent for MLM). */
  label?: string | null;
}

export interface Example {
  /** The text; for token classification the words (a list column) joined by spaces. */
  text: string;
  /** Pre-split words, when the text column holds a list (token classification). */
  words?: string[];
  textPair?: string;
  /** The raw label: a class id or name, a list (multi-label), a number (regression), or per-token tags. */
  label?: unknown;
}

/**
 * Examples from a JSONL, CSV, TSV or plain-text file (by extension), with the columns chosen by name.
 * A missing column is an error naming the file, the line and the columns that exist.
 */
export async function* readExamples(path: string, columns: ColumnOptions = {}): AsyncGenerator<Example> {
  const ext = extname(path).toLowerCase();
  if (ext === '.txt' || ext === '.text') {
    for await (const text of readText(path)) yield { text };
    return;
  }
  const textCol = columns.text ?? 'text';
  const labelCol = columns.label === undefined ? 'label' : columns.label;
  const rows = ext === '.jsonl' || ext === '.json' || ext === '.ndjson' ? readJsonl(path)
    : ext === '.csv' ? readCsv(path, ',')
      : ext === '.tsv' ? readCsv(path, '\t')
        : null;
  if (!rows) throw new DataError(`${path}: unknown data format '${ext}' (use .jsonl, .csv, .tsv or .txt)`);
  let n = 0;
  for await (const row of rows as AsyncGenerator<Record<string, unknown>>) {
    n++;
    const need = (col: string) => {
      if (!(col in row)) throw new DataError(`${path}: record ${n} has no column '${col}' (columns: ${Object.keys(row).join(', ')})`);
      return row[col];
    };
    const text = need(textCol);
    if (typeof text !== 'string' && !Array.isArray(text)) throw new DataError(`${path}: record ${n}: column '${textCol}' is not text`);
    const ex: Example = Array.isArray(text) ? { text: text.join(' '), words: text.map(String) } : { text };
    if (columns.textPair) ex.textPair = String(need(columns.textPair));
    if (labelCol) ex.label = need(labelCol);
    yield ex;
  }
}

/** A tokenized training sequence: ids with special tokens, and per-sequence or per-token labels. */
export interface Sequence {
  ids: Int32Array;
  /** Per-sequence label(s): class id, multi-label 0/1 vector, or regression value(s). */
  label?: number | number[];
  /** Per-token labels aligned with ids (-100 where none), for token classification. */
  tokenLabels?: Int32Array;
}

export interface MaskingOptions {
  /** Fraction of non-special tokens selected (ModernBERT: 0.3). */
  probability?: number;
  maskTokenId: number;
  vocabSize: number;
  /** Ids never masked ([CLS], [SEP], [PAD], ...). */
  specialIds: ReadonlySet<number> | readonly number[];
}

/**
 * MLM masking: each non-special token is selected with `probability`; a selected token becomes [MASK]
 * 80 % of the time, a uniformly random id 10 %, and stays 10 %. Labels hold the original id at selected
 * positions and -100 elsewhere (as Hugging Face's DataCollatorForLanguageModeling).
 */
export function maskTokens(ids: Int32Array, o: MaskingOptions, rng: Rng): { inputIds: Int32Array; labels: Int32Array } {
  const p = o.probability ?? 0.3;
  const special = o.specialIds instanceof Set ? o.specialIds : new Set(o.specialIds as readonly number[]);
  const inputIds = ids.slice();
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  for (let i = 0; i < ids.length; i++) {
    if (special.has(ids[i]) || rng.uniform() >= p) continue;
    labels[i] = ids[i];
    const r = rng.uniform();
    if (r < 0.8) inputIds[i] = o.maskTokenId;
    else if (r < 0.9) inputIds[i] = rng.int(o.vocabSize);
  }
  return { inputIds, labels };
}

/**
 * Greedy packing by token budget: items (in arrival order) go into the first open micro-batch with room
 * (first fit over at most `openBins` open batches, so it streams); a batch is emitted when it is full or
 * when a new one must be opened beyond `openBins` (the fullest goes). The model then runs each batch
 * unpadded with cuSeqlens, so attention never crosses sequences.
 */
class FirstFitPacker<T> {
  private bins: { items: T[]; tokens: number }[] = [];
  private n = 0;

  constructor(
    private readonly maxTokens: number,
    private readonly openBins: number,
  ) {}

  /** Adds an item of `len` tokens; returns the batches this completes (0, 1 or 2). */
  add(item: T, len: number): T[][] {
    if (len > this.maxTokens)
      throw new InputError(`sequence ${this.n} has ${len} tokens, more than the batch budget ${this.maxTokens} (truncate it)`);
    this.n++;
    const out: T[][] = [];
    let bin = this.bins.find((b) => b.tokens + len <= this.maxTokens);
    if (!bin) {
      if (this.bins.length >= this.openBins) {
        this.bins.sort((a, b) => b.tokens - a.tokens);
        out.push(this.bins.shift()!.items);
      }
      bin = { items: [], tokens: 0 };
      this.bins.push(bin);
    }
    bin.items.push(item);
    bin.tokens += len;
    if (bin.tokens === this.maxTokens) {
      out.push(bin.items);
      this.bins = this.bins.filter((b) => b !== bin);
    }
    return out;
  }

  /** The remaining open batches, fullest first. */
  flush(): T[][] {
    const out = this.bins.sort((a, b) => b.tokens - a.tokens).map((b) => b.items);
    this.bins = [];
    return out;
  }
}

/** `FirstFitPacker` over sequence lengths: micro-batches as lists of sequence indices. */
export function packByTokens(lengths: ArrayLike<number>, maxTokens: number, openBins = 8): number[][] {
  const packer = new FirstFitPacker<number>(maxTokens, openBins);
  const out: number[][] = [];
  for (let i = 0; i < lengths.length; i++) out.push(...packer.add(i, lengths[i]));
  return [...out, ...packer.flush()];
}

/** `FirstFitPacker` over a stream of sequences: each micro-batch is emitted as soon as it is complete. */
export async function* packStream(source: AsyncIterable<Sequence>, maxTokens: number, openBins = 8): AsyncGenerator<Sequence[]> {
  const packer = new FirstFitPacker<Sequence>(maxTokens, openBins);
  for await (const seq of source) yield* packer.add(seq, seq.ids.length);
  yield* packer.flush();
}

/** Fixed-count batches of sequence indices (for evaluation and simple fine-tuning). */
export function batchByCount(n: number, batchSize: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += batchSize) out.push(Array.from({ length: Math.min(batchSize, n - i) }, (_, j) => i + j));
  return out;
}

/** A packed micro-batch ready for `forwardPacked`: ids, cuSeqlens and the labels in the task's packed form. */
export interface PackedMicroBatch {
  inputIds: Int32Array;
  cuSeqlens: Int32Array;
  /** Per-token labels [T] (MLM, token classification). */
  tokenLabels?: Int32Array;
  /** Per-sequence labels in batch order. */
  labels?: (number | number[])[];
  numTokens: number;
}

/** Concatenates sequences into one packed micro-batch. */
export function collate(seqs: Sequence[]): PackedMicroBatch {
  const cu = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => (cu[i + 1] = cu[i] + s.ids.length));
  const T = cu[seqs.length];
  const inputIds = new Int32Array(T);
  seqs.forEach((s, i) => inputIds.set(s.ids, cu[i]));
  const out: PackedMicroBatch = { inputIds, cuSeqlens: cu, numTokens: T };
  if (seqs.some((s) => s.tokenLabels)) {
    out.tokenLabels = new Int32Array(T).fill(IGNORE_INDEX);
    seqs.forEach((s, i) => s.tokenLabels && out.tokenLabels!.set(s.tokenLabels, cu[i]));
  }
  if (seqs.some((s) => s.label !== undefined)) out.labels = seqs.map((s) => s.label!);
  return out;
}

/** A seeded permutation of 0..n−1 (epoch e of a run with seed s uses seed s + e). */
export function permutation(n: number, seed: number): number[] {
  return shuffle(Array.from({ length: n }, (_, i) => i), new Rng(seed));
}

/** What encoding needs of a tokenizer; @huggingface/tokenizers' `Tokenizer` fits. */
export interface TokenEncoder {
  encode(text: string, options?: { text_pair?: string | null; add_special_tokens?: boolean }): { ids: number[] };
}

export type EncodeTask = 'mlm' | 'sequence-classification' | 'token-classification';

export interface ExampleEncodeOptions {
  task: EncodeTask;
  /** Longest sequence in tokens, special tokens included (truncate, or for MLM split documents into chunks). */
  maxLength: number;
  clsTokenId: number;
  sepTokenId: number;
  /** Label name → id (sequence and token classification); numeric labels are used as ids. */
  label2id?: Record<string, number>;
  /** Sequence classification problem type (default single-label; lists → multi-label). */
  problemType?: 'single_label_classification' | 'multi_label_classification' | 'regression';
}

function labelId(label: unknown, label2id: Record<string, number> | undefined, where: string): number {
  const n = label2id ? Object.keys(label2id).length : Infinity;
  if (typeof label === 'number' && Number.isInteger(label)) {
    if (label < 0 || label >= n) throw new DataError(`${where}: label ${label} is outside [0, ${n})`);
    return label;
  }
  if (typeof label === 'string') {
    if (label2id && label in label2id) return label2id[label];
    if (/^\d+$/.test(label) && Number(label) < n) return Number(label);
    throw new DataError(`${where}: unknown label ${JSON.stringify(label)}${label2id ? ` (labels: ${Object.keys(label2id).join(', ')})` : ''}`);
  }
  throw new DataError(`${where}: label ${JSON.stringify(label)} is not a class id or name`);
}

/**
 * Tokenizes examples into training sequences. Sequence classification: [CLS] A [SEP] (B [SEP]) truncated to
 * maxLength, labels mapped through label2id (a list becomes a multi-hot vector, regression takes the number).
 * Token classification: `words` encoded one by one (a space before every word but the first, as
 * is_split_into_words), the word's label on its first sub-token and -100 on the rest and on specials.
 * MLM: each document is cut into chunks of maxLength − 2 tokens, each wrapped in [CLS] … [SEP].
 */
export async function* encodeExamples(examples: AsyncIterable<Example> | Iterable<Example>, tok: TokenEncoder,
  o: ExampleEncodeOptions): AsyncGenerator<Sequence> {
  let n = 0;
  const inner = o.maxLength - 2;
  if (inner < 1) throw new DataError(`maxLength ${o.maxLength} leaves no room between [CLS] and [SEP]`);
  const wrap = (ids: ArrayLike<number>) => Int32Array.from([o.clsTokenId, ...Array.from(ids), o.sepTokenId]);
  for await (const ex of examples) {
    n++;
    const where = `example ${n}`;
    if (o.task === 'mlm') {
      const ids = tok.encode(ex.text, { add_special_tokens: false }).ids;
      for (let i = 0; i < ids.length; i += inner) yield { ids: wrap(ids.slice(i, i + inner)) };
      continue;
    }
    if (o.task === 'token-classification') {
      const words = ex.words ?? ex.text.split(/\s+/).filter((w) => w !== '');
      const tags = ex.label;
      if (!Array.isArray(tags) || tags.length !== words.length)
        throw new DataError(`${where}: needs one label per word (${words.length} words, got ${Array.isArray(tags) ? tags.length : typeof tags})`);
      const ids: number[] = [];
      const labels: number[] = [];
      words.forEach((w, i) => {
        const piece = tok.encode(i === 0 ? w : ` ${w}`, { add_special_tokens: false }).ids;
        piece.forEach((id, j) => {
          ids.push(id);
          labels.push(j === 0 ? labelId(tags[i], o.label2id, `${where}, word ${i}`) : IGNORE_INDEX);
        });
      });
      yield {
        ids: wrap(ids.slice(0, inner)),
        tokenLabels: Int32Array.from([IGNORE_INDEX, ...labels.slice(0, inner), IGNORE_INDEX]),
      };
      continue;
    }
    const a = tok.encode(ex.text, { add_special_tokens: false }).ids;
    let ids: Int32Array;
    if (ex.textPair !== undefined) {
      // Truncate the longer text first (longest_first), leaving room for [CLS] A [SEP] B [SEP].
      const b = tok.encode(ex.textPair, { add_special_tokens: false }).ids;
      let la = a.length;
      let lb = b.length;
      while (la + lb > o.maxLength - 3) if (la >= lb) la--; else lb--;
      ids = Int32Array.from([o.clsTokenId, ...a.slice(0, la), o.sepTokenId, ...b.slice(0, lb), o.sepTokenId]);
    } else {
      ids = wrap(a.slice(0, inner));
    }
    const type = o.problemType ?? (Array.isArray(ex.label) ? 'multi_label_classification' : 'single_label_classification');
    let label: number | number[];
    if (type === 'regression') {
      label = Number(ex.label);
      if (!Number.isFinite(label)) throw new DataError(`${where}: regression label ${JSON.stringify(ex.label)} is not a number`);
    } else if (type === 'multi_label_classification') {
      const C = o.label2id ? Object.keys(o.label2id).length : 0;
      if (!Array.isArray(ex.label)) throw new DataError(`${where}: multi-label classification needs a list of labels`);
      const list = ex.label as unknown[];
      // A 0/1 vector of length C, or a list of label names / ids.
      const isVector = list.length === C && list.every((v) => v === 0 || v === 1);
      label = isVector ? list.map(Number) : Array.from({ length: C }, () => 0);
      if (!isVector) for (const l of list) (label as number[])[labelId(l, o.label2id, where)] = 1;
    } else {
      label = labelId(ex.label, o.label2id, where);
    }
    yield { ids, label };
  }
}

/** Collects an async iterable into an array (small sets: fine-tuning data, evaluation sets). */
export async function collectAll<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/**
 * Streaming shuffle (a shuffle buffer, as tf.data): holds `bufferSize` items and emits a uniformly chosen
 * one as each new item arrives; the rest come out shuffled at the end. Deterministic under `rng`.
 */
export async function* shuffleStream<T>(source: AsyncIterable<T>, bufferSize: number, rng: Rng): AsyncGenerator<T> {
  const buf: T[] = [];
  for await (const item of source) {
    if (buf.length < bufferSize) {
      buf.push(item);
      continue;
    }
    const j = rng.int(bufferSize);
    yield buf[j];
    buf[j] = item;
  }
  yield* shuffle(buf, rng);
}
