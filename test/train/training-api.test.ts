// The PyTorch-like training surface: train()/eval(), loss.backward() rules, packed input with labels,
// flat parameter layout, and the losses' gradients.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification } from '../../src/index.js';
import { SafetensorsFile } from '../../src/safetensors/safetensors.js';
import { bceWithLogits, crossEntropy, IGNORE_INDEX, meanSquaredError, TrainingError } from '../../src/train/losses.js';
import { nativeKernels, setNumThreads } from '../../src/kernels/native.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import { fixtureDir, rows2d } from '../helpers/fixtures.js';

function batch(name: string) {
  const train = SafetensorsFile.read(join(fixtureDir(name), 'train.safetensors'));
  return { train, inputIds: rows2d(train, 'input_ids'), attentionMask: rows2d(train, 'attention_mask') };
}

describe('training API', () => {
  it('eval-mode losses have no backward; backward runs once; a later forward invalidates a loss', async () => {
    const model = await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'));
    const { train, inputIds, attentionMask } = batch('mlm');
    const labels = rows2d(train, 'labels');
    const evalLoss = model.forward({ inputIds, attentionMask, labels }).loss!;
    assert.throws(() => evalLoss.backward(), TrainingError);
    model.train();
    const a = model.forward({ inputIds, attentionMask, labels }).loss!;
    const b = model.forward({ inputIds, attentionMask, labels }).loss!;
    assert.equal(a.item(), evalLoss.item());
    assert.throws(() => a.backward(), /overwrote/);
    b.backward();
    assert.throws(() => b.backward(), TrainingError);
  });

  it('backward accumulates; zeroGrad resets; parameters share one buffer', async () => {
    const model = (await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls'))).train();
    const { train, inputIds, attentionMask } = batch('cls-cls');
    const labels = Array.from(train.int32('labels'));
    model.forward({ inputIds, attentionMask, labels }).loss!.backward();
    const flat = model.parameters();
    const once = flat.grad.slice();
    model.forward({ inputIds, attentionMask, labels }).loss!.backward();
    const scale = once.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let worst = 0;
    for (let i = 0; i < once.length; i++) worst = Math.max(worst, Math.abs(flat.grad[i] - 2 * once[i]));
    assert.ok(worst <= 1e-6 * scale, `second backward adds the same gradient (max deviation ${worst})`);
    model.zeroGrad();
    assert.ok(flat.grad.every((g) => g === 0));
    for (const e of flat.entries) {
      assert.equal(e.param.data.buffer, flat.data.buffer);
      assert.equal(e.param.grad!.buffer, flat.grad.buffer);
    }
    assert.equal(flat.data.length, model.namedParameters().reduce((n, [, p]) => n + p.size, 0));
  });

  it('forwardPacked with packed labels equals the padded forward', async () => {
    const model = (await ModernBertForMaskedLM.fromPretrained(fixtureDir('mlm'))).train();
    const { train, inputIds, attentionMask } = batch('mlm');
    const labels = rows2d(train, 'labels');
    const padded = model.forward({ inputIds, attentionMask, labels }).loss!;
    padded.backward();
    const g1 = model.parameters().grad.slice();
    model.zeroGrad();
    const ids: number[] = [];
    const lab: number[] = [];
    const cu = [0];
    inputIds.forEach((row, b) => {
      row.forEach((id, s) => {
        if (attentionMask[b][s]) {
          ids.push(id);
          lab.push(labels[b][s]);
        }
      });
      cu.push(ids.length);
    });
    const packed = model.forwardPacked({ inputIds: Int32Array.from(ids), cuSeqlens: Int32Array.from(cu), labels: Int32Array.from(lab) }).loss!;
    assert.equal(packed.item(), padded.item());
    packed.backward();
    assert.deepEqual(model.parameters().grad, g1);
  });

  it('rejects out-of-range labels with the row', async () => {
    const model = await ModernBertForSequenceClassification.fromPretrained(fixtureDir('cls-cls'));
    const { inputIds, attentionMask } = batch('cls-cls');
    assert.throws(() => model.forward({ inputIds, attentionMask, labels: [0, 3, 1] }), /label 3 at row 1 is outside \[0, 3\)/);
  });
});

describe('losses', () => {
  const fd = (loss: (x: Float32Array) => number, x: Float32Array, grad: Float32Array) => {
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i];
      x[i] = x0 + 1e-2;
      const up = loss(x);
      x[i] = x0 - 1e-2;
      const down = loss(x);
      x[i] = x0;
      assert.ok(Math.abs((up - down) / 2e-2 - grad[i]) < 1e-4, `element ${i}`);
    }
  };

  for (const [kernels, tol] of [[referenceKernels, 1e-12], [nativeKernels, 1e-6]] as const)
    it(`cross-entropy ignores -100 rows and averages over the counted ones (${kernels.name} kernels)`, () => {
      const logits = Float32Array.from([1, 2, 3, 0.5, -1, 0, 2, 2, 2]);
      const targets = Int32Array.from([2, -100, 0]);
      const grad = new Float32Array(9);
      const { loss, count } = crossEntropy(logits, targets, 3, 3, grad, IGNORE_INDEX, kernels);
      assert.equal(count, 2);
      const l0 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 3;
      const l2 = Math.log(3);
      // The native kernel's exp is float32 (a few ulps); the reference's is float64.
      assert.ok(Math.abs(loss - (l0 + l2) / 2) < tol, `${loss}`);
      assert.deepEqual(Array.from(grad.subarray(3, 6)), [0, 0, 0]);
      fd((x) => crossEntropy(x, targets, 3, 3, null, IGNORE_INDEX, kernels).loss, logits, grad);
      assert.ok(Number.isNaN(crossEntropy(logits, Int32Array.from([-100, -100, -100]), 3, 3, null, IGNORE_INDEX, kernels).loss));
    });

  it('cross-entropy: the native kernel matches the reference on vocabulary-sized rows, any thread count, grad aliasing logits', () => {
    for (const C of [50368, 37]) {
      const N = 13;
      let s = 7;
      const logits = Float32Array.from({ length: N * C }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 20);
      const targets = Int32Array.from({ length: N }, (_, n) => (n % 4 === 1 ? IGNORE_INDEX : (n * 7919) % C));
      const want = new Float32Array(N * C);
      const wantLoss = crossEntropy(logits, targets, N, C, want, IGNORE_INDEX, referenceKernels).loss;
      for (const threads of [1, 2]) {
        setNumThreads(threads);
        const grad = logits.slice(); // aliasing: the gradient overwrites the logits it is computed from
        const got = crossEntropy(grad, targets, N, C, grad, IGNORE_INDEX, nativeKernels).loss;
        assert.ok(Math.abs(got - wantLoss) <= 1e-6 * Math.abs(wantLoss), `C ${C}, ${threads} thread(s): loss ${got} vs ${wantLoss}`);
        for (let i = 0; i < grad.length; i++)
          assert.ok(Math.abs(grad[i] - want[i]) <= 1e-9 + 1e-5 * Math.abs(want[i]), `C ${C}: grad[${i}] ${grad[i]} vs ${want[i]}`);
      }
      setNumThreads(0);
    }
    assert.throws(() => nativeKernels.crossEntropy(new Float32Array(6), Int32Array.from([0, 3]), 2, 3, null, IGNORE_INDEX, 1), /target 3 at row 1 is outside \[0, 3\)/);
  });

  it('BCE with logits and MSE: values and gradients', () => {
    const x = Float32Array.from([0.3, -2, 5, 0]);
    const y = Float32Array.from([1, 0, 0, 1]);
    const g = new Float32Array(4);
    const bce = bceWithLogits(x, y, 4, g);
    const expect = [0.3, -2, 5, 0].reduce((s, v, i) => s - (y[i] * Math.log(1 / (1 + Math.exp(-v))) + (1 - y[i]) * Math.log(1 - 1 / (1 + Math.exp(-v)))), 0) / 4;
    assert.ok(Math.abs(bce - expect) < 1e-6);
    fd((v) => bceWithLogits(v, y, 4, null), x, g);
    const m = meanSquaredError(x, y, 4, g);
    assert.ok(Math.abs(m - ((0.7 ** 2) + 4 + 25 + 1) / 4) < 1e-6);
    fd((v) => meanSquaredError(v, y, 4, null), x, g);
  });
});
