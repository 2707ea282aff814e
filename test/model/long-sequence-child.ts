/**
 * Child process of long-sequence.test.ts (run with --expose-gc): writes a checkpoint with random
 * weights of the shape given as JSON in argv[4] (a RandomModelSpec) to argv[2], runs one sequence of
 * argv[3] tokens through it and prints a JSON line with the resident-memory growth of the forward
 * pass. A separate process, so the peak RSS belongs to this forward alone.
 */
import { ModernBertModel } from '../../src/model/modernbert.js';
import { type RandomModelSpec, writeRandomModel } from './random-checkpoint.js';

const [dir, tokens, specJson] = process.argv.slice(2);
const T = Number(tokens);
const spec = JSON.parse(specJson) as RandomModelSpec;
// BF16 halves the file the test writes; the loader widens it to float32 as for any checkpoint.
writeRandomModel(dir, spec, 11, 'BF16');
const model = await ModernBertModel.fromPretrained(dir);
const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919 + 13) % (spec.vocab_size - 12));
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
gc();
const rssBefore = process.memoryUsage.rss();
const start = Date.now();
const out = model.forward({ inputIds: [ids] });
const seconds = (Date.now() - start) / 1000;
const peakAfter = process.resourceUsage().maxRSS * 1024;
const h = out.lastHiddenState.data;
let finite = true;
let sumAbs = 0;
for (let i = 0; i < h.length; i++) {
  if (!Number.isFinite(h[i])) finite = false;
  sumAbs += Math.abs(h[i]);
}
console.log(JSON.stringify({
  dims: out.lastHiddenState.dims,
  finite,
  meanAbs: sumAbs / h.length,
  // maxRSS is the lifetime peak; if loading peaked above the forward, this over-states the growth (safe for a bound).
  growthBytes: peakAfter - rssBefore,
  rssBefore,
  peakAfter,
  seconds,
}));
