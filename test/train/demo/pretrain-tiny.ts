// Demo (not a test): pretrain a tiny ModernBERT on the real corpus (../shared/data → /work/data/corpus),
// then print the MLM loss curve. Usage:
//   node --import tsx test/train/demo/pretrain-tiny.ts DATA_DIR OUT_DIR [steps=60] [docs=400] [budget=2048] [lr=1e-3]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModernBertConfig, ModernBertForMaskedLM } from '../../../src/index.js';
import { collectAll, encodeExamples, type Example, readExamples, type Sequence } from '../../../src/train/data.js';
import { Trainer } from '../../../src/train/trainer.js';
import { TOKENIZER_DIR } from '../../helpers/fixtures.js';

const [dataDir, outDir, stepsArg, docsArg, budgetArg, lrArg] = process.argv.slice(2);
const steps = Number(stepsArg ?? 60);
const docs = Number(docsArg ?? 400);
const budget = Number(budgetArg ?? 2048);
const tok = new Tokenizer(JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8')));

async function* take(it: AsyncIterable<Example>, n: number) {
  let i = 0;
  for await (const x of it) {
    if (i++ >= n) return;
    yield x;
  }
}

const config = new ModernBertConfig({
  vocab_size: 50368, hidden_size: 128, intermediate_size: 192, num_hidden_layers: 4, num_attention_heads: 2,
  local_attention: 64, max_position_embeddings: 512, architectures: ['ModernBertForMaskedLM'],
});
const enc = { task: 'mlm' as const, maxLength: 128, clsTokenId: 50281, sepTokenId: 50282 };
const train = await collectAll(encodeExamples(take(readExamples(join(dataDir, 'corpus/train.jsonl'), { label: null }), docs), tok, enc));
// Held out: the first chunk of each of 64 documents (a few long documents would not represent the corpus).
const heldout: Sequence[] = [];
for await (const ex of take(readExamples(join(dataDir, 'corpus/heldout.jsonl'), { label: null }), 64))
  for await (const seq of encodeExamples([ex], tok, enc)) {
    heldout.push(seq);
    break;
  }
const tokens = train.reduce((s, q) => s + q.ids.length, 0);
console.log(`train: ${docs} documents → ${train.length} sequences, ${tokens} tokens; heldout ${heldout.length} sequences`);
const model = ModernBertForMaskedLM.fromConfig(config, { seed: 0 });
const t0 = Date.now();
const trainer = new Trainer(model, train, heldout, {
  outputDir: outDir, maxSteps: steps, maxTokensPerBatch: budget, optimizer: 'stable-adamw', lr: Number(lrArg ?? 1e-3), weightDecay: 0.01,
  schedule: { type: 'wsd', warmupSteps: Math.ceil(steps / 10), decaySteps: Math.ceil(steps / 5) }, evalEvery: Math.ceil(steps / 4), saveEvery: Math.ceil(steps / 4),
  masking: { maskTokenId: 50284, specialIds: [50280, 50281, 50282, 50283, 50284] }, progress: false, tokenizerDir: TOKENIZER_DIR,
  onLog: (r) => console.log(JSON.stringify(r)),
});
await trainer.fit();
console.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
