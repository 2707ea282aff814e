/**
 * The Sentence-Transformers folder layout, shared by SentenceTransformer and ColBERT (PyLate writes the same
 * layout): `modules.json` lists the modules in order, each in its own subfolder; the Transformer module is the
 * ModernBERT checkpoint itself (usually at the root) with `sentence_bert_config.json`; Dense modules keep
 * their weights in `<folder>/model.safetensors` (`linear.weight`, `linear.bias`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import { hfHubDownload, resolveModel, type HubOptions } from '../hub/hub.js';
import type { Kernels } from '../kernels/types.js';
import { kernelsFor, ModernBertModel } from '../model/modernbert.js';
import { WeightStore } from '../model/weights.js';
import type { PipelineOptions } from '../pipelines/common.js';
import { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';

export type ModuleKind = 'Transformer' | 'Pooling' | 'Dense' | 'Normalize';

export interface ModuleEntry {
  kind: ModuleKind;
  /** Folder of the module relative to the model folder ('' = the root). */
  path: string;
  /** The type string as modules.json spells it (for messages). */
  type: string;
}

/** modules.json `type` → our module kind. Only the classes whose computation we reproduce are accepted. */
const KNOWN_TYPES: Record<string, ModuleKind> = {
  'sentence_transformers.models.Transformer': 'Transformer',
  'sentence_transformers.models.Pooling': 'Pooling',
  'sentence_transformers.models.Dense': 'Dense',
  'sentence_transformers.models.Normalize': 'Normalize',
  // PyLate's Dense subclass: the same Linear + activation, applied to every token.
  'pylate.models.Dense.Dense': 'Dense',
};

/** True when `dir` is a Sentence-Transformers (or PyLate) folder. */
export function isSentenceTransformersFolder(dir: string): boolean {
  return existsSync(join(dir, 'modules.json'));
}

export function readJsonFile(path: string, required: true): Record<string, unknown>;
export function readJsonFile(path: string, required: false): Record<string, unknown> | null;
export function readJsonFile(path: string, required: boolean): Record<string, unknown> | null {
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`${path} is missing`);
    return null;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The modules of a folder, in order; an unknown type is an error that names it. */
