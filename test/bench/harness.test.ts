// The benchmark harness (bench/), so it cannot silently rot: the timing wrapper must not change
// results, its FLOP counts must agree with ../shared/peers/flops.mjs, and `npm run bench` must
// run end to end on a tiny model. Nothing here times anything or compares speeds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attentionPairs, KernelProfile, profiledKernels } from '../../bench/profile.js';
import { loadPeers, REPO_ROOT } from '../../bench/peers.js';
import { referenceKernels } from '../../src/kernels/reference.js';

function randomArray(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5);
}

describe('bench profile', () => {
  it('counts attention pairs like a loop over |i - j| <= window', () => {
    for (const n of [1, 2, 5, 64, 65, 66, 129, 130, 300])
      for (const w of [-1, 0, 1, 64, 128, 400]) {
        let pairs = 0;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (w < 0 || Math.abs(i - j) <= w) pairs++;
        assert.equal(attentionPairs(n, w), pairs, `n ${n} window ${w}`);
      }
  });

  it('forwards calls unchanged and records time, calls and FLOPs only while recording', () => {
    const profile = new KernelProfile();
    const k = profiledKernels(referenceKernels, profile);
    const [M, N, K] = [3, 5, 7];
    const A = randomArray(M * K, 1);
    const B = randomArray(N * K, 2);
    profile.weightNames = new Map([[B, 'Wtest']]);
    const want = new Float32Array(M * N);
    referenceKernels.gemm(want, A, B, null, M, N, K, false, true, 0);
    const got = new Float32Array(M * N);
    k.gemm(got, A, B, null, M, N, K, false, true, 0);
    assert.deepEqual(got, want);
    assert.equal(profile.stats.size, 0, 'nothing is recorded while recording is off');
    profile.recording = true;
    got.fill(0);
    k.gemm(got, A, B, null, M, N, K, false, true, 0);
    assert.deepEqual(got, want);
    k.gemm(new Float32Array(M * N), A, randomArray(N * K, 3), null, M, N, K, false, true, 0);
    const s = profile.stats.get('gemm Wtest');
    assert.ok(s, `labels: ${[...profile.stats.keys()]}`);
    assert.equal(s.calls, 1);
    assert.equal(s.flops, 2 * M * N * K);
    assert.ok(s.ms >= 0);
    assert.ok(profile.stats.has(`gemm ${N}x${K}`), 'an unnamed B operand is labelled by its shape');
  });

  it('labels attention and its backward by global/local and counts their FLOPs per visited pair', () => {
    const profile = new KernelProfile();
    const k = profiledKernels(referenceKernels, profile);
    const [H, Dh, window] = [2, 4, 1];
    const cu = Int32Array.from([0, 3, 8]);
    const T = 8;
    const qkv = randomArray(T * 3 * H * Dh, 4);
    const out = new Float32Array(T * H * Dh);
    const lse = new Float32Array(H * T);
    profile.recording = true;
    k.attention(out, lse, qkv, cu, 2, H, Dh, -1, 0.5, false);
    k.attentionBackward(new Float32Array(qkv.length), randomArray(out.length, 5), qkv, out, lse, cu, 2, H, Dh, window, 0.5);
    const want = new Float32Array(T * H * Dh);
    referenceKernels.attention(want, null, qkv, cu, 2, H, Dh, -1, 0.5, false);
    assert.deepEqual(out, want);
    assert.equal(profile.stats.get('attention global')?.flops, 4 * Dh * H * (3 * 3 + 5 * 5));
    // window 1: a 3-token sequence has 2 + 3 + 2 = 7 pairs, a 5-token one 2 + 3 + 3 + 3 + 2 = 13.
    assert.equal(profile.stats.get('attentionBackward local')?.flops, 10 * Dh * H * (7 + 13));
  });
});

describe('npm run bench --tiny', () => {
  it('runs W2 and T1-cls end to end and reports consistent numbers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modernbert-bench-test-'));
    try {
      const json = join(dir, 'out.json');
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--tiny', '--workloads', 'W2,T1-cls', '--runs', '1', '--warmup', '0',
        '--fma-seconds', '0.05', '--json', json], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, MODERNBERT_BENCH_CACHE: dir }, timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^W2 \| ours \|/m);
      const out = JSON.parse(readFileSync(json, 'utf8'));
      assert.ok(out.info.cpu && out.info.isa);
      const [w2, t1] = out.results;
      assert.equal(w2.workload, 'W2');
      const ours = w2.ours;
      assert.equal(ours.available, true);
      assert.equal(ours.realTokens, 8647);
      assert.equal(ours.checksum, '0xed48503d', 'the shared W2 generator (../shared/peers/README.md)');
      assert.ok(ours.tokensPerSec.median > 0 && ours.peakRssMiB > 0 && ours.fmaPeakGflops > 0 && ours.outputFinite);

      // The FLOPs the wrapper counted for one forward are exactly flops.mjs's minimum for W2.
      const peers = await loadPeers();
      const lengths = peers.workloads.makeWorkload('W2').lengths;
      const config = JSON.parse(readFileSync(join(dir, readdirOne(dir), 'config.json'), 'utf8'));
      const f = peers.flops.flops(lengths, {
        hidden: config.hidden_size, inter: config.intermediate_size, layers: config.num_hidden_layers,
        globalEvery: config.global_attn_every_n_layers, localAttention: config.local_attention,
      });
      const kernels = Object.entries(ours.kernels) as [string, { calls: number; ms: number; flops: number }][];
      const counted = kernels.reduce((a, [, s]) => a + s.flops, 0);
      assert.ok(Math.abs(counted - f.minimumPerReal * f.real) <= 1e-9 * counted, `${counted} vs ${f.minimumPerReal * f.real}`);
      const labels = kernels.map(([l]) => l);
      for (const l of ['gemm attn.Wqkv', 'gemm attn.Wo', 'gemm mlp.Wi', 'gemm mlp.Wo', 'attention global', 'attention local', 'layernorm'])
        assert.ok(labels.includes(l), `missing ${l} in ${labels}`);
      const kernelMs = kernels.reduce((a, [, s]) => a + s.ms, 0);
      assert.ok(kernelMs <= ours.timesMs[0] * 1.001, 'kernel time cannot exceed the forward');
      assert.ok(w2.gemm.gflops > 0);

      // T1-cls: a training step with forward, backward and optimiser timed, and the backward kernels profiled.
      assert.equal(t1.workload, 'T1-cls');
      const t = t1.ours;
      assert.equal(t.available, true);
      assert.equal(t.realTokens, 8 * 512);
      assert.ok(t.tokensPerSec.median > 0 && t.outputFinite);
      assert.ok(t.phasesMs.forward > 0 && t.phasesMs.backward > 0 && t.phasesMs.optimizer > 0);
      for (const l of ['gemm attn.Wqkv dW', 'gemm attn.Wqkv dX', 'gemm classifier', 'attentionBackward global', 'attentionBackward local', 'layernormBackward'])
        assert.ok(l in t.kernels, `missing ${l} in ${Object.keys(t.kernels)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The one checkpoint folder the run wrote into the cache. */
function readdirOne(dir: string): string {
  const found = readdirSync(dir).filter((n) => n.startsWith('random-'));
  assert.equal(found.length, 1, `cache ${dir} holds ${found}`);
  return found[0];
}
