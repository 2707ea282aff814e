/** Every CLI command, in the order --help lists them (also read by scripts/cli-docs.ts). */
import type { CliCommand } from '../options.js';
import { classifyCommand } from './classify.js';
import { downloadCommand } from './download.js';
import { enqueueCommand } from './enqueue.js';
import { embedCommand } from './embed.js';
import { evalRetrievalCommand } from './eval-retrieval.js';
import { fillMaskCommand } from './fill-mask.js';
import { indexBuildCommand } from './index-build.js';
import { infoCommand } from './info.js';
import { rerankCommand } from './rerank.js';
import { pretrainCommand } from './pretrain.js';
import { serveCommand } from './serve.js';
import { searchCommand } from './search.js';
import { tagCommand } from './tag.js';
import { tokenizeCommand } from './tokenize.js';
import { trainCommand } from './train.js';
import { workerCommand } from './worker.js';

export const COMMANDS: CliCommand[] = [fillMaskCommand, embedCommand, classifyCommand, tagCommand, rerankCommand, indexBuildCommand, searchCommand,
  evalRetrievalCommand, tokenizeCommand, downloadCommand, infoCommand, serveCommand, workerCommand, enqueueCommand,
  trainCommand, pretrainCommand];
