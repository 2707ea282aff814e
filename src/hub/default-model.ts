/**
 * THE place that says which model runs when none is given (the CLI without --model, `pipeline(task)`):
 * <package>/models/default, the small ModernBERT pretrained by `npm run pretrain:default` and committed with
 * the package. A checkout without it (deleted, or an install that left it out) is told to pass a model.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubError } from './hub.js';

/** Relative to the package root. */
export const DEFAULT_MODEL_DIR = join('models', 'default');

function packageRoot(): string {
  // Works from src/hub (tsx) and dist/src/hub (compiled): the first folder up with package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
}

/** The default model's folder inside the package at `root` (this package unless given). */
export function defaultModelPath(root = packageRoot()): string {
  const path = join(root, DEFAULT_MODEL_DIR);
  if (!existsSync(join(path, 'config.json')))
    throw new HubError(`no default model is installed (${path} does not exist): pass a model folder or Hub repo id (--model DIR_OR_ID)`);
  return path;
}