export function readModules(dir: string): ModuleEntry[] {
  const path = join(dir, 'modules.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path} cannot be read as JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError(`${path} must be a non-empty list of modules`);
  const entries = raw as { idx?: number; path?: unknown; type?: unknown; name?: unknown }[];
  const sorted = [...entries].sort((a, b) => (a.idx ?? 0) - (b.idx ?? 0));
  const out = sorted.map((m, i): ModuleEntry => {
    if (typeof m.type !== 'string') throw new ConfigError(`${path}: module ${i} has no "type"`);
    const kind = KNOWN_TYPES[m.type];
    if (!kind)
      throw new ConfigError(`${path}: module ${JSON.stringify(m.name ?? i)} has type ${m.type}, which is not supported (supported: ${Object.keys(KNOWN_TYPES).join(', ')})`);
    return { kind, path: typeof m.path === 'string' ? m.path : '', type: m.type };
  });
  if (out[0].kind !== 'Transformer') throw new ConfigError(`${path}: the first module must be a Transformer, got ${out[0].type}`);
  if (out.slice(1).some((m) => m.kind === 'Transformer')) throw new ConfigError(`${path}: only one Transformer module is supported`);
  return out;
}

/** Files of a Sentence-Transformers repo beyond the checkpoint and tokenizer that resolveModel fetches. */
async function fetchModuleFiles(repoId: string, dir: string, options: HubOptions): Promise<void> {
  const revision = options.revision ?? 'main';
  const get = async (file: string, required: boolean) => {
    if (!existsSync(join(dir, file))) await hfHubDownload(repoId, file, { ...options, revision }, required);
  };
  await get('modules.json', true);
  await get('config_sentence_transformers.json', false);
  await get('sentence_bert_config.json', false);
  for (const m of readModules(dir))
    if (m.path && m.kind !== 'Transformer') for (const f of ['config.json', 'model.safetensors']) await get(`${m.path}/${f}`, false);
}

/** A local folder as is; a Hub repo id with its module files fetched into the cache too. */
export async function resolveSentenceTransformersFolder(dirOrRepoId: string, options: HubOptions): Promise<string> {
  const dir = await resolveModel(dirOrRepoId, { ...options, files: 'all' });
  if (dir !== dirOrRepoId && !options.localFilesOnly && process.env.HF_HUB_OFFLINE !== '1') await fetchModuleFiles(dirOrRepoId, dir, options);
  if (!isSentenceTransformersFolder(dir)) throw new ConfigError(`${dirOrRepoId} is not a Sentence-Transformers folder (no modules.json)`);
  return dir;
}

/**
 * The folder of `dirOrRepoId` when it is a Sentence-Transformers model, else null. A Hub repo id counts when
 * the repo has modules.json (asked online; offline, when the cached snapshot has it).
 */
export async function sentenceTransformersFolderOf(dirOrRepoId: string, options: HubOptions): Promise<string | null> {
  if (existsSync(dirOrRepoId)) return isSentenceTransformersFolder(dirOrRepoId) ? dirOrRepoId : null;
  const dir = await resolveModel(dirOrRepoId, { ...options, files: 'all' });
  if (!isSentenceTransformersFolder(dir) && !options.localFilesOnly && process.env.HF_HUB_OFFLINE !== '1') {
    const found = await hfHubDownload(dirOrRepoId, 'modules.json', { ...options, revision: options.revision ?? 'main' }, false);
    if (!found) return null;
  }
  if (!isSentenceTransformersFolder(dir)) return null;
  if (!options.localFilesOnly && process.env.HF_HUB_OFFLINE !== '1') await fetchModuleFiles(dirOrRepoId, dir, options);
  return dir;
}

export interface TransformerModule {
  dir: string;
  tokenizer: PreTrainedTokenizer;
  model: ModernBertModel;
  /** Longest input in tokens, special tokens included: sentence_bert_config's max_seq_length, capped by the model. */
  maxSeqLength: number;
  doLowerCase: boolean;
}

/** The Transformer module: the checkpoint, its tokenizer and sentence_bert_config.json. */
export async function loadTransformer(dir: string, entry: ModuleEntry, options: PipelineOptions): Promise<TransformerModule> {
  const root = join(dir, entry.path);
  const tokenizer = PreTrainedTokenizer.fromDirectory(existsSync(join(root, 'tokenizer.json')) ? root : dir);
  const model = await ModernBertModel.fromPretrained(root, options);
  if (tokenizer.vocabSize > model.config.vocab_size)
    throw new InputError(`${root}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${model.config.vocab_size}`);
  const sb = readJsonFile(join(root, 'sentence_bert_config.json'), false) ?? readJsonFile(join(dir, 'sentence_bert_config.json'), false) ?? {};
  const limit = Math.min(tokenizer.modelMaxLength, model.config.max_position_embeddings);
  const msl = sb.max_seq_length;
  if (msl !== undefined && msl !== null && (typeof msl !== 'number' || !Number.isInteger(msl) || msl < 2))
    throw new ConfigError(`${root}/sentence_bert_config.json: max_seq_length must be an integer ≥ 2, got ${JSON.stringify(msl)}`);
  return { dir: root, tokenizer, model, maxSeqLength: typeof msl === 'number' ? Math.min(msl, limit) : limit, doLowerCase: sb.do_lower_case === true };
}

/** torch activation class names a Dense module may name, as functions. */
const DENSE_ACTIVATIONS: Record<string, (x: number) => number> = {
  'torch.nn.modules.linear.Identity': (x) => x,
  'torch.nn.modules.activation.Tanh': Math.tanh,
  'torch.nn.modules.activation.ReLU': (x) => Math.max(0, x),
  'torch.nn.modules.activation.Sigmoid': (x) => 1 / (1 + Math.exp(-x)),
  'torch.nn.modules.activation.SiLU': (x) => x / (1 + Math.exp(-x)),
};

/** A Dense module: y = act(x·Wᵀ + b), row by row (pooled vectors, or every token for ColBERT). */
export class Dense {
  private constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly weight: Float32Array,
    readonly bias: Float32Array | null,
    readonly activationName: string,
    private readonly kernels: Kernels,
  ) {}

  static load(dir: string, options: PipelineOptions): Dense {
    const cfg = readJsonFile(join(dir, 'config.json'), true);
    const inF = cfg.in_features;
    const outF = cfg.out_features;
    if (typeof inF !== 'number' || typeof outF !== 'number') throw new ConfigError(`${dir}/config.json needs integer in_features and out_features`);
    const act = typeof cfg.activation_function === 'string' ? cfg.activation_function : 'torch.nn.modules.linear.Identity';
    if (!DENSE_ACTIVATIONS[act])
      throw new ConfigError(`${dir}/config.json: activation_function ${act} is not supported (supported: ${Object.keys(DENSE_ACTIVATIONS).join(', ')})`);
    if (!existsSync(join(dir, 'model.safetensors')))
      throw new ConfigError(`${dir} has no model.safetensors (only safetensors weights are read; convert pytorch_model.bin first)`);
    const store = WeightStore.fromDirectory(dir);
    const weight = store.get('linear.weight', [outF, inF]);
    const hasBias = cfg.bias !== false;
    const bias = hasBias ? store.get('linear.bias', [outF]) : null;
    return new Dense(inF, outF, weight, bias, act, kernelsFor(options));
  }

  /** x [rows, in] → [rows, out]. */
  apply(x: Float32Array, rows: number): Float32Array {
    if (x.length !== rows * this.inFeatures) throw new InputError(`Dense expects ${this.inFeatures} features per row, got ${x.length / rows}`);
    const y = new Float32Array(rows * this.outFeatures);
    if (rows === 0) return y;
    this.kernels.gemm(y, x, this.weight, this.bias, rows, this.outFeatures, this.inFeatures, false, true, 0);
    const act = DENSE_ACTIVATIONS[this.activationName];
    if (this.activationName !== 'torch.nn.modules.linear.Identity') for (let i = 0; i < y.length; i++) y[i] = act(y[i]);
    return y;
  }
}

