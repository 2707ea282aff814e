/**
 * The CLI's shared pieces: the option-table format every command declares (as npm-check-updates does),
 * the options shared by model commands, reading inputs (arguments, a file, or stdin), and writing outputs.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { InvalidArgumentError } from 'commander';
import { InputError } from '../errors.js';
import { defaultModelPath } from '../hub/default-model.js';
import type { ProgressInfo } from '../hub/hub.js';
import type { Dtype } from '../kernels/types.js';
import type { PipelineOptions } from '../pipelines/common.js';

/** One row of a command's option table. */
export interface CliOption {
  /** Commander flags, e.g. '-k, --top-k <n>'. */
  flags: string;
  description: string;
  default?: string | number | boolean;
  /** Converts the raw string (e.g. to an integer); throws commander's InvalidArgumentError on a bad value (exit 2). */
  parse?: (value: string) => unknown;
}

export interface CliCommand {
  name: string;
  /** Positional arguments, e.g. '[texts...]'. */
  args?: string;
  description: string;
  options: CliOption[];
  /** Shown after the options in --help. */
  examples?: string[];
  /** Why the examples cannot run in test/docs/examples.test.ts (a server, Redis): docs/cli.md marks them not-tested. */
  examplesNotTested?: string;
  run(args: string[], options: Record<string, unknown>): Promise<void>;
}

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

export function oneOf<T extends string>(name: string, values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}.`);
    return v as T;
  };
}

/** Options every model command takes. */
export const MODEL_OPTIONS: CliOption[] = [
  { flags: '-m, --model <dirOrId>', description: 'model folder or Hugging Face repo id (default: the installed default model)' },
  { flags: '--revision <rev>', description: 'branch, tag or commit of a Hub model', default: 'main' },
  { flags: '--cache-dir <dir>', description: 'Hugging Face hub cache (default: $HF_HUB_CACHE or $HF_HOME/hub)' },
  { flags: '--offline', description: 'use only the local cache (same as HF_HUB_OFFLINE=1)' },
  { flags: '--threads <n>', description: 'CPU threads (default: MODERNBERT_NUM_THREADS, else all cores)', parse: positiveInt('--threads') },
  { flags: '--dtype <dtype>', description: 'inference precision: float32, or bf16 Linear layers and attention (AMX / AVX512-BF16 when the CPU has them; else a slow portable path for the Linears and float32 attention)', default: 'float32', parse: oneOf('--dtype', ['float32', 'bf16'] as const) },
  { flags: '--no-truncate', description: 'refuse inputs over the model limit instead of truncating them with a warning' },
];

export const INPUT_OPTIONS: CliOption[] = [
  { flags: '-i, --input <file>', description: 'read inputs from a file: .jsonl (strings or {"text": ...}) or text, one per line ("-" = stdin)' },
];

export const OUTPUT_FORMAT: CliOption = { flags: '--json', description: 'print JSON lines instead of text' };

/** A progress bar on stderr for downloads (only when stderr is a terminal). */
export function progressBar(): ((p: ProgressInfo) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let bar: SingleBar | null = null;
  return (p) => {
    if (p.status === 'download' && p.total) {
      bar = new SingleBar({ format: `${p.file} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr });
      bar.start(p.total, p.loaded ?? 0);
    } else if (p.status === 'progress' && bar) {
      bar.update(p.loaded ?? 0);
    } else if (p.status === 'done' && bar) {
      bar.stop();
      bar = null;
    }
  };
}

export function pipelineOptions(o: Record<string, unknown>): PipelineOptions & { model: string } {
  return {
    model: (o.model as string | undefined) ?? defaultModelPath(),
    revision: o.revision as string,
    cacheDir: o.cacheDir as string | undefined,
    localFilesOnly: o.offline === true ? true : undefined,
    numThreads: o.threads as number | undefined,
    dtype: o.dtype as Dtype | undefined,
    truncation: o.truncate !== false,
    progressCallback: progressBar(),
    onWarning: (m) => process.stderr.write(`modernbert: warning: ${m}\n`),
  };
}

function readSource(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read input file ${file}: ${(e as Error).message}`);
  }
}

/** A record of an input file: a JSON line (string or object), or a line of text. */
export type InputRecord = string | Record<string, unknown>;

/** Inputs from the arguments, else --input, else stdin when it is not a terminal. */
export function readInputs(args: string[], o: Record<string, unknown>): InputRecord[] {
  if (args.length > 0) return args;
  const file = (o.input as string | undefined) ?? (process.stdin.isTTY ? undefined : '-');
  if (file === undefined) throw new InputError('no input: pass texts as arguments, --input FILE, or pipe them on stdin');
  const text = readSource(file);
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (file.endsWith('.jsonl'))
    return lines.map((l, i) => {
      try {
        return JSON.parse(l) as InputRecord;
      } catch (e) {
        throw new InputError(`${file}:${i + 1}: not valid JSON: ${(e as Error).message}`);
      }
    });
  return lines;
}

/** The text of a record: the string itself or its "text" field. */
export function textOf(r: InputRecord, i: number, field = 'text'): string {
  if (typeof r === 'string') return r;
  const v = r[field];
  if (typeof v !== 'string') throw new InputError(`input ${i} has no "${field}" string`);
  return v;
}

/** Writes a file atomically: a temporary file beside it, then a rename. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** A float32 NumPy .npy file (format 1.0) of `dims`. */
export function npyBytes(data: Float32Array, dims: number[]): Uint8Array {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

export function printJsonLines(rows: unknown[]): void {
  process.stdout.write(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
}
