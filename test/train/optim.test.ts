// AdamW, StableAdamW, clipping and schedules against values computed by hand (derivations in comments).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlatParameters, Parameter } from '../../src/model/parameter.js';
import { AdamW, clipGradNorm, gradNorm, scaleGradients, StableAdamW } from '../../src/train/optim.js';
import { nativeKernels, setNumThreads } from '../../src/kernels/native.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import { batchSizeAt, checkSchedule, learningRate, type ScheduleOptions } from '../../src/train/schedule.js';

const near = (a: number, b: number, tol = 1e-6, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

function params() {
  const w = new Parameter(Float32Array.from([1, -2]), [1, 2]); // rank 2: decayed
  const b = new Parameter(Float32Array.from([1]), [1]); // rank 1 (a bias or norm): not decayed
  return { flat: new FlatParameters([['w', w], ['b', b]]), w, b };
}

describe('AdamW', () => {
  it('two steps match the hand computation (decay on matrices only)', () => {
    const { flat, w, b } = params();
    const opt = new AdamW(flat, { lr: 0.1, weightDecay: 0.1 });
    // Step 1: m̂ = g, v̂ = g², so the step is lr·sign(g); w decays by (1 − lr·wd) = 0.99 first.
    w.grad!.set([0.5, -1]);
    b.grad!.set([2]);
    opt.step();
    near(w.data[0], 1 * 0.99 - 0.1, 1e-6, 'w0');
    near(w.data[1], -2 * 0.99 + 0.1, 1e-6, 'w1');
    near(b.data[0], 1 - 0.1, 1e-6, 'b');
    // Step 2, same gradient: m̂ and v̂ are again g and g² (bias correction is exact for a constant g).
    opt.step();
    near(w.data[0], 0.89 * 0.99 - 0.1, 1e-6, 'w0 step 2');
    near(w.data[1], -1.88 * 0.99 + 0.1, 1e-6, 'w1 step 2');
    near(b.data[0], 0.8, 1e-6, 'b step 2');
    assert.equal(opt.steps, 2);
  });

  it('state round-trips', () => {
    const { flat, w } = params();
    const opt = new AdamW(flat, { lr: 0.1 });
    w.grad!.set([0.5, -1]);
    opt.step();
    const other = new AdamW(params().flat, { lr: 0.1 });
    other.loadState(opt.state());
    assert.equal(other.steps, 1);
    assert.deepEqual(other.expAvgSq, opt.expAvgSq);
  });
});

describe('StableAdamW', () => {
  it('leaves a steady gradient alone and clips the step after a spike', () => {
    const p = new Parameter(Float32Array.from([1]), [1]);
    const flat = new FlatParameters([['p', p]]);
    const opt = new StableAdamW(flat, { lr: 0.1, weightDecay: 0 });
    // Step 1: v̂ = g², RMS = 1, no clipping: p = 1 − 0.1·1/(1 + 1e-6).
    p.grad!.set([1]);
    opt.step();
    near(p.data[0], 0.9000001, 1e-7, 'step 1');
    // Step 2, g = 10: m = 0.9·0.1 + 0.1·10 = 1.09, m̂ = 1.09/0.19 = 5.736842;
    // v = 0.99·0.01 + 0.01·100 = 1.0099, v̂ = 1.0099/0.0199 = 50.74874; RMS = sqrt(100/50.74874) = 1.403742;
    // p = 0.9000001 − (0.1/1.403742)·5.736842/7.123815 = 0.8426317.
    p.grad!.set([10]);
    opt.step();
    near(p.data[0], 0.8426317, 1e-6, 'step 2');
  });

  it('clips per tensor: a quiet tensor keeps the full rate', () => {
    const a = new Parameter(Float32Array.from([0, 0]), [2]);
    const b = new Parameter(Float32Array.from([0]), [1]);
    const flat = new FlatParameters([['a', a], ['b', b]]);
    const opt = new StableAdamW(flat, { lr: 1, weightDecay: 0 });
    a.grad!.set([1, 1]);
    b.grad!.set([1]);
    opt.step();
    a.grad!.set([10, 10]); // spike in a only
    b.grad!.set([1]);
    opt.step();
    // b: constant gradient → two full steps of −1 (up to eps).
    near(b.data[0], -2, 1e-5, 'b');
    // a: second step clipped by 1/1.403742 (as above, lr 1): −1 − 0.805309/1.403742.
    near(a.data[0], -1 - 0.8053086 / 1.403742, 1e-5, 'a');
  });
});

describe('gradient utilities', () => {
  it('global norm, clipping and scaling', () => {
    const { flat, w, b } = params();
    w.grad!.set([3, 0]);
    b.grad!.set([4]);
    assert.equal(gradNorm(flat), 5);
    assert.equal(clipGradNorm(flat, 10), 5); // under the limit: untouched
    assert.deepEqual(Array.from(flat.grad), [3, 0, 4]);
    assert.equal(clipGradNorm(flat, 1), 5); // scaled by 1/(5 + 1e-6)
    near(flat.grad[0], 0.6, 1e-6);
    near(flat.grad[2], 0.8, 1e-6);
    scaleGradients(flat, 0.5);
    near(flat.grad[2], 0.4, 1e-6);
  });
});

describe('schedules', () => {
  const lr = (o: ScheduleOptions, s: number) => learningRate(o, s);
  it('linear warmup then constant', () => {
    const o: ScheduleOptions = { type: 'constant', lr: 2, warmupSteps: 4 };
    assert.deepEqual([0, 1, 2, 3, 4, 100].map((s) => lr(o, s)), [0, 0.5, 1, 1.5, 2, 2]);
  });
  it('linear decay', () => {
    const o: ScheduleOptions = { type: 'linear', lr: 1, warmupSteps: 2, totalSteps: 10 };
    assert.deepEqual([1, 2, 6, 10, 11].map((s) => lr(o, s)), [0.5, 1, 0.5, 0, 0]);
  });
  it('cosine decay, with a floor', () => {
    const o: ScheduleOptions = { type: 'cosine', lr: 1, totalSteps: 10 };
    near(lr(o, 5), 0.5);
    near(lr({ ...o, minLrRatio: 0.1 }, 5), 0.55);
    near(lr(o, 10), 0);
  });
  it('trapezoidal warmup–stable–decay with 1 − sqrt decay', () => {
    const o: ScheduleOptions = { type: 'wsd', lr: 1, warmupSteps: 2, totalSteps: 10, decaySteps: 4 };
    // decay starts at 10 − 4 = 6: factor 1 − sqrt((s − 6)/4).
    assert.deepEqual([1, 2, 5, 6, 7].map((s) => lr(o, s)), [0.5, 1, 1, 1, 0.5]);
    near(lr(o, 9), 1 - Math.sqrt(0.75));
    assert.equal(lr(o, 10), 0);
  });
  it('rejects inconsistent options', () => {
    assert.throws(() => checkSchedule({ type: 'linear', lr: 1, warmupSteps: 5, totalSteps: 5 }), /totalSteps/);
    assert.throws(() => checkSchedule({ type: 'wsd', lr: 1, warmupSteps: 5, totalSteps: 8, decaySteps: 4 }), /decaySteps/);
    checkSchedule({ type: 'wsd', lr: 1, warmupSteps: 2, totalSteps: 10, decaySteps: 4 });
  });
  it('batch-size warmup grows linearly with tokens', () => {
    const w = { start: 8, end: 32, warmupTokens: 1000 };
    assert.deepEqual([0, 250, 500, 999, 1000, 5000].map((t) => batchSizeAt(w, t)), [8, 14, 20, 31, 32, 32]);
  });
});

describe('optimiser kernels', () => {
  it('native equals the TypeScript reference: AdamW bit for bit, StableAdamW within summation order, any thread count', () => {
    const n = 150_001; // more than two of the native kernel's 65,536-value chunks, and not a multiple of them
    const random = (seed: number, scale: number) => {
      let s = seed;
      return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * scale);
    };
    for (const stable of [false, true])
      for (const threads of [1, 2]) {
        setNumThreads(threads);
        const start = random(1, 2);
        const [pn, mn, vn] = [start.slice(), new Float32Array(n), new Float32Array(n)];
        const [pr, mr, vr] = [start.slice(), new Float32Array(n), new Float32Array(n)];
        for (let step = 1; step <= 3; step++) {
          const g = random(step + 10, step === 2 ? 1e-4 : 3); // tiny gradients at step 2, so StableAdamW clips step 3
          nativeKernels.adamwStep(pn, g, mn, vn, n, 1e-2, 0.9, 0.98, 1e-6, 0.1, step, stable);
          referenceKernels.adamwStep(pr, g, mr, vr, n, 1e-2, 0.9, 0.98, 1e-6, 0.1, step, stable);
          assert.deepEqual(mn, mr, `m, step ${step}`);
          assert.deepEqual(vn, vr, `v, step ${step}`);
          if (!stable) assert.deepEqual(pn, pr, `p, step ${step}, ${threads} thread(s)`);
          else for (let i = 0; i < n; i++) near(pn[i], pr[i], 1e-6 * Math.abs(pr[i]) + 1e-9, `p[${i}], step ${step}`);
        }
        assert.ok(pn.some((x, i) => x !== start[i]), 'the parameters moved');
      }
    setNumThreads(0);
  });

  it('sumSquares, scale and addInto: native equals the reference (the sum within summation order), any thread count', () => {
    const n = 200_003;
    let s = 3;
    const x = Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 4);
    const want = referenceKernels.sumSquares(x, n);
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      near(nativeKernels.sumSquares(x, n), want, 1e-12 * want, `sumSquares, ${threads} thread(s)`);
      const [a, b] = [x.slice(), x.slice()];
      nativeKernels.scale(a, n, 0.3);
      referenceKernels.scale(b, n, 0.3);
      assert.deepEqual(a, b);
      const y = x.map((v, i) => v * (i % 7) - 1);
      const [ya, yb] = [y.slice(), y.slice()];
      nativeKernels.addInto(ya, x, n - 1);
      referenceKernels.addInto(yb, x, n - 1);
      assert.deepEqual(ya, yb);
      assert.equal(ya[n - 1], y[n - 1], 'addInto wrote past n');
      assert.notDeepEqual(ya, y);
    }
    setNumThreads(0);
  });

  it('the native kernel checks its arguments', () => {
    const a = new Float32Array(4);
    assert.throws(() => nativeKernels.adamwStep(a, a, a, new Float32Array(3), 4, 1e-3, 0.9, 0.99, 1e-8, 0, 1, false), /'v' has 3 elements, needs at least 4/);
    assert.throws(() => nativeKernels.adamwStep(a, a, a, a, 4, 1e-3, 0.9, 0.99, 1e-8, 0, 0, false), /'step' must be >= 1/);
    assert.throws(() => nativeKernels.addInto(a, new Float32Array(3), 4), /'x' has 3 elements, needs at least 4/);
  });
});
