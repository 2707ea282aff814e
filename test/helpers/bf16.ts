/**
 * bf16 against the float32 Hugging Face fixtures: the scaled max difference (fixtures README: max|a − e| /
 * max(1, max|e|)) of last_hidden_state, logits and (sequence classification) pooled, per fixture and case.
 * test/model/bf16.test.ts bounds them; bench/bf16-accuracy.ts prints them as the table in docs/performance.md.
 */
import {
  ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification, type LoadOptions, type Tensor,
} from '../../src/index.js';
import { cases, expected, fixtureDir, MODEL_FIXTURES, realRows, rows2d, scaledDiff } from './fixtures.js';

export interface Bf16Row {
  fixture: string;
  id: string;
  tokens: number;
  lastHiddenState: number;
  logits: number;
  pooled?: number;
}

export async function loadFixture(name: string, options: LoadOptions) {
  const arch = cases(name).architecture;
  const dir = fixtureDir(name);
  if (arch === 'ModernBertForMaskedLM') return ModernBertForMaskedLM.fromPretrained(dir, options);
  if (arch === 'ModernBertForSequenceClassification') return ModernBertForSequenceClassification.fromPretrained(dir, options);
  return ModernBertForTokenClassification.fromPretrained(dir, options);
}

/** Every fixture and case (right padding) run with `options` (dtype 'bf16'), against the float32 expectations. */
export async function bf16Errors(options: LoadOptions): Promise<Bf16Row[]> {
  const rows: Bf16Row[] = [];
  for (const name of MODEL_FIXTURES) {
    const model = await loadFixture(name, options);
    const exp = expected(name);
    const H = model.config.hidden_size;
    for (const c of cases(name).cases) {
      const mask = rows2d(exp, `${c.id}.attention_mask.right`);
      const out = model.forward({ inputIds: rows2d(exp, `${c.id}.input_ids.right`), attentionMask: mask });
      const perSequence = model instanceof ModernBertForSequenceClassification;
      const logits = perSequence ? out.logits.data : realRows(out.logits.data, mask, out.logits.dims[2]);
      rows.push({
        fixture: name,
        id: c.id,
        tokens: c.lengths.reduce((a, b) => a + b, 0),
        lastHiddenState: scaledDiff(realRows(out.lastHiddenState.data, mask, H), exp.float32(`${c.id}.last_hidden_state`)),
        logits: scaledDiff(logits, exp.float32(`${c.id}.logits`)),
        pooled: 'pooled' in out ? scaledDiff((out.pooled as Tensor).data, exp.float32(`${c.id}.pooled`)) : undefined,
      });
    }
  }
  return rows;
}
