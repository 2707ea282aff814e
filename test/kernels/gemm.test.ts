// Native GEMM against the reference on awkward shapes, all trans combinations, beta 0/1, with and
// without bias, and prepacked weights, for every ISA path this CPU has, with 1 and 2 threads. The ISA
// is read once per process, so each combination runs in a child process (gemm-child.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeInfo } from '../../src/kernels/native.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'gemm-child.ts');
const features = nativeInfo().features;
const isas = ['portable', ...(features.avx2 && features.fma ? ['avx2'] : []),
  ...(features.avx512f && features.avx512bw && features.avx512vl ? ['avx512'] : [])];

describe('native gemm vs reference', () => {
  for (const isa of isas)
    for (const threads of [1, 2])
      it(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
        const r = spawnSync(process.execPath, ['--import', 'tsx', child], {
          env: { ...process.env, MODERNBERT_ISA: isa, MODERNBERT_NUM_THREADS: String(threads) },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
          isa: string; threads: number; cases: number; failures: string[];
        };
        assert.equal(out.isa, isa, 'the child ran another ISA than the one asked for');
        assert.equal(out.threads, threads);
        assert.ok(out.cases >= 200, `only ${out.cases} cases ran`);
        assert.deepEqual(out.failures, []);
      });
});
