// Batching does not change the answer: a padded batch equals the same sequences run one at a time,
// right, left and mixed padding give identical real-token outputs, and 1 and 2 native threads agree.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification, setNumThreads, Tensor,
} from '../../src/index.js';
import { cases, fixtureDir, realRows, scaledDiff } from '../helpers/fixtures.js';
import { rng } from './random-checkpoint.js';

type AnyModel = ModernBertForMaskedLM | ModernBertForSequenceClassification | ModernBertForTokenClassification;

async function load(name: string): Promise<AnyModel> {
  const arch = cases(name).architecture;
  if (arch === 'ModernBertForMaskedLM') return ModernBertForMaskedLM.fromPretrained(fixtureDir(name));
  if (arch === 'ModernBertForSequenceClassification') return ModernBertForSequenceClassification.fromPretrained(fixtureDir(name));
  return ModernBertForTokenClassification.fromPretrained(fixtureDir(name));
}

/** Random sequences [CLS] … [SEP] of the given lengths, with ids below the special tokens. */
function sequences(model: AnyModel, lengths: number[], seed: number): number[][] {
  const c = model.config;
  const rand = rng(seed);
  return lengths.map((n) => Array.from({ length: n }, (_, i) =>
    i === 0 ? c.cls_token_id : i === n - 1 ? c.sep_token_id : Math.floor(rand() * (c.vocab_size - 12))));
}

type Side = 'right' | 'left';

/** Pads `seqs` to one width; `side(b)` says where row b's padding goes. */
function pad(model: AnyModel, seqs: number[][], side: (b: number) => Side) {
  const S = Math.max(...seqs.map((s) => s.length));
  const pid = model.config.pad_token_id;
  const inputIds = seqs.map((s, b) => (side(b) === 'right' ? [...s, ...Array(S - s.length).fill(pid)] : [...Array(S - s.length).fill(pid), ...s]));
  const attentionMask = seqs.map((s, b) => (side(b) === 'right' ? [...s.map(() => 1), ...Array(S - s.length).fill(0)] : [...Array(S - s.length).fill(0), ...s.map(() => 1)]));
  return { inputIds, attentionMask };
}

/** The outputs of one forward, packed to real tokens (per-token outputs) or per sequence, by name. */
function run(model: AnyModel, seqs: number[][], side: (b: number) => Side): Map<string, Float32Array> {
  const input = pad(model, seqs, side);
  const out = model.forward({ ...input, outputHiddenStates: true });
  const H = model.config.hidden_size;
  const result = new Map<string, Float32Array>();
  result.set('last_hidden_state', realRows(out.lastHiddenState.data, input.attentionMask, H));
  out.hiddenStates!.forEach((h, i) => result.set(`hidden_states.${i}`, realRows(h.data, input.attentionMask, H)));
  if (model instanceof ModernBertForSequenceClassification) {
    result.set('logits', out.logits.data);
    assert.ok('pooled' in out, 'sequence classification returns the pooled vectors');
    result.set('pooled', (out.pooled as Tensor).data);
  } else {
    result.set('logits', realRows(out.logits.data, input.attentionMask, out.logits.dims[2]));
  }
  return result;
}

/** The same outputs, each sequence run alone (batch of one, no padding), concatenated. */
function runOneByOne(model: AnyModel, seqs: number[][]): Map<string, Float32Array> {
  const parts = seqs.map((s) => run(model, [s], () => 'right'));
  const result = new Map<string, Float32Array>();
  for (const key of parts[0].keys()) {
    const arrays = parts.map((p) => p.get(key)!);
    const joined = new Float32Array(arrays.reduce((a, x) => a + x.length, 0));
    arrays.reduce((offset, x) => (joined.set(x, offset), offset + x.length), 0);
    result.set(key, joined);
  }
  return result;
}

describe('padded batch = one sequence at a time', () => {
  for (const name of ['mlm', 'mlm-alt', 'cls-cls', 'cls-mean', 'tok']) {
    it(`${name}: lengths 1 … max_position_embeddings, right, left and mixed padding`, async () => {
      const model = await load(name);
      const maxLen = model.config.max_position_embeddings;
      // Shorter than, equal to and just over the window span, several windows, and the maximum length.
      const span = 2 * model.config.window + 1;
      const lengths = [1, 5, span - 1, span, span + 1, 40, 100, maxLen];
      const seqs = sequences(model, lengths, lengths.length + name.length);
      const alone = runOneByOne(model, seqs);
      const right = run(model, seqs, () => 'right');
      const left = run(model, seqs, () => 'left');
      const mixed = run(model, seqs, (b) => (b % 2 ? 'left' : 'right'));
      for (const [key, want] of alone) {
        // Batched kernels may sum in another order than single-sequence ones: float32 noise only.
        const d = scaledDiff(right.get(key)!, want);
        assert.ok(d <= 1e-6, `${key}: padded batch vs one at a time differ by ${d.toExponential(2)} (scaled)`);
        // Right, left and mixed padding pack to the same tokens and positions: identical results.
        assert.deepEqual(left.get(key), right.get(key), `${key}: left vs right padding`);
        assert.deepEqual(mixed.get(key), right.get(key), `${key}: mixed vs right padding`);
      }
    });
  }
});

describe('native thread count', () => {
  after(() => setNumThreads(0)); // back to the default (MODERNBERT_NUM_THREADS, else all cores)

  it('1 and 2 threads give the same outputs', async () => {
    for (const name of ['mlm', 'mlm-alt', 'cls-mean']) {
      const model = await load(name);
      const seqs = sequences(model, [3, 17, 60, model.config.max_position_embeddings], 5);
      assert.equal(setNumThreads(1), 1);
      const one = run(model, seqs, (b) => (b % 2 ? 'left' : 'right'));
      assert.equal(setNumThreads(2), 2);
      const two = run(model, seqs, (b) => (b % 2 ? 'left' : 'right'));
      for (const [key, want] of one) {
        const d = scaledDiff(two.get(key)!, want);
        assert.ok(d <= 1e-6, `${name} ${key}: 1 vs 2 threads differ by ${d.toExponential(2)} (scaled)`);
      }
    }
  });
});

describe('input forms', () => {
  it('number[][], Int32Array rows and a [batch, seq] Tensor give identical outputs', async () => {
    const model = await load('mlm');
    const { inputIds, attentionMask } = pad(model, sequences(model, [7, 30, 1], 3), (b) => (b === 1 ? 'right' : 'left'));
    const S = inputIds[0].length;
    const ref = model.forward({ inputIds, attentionMask }).logits;
    const rows = model.forward({ inputIds: inputIds.map((r) => Int32Array.from(r)), attentionMask: attentionMask.map((r) => Int32Array.from(r)) }).logits;
    const tensor = model.forward({
      inputIds: new Tensor(Int32Array.from(inputIds.flat()), [inputIds.length, S]),
      attentionMask: new Tensor(Int32Array.from(attentionMask.flat()), [inputIds.length, S]),
    }).logits;
    assert.deepEqual(rows.data, ref.data);
    assert.deepEqual(tensor.data, ref.data);
    assert.deepEqual(tensor.dims, [3, S, model.config.vocab_size]);
    // Without a mask every position is real.
    const unmasked = model.forward({ inputIds: [inputIds[1].slice(0, 30)] }).logits;
    assert.deepEqual(unmasked.data, ref.data.subarray(S * 512, (S + 30) * 512));
  });
});
