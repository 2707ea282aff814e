// Native GEMM against the reference on awkward shapes, all trans combinations, beta 0/1, with and
// without bias, prepacked weights and bf16, for every ISA and bf16 path this CPU has, with 1 and 2
// threads. The paths are chosen once per process, so each combination runs in a child (gemm-child.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alignedFloat32Array, nativeInfo } from '../../src/kernels/native.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'gemm-child.ts');
const features = nativeInfo().features;
const avx512 = features.avx512f && features.avx512bw && features.avx512vl;
// [MODERNBERT_ISA, MODERNBERT_BF16, the bf16 path expected]
const paths: [string, string, string][] = [
  ['portable', '', 'portable'],
  ...(features.avx2 && features.fma ? [['avx2', '', 'portable'] as [string, string, string]] : []),
  ...(avx512 ? [['avx512', '', features.amxBf16 ? 'amx' : features.avx512bf16 ? 'avx512bf16' : 'portable'] as [string, string, string]] : []),
  ...(avx512 && features.amxBf16 && features.avx512bf16 ? [['avx512', 'avx512bf16', 'avx512bf16'] as [string, string, string]] : []),
];

describe('native gemm vs reference', () => {
  for (const [isa, bf16Cap, bf16] of paths)
    for (const threads of [1, 2])
      it(`${isa}, bf16 ${bf16}, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
        const r = spawnSync(process.execPath, ['--import', 'tsx', child], {
          env: { ...process.env, MODERNBERT_ISA: isa, MODERNBERT_BF16: bf16Cap, MODERNBERT_NUM_THREADS: String(threads) },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
          isa: string; bf16: string; threads: number; cases: number; failures: string[];
        };
        assert.equal(out.isa, isa, 'the child ran another ISA than the one asked for');
        assert.equal(out.bf16, bf16, 'the child ran another bf16 path than the one asked for');
        assert.equal(out.threads, threads);
        assert.ok(out.cases >= 200, `only ${out.cases} cases ran`);
        assert.deepEqual(out.failures, []);
      });
});

describe('alignedFloat32Array', () => {
  it('gives n zeros in its own buffer, at most 64 bytes in, and rejects a bad n', () => {
    for (const n of [0, 1, 17, 100_000]) {
      const a = alignedFloat32Array(n), b = alignedFloat32Array(n);
      assert.ok(a instanceof Float32Array);
      assert.equal(a.length, n);
      assert.ok(a.every((v) => v === 0));
      assert.equal(a.buffer.byteLength, n * 4 + 64);
      assert.ok(a.byteOffset < 64 && a.byteOffset % 4 === 0);
      assert.notEqual(a.buffer, b.buffer);
    }
    for (const bad of [-1, Number.NaN]) assert.throws(() => alignedFloat32Array(bad), /argument 'n'/);
  });
});
