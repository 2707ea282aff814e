/**
 * `node --import tsx bench/bf16-accuracy.ts`: the error of dtype 'bf16' against the float32 Hugging Face
 * fixtures (MODERNBERT_FIXTURES, else ../shared/fixtures), every fixture and case, as a markdown table
 * (docs/performance.md), with the worst of each column.
 */
import { nativeInfo } from '../src/kernels/native.js';
import { bf16Errors } from '../test/helpers/bf16.js';

const rows = await bf16Errors({ dtype: 'bf16' });
const e = (x: number | undefined) => (x === undefined ? '-' : x.toExponential(2));
console.log(`bf16 path: ${nativeInfo().bf16}; scaled max diff = max|bf16 − float32 reference| / max(1, max|reference|)\n`);
console.log('fixture | case | tokens | last_hidden_state | logits | pooled');
console.log('---|---|---|---|---|---');
for (const r of rows) console.log(`${r.fixture} | ${r.id} | ${r.tokens} | ${e(r.lastHiddenState)} | ${e(r.logits)} | ${e(r.pooled)}`);
const worst = (f: (r: (typeof rows)[number]) => number | undefined) => Math.max(...rows.map((r) => f(r) ?? 0));
console.log(`**worst** | | | ${e(worst((r) => r.lastHiddenState))} | ${e(worst((r) => r.logits))} | ${e(worst((r) => r.pooled))}`);
