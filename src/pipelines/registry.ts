/**
 * The task table (Transformers.js' SUPPORTED_TASKS): each task's model class, its pipeline factory and
 * what it takes. `pipeline(task, model)` looks tasks up here; aliases map other common names.
 */
import { InputError } from '../errors.js';
import { defaultModelPath } from '../hub/default-model.js';
import { featureExtractionPipeline } from './feature-extraction.js';
import { fillMaskPipeline } from './fill-mask.js';
import { rerankPipeline, textClassificationPipeline } from './text-classification.js';
import { tokenClassificationPipeline } from './token-classification.js';
import type { PipelineOptions } from './common.js';

export const SUPPORTED_TASKS = {
  'fill-mask': { model: 'ModernBertForMaskedLM', input: 'text with [MASK]', create: fillMaskPipeline },
  'feature-extraction': { model: 'ModernBertModel', input: 'text', create: featureExtractionPipeline },
  'text-classification': { model: 'ModernBertForSequenceClassification', input: 'text or { text, textPair }', create: textClassificationPipeline },
  'token-classification': { model: 'ModernBertForTokenClassification', input: 'text', create: tokenClassificationPipeline },
  rerank: { model: 'ModernBertForSequenceClassification', input: '{ query, documents }', create: rerankPipeline },
} as const;

export const TASK_ALIASES = {
  embeddings: 'feature-extraction',
  'sentiment-analysis': 'text-classification',
  ner: 'token-classification',
  'text-ranking': 'rerank',
} as const;

export type Task = keyof typeof SUPPORTED_TASKS;
export type TaskName = Task | keyof typeof TASK_ALIASES;
type PipelineFor<T extends TaskName> = Awaited<ReturnType<(typeof SUPPORTED_TASKS)[T extends keyof typeof TASK_ALIASES ? (typeof TASK_ALIASES)[T] : T]['create']>>;

/** The canonical task name, or an error listing the supported ones. */
export function resolveTask(task: string): Task {
  const name = (TASK_ALIASES as Record<string, Task>)[task] ?? task;
  if (!(name in SUPPORTED_TASKS)) {
    const known = [...Object.keys(SUPPORTED_TASKS), ...Object.keys(TASK_ALIASES).map((a) => `${a} (= ${(TASK_ALIASES as Record<string, string>)[a]})`)];
    throw new InputError(`unknown task '${task}'. Supported tasks: ${known.join(', ')}`);
  }
  return name as Task;
}

/**
 * `pipeline(task, dirOrRepoId?, options)`: loads the model (a folder, or a Hub repo id through the HF
 * cache; default: the installed default model) and its tokenizer, and returns an async function that
 * runs the task.
 */
export async function pipeline<T extends TaskName>(task: T, dirOrRepoId?: string, options: PipelineOptions = {}): Promise<PipelineFor<T>> {
  const entry = SUPPORTED_TASKS[resolveTask(task)];
  return (await entry.create(dirOrRepoId ?? defaultModelPath(), options)) as PipelineFor<T>;
}
