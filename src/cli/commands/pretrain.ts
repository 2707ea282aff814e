/**
 * `modernbert pretrain`: masked-LM pretraining from a fresh init (a preset name or a config.json) or continued
 * from a checkpoint, on text/JSONL corpora streamed from disk (a corpus larger than memory works).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModernBertConfig } from '../../config/config.js';
import { InputError } from '../../errors.js';
import { resolveModel } from '../../hub/hub.js';
import { ModernBertForMaskedLM } from '../../model/heads.js';
import { loadParametersInto } from '../../train/checkpoint.js';
import { encodeExamples, readExamples, type Sequence } from '../../train/data.js';
import { PRESETS, presetConfig } from '../../train/presets.js';
import { Trainer } from '../../train/trainer.js';
import { positiveInt, type CliCommand } from '../options.js';
import { fitAndReport, hyperParameterOptions, loadTokenizer, positiveNumber, trainerOptions } from '../training.js';

export const pretrainCommand: CliCommand = {
  name: 'pretrain',
  args: '<corpus...>',
  description: 'pretrain with masked LM on text (.txt: one document per line) or JSONL corpora, from a preset, a config, or a checkpoint',
  options: [
    { flags: '--config <presetOrFile>', description: `a fresh model: a preset (${Object.keys(PRESETS).join(', ')}) or a config.json` },
    { flags: '-m, --model <dirOrId>', description: 'continue pretraining a masked-LM checkpoint instead of --config' },
    { flags: '--tokenizer <dir>', description: 'tokenizer folder (default: the --model folder); copied into every checkpoint' },
    { flags: '--rope-theta <theta>', description: 'override the global RoPE theta (e.g. 160000 for a long-context phase)', parse: positiveNumber('--rope-theta') },
    { flags: '--eval <file>', description: 'held-out corpus evaluated every --eval-every steps' },
    { flags: '--eval-sequences <n>', description: 'evaluate on at most this many held-out sequences', default: 256, parse: positiveInt('--eval-sequences') },
    { flags: '--eval-mask-prob <p>', description: 'masking probability of evaluation (BERT-style reports use 0.15)', default: 0.15, parse: positiveNumber('--eval-mask-prob') },
    { flags: '--text-column <name>', description: 'JSONL field with the document text', default: 'text' },
    { flags: '--max-length <n>', description: 'sequence length: documents are cut into chunks of this many tokens', default: 512, parse: positiveInt('--max-length') },
    { flags: '--shuffle-buffer <n>', description: 'sequences held for shuffling the streamed corpus', default: 10000, parse: positiveInt('--shuffle-buffer') },
    ...hyperParameterOptions({ lr: 8e-4, optimizer: 'stableadamw', schedule: 'wsd', maskProb: 0.3 }),
  ],
  examplesNotTested: 'pretrains for hours on a real corpus; test/cli/train-cli.test.ts runs the command on tiny data',
  examples: [
    'modernbert pretrain corpus/train.jsonl --config small --tokenizer ./tokenizer --steps 1000 --batch-tokens 4096 --batch-warmup 1:2:1000000 --warmup 50 --decay-steps 150 --save-every 25 --eval corpus/heldout.jsonl --eval-every 50 -o ./run',
    'modernbert pretrain corpus/train.jsonl -m ./run --rope-theta 160000 --max-length 2048 --batch-tokens 8192 --steps 60 --lr 3e-4 -o ./run-long',
  ],
  async run(corpus, o) {
    if (o.steps === undefined) throw new InputError('--steps <n> is required (the corpus is streamed, its length is not known in advance)');
    if ((o.config === undefined) === (o.model === undefined)) throw new InputError('pass exactly one of --config (a fresh model) and --model (a checkpoint)');
    for (const f of corpus) if (!existsSync(f)) throw new InputError(`corpus file ${f} does not exist`);
    const modelDir = o.model === undefined ? undefined : await resolveModel(o.model as string);
    const tokDir = (o.tokenizer as string | undefined) ?? modelDir;
    if (tokDir === undefined) throw new InputError('--tokenizer <dir> is required with --config');
    const overrides = o.ropeTheta === undefined ? {} : { global_rope_theta: o.ropeTheta };
    let config: ModernBertConfig;
    if (modelDir) config = new ModernBertConfig({ ...JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')), ...overrides });
    else if (existsSync(o.config as string)) config = new ModernBertConfig({ ...JSON.parse(readFileSync(o.config as string, 'utf8')), ...overrides });
    else config = presetConfig(o.config as string, overrides);
    const maxLength = Math.min(o.maxLength as number, config.max_position_embeddings);
    const load = { numThreads: o.threads as number | undefined, seed: o.seed as number };
    // A checkpoint's weights go into a model built from the (possibly overridden) config: same shapes, new RoPE.
    const model = ModernBertForMaskedLM.fromConfig(config, load);
    if (modelDir) loadParametersInto(model, modelDir);
    const tok = loadTokenizer(tokDir);
    const enc = { task: 'mlm' as const, maxLength, clsTokenId: config.cls_token_id, sepTokenId: config.sep_token_id };
    const columns = { text: o.textColumn as string, label: null };
    const stream = async function* (): AsyncGenerator<Sequence> {
      for (const f of corpus) yield* encodeExamples(readExamples(f, columns), tok.encoder, enc);
    };
    let evalSet: Sequence[] | null = null;
    if (typeof o.eval === 'string') {
      evalSet = [];
      for await (const s of encodeExamples(readExamples(o.eval, columns), tok.encoder, enc)) if (evalSet.push(s) >= (o.evalSequences as number)) break;
    }
    const trainer = new Trainer(model, stream, evalSet, trainerOptions(o, tokDir, {
      masking: { maskTokenId: tok.maskTokenId, specialIds: tok.specialIds, probability: o.maskProb as number },
      evalMaskProbability: o.evalMaskProb as number, shuffleBuffer: o.shuffleBuffer as number,
    }));
    await fitAndReport(trainer, evalSet !== null);
  },
};
