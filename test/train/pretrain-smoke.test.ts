/**
 * The default-model pipeline end to end (scripts/pretrain-default.ts --smoke, a tiny model on the committed
 * public-domain sample): killed (SIGKILL, as a session end does) after its first checkpoint and re-run, it
 * resumes there and finishes both phases; the bf16 export reloads and fills masks; the curve and plot exist.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModernBertForMaskedLM, SafetensorsFile } from '../../src/index.js';
import { pipeline } from '../../src/pipelines/registry.js';
import { TOKENIZER_DIR } from '../helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function run(work: string, killWhen?: () => boolean): Promise<{ code: number | null; stdout: string; killed: boolean }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'pretrain-default.ts'), '--smoke', '--work', work, '--tokenizer', TOKENIZER_DIR], { cwd: ROOT });
    let stdout = '';
    let killed = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stdout += d));
    const timer = killWhen && setInterval(() => {
      if (killWhen()) {
        killed = true;
        child.kill('SIGKILL');
      }
    }, 100);
    child.on('close', (code) => {
      if (timer) clearInterval(timer);
      done({ code, stdout, killed });
    });
  });
}

it('pretrain:smoke: corpus, packing, StableAdamW + WSD, kill and resume, long-context phase, bf16 export, fill-mask', async () => {
  const work = mkdtempSync(join(tmpdir(), 'mb-pretrain-smoke-'));
  const checkpoints = () => (existsSync(join(work, 'phase1')) ? readdirSync(join(work, 'phase1')).filter((n) => /^checkpoint-\d+$/.test(n)) : []);
  const first = await run(work, () => checkpoints().length > 0);
  assert.ok(first.killed, `the first run ended before it was killed:\n${first.stdout}`);
  assert.ok(!existsSync(join(work, 'model')), 'killed before the export');
  const second = await run(work);
  assert.equal(second.code, 0, second.stdout);
  const resumedAt = /phase1: resuming from .*checkpoint-(\d+)/.exec(second.stdout);
  assert.ok(resumedAt && Number(resumedAt[1]) > 0, `the re-run did not resume:\n${second.stdout}`);
  // The re-run trained only the steps after the checkpoint, and phase 2 ran on 2048-token sequences.
  const log1 = readFileSync(join(work, 'phase1', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log1.filter((r) => r.type === 'train').at(-1).step, Number(/phase1 step \d+\/(\d+)/.exec(second.stdout)![1]));
  const log2 = readFileSync(join(work, 'phase2', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'train');
  assert.ok(log2.length > 0 && log2.every((r) => r.tokens > 1024 && Number.isFinite(r.loss)));

  const model = join(work, 'model');
  const file = SafetensorsFile.read(join(model, 'model.safetensors'));
  assert.ok(file.tensors.size > 0 && [...file.tensors.values()].every((e) => e.dtype === 'BF16'));
  const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
  assert.equal(config.global_rope_theta, 160000);
  assert.equal(config.torch_dtype, 'bfloat16');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'README.md']) assert.ok(existsSync(join(model, f)), f);
  const mlm = await ModernBertForMaskedLM.fromPretrained(model);
  assert.equal(mlm.config.vocab_size, 50368);
  const fill = await pipeline('fill-mask', model);
  const preds = (await fill('And God said, Let there be [MASK].', { topK: 3 })) as { score: number }[];
  assert.equal(preds.length, 3);
  assert.ok(preds.every((p) => p.score > 0 && p.score <= 1));

  const curve = readFileSync(join(work, 'curve.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(curve.some((r) => r.phase === 'phase1') && curve.some((r) => r.phase === 'phase2'));
  assert.ok(curve.every((r) => Number.isFinite(r.eval_loss) && Number.isFinite(r.unigram_loss)));
  assert.deepEqual([...readFileSync(join(work, 'curve.png')).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
});
