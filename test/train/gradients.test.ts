// Loss and the gradient of EVERY parameter against the Hugging Face reference (train.safetensors), for
// every fixture model: loss within relative 1e-5, each gradient within max|g − e| ≤ 5e-5 · max|e|.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification } from '../../src/index.js';
import { SafetensorsFile } from '../../src/safetensors/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { cases, fixtureDir, MODEL_FIXTURES, rows2d } from '../helpers/fixtures.js';

/** max|a − e| / max|e| over a tensor. */
function gradError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let max = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
    max = Math.max(max, Math.abs(expected[i]));
  }
  return max === 0 ? diff : diff / max;
}

async function runTrainFixture(name: string, sparse = false) {
  const dir = fixtureDir(name);
  const arch = cases(name).architecture;
  const train = SafetensorsFile.read(join(dir, 'train.safetensors'));
  const inputIds = rows2d(train, 'input_ids');
  const attentionMask = rows2d(train, 'attention_mask');
  const labelsEntry = train.entry('labels');
  let out;
  if (arch === 'ModernBertForSequenceClassification') {
    const model = (await ModernBertForSequenceClassification.fromPretrained(dir)).train();
    const labels = labelsEntry.dtype === 'I64'
      ? new Tensor(train.int32('labels'), labelsEntry.shape)
      : new Tensor(train.float32('labels'), labelsEntry.shape);
    out = { model, res: model.forward({ inputIds, attentionMask, labels }) };
  } else {
    const Cls = arch === 'ModernBertForMaskedLM' ? ModernBertForMaskedLM : ModernBertForTokenClassification;
    const model = (await Cls.fromPretrained(dir)).train();
    if (model instanceof ModernBertForMaskedLM) model.sparsePrediction = sparse;
    out = { model, res: model.forward({ inputIds, attentionMask, labels: rows2d(train, 'labels') }) };
  }
  return { train, ...out };
}

const runs = [...MODEL_FIXTURES.map((name) => ({ name, sparse: false })), { name: 'mlm', sparse: true }, { name: 'mlm-alt', sparse: true }];
for (const { name, sparse } of runs) {
  describe(`gradients ${name}${sparse ? ' (sparse prediction)' : ''}`, () => {
    it('loss and every parameter gradient match the reference', async () => {
      const { train, model, res } = await runTrainFixture(name, sparse);
      if (sparse) {
        // Logits only at the labelled tokens, equal to the full logits' rows there.
        const labels = rows2d(train, 'labels').flat().filter((_, i) => rows2d(train, 'attention_mask').flat()[i] === 1);
        const picked = labels.flatMap((l, t) => (l === -100 ? [] : [t]));
        const V = model.config.vocab_size;
        const full = train.float32('logits');
        assert.deepEqual(res.logits.dims, [picked.length, V]);
        let worst = 0;
        picked.forEach((t, r) => {
          for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(res.logits.data[r * V + v] - full[t * V + v]));
        });
        assert.ok(worst < 1e-4, `sparse logits differ by ${worst}`);
      }
      const loss = res.loss!;
      const expLoss = train.float32('loss')[0];
      assert.ok(Math.abs(loss.item() - expLoss) <= 1e-5 * Math.abs(expLoss), `loss ${loss.item()} vs ${expLoss}`);
      loss.backward();
      const named = model.namedParameters();
      const expectedNames = [...train.tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
      assert.deepEqual(named.map(([n]) => n).sort(), expectedNames, 'namedParameters() lists exactly the reference parameters');
      let worst = 0;
      let worstName = '';
      for (const [pname, p] of named) {
        const err = gradError(p.grad!, train.float32(`grad.${pname}`));
        if (err > worst) [worst, worstName] = [err, pname];
        assert.ok(err <= 5e-5, `grad.${pname}: max|g − e| / max|e| = ${err.toExponential(3)} exceeds 5e-5`);
      }
      console.log(`# ${name}${sparse ? ' sparse' : ''}: loss ${loss.item()} (ref ${expLoss}); worst gradient ${worstName} ${worst.toExponential(2)}`);
    });
  });
}
