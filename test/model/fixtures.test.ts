// Every fixture model, every case, right and left padding: hidden states, last_hidden_state, logits
// and pooled vectors against the Hugging Face reference, within the fixtures README's tolerance.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification, ModernBertModel, Tensor,
} from '../../src/index.js';
import { assertClose, cases, expected, fixtureDir, MODEL_FIXTURES, realRows, rows2d } from '../helpers/fixtures.js';

async function load(name: string) {
  const arch = cases(name).architecture;
  const dir = fixtureDir(name);
  if (arch === 'ModernBertForMaskedLM') return ModernBertForMaskedLM.fromPretrained(dir);
  if (arch === 'ModernBertForSequenceClassification') return ModernBertForSequenceClassification.fromPretrained(dir);
  return ModernBertForTokenClassification.fromPretrained(dir);
}

for (const name of MODEL_FIXTURES) {
  describe(`fixture ${name}`, async () => {
    const model = await load(name);
    const exp = expected(name);
    const L = model.config.num_hidden_layers;
    const H = model.config.hidden_size;
    for (const c of cases(name).cases) {
      for (const side of ['right', 'left'] as const) {
        it(`${c.id} (lengths ${c.lengths}) ${side} padding`, () => {
          const ids = rows2d(exp, `${c.id}.input_ids.${side}`);
          const mask = rows2d(exp, `${c.id}.attention_mask.${side}`);
          const out = model.forward({ inputIds: ids, attentionMask: mask, outputHiddenStates: true });
          const pooled = 'pooled' in out ? (out.pooled as Tensor) : undefined;
          assert.deepEqual(out.lastHiddenState.dims, [c.batch, c.padded_len, H]);
          assert.equal(out.hiddenStates!.length, L + 1);
          for (let i = 0; i <= L; i++)
            assertClose(realRows(out.hiddenStates![i].data, mask, H), exp.float32(`${c.id}.hidden_states.${i}`), `hidden_states.${i}`);
          assertClose(realRows(out.lastHiddenState.data, mask, H), exp.float32(`${c.id}.last_hidden_state`), 'last_hidden_state');
          const logits = out.logits;
          if (model instanceof ModernBertForSequenceClassification) {
            assert.deepEqual(logits.dims, [c.batch, model.config.num_labels]);
            assertClose(logits.data, exp.float32(`${c.id}.logits`), 'logits');
            assert.ok(pooled, 'sequence classification returns the pooled vectors');
            assertClose(pooled.data, exp.float32(`${c.id}.pooled`), 'pooled');
          } else {
            const width = logits.dims[2];
            assertClose(realRows(logits.data, mask, width), exp.float32(`${c.id}.logits`), 'logits');
            // Padding positions are zero.
            mask.forEach((row, b) => row.forEach((m, s) => {
              if (!m) assert.ok(logits.data.subarray((b * c.padded_len + s) * width, (b * c.padded_len + s + 1) * width).every((v) => v === 0));
            }));
          }
        });
      }
    }
  });
}

describe('ModernBertModel on a task checkpoint', () => {
  it('loads the encoder under the model. prefix and matches last_hidden_state', async () => {
    const model = await ModernBertModel.fromPretrained(fixtureDir('mlm'));
    const exp = expected('mlm');
    const ids = rows2d(exp, 'c2.input_ids.right');
    const mask = rows2d(exp, 'c2.attention_mask.right');
    const out = model.forward({ inputIds: ids, attentionMask: mask });
    assertClose(realRows(out.lastHiddenState.data, mask, 64), exp.float32('c2.last_hidden_state'), 'last_hidden_state');
  });

  it('packed entry point equals the padded one', async () => {
    const model = await ModernBertModel.fromPretrained(fixtureDir('mlm'));
    const exp = expected('mlm');
    const cu = exp.int32('c2.cu_seqlens');
    const ids = rows2d(exp, 'c2.input_ids.right');
    const mask = rows2d(exp, 'c2.attention_mask.right');
    const packedIds = Int32Array.from(ids.flatMap((r, b) => r.filter((_, s) => mask[b][s] === 1)));
    const out = model.forwardPacked({ inputIds: packedIds, cuSeqlens: cu });
    assert.deepEqual(out.lastHiddenState.dims, [cu[cu.length - 1], 64]);
    assertClose(out.lastHiddenState.data, exp.float32('c2.last_hidden_state'), 'packed last_hidden_state');
  });
});
