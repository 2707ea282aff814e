/**
 * Reproduces the shipped default model (issue 6): prepares the corpus, pretrains a small ModernBERT with the
 * paper's recipe scaled down, and exports it. Every stage is idempotent and the training phases resume from
 * their latest checkpoint, so re-running the same command after a kill continues where it stopped.
 *
 *   npm run pretrain:default [-- --data DIR --work DIR]   the real run (hours; see models/default/README.md)
 *   npm run pretrain:smoke [-- --work DIR]                the same pipeline in about a minute (a committed sample)
 *
 * Stages: 1. corpus (../shared/data/prepare.sh DATA, or the sample), 2. tokenize (cached in WORK),
 * 3. phase 1 at 512 tokens (global RoPE theta 10k), 4. phase 2 at 2048 tokens (global theta 160k),
 * 5. export bf16 safetensors + config + tokenizer + model card, learning curve JSONL and PNG.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModernBertForMaskedLM } from '../src/index.js';
import { writeAtomic } from '../src/cli/options.js';
import { ModernBertConfig } from '../src/config/config.js';
import { latestCheckpoint, loadParametersInto, saveModel, writeFileAtomic } from '../src/train/checkpoint.js';
import { readExamples, type Sequence } from '../src/train/data.js';
import { presetConfig } from '../src/train/presets.js';
import { Trainer, type LogRecord } from '../src/train/trainer.js';
import { writeSafetensors, type TensorToWrite } from '../src/safetensors/safetensors.js';
import { plotCurvesPng } from './lib/plot-png.js';
import { modelCard, type TransferReport } from './lib/model-card.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    data: { type: 'string' },
    work: { type: 'string' },
    out: { type: 'string' },
    docs: { type: 'string' },
    tokenizer: { type: 'string', default: join(ROOT, '..', 'shared', 'tokenizer', 'modernbert') },
    prepare: { type: 'string', default: join(ROOT, '..', 'shared', 'data', 'prepare.sh') },
  },
});

const SPECIAL = [50280, 50281, 50282, 50283, 50284];
const MASKING = { maskTokenId: 50284, specialIds: SPECIAL, probability: 0.3 };

/** The recipe, scaled down: the real run and the smoke share every stage, only the numbers differ. */
const RECIPE = args.smoke
  ? {
    preset: 'tiny', trainTokens: 40_000, heldoutDocs: 8, evalLength: 128, seed: 0,
    p1: { maxLength: 128, budget: 512, steps: 24, lr: 3e-3, warmup: 3, decay: 6, bsw: { start: 1, end: 2, warmupTokens: 5_000 }, evalEvery: 8, saveEvery: 6 },
    p2: { maxLength: 2048, budget: 2048, steps: 2, lr: 1e-3, warmup: 1, decay: 1, evalEvery: 2, saveEvery: 2 },
  }
  : {
    preset: 'small', trainTokens: 9_000_000, heldoutDocs: 64, evalLength: 512, seed: 0,
    // ~9.5 M tokens: micro-batches of 4096 tokens, the batch growing from 1 to 2 of them over the first 1 M tokens.
    // About 2,700-3,000 tokens/s on 2 quiet cores since the loss and optimiser run natively (1,700 when the shipped
    // model was trained; a third of that when the cores are shared, see docs/pretraining.md), so 1-3 hours;
    // a checkpoint every 25 steps (~2-7 min), the run resumes when re-run.
    p1: { maxLength: 512, budget: 4096, steps: 1200, lr: 1e-3, warmup: 40, decay: 200, bsw: { start: 1, end: 2, warmupTokens: 1_000_000 }, evalEvery: 50, saveEvery: 25 },
    // ~0.5 M tokens at 2048 tokens per sequence, 4 sequences per step.
    p2: { maxLength: 2048, budget: 8192, steps: 60, lr: 3e-4, warmup: 5, decay: 30, evalEvery: 20, saveEvery: 10 },
  };

const work = resolve(args.work ?? join(ROOT, 'runs', args.smoke ? 'pretrain-smoke' : 'pretrain-default'));
const dataDir = resolve(args.data ?? (args.smoke ? join(work, 'data') : join(ROOT, '..', 'pretrain-data')));
const outDir = resolve(args.out ?? (args.smoke ? join(work, 'model') : join(ROOT, 'models', 'default')));
const docsDir = resolve(args.docs ?? (args.smoke ? work : join(ROOT, 'docs')));
const say = (m: string) => console.log(`[pretrain] ${m}`);
mkdirSync(work, { recursive: true });

