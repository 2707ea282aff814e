// One 8192-token sequence in bounded memory: attention must never materialise an n × n matrix
// (12 heads × 8192² × 4 bytes = 3.2 GB for ModernBERT-base; 256 MiB for a single head). Each case
// runs in a child process (long-sequence-child.ts) that reports its peak-RSS growth over the forward.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RandomModelSpec } from './random-checkpoint.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const T = 8192;
const MiB = 1024 * 1024;

interface ChildReport {
  dims: number[];
  finite: boolean;
  meanAbs: number;
  growthBytes: number;
  rssBefore: number;
  peakAfter: number;
  seconds: number;
}

function runChild(spec: RandomModelSpec): ChildReport {
  const dir = mkdtempSync(join(tmpdir(), 'mb-long-'));
  try {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'long-sequence-child.ts'), dir, String(T), JSON.stringify(spec)], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 15 * 60 * 1000, // a hang must not stall the suite
    });
    assert.equal(r.status, 0, `child failed (signal ${r.signal}): ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildReport;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes of the float32 buffers a forward over T tokens needs: residual, norm, qkv, attention, Wi, GeGLU, output, padded copy. */
function activationBytes(spec: RandomModelSpec): number {
  return T * (8 * spec.hidden_size + 3 * spec.intermediate_size) * 4;
}

describe(`a single ${T}-token sequence`, () => {
  it('through ModernBERT-base-width global and sliding layers stays within its activations, far below n × n', () => {
    // Base width (hidden 768, 12 heads of 64, intermediate 1152, vocab 50368, 8192 positions): layer 0
    // global as in ModernBERT-base, layer 1 sliding. Depth adds no memory (buffers are reused per layer).
    const spec: RandomModelSpec = {
      hidden_size: 768, num_attention_heads: 12, intermediate_size: 1152, num_hidden_layers: 2,
      vocab_size: 50368, max_position_embeddings: T, local_attention: 128, global_attn_every_n_layers: 3,
      layer_types: ['full_attention', 'sliding_attention'],
    };
    const r = runChild(spec);
    const bound = activationBytes(spec) + 256 * MiB;
    console.log(`base width, ${T} tokens: forward ${r.seconds.toFixed(1)} s, peak RSS growth ${(r.growthBytes / MiB).toFixed(0)} MiB (activations ${(activationBytes(spec) / MiB).toFixed(0)} MiB)`);
    assert.deepEqual(r.dims, [1, T, 768]);
    assert.ok(r.finite && r.meanAbs > 0.1, `output not sane: finite ${r.finite}, mean |h| ${r.meanAbs}`);
    // Activations + 256 MiB: a single 8192 × 8192 float32 matrix (one head's scores, or a dense
    // window mask) per thread would exceed it; 12 heads of n × n would be 3 GiB.
    assert.ok(r.growthBytes < bound, `forward grew RSS by ${(r.growthBytes / MiB).toFixed(0)} MiB, bound ${(bound / MiB).toFixed(0)} MiB`);
  });

  it('through global and sliding layers with base-size heads stays below even one head of n × n', () => {
    // One head of 64 (ModernBERT-base's head size), so the global layer costs 17 GFLOP, not 206.
    // Activations are ~25 MiB, so one 8192 × 8192 float32 matrix (256 MiB) would stand out
    // against the 160 MiB bound.
    const spec: RandomModelSpec = {
      hidden_size: 64, num_attention_heads: 1, intermediate_size: 96, num_hidden_layers: 3,
      vocab_size: 512, max_position_embeddings: T, local_attention: 128, global_attn_every_n_layers: 3,
      layer_types: ['full_attention', 'sliding_attention', 'full_attention'],
    };
    const r = runChild(spec);
    console.log(`narrow, ${T} tokens: forward ${r.seconds.toFixed(1)} s, peak RSS growth ${(r.growthBytes / MiB).toFixed(0)} MiB (activations ${(activationBytes(spec) / MiB).toFixed(0)} MiB)`);
    assert.deepEqual(r.dims, [1, T, 64]);
    assert.ok(r.finite && r.meanAbs > 0.1, `output not sane: finite ${r.finite}, mean |h| ${r.meanAbs}`);
    assert.ok(r.growthBytes < 160 * MiB, `forward grew RSS by ${(r.growthBytes / MiB).toFixed(0)} MiB; one head's n × n is 256 MiB`);
  });
});
