/** `modernbert download`: fetch a Hub model into the Hugging Face cache (for offline use later). */
import { snapshotFiles } from '../../hub/hub.js';
import { progressBar, type CliCommand } from '../options.js';

export const downloadCommand: CliCommand = {
  name: 'download',
  args: '<repoId>',
  description: 'download a model (config, weights, tokenizer) into the Hugging Face cache and print its folder',
  options: [
    { flags: '--revision <rev>', description: 'branch, tag or commit', default: 'main' },
    { flags: '--cache-dir <dir>', description: 'Hugging Face hub cache (default: $HF_HUB_CACHE or $HF_HOME/hub)' },
  ],
  examples: ['HF_TOKEN=hf_... modernbert download answerdotai/ModernBERT-base'],
  async run(args, o) {
    const dir = await snapshotFiles(args[0], 'all', { revision: o.revision as string, cacheDir: o.cacheDir as string | undefined, progressCallback: progressBar() });
    console.log(dir);
  },
};