// 1. Corpus. The real run rebuilds it from the registries (prepare.sh is idempotent and skips a finished build);
// the smoke copies the committed public-domain sample.
if (!existsSync(join(dataDir, 'corpus', 'train.jsonl'))) {
  if (args.smoke) {
    mkdirSync(join(dataDir, 'corpus'), { recursive: true });
    for (const f of ['train.jsonl', 'heldout.jsonl']) copyFileSync(join(ROOT, 'test', 'fixtures', 'pretrain-sample', f), join(dataDir, 'corpus', f));
  } else {
    say(`preparing the corpus in ${dataDir} with ${args.prepare}`);
    execFileSync('bash', [args.prepare, dataDir], { stdio: 'inherit' });
  }
}
say(`corpus: ${dataDir}/corpus`);

const tokJson = JSON.parse(readFileSync(join(args.tokenizer, 'tokenizer.json'), 'utf8'));
const tokConfig = JSON.parse(readFileSync(join(args.tokenizer, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(tokJson, tokConfig);

// 2. Tokenize once: documents in file order (the corpus is in hash order, so sources come mixed) until the token
// target, cached as Int32 [count, lengths..., ids...] so a resume is instant; each phase cuts them into
// [CLS] chunk [SEP] sequences of its length.
async function documents(file: string, tokenTarget: number, maxDocs = Infinity): Promise<Int32Array[]> {
  const cache = join(work, `tokens-${file.replace(/\W/g, '_')}-${tokenTarget}-${maxDocs}.i32`);
  if (existsSync(cache)) {
    const a = new Int32Array(readFileSync(cache).buffer.slice(0));
    const out: Int32Array[] = [];
    let at = 1 + a[0];
    for (let i = 0; i < a[0]; i++) out.push(a.slice(at, (at += a[1 + i])));
    return out;
  }
  const out: Int32Array[] = [];
  let tokens = 0;
  for await (const ex of readExamples(join(dataDir, 'corpus', file), { label: null })) {
    if (tokens >= tokenTarget || out.length >= maxDocs) break;
    out.push(Int32Array.from(tok.encode(ex.text, { add_special_tokens: false }).ids));
    tokens += out.at(-1)!.length;
  }
  const a = new Int32Array(1 + out.length + tokens);
  a[0] = out.length;
  let at = 1 + out.length;
  out.forEach((d, i) => {
    a[1 + i] = d.length;
    a.set(d, at);
    at += d.length;
  });
  writeAtomic(cache, new Uint8Array(a.buffer));
  return out;
}

function chunks(docs: Int32Array[], maxLength: number, firstOnly = false): Sequence[] {
  const inner = maxLength - 2;
  const out: Sequence[] = [];
  for (const d of docs)
    for (let i = 0; i < d.length && !(firstOnly && i > 0); i += inner) out.push({ ids: Int32Array.from([50281, ...d.subarray(i, i + inner), 50282]) });
  return out;
}

const t0 = Date.now();
const trainDocs = await documents('train.jsonl', RECIPE.trainTokens);
const train1 = chunks(trainDocs, RECIPE.p1.maxLength);
// The long-context phase trains on the chunks that are at least half its length (long documents).
const train2 = chunks(trainDocs, RECIPE.p2.maxLength).filter((s) => s.ids.length >= RECIPE.p2.maxLength / 2);
// Held out: the first chunk of each of the first documents (whole documents, never trained on).
const heldout = chunks(await documents('heldout.jsonl', Infinity, RECIPE.heldoutDocs), RECIPE.evalLength, !args.smoke);
const count = (s: Sequence[]) => s.reduce((n, q) => n + q.ids.length, 0);
say(`tokenized in ${((Date.now() - t0) / 1000).toFixed(1)} s: phase 1 ${train1.length} sequences / ${count(train1)} tokens, phase 2 ${train2.length} long sequences / ${count(train2)} tokens, held-out ${heldout.length} / ${count(heldout)} tokens`);
if (train2.length === 0) throw new Error(`no training document reaches ${RECIPE.p2.maxLength / 2} tokens for the long-context phase`);

// Unigram-frequency baseline on the same held-out tokens: predict the most frequent training token (accuracy),
// and the add-one-smoothed unigram distribution (loss). Masked positions are a uniform sample of these tokens.
function unigramBaseline(): { loss: number; accuracy: number } {
  const V = 50368;
  const counts = new Float64Array(V).fill(1);
  for (const s of train1) for (const id of s.ids) if (!SPECIAL.includes(id)) counts[id]++;
  const total = counts.reduce((a, b) => a + b, 0);
  let top = 0;
  for (let i = 1; i < V; i++) if (counts[i] > counts[top]) top = i;
  let nll = 0;
  let n = 0;
  let hit = 0;
  for (const s of heldout)
    for (const id of s.ids) {
      if (SPECIAL.includes(id)) continue;
      nll -= Math.log(counts[id] / total);
      hit += id === top ? 1 : 0;
      n++;
    }
  return { loss: nll / n, accuracy: hit / n };
}
const baseline = unigramBaseline();
say(`unigram baseline on held-out: loss ${baseline.loss.toFixed(4)}, accuracy ${baseline.accuracy.toFixed(4)}`);

const curvePath = join(work, 'curve.jsonl');

/** One training phase in WORK/name; resumes from its latest checkpoint; skipped when already DONE. */
async function phase(name: string, config: ModernBertConfig, from: string | null, train: Sequence[], p: typeof RECIPE.p2 & { bsw?: typeof RECIPE.p1.bsw }, tokensBefore: () => number): Promise<string> {
  const dir = join(work, name);
  if (existsSync(join(dir, 'DONE'))) return dir;
  const model = ModernBertForMaskedLM.fromConfig(config, { seed: RECIPE.seed });
  if (from) loadParametersInto(model, from);
  const resumeFrom = existsSync(dir) ? latestCheckpoint(dir) : null;
  // A run killed before its first checkpoint starts over: its step log goes too (the Trainer appends).
  if (!resumeFrom) rmSync(join(dir, 'log.jsonl'), { force: true });
  say(resumeFrom ? `${name}: resuming from ${resumeFrom}` : `${name}: starting (${from ? `from ${from}` : 'fresh init'})`);
  const trainer = new Trainer(model, train, heldout, {
    outputDir: dir, maxSteps: p.steps, maxTokensPerBatch: p.budget, batchSizeWarmup: p.bsw, optimizer: 'stable-adamw', lr: p.lr,
    weightDecay: 1e-5, betas: [0.9, 0.98], eps: 1e-6, schedule: { type: 'wsd', warmupSteps: p.warmup, decaySteps: p.decay },
    evalEvery: p.evalEvery, saveEvery: p.saveEvery, saveTotalLimit: 2, seed: RECIPE.seed, masking: MASKING, evalMaskProbability: 0.15,
    tokenizerDir: args.tokenizer, resumeFrom: resumeFrom ?? undefined, progress: process.stderr.isTTY,
    onLog: (r: LogRecord) => {
      if (r.type === 'train') {
        if ((r.step as number) % 10 === 0) say(`${name} step ${r.step}/${p.steps} loss ${(r.loss as number).toFixed(4)} lr ${(r.lr as number).toExponential(2)} ${r.tokens_per_s} tok/s`);
      } else {
        const row = { phase: name, step: r.step, tokens: tokensBefore() + trainer.state.tokensSeen, eval_loss: r.eval_loss, mlm_accuracy: r.mlm_accuracy, unigram_loss: baseline.loss, unigram_accuracy: baseline.accuracy };
        writeFileSync(curvePath, `${JSON.stringify(row)}\n`, { flag: 'a' });
        say(`${name} eval at step ${r.step}: loss ${(r.eval_loss as number).toFixed(4)} accuracy ${(r.mlm_accuracy as number).toFixed(4)} (unigram ${baseline.loss.toFixed(4)} / ${baseline.accuracy.toFixed(4)})`);
      }
    },
  });
  await trainer.fit();
  writeFileAtomic(join(dir, 'DONE'), `${JSON.stringify(trainer.state)}\n`);
  return dir;
}

const tokensOf = (dir: string) => (existsSync(join(dir, 'DONE')) ? (JSON.parse(readFileSync(join(dir, 'DONE'), 'utf8')).tokensSeen as number) : 0);
const phase1Config = presetConfig(RECIPE.preset, { global_rope_theta: 10000, max_position_embeddings: RECIPE.p1.maxLength });
const phase2Config = presetConfig(RECIPE.preset, { global_rope_theta: 160000, max_position_embeddings: 8192 });
const p1 = await phase('phase1', phase1Config, null, train1, RECIPE.p1, () => 0);
const p2 = await phase('phase2', phase2Config, p1, train2, RECIPE.p2, () => tokensOf(p1));

// 5. Export: bf16 weights (HF names; the tied decoder omitted as HF saves it), config, tokenizer files.
mkdirSync(outDir, { recursive: true });
const final = await ModernBertForMaskedLM.fromPretrained(p2);
const tensors = new Map<string, TensorToWrite>();
let params = 0;
for (const [n, p] of final.namedParameters()) {
  tensors.set(n, { dtype: 'BF16', shape: [...p.shape], data: p.data });
  params += p.data.length;
}
writeSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
writeFileAtomic(join(outDir, 'config.json'), `${JSON.stringify({ ...phase2Config.toJSON(), architectures: ['ModernBertForMaskedLM'], torch_dtype: 'bfloat16' }, null, 2)}\n`);
for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
  // Contents, not the file mode: the shared tokenizer files are read-only, and a re-export must overwrite them.
  if (existsSync(join(args.tokenizer, f))) writeFileSync(join(outDir, f), readFileSync(join(args.tokenizer, f)));

// Reload the export (as a user would) and fill masks in sentences of held-out documents (never trained on), one
// word each, all chosen before the model was trained; the masked word is kept to print beside the predictions.
const { pipeline } = await import('../src/pipelines/registry.js');
const fill = await pipeline('fill-mask', outDir);
const PROBES = [
  { text: 'This year, we gather in this Chamber deeply aware of decisive days that lie [MASK].', answer: 'ahead' }, // sotu
  { text: 'Consequently, if no field has a tag, tags may be [MASK].', answer: 'nil' }, // code-go
  { text: 'Specifying a directory will include all unresolved files in that [MASK].', answer: 'path' }, // git-docs
  { text: 'The ALTER USER statement is a PostgreSQL [MASK].', answer: 'extension' }, // postgresql-docs
  { text: 'This document is an attempt to shine some light on the guts of the regex [MASK] and how it works.', answer: 'engine' }, // perl-docs
  { text: 'He was fifty-eight years [MASK] when he lost his sight.', answer: 'old' }, // web-bible
];
const fillMask: { text: string; answer: string; top: string[] }[] = [];
for (const { text, answer } of PROBES) {
  const preds = (await fill(text, { topK: 5 })) as { tokenStr: string; score: number }[];
  fillMask.push({ text, answer, top: preds.map((p) => `${p.tokenStr.trim()} (${p.score.toFixed(3)})`) });
  say(`fill-mask: ${text} [${answer}] → ${fillMask.at(-1)!.top.join(', ')}`);
}

// A resumed phase re-evaluates the steps after its checkpoint: keep the last row per (phase, step), in order.
const rows = new Map<string, Record<string, number | string>>();
for (const l of readFileSync(curvePath, 'utf8').trim().split('\n')) {
  const r = JSON.parse(l) as Record<string, number | string>;
  rows.set(`${r.phase}/${r.step}`, r);
}
const curve = [...rows.values()].sort((a, b) => String(a.phase).localeCompare(String(b.phase)) || Number(a.step) - Number(b.step));
mkdirSync(docsDir, { recursive: true });
const curveName = args.smoke ? 'curve' : 'pretrain-default-curve';
writeFileAtomic(join(docsDir, `${curveName}.jsonl`), `${curve.map((r) => JSON.stringify(r)).join('\n')}\n`);
writeAtomic(join(docsDir, `${curveName}.png`), plotCurvesPng(curve));
const last = curve.at(-1)!;
// Compute from the phases' step logs (every session's steps, resumed ones included): the median step
// throughput and the summed step time.
const steps = [p1, p2].flatMap((dir) => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogRecord).filter((r) => r.type === 'train'));
const rates = steps.map((r) => Number(r.tokens_per_s)).sort((a, b) => a - b);
const median = rates.length ? rates[rates.length >> 1] : null;
const trainHours = steps.reduce((h, r) => h + Number(r.tokens) / Math.max(1, Number(r.tokens_per_s)), 0) / 3600;
// Transfer results measured on this export by scripts/transfer.ts (run after it: `npm run transfer -- --out
// docs/pretrain-default-transfer-NAME.json`), shown in the card when present.
const transfer = args.smoke ? [] : readdirSync(docsDir).filter((f) => /^pretrain-default-transfer-.+\.json$/.test(f)).sort()
  .map((f) => JSON.parse(readFileSync(join(docsDir, f), 'utf8')) as TransferReport);
writeFileAtomic(join(outDir, 'README.md'), modelCard({
  recipe: RECIPE, config: phase2Config, params, trainTokens: tokensOf(p1) + tokensOf(p2), baseline, last, fillMask,
  medianTokensPerSecond: median, trainHours, curvePng: `${curveName}.png`, smoke: args.smoke, transfer,
}));
say(`exported ${outDir} (${params} parameters, bf16); held-out loss ${Number(last.eval_loss).toFixed(4)} accuracy ${Number(last.mlm_accuracy).toFixed(4)}; curve ${docsDir}/${curveName}.png`);

