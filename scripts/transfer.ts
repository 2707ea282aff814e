/**
 * Does pretraining transfer? Fine-tunes a pretrained checkpoint and the same architecture from a random
 * initialisation on one labelled set, with the same settings and seeds, and reports the test metrics of both
 * (per seed, and mean ± sd over seeds). Sequence or token classification, chosen by the text column: a list
 * of words means token classification.
 *
 *   npm run transfer -- --model models/default --set DIR [--text COL] [--label COL] [--train-max N]
 *     [--test-max N] [--pooling mean|cls] [--lr X] [--epochs N] [--batch-tokens N] [--seeds 0,1,2] [--out FILE.json]
 *
 * DIR holds train.jsonl, test.jsonl and labels.json (the label names: a list, or {column: list}), as
 * ../shared/data/prepare.sh writes them. --train-max / --test-max take the first N examples (low-data runs).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ModernBertForSequenceClassification, ModernBertForTokenClassification } from '../src/index.js';
import { ModernBertConfig } from '../src/config/config.js';
import { loadTokenizer } from '../src/cli/training.js';
import { writeFileAtomic } from '../src/train/checkpoint.js';
import { collectAll, DataError, encodeExamples, packByTokens, readExamples, type Example, type Sequence } from '../src/train/data.js';
import { Trainer } from '../src/train/trainer.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    set: { type: 'string' },
    text: { type: 'string', default: 'text' },
    label: { type: 'string', default: 'label' },
    'train-max': { type: 'string' },
    'test-max': { type: 'string' },
    pooling: { type: 'string', default: 'mean' },
    lr: { type: 'string', default: '5e-4' },
    epochs: { type: 'string', default: '3' },
    seeds: { type: 'string', default: '0' },
    'max-length': { type: 'string', default: '128' },
    'batch-tokens': { type: 'string', default: '2048' },
    out: { type: 'string' },
  },
});

function fail(message: string): never {
  console.error(`transfer: ${message}`);
  process.exit(2);
}
function positiveNumber(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

if (!args.model || !args.set) fail('needs --model DIR and --set DIR');
const modelDir = resolve(args.model);
const setDir = resolve(args.set);
const pooling = args.pooling as 'mean' | 'cls';
if (pooling !== 'mean' && pooling !== 'cls') fail(`--pooling must be mean or cls, got ${args.pooling}`);
const lr = positiveNumber('lr', args.lr);
const epochs = positiveNumber('epochs', args.epochs);
const maxLength = positiveNumber('max-length', args['max-length']);
const batchTokens = positiveNumber('batch-tokens', args['batch-tokens']);
const trainMax = args['train-max'] ? positiveNumber('train-max', args['train-max']) : Infinity;
const testMax = args['test-max'] ? positiveNumber('test-max', args['test-max']) : Infinity;
const seeds = args.seeds!.split(',').map((s) => {
  if (!/^\d+$/.test(s.trim())) fail(`--seeds must be a comma-separated list of integers, got ${args.seeds}`);
  return Number(s);
});

const labelsFile = join(setDir, 'labels.json');
let labelSpec: string[] | Record<string, string[]>;
try {
  labelSpec = JSON.parse(readFileSync(labelsFile, 'utf8'));
} catch (e) {
  fail(`${labelsFile}: cannot read the label names (${(e as Error).message})`);
}
const names = Array.isArray(labelSpec) ? labelSpec : labelSpec[args.label!];
if (!Array.isArray(names)) fail(`${labelsFile} has no label list for column '${args.label}' (has: ${Object.keys(labelSpec).join(', ')})`);
const id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
const label2id = Object.fromEntries(names.map((n, i) => [n, i]));

const config = ModernBertConfig.fromFile(join(modelDir, 'config.json'));
const tok = loadTokenizer(modelDir);
const columns = { text: args.text, label: args.label };
async function firstExamples(file: string, max: number): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readExamples(join(setDir, file), columns)) if (out.push(ex) >= max) break;
  return out;
}
// Data errors (a missing column, an unknown label) name the file and record: print them, no stack.
async function orFail<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (e instanceof DataError) fail(e.message);
    throw e;
  }
}
const trainExamples = await orFail(firstExamples('train.jsonl', trainMax));
const testExamples = await orFail(firstExamples('test.jsonl', testMax));
const task = trainExamples[0]?.words ? 'token-classification' as const : 'sequence-classification' as const;
const enc = { task, maxLength: Math.min(maxLength, config.max_position_embeddings), clsTokenId: config.cls_token_id, sepTokenId: config.sep_token_id, label2id };
const train: Sequence[] = await orFail(collectAll(encodeExamples(trainExamples, tok.encoder, enc)));
const test: Sequence[] = await orFail(collectAll(encodeExamples(testExamples, tok.encoder, enc)));

// The majority-class baseline over what is scored: sequences, or labelled first sub-tokens.
const gold = task === 'token-classification'
  ? test.flatMap((s) => Array.from(s.tokenLabels!).filter((l) => l >= 0))
  : test.map((s) => s.label as number);
const counts = names.map((_, c) => gold.filter((g) => g === c).length);
const majority = Math.max(...counts) / gold.length;
console.log(`transfer: ${task} on ${setDir} (${train.length} train, ${test.length} test, ${gold.length} scored, majority ${(100 * majority).toFixed(1)} %)`);

// Warm up over the first ~6 % of the steps (at most 10), as short fine-tuning runs want.
const steps = packByTokens(train.map((s) => s.ids.length), batchTokens).length * epochs;
const warmupSteps = Math.min(10, Math.floor(steps * 0.06));
const work = mkdtempSync(join(tmpdir(), 'modernbert-transfer-'));
type Metrics = Record<string, number>;
const runs: { init: 'pretrained' | 'random'; seed: number; metrics: Metrics; seconds: number }[] = [];
try {
  for (const seed of seeds) {
    for (const init of ['pretrained', 'random'] as const) {
      const load = { id2label, seed, ...(task === 'sequence-classification' ? { problemType: 'single_label_classification' as const, classifierPooling: pooling } : {}) };
      const Head = task === 'token-classification' ? ModernBertForTokenClassification : ModernBertForSequenceClassification;
      // The random model shares the pretrained one's config: same architecture, same head, only the weights differ.
      const model = init === 'pretrained'
        ? await Head.fromPretrained(modelDir, load)
        : Head.fromConfig(ModernBertConfig.fromFile(join(modelDir, 'config.json')), load);
      const trainer = new Trainer(model, train, test, {
        outputDir: join(work, `${init}-${seed}`), epochs, maxTokensPerBatch: batchTokens, lr, weightDecay: 0.01,
        schedule: { type: 'linear', warmupSteps }, seed, progress: process.stderr.isTTY, saveEvery: 0,
      });
      const t0 = performance.now();
      await trainer.fit();
      const metrics = trainer.evaluate();
      const seconds = (performance.now() - t0) / 1000;
      runs.push({ init, seed, metrics, seconds });
      console.log(`transfer: seed ${seed} ${init}: ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')} (${seconds.toFixed(0)} s)`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

function summary(init: 'pretrained' | 'random'): Record<string, { mean: number; sd: number }> {
  const rs = runs.filter((r) => r.init === init);
  return Object.fromEntries(Object.keys(rs[0].metrics).map((k) => {
    const xs = rs.map((r) => r.metrics[k]);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
    return [k, { mean, sd }];
  }));
}
const report = {
  model: relative(process.cwd(), modelDir), set: relative(process.cwd(), setDir), task, text: args.text, label: args.label, train: train.length, test: test.length, scored: gold.length,
  majority, pooling: task === 'sequence-classification' ? pooling : undefined, lr, epochs, batchTokens, steps, seeds,
  pretrained: summary('pretrained'), random: summary('random'), runs,
};
for (const init of ['pretrained', 'random'] as const) {
  const acc = report[init].accuracy;
  console.log(`transfer: ${init}: accuracy ${(100 * acc.mean).toFixed(2)} % ± ${(100 * acc.sd).toFixed(2)} over ${seeds.length} seed(s)`);
}
if (args.out) writeFileAtomic(resolve(args.out), `${JSON.stringify(report, null, 2)}\n`);
