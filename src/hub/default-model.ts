/**
 * THE place that says which model runs when none is given (the CLI without --model, `pipeline(task)`).
 * No trained model ships yet: when <package>/models/default exists it is used, else the caller is told to
 * pass a model. To switch a shipped model on, put it in models/default (or change DEFAULT_MODEL_DIR).
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

export function defaultModelPath(): string {
  const path = join(packageRoot(), DEFAULT_MODEL_DIR);
  if (!existsSync(join(path, 'config.json')))
    throw new HubError(`no default model is installed (${path} does not exist): pass a model folder or Hub repo id (--model DIR_OR_ID)`);
  return path;
}
