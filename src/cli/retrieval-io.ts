/** What the retrieval commands share: reading a JSONL corpus with ids, and a progress bar for embedding. */
import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { InputError } from '../errors.js';
import type { Progress } from '../retrieval/embedder.js';

export interface CorpusRecord {
  id: string;
  text: string;
}

/**
 * A JSONL corpus: one object per line with an id (`idField`, else "_id", else "id", else the line number)
 * and the text (`textField`, with "title" put before it as BEIR does); a bare JSON string is a text.
 */
export function readCorpus(path: string, fields: { id?: string; text?: string; title?: string } = {}): CorpusRecord[] {
  let raw: string;
  try {
    raw = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read corpus ${path}: ${(e as Error).message}`);
  }
  const textField = fields.text ?? 'text';
  const titleField = fields.title ?? 'title';
  const out: CorpusRecord[] = [];
  raw.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new InputError(`${path}:${i + 1}: not valid JSON: ${(e as Error).message}`);
    }
    if (typeof r === 'string') return out.push({ id: String(out.length), text: r });
    if (r === null || typeof r !== 'object') throw new InputError(`${path}:${i + 1}: expected an object or a string`);
    const o = r as Record<string, unknown>;
    const id = fields.id ? o[fields.id] : (o._id ?? o.id ?? out.length);
    if (typeof id !== 'string' && typeof id !== 'number') throw new InputError(`${path}:${i + 1}: no "${fields.id ?? '_id'}" id`);
    const text = o[textField];
    if (typeof text !== 'string') throw new InputError(`${path}:${i + 1}: no "${textField}" string`);
    const title = typeof o[titleField] === 'string' ? (o[titleField] as string) : '';
    out.push({ id: String(id), text: `${title} ${text}`.trim() });
  });
  if (out.length === 0) throw new InputError(`${path} holds no documents`);
  return out;
}

/** A progress bar on stderr while embedding (only when stderr is a terminal). */
export function embedProgress(label: string): { update: Progress; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} | {eta_formatted} left`, stream: process.stderr });
  let started = false;
  return {
    update: (done, total) => {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
