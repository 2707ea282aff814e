/** `modernbert train`: fine-tune a checkpoint (masked LM, sequence or token classification) on a data file. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../../errors.js';
import { defaultModelPath } from '../../hub/default-model.js';
import { resolveModel } from '../../hub/hub.js';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification } from '../../model/heads.js';
import type { ProblemType } from '../../config/config.js';
import { collectAll, encodeExamples, readExamples, type ColumnOptions, type EncodeTask } from '../../train/data.js';
import { Trainer, type TrainableModel } from '../../train/trainer.js';
import { oneOf, positiveInt, type CliCommand } from '../options.js';
import { fitAndReport, hyperParameterOptions, loadTokenizer, trainerOptions } from '../training.js';

const TASKS = ['mlm', 'sequence-classification', 'token-classification'] as const;

/**
 * Label names: --labels (comma-separated or a JSON file), else labels.json beside the training file (the
 * ../shared/data layout), else the distinct labels of the training data (integers 0..max, or sorted names).
 */
async function labelNames(o: Record<string, unknown>, file: string, columns: ColumnOptions): Promise<string[]> {
  const given = o.labels as string | undefined;
  if (given) return existsSync(given) ? (JSON.parse(readFileSync(given, 'utf8')) as string[]) : given.split(',');
  const beside = join(dirname(file), 'labels.json');
  if (existsSync(beside)) {
    const parsed = JSON.parse(readFileSync(beside, 'utf8')) as unknown;
    if (Array.isArray(parsed)) return parsed.map(String);
  }
  const seen = new Set<unknown>();
  for await (const ex of readExamples(file, columns)) for (const l of Array.isArray(ex.label) ? ex.label : [ex.label]) seen.add(l);
  const values = [...seen];
  if (values.every((v) => typeof v === 'number' && Number.isInteger(v)))
    return Array.from({ length: Math.max(...(values as number[])) + 1 }, (_, i) => String(i));
  return values.map(String).sort();
}

export const trainCommand: CliCommand = {
  name: 'train',
  description: 'fine-tune a model on a JSONL/CSV/TSV/text file (masked LM, sequence or token classification)',
  options: [
    { flags: '-m, --model <dirOrId>', description: 'starting checkpoint: model folder or Hugging Face repo id (default: the installed default model)' },
    { flags: '--task <task>', description: 'mlm, sequence-classification or token-classification', default: 'sequence-classification', parse: oneOf('--task', TASKS) },
    { flags: '--train <file>', description: 'training data (.jsonl, .csv, .tsv, or .txt: one text per line)' },
    { flags: '--eval <file>', description: 'evaluation data, same format' },
    { flags: '--text-column <name>', description: 'column with the text (token classification: a list of words)', default: 'text' },
    { flags: '--pair-column <name>', description: 'column with the second text of a pair' },
    { flags: '--label-column <name>', description: 'column with the label (token classification: a list of tags)', default: 'label' },
    { flags: '--labels <names>', description: 'label names, comma-separated or a JSON file (default: labels.json beside --train, else the labels found)' },
    { flags: '--problem-type <type>', description: 'single_label_classification, multi_label_classification or regression (default: from the labels)', parse: oneOf('--problem-type', ['single_label_classification', 'multi_label_classification', 'regression'] as const) },
    { flags: '--max-length <n>', description: 'longest sequence in tokens (longer texts are truncated; MLM documents are cut into chunks)', default: 512, parse: positiveInt('--max-length') },
    { flags: '--epochs <n>', description: 'passes over the training data', default: 1, parse: positiveInt('--epochs') },
    ...hyperParameterOptions({ lr: 5e-5, optimizer: 'adamw', schedule: 'linear', maskProb: 0.3 }),
  ],
  examplesNotTested: 'fine-tunes for minutes on a real data set; test/cli/train-cli.test.ts runs the command on tiny data',
  examples: [
    'modernbert train -m ./ModernBERT-base --train train.jsonl --eval test.jsonl --epochs 3 --lr 5e-5 --warmup 100 --eval-every 200 -o ./sentiment',
    'modernbert train -m ./ModernBERT-base --task token-classification --train pos.jsonl --text-column tokens --label-column upos -o ./pos',
  ],
  async run(_args, o) {
    if (typeof o.train !== 'string') throw new InputError('--train <file> is required');
    const task = o.task as EncodeTask;
    const dir = await resolveModel((o.model as string | undefined) ?? defaultModelPath());
    const load = { numThreads: o.threads as number | undefined };
    const columns: ColumnOptions = { text: o.textColumn as string, textPair: o.pairColumn as string | undefined, label: task === 'mlm' ? null : (o.labelColumn as string) };
    let model: TrainableModel;
    let problemType = o.problemType as ProblemType | undefined;
    if (task === 'mlm') {
      model = await ModernBertForMaskedLM.fromPretrained(dir, load);
    } else {
      const names = problemType === 'regression' ? ['score'] : await labelNames(o, o.train, columns);
      const id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
      model = task === 'token-classification'
        ? await ModernBertForTokenClassification.fromPretrained(dir, { ...load, id2label })
        : await ModernBertForSequenceClassification.fromPretrained(dir, { ...load, id2label, problemType });
      problemType ??= model.config.problem_type ?? undefined;
    }
    const tok = loadTokenizer(dir);
    const c = model.config;
    const enc = {
      task, maxLength: Math.min(o.maxLength as number, c.max_position_embeddings), clsTokenId: c.cls_token_id, sepTokenId: c.sep_token_id,
      label2id: c.label2id, problemType: problemType as never,
    };
    const read = (file: string) => collectAll(encodeExamples(readExamples(file, columns), tok.encoder, enc));
    const train = await read(o.train);
    const evalSet = typeof o.eval === 'string' ? await read(o.eval) : null;
    const trainer = new Trainer(model, train, evalSet, trainerOptions(o, dir, {
      masking: task === 'mlm' ? { maskTokenId: tok.maskTokenId, specialIds: tok.specialIds, probability: o.maskProb as number } : undefined,
    }));
    await fitAndReport(trainer, evalSet !== null);
  },
};
