// Demo (not a test): fine-tune a checkpoint on a labelled set of ../shared/data (JSONL {text, label}, labels.json)
// and print the learning curve and held-out metrics against the majority baseline. Usage:
//   node --import tsx test/train/demo/finetune.ts CHECKPOINT SET_DIR OUT_DIR [epochs=3] [lr=1e-4] [maxTrain=all]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModernBertForSequenceClassification } from '../../../src/index.js';
import { collectAll, encodeExamples, readExamples } from '../../../src/train/data.js';
import { Trainer } from '../../../src/train/trainer.js';
import { TOKENIZER_DIR } from '../../helpers/fixtures.js';

const [checkpoint, setDir, outDir, epochsArg, lrArg, maxArg] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8')));
const names = JSON.parse(readFileSync(join(setDir, 'labels.json'), 'utf8')) as string[];
const id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
const model = await ModernBertForSequenceClassification.fromPretrained(checkpoint, { id2label, problemType: 'single_label_classification' });
const enc = { task: 'sequence-classification' as const, maxLength: 128, clsTokenId: 50281, sepTokenId: 50282, label2id: model.config.label2id };
const train = (await collectAll(encodeExamples(readExamples(join(setDir, 'train.jsonl')), tok, enc))).slice(0, maxArg ? Number(maxArg) : undefined);
const test = await collectAll(encodeExamples(readExamples(join(setDir, 'test.jsonl')), tok, enc));
const counts = names.map((_, c) => test.filter((s) => s.label === c).length);
console.log(`train ${train.length}, test ${test.length}; majority baseline on test ${(Math.max(...counts) / test.length).toFixed(4)}`);
const t0 = Date.now();
const trainer = new Trainer(model, train, test, {
  outputDir: outDir, epochs: Number(epochsArg ?? 3), maxTokensPerBatch: 1024, lr: Number(lrArg ?? 1e-4), weightDecay: 0.01,
  schedule: { type: 'linear', warmupSteps: 10 }, evalEvery: 25, progress: false, tokenizerDir: TOKENIZER_DIR,
  onLog: (r) => {
    if (r.type === 'eval' || (r.step as number) % 10 === 0) console.log(JSON.stringify(r));
  },
});
await trainer.fit();
console.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
