/** Model folders by name: a local folder, or a Hub repo id resolved through the Hugging Face cache. */
import { existsSync, statSync } from 'node:fs';
import { ModernBertError } from '../errors.js';

export class HubError extends ModernBertError {}

export interface HubOptions {
  revision?: string;
  cacheDir?: string;
  localFilesOnly?: boolean;
  token?: string;
  endpoint?: string;
}

export async function resolveModel(dirOrRepoId: string, options: HubOptions & { files?: 'tokenizer' | 'model' | 'all' } = {}): Promise<string> {
  if (existsSync(dirOrRepoId) && statSync(dirOrRepoId).isDirectory()) return dirOrRepoId;
  throw new HubError(`${dirOrRepoId}: not a folder (${JSON.stringify(options)})`);
}
