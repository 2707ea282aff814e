/**
 * Evaluation metrics, as scikit-learn / SciPy define them: accuracy, F1 (macro and micro), Matthews
 * correlation (multi-class form), Pearson and Spearman (average ranks for ties); for MLM, token accuracy
 * and perplexity (exp of the mean cross-entropy per labelled token).
 */

export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < gold.length; i++) if (pred[i] === gold[i]) ok++;
  return gold.length ? ok / gold.length : NaN;
}

function confusion(pred: ArrayLike<number>, gold: ArrayLike<number>, C: number): number[][] {
  const m = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  for (let i = 0; i < gold.length; i++) m[gold[i]][pred[i]]++;
  return m;
}

/**
 * F1 over C classes. Macro: the mean of per-class F1 over classes that occur in gold or pred (a class with
 * no true and no predicted example counts as absent, as scikit-learn's labels=None). Micro: for single-label
 * classification this equals accuracy.
 */
export function f1(pred: ArrayLike<number>, gold: ArrayLike<number>, C: number): { macro: number; micro: number } {
  const m = confusion(pred, gold, C);
  let sum = 0;
  let classes = 0;
  let tpAll = 0;
  let fpAll = 0;
  let fnAll = 0;
  for (let c = 0; c < C; c++) {
    const tp = m[c][c];
    let fp = 0;
    let fn = 0;
    for (let k = 0; k < C; k++) {
      if (k === c) continue;
      fp += m[k][c];
      fn += m[c][k];
    }
    tpAll += tp;
    fpAll += fp;
    fnAll += fn;
    if (tp + fp + fn === 0) continue;
    classes++;
    sum += (2 * tp) / (2 * tp + fp + fn);
  }
  return { macro: classes ? sum / classes : 0, micro: tpAll + fpAll + fnAll ? (2 * tpAll) / (2 * tpAll + fpAll + fnAll) : 0 };
}

/** Matthews correlation coefficient (Gorodkin's multi-class R_K; the usual MCC for two classes). */
export function matthews(pred: ArrayLike<number>, gold: ArrayLike<number>, C: number): number {
  const m = confusion(pred, gold, C);
  const n = gold.length;
  let correct = 0;
  const t = new Array<number>(C).fill(0); // true counts per class
  const p = new Array<number>(C).fill(0); // predicted counts per class
  for (let i = 0; i < C; i++) {
    correct += m[i][i];
    for (let j = 0; j < C; j++) {
      t[i] += m[i][j];
      p[j] += m[i][j];
    }
  }
  let tp = 0;
  let tt = 0;
  let pp = 0;
  for (let k = 0; k < C; k++) {
    tp += t[k] * p[k];
    tt += t[k] * t[k];
    pp += p[k] * p[k];
  }
  const denom = Math.sqrt((n * n - pp) * (n * n - tt));
  return denom === 0 ? 0 : (correct * n - tp) / denom;
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** Ranks 1..n with ties given their average rank. */
function ranks(x: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Float64Array(x.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return pearson(ranks(x), ranks(y));
}

/** Row-wise argmax of logits [N, C]. */
export function argmax(logits: Float32Array, N: number, C: number): Int32Array {
  const out = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[n * C + c] > logits[n * C + best]) best = c;
    out[n] = best;
  }
  return out;
}