/** Scales each row of x [rows, width] to unit L2 norm in place (a zero row stays zero, as torch's normalize). */
export function normalizeRows(x: Float32Array, rows: number, width: number): void {
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let d = 0; d < width; d++) sq += x[r * width + d] ** 2;
    // torch.nn.functional.normalize divides by max(‖x‖, 1e-12).
    const scale = 1 / Math.max(Math.sqrt(sq), 1e-12);
    for (let d = 0; d < width; d++) x[r * width + d] *= scale;
  }
}

/** The prompts of config_sentence_transformers.json, checked. */
export function readPrompts(cfg: Record<string, unknown>, path: string): { prompts: Record<string, string>; defaultPromptName: string | null } {
  const prompts = (cfg.prompts ?? {}) as Record<string, unknown>;
  if (typeof prompts !== 'object' || Array.isArray(prompts)) throw new ConfigError(`${path}: "prompts" must be an object of strings`);
  for (const [k, v] of Object.entries(prompts)) if (typeof v !== 'string') throw new ConfigError(`${path}: prompt ${k} must be a string`);
  const def = cfg.default_prompt_name ?? null;
  if (def !== null && (typeof def !== 'string' || !(def in prompts))) throw new ConfigError(`${path}: default_prompt_name ${JSON.stringify(def)} is not one of the prompts`);
  return { prompts: prompts as Record<string, string>, defaultPromptName: def as string | null };
}

/** The prompt text to prepend: `prompt` wins over `promptName`, else the default prompt, else none. */
export function choosePrompt(prompts: Record<string, string>, defaultName: string | null, prompt?: string, promptName?: string): string | null {
  if (prompt !== undefined) return prompt;
  if (promptName !== undefined) {
    if (!(promptName in prompts)) throw new InputError(`prompt name '${promptName}' is not in the model's prompts (${Object.keys(prompts).join(', ') || 'none'})`);
    return prompts[promptName];
  }
  return defaultName === null ? null : prompts[defaultName];
}
