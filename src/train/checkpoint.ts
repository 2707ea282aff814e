/**
 * Checkpoints in the Hugging Face layout: `config.json` (with `architectures`, `id2label`/`label2id`),
 * `model.safetensors` (HF tensor names; a tied decoder is omitted, as HF saves it), the tokenizer files, and
 * for resuming `trainer_state.json` + `optimizer.safetensors`. A checkpoint folder is written under a
 * temporary name and renamed into place, so a crash mid-save never damages the last good checkpoint.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeightError } from '../errors.js';
import type { NamedParameters } from '../model/parameter.js';
import type { ModernBertConfig } from '../config/config.js';
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from '../safetensors/safetensors.js';
import type { OptimizerState } from './optim.js';

/** Files of a tokenizer folder that a checkpoint carries along. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'merges.txt'];

export interface SavableModel {
  readonly config: ModernBertConfig;
  namedParameters(): NamedParameters;
}

/** The Hugging Face class name of a model object (its JS class shares the name). */
export function architectureOf(model: SavableModel): string {
  return model.constructor.name;
}

/** Writes a file atomically: a temporary file beside it, then rename. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** config.json + model.safetensors (+ tokenizer files) into `dir` (created if needed); each file written atomically. */
export function saveModel(model: SavableModel, dir: string, tokenizerDir?: string): void {
  mkdirSync(dir, { recursive: true });
  const config = { ...model.config.toJSON(), architectures: [architectureOf(model)], torch_dtype: 'float32' };
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, p] of model.namedParameters()) tensors.set(name, { dtype: 'F32', shape: [...p.shape], data: p.data });
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  if (tokenizerDir)
    for (const f of TOKENIZER_FILES) if (existsSync(join(tokenizerDir, f))) copyFileSync(join(tokenizerDir, f), join(dir, f));
}

/** Copies the weights of `dir`/model.safetensors into the model's parameters (names and shapes must match). */
export function loadParametersInto(model: SavableModel, dir: string): void {
  const file = SafetensorsFile.read(join(dir, 'model.safetensors'));
  for (const [name, p] of model.namedParameters()) {
    if (!file.has(name)) throw new WeightError(`${file.path} has no tensor '${name}'`);
    const shape = file.entry(name).shape;
    if (shape.join() !== p.shape.join()) throw new WeightError(`tensor '${name}' in ${file.path} has shape [${shape}], the model needs [${p.shape}]`);
    p.data.set(file.float32(name));
  }
}

/** What a resumable checkpoint stores besides the weights. */
export interface TrainerState {
  /** Optimiser updates done. */
  step: number;
  epoch: number;
  /** Micro-batches already consumed in `epoch` (the data position). */
  microInEpoch: number;
  tokensSeen: number;
  /** The dropout random stream's state. */
  rngState: number;
  seed: number;
}

/**
 * Saves a resumable checkpoint as `outputDir/checkpoint-{step}`: written into a temporary folder, then
 * renamed into place (replacing an older folder of the same name only after the new one is complete).
 */
export function saveCheckpoint(outputDir: string, model: SavableModel, opt: OptimizerState, state: TrainerState, tokenizerDir?: string): string {
  const final = join(outputDir, `checkpoint-${state.step}`);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  saveModel(model, tmp, tokenizerDir);
  writeSafetensors(join(tmp, 'optimizer.safetensors'), new Map<string, TensorToWrite>([
    ['exp_avg', { dtype: 'F32', shape: [opt.expAvg.length], data: opt.expAvg }],
    ['exp_avg_sq', { dtype: 'F32', shape: [opt.expAvgSq.length], data: opt.expAvgSq }],
  ]), { steps: String(opt.steps) });
  writeFileAtomic(join(tmp, 'trainer_state.json'), `${JSON.stringify(state, null, 2)}\n`);
  if (existsSync(final)) {
    const old = `${final}.old-${process.pid}`;
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, final);
  }
  return final;
}

export function loadCheckpoint(dir: string): { state: TrainerState; optimizer: OptimizerState } {
  const statePath = join(dir, 'trainer_state.json');
  if (!existsSync(statePath)) throw new WeightError(`${dir} is not a resumable checkpoint (no trainer_state.json)`);
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
  const opt = SafetensorsFile.read(join(dir, 'optimizer.safetensors'));
  return {
    state,
    optimizer: { steps: Number(opt.metadata.steps), expAvg: opt.float32('exp_avg'), expAvgSq: opt.float32('exp_avg_sq') },
  };
}

/** The newest complete `checkpoint-N` folder in outputDir, or null. */
export function latestCheckpoint(outputDir: string): string | null {
  if (!existsSync(outputDir)) return null;
  const steps = readdirSync(outputDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(outputDir, m[0], 'trainer_state.json')))
    .map((m) => Number(m[1]));
  return steps.length ? join(outputDir, `checkpoint-${Math.max(...steps)}`) : null;
}

/** Keeps the newest `keep` checkpoints of outputDir, deleting older ones. */
export function pruneCheckpoints(outputDir: string, keep: number): void {
  const dirs = readdirSync(outputDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  for (const m of dirs.slice(keep)) rmSync(join(outputDir, m[0]), { recursive: true, force: true });
}
