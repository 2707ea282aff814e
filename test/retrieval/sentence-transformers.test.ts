/**
 * SentenceTransformer on folders built around the fixture checkpoints. Expected vectors are pooled, projected
 * and normalised here from the fixtures' reference hidden states (cK.last_hidden_state), with the word-level
 * test tokenizer turning each fixture sequence back into a text; prompts are checked on the real tokenizer.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertClose, expected } from '../helpers/fixtures.js';
import { randomRealVocabModelDir } from '../pipelines/helpers.js';
import { FakeHub } from '../hub/fake-hub.js';
import { randomValues, stFolder, textOf } from './helpers.js';
import { SentenceTransformer, similarityMatrix } from '../../src/retrieval/sentence-transformers.js';
import { ModernBertModel } from '../../src/model/modernbert.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { pipeline } from '../../src/pipelines/registry.js';

/** The fixture's sequences of case `c` (lengths ≥ 2) as texts, with their reference hidden states. */
function fixtureCase(name: string, c: string) {
  const f = expected(name);
  const ids = f.int32(`${c}.input_ids.right`);
  const [B, S] = f.entry(`${c}.input_ids.right`).shape;
  const cu = f.int32(`${c}.cu_seqlens`);
  const last = f.float32(`${c}.last_hidden_state`);
  const H = f.entry(`${c}.last_hidden_state`).shape[1];
  const seqs = Array.from({ length: B }, (_, b) => {
    const n = cu[b + 1] - cu[b];
    return { ids: Array.from(ids.subarray(b * S, b * S + n)), rows: last.subarray(cu[b] * H, cu[b + 1] * H) };
  }).filter((s) => s.ids.length >= 2);
  return { H, seqs, texts: seqs.map((s) => textOf(s.ids.slice(1, -1))) };
}

const POOLING_ALL = {
  word_embedding_dimension: 48, pooling_mode_cls_token: true, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: true,
  pooling_mode_mean_sqrt_len_tokens: true, pooling_mode_weightedmean_tokens: true, pooling_mode_lasttoken: true, include_prompt: true,
};

/** Sentence-Transformers' pooling of one sequence's rows [n, H] from `from` on (cls always the first row). */
function expectedPools(rows: Float32Array, H: number, from = 0): Record<string, number[]> {
  const n = rows.length / H;
  const col = (d: number) => Array.from({ length: n - from }, (_, t) => rows[(t + from) * H + d]);
  const r = { cls: [] as number[], max: [] as number[], mean: [] as number[], sqrt: [] as number[], weighted: [] as number[], last: [] as number[] };
  for (let d = 0; d < H; d++) {
    const c = col(d);
    const sum = c.reduce((a, b) => a + b, 0);
    r.cls.push(rows[d]);
    r.max.push(Math.max(...c));
    r.mean.push(sum / c.length);
    r.sqrt.push(sum / Math.sqrt(c.length));
    const w = c.map((_, t) => t + from + 1);
    r.weighted.push(c.reduce((a, v, t) => a + v * w[t], 0) / w.reduce((a, b) => a + b, 0));
    r.last.push(rows[(n - 1) * H + d]);
  }
  return r;
}

describe('SentenceTransformer on fixture checkpoints', () => {
  it('pools cls, max, mean, mean_sqrt_len, weightedmean and lasttoken (concatenated in that order) as the reference hidden states give', async () => {
    const dir = stFolder({ fixture: 'tok', modules: [{ type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': POOLING_ALL } }] });
    const st = await SentenceTransformer.fromPretrained(dir);
    for (const c of ['c1', 'c2']) {
      const { H, seqs, texts } = fixtureCase('tok', c);
      const out = st.encode(texts, { batchSize: 3 });
      assert.deepEqual(out.dims, [texts.length, 6 * H]);
      seqs.forEach((s, i) => {
        const e = expectedPools(s.rows, H);
        const want = [...e.cls, ...e.max, ...e.mean, ...e.sqrt, ...e.weighted, ...e.last];
        assertClose(out.data.subarray(i * 6 * H, (i + 1) * 6 * H), want, `${c} sequence ${i}`);
      });
    }
  });

  it('applies Dense (weights, bias, tanh) and Normalize after mean pooling; similarity is cosine by default', async () => {
    const W = randomValues(16 * 48, 0.3, 11);
    const b = randomValues(16, 0.1, 12);
    const dir = stFolder({
      fixture: 'tok',
      modules: [
        { type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': { word_embedding_dimension: 48, pooling_mode_mean_tokens: true } } },
        { type: 'sentence_transformers.models.Dense', path: '2_Dense', files: { 'config.json': { in_features: 48, out_features: 16, bias: true, activation_function: 'torch.nn.modules.activation.Tanh' } }, dense: { weight: W, bias: b, in: 48, out: 16 } },
        { type: 'sentence_transformers.models.Normalize', path: '3_Normalize' },
      ],
    });
    const st = await SentenceTransformer.fromPretrained(dir);
    assert.equal(st.dimension, 16);
    const { H, seqs, texts } = fixtureCase('tok', 'c2');
    const out = st.encode(texts);
    seqs.forEach((s, i) => {
      const mean = expectedPools(s.rows, H).mean;
      const y = Array.from({ length: 16 }, (_, o) => Math.tanh(b[o] + mean.reduce((a, v, d) => a + v * W[o * 48 + d], 0)));
      const norm = Math.hypot(...y);
      assertClose(out.data.subarray(i * 16, (i + 1) * 16), y.map((v) => v / norm), `sequence ${i}`);
    });
    const sim = st.similarity(out, out);
    for (let i = 0; i < texts.length; i++) assert.ok(Math.abs(sim.data[i * texts.length + i] - 1) < 1e-5);
  });

  it('include_prompt false pools without [CLS] and the prompt tokens; a prompt equals the prompted text', async () => {
    const { H, seqs } = fixtureCase('tok', 'c2');
    const s = seqs[0];
    const prompt = `${textOf(s.ids.slice(1, 3))} `; // the first two text tokens are the prompt
    const rest = textOf(s.ids.slice(3, -1));
    const make = (includePrompt: boolean) => stFolder({
      fixture: 'tok',
      modules: [{ type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': { pooling_mode_mean_tokens: true, include_prompt: includePrompt } } }],
      stConfig: { prompts: { query: prompt, passage: '' }, default_prompt_name: null, similarity_fn_name: 'dot' },
    });
    const without = await SentenceTransformer.fromPretrained(make(false));
    const v = without.encode(rest, { promptName: 'query' });
    // Prompt "wA wB " alone is [CLS] wA wB [SEP]: prompt_length 3 masks [CLS] and the two prompt tokens.
    assertClose(v.data, expectedPools(s.rows, H, 3).mean, 'include_prompt false');
    const withPrompt = await SentenceTransformer.fromPretrained(make(true));
    assertClose(withPrompt.encode(rest, { promptName: 'query' }).data, expectedPools(s.rows, H).mean, 'include_prompt true');
    assertClose(withPrompt.encode(rest, { prompt }).data, withPrompt.encode(prompt + rest).data, 'prompt = prompted text');
    assert.equal(withPrompt.similarityFnName, 'dot');
    assert.throws(() => withPrompt.encode('w1', { promptName: 'nope' }), /prompt name 'nope' is not in the model's prompts \(query, passage\)/);
  });

  it('refuses unknown module types, a Dense before Pooling and a missing Pooling, naming the module', async () => {
    const bad = stFolder({ fixture: 'tok', modules: [{ type: 'sentence_transformers.models.LSTM', path: '1_LSTM' }] });
    await assert.rejects(SentenceTransformer.fromPretrained(bad), /module "1" has type sentence_transformers\.models\.LSTM, which is not supported/);
    const noPool = stFolder({ fixture: 'tok', modules: [] });
    await assert.rejects(SentenceTransformer.fromPretrained(noPool), /no Pooling module/);
    const pooling = JSON.stringify({ pooling_mode_mean_tokens: false });
    const none = stFolder({ fixture: 'tok', modules: [{ type: 'sentence_transformers.models.Pooling', path: '1_Pooling' }] });
    writeFileSync(join(none, '1_Pooling', 'config.json'), pooling);
    await assert.rejects(SentenceTransformer.fromPretrained(none), /no pooling mode is enabled/);
  });
});

describe('SentenceTransformer with the real ModernBERT tokenizer', () => {
  let dir: string;
  const prompt = 'search_query: ';
  before(() => {
    dir = randomRealVocabModelDir();
    const modules = [
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ];
    writeFileSync(join(dir, 'modules.json'), JSON.stringify(modules));
    writeFileSync(join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: 512, do_lower_case: false }));
    writeFileSync(join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: { query: prompt, document: 'search_document: ' }, default_prompt_name: 'document' }));
    mkdirSync(join(dir, '1_Pooling'));
  });

  it('puts the prompt tokens right after [CLS], token by token, and pools without them when include_prompt is false', async () => {
    writeFileSync(join(dir, '1_Pooling', 'config.json'), JSON.stringify({ word_embedding_dimension: 32, pooling_mode_mean_tokens: true, include_prompt: false }));
    const st = await SentenceTransformer.fromPretrained(dir);
    const text = 'What is late interaction?';
    const tok = st.tokenizer;
    const prompted = st.tokenize(st.promptFor({ promptName: 'query' })! + text);
    // The real tokenizer, token by token. The prompt alone ends in a lone space token, which in the prompted
    // text merges into "ĠWhat": Sentence-Transformers' prompt_length (prompt alone, minus [SEP]) is then 6 and
    // masks "ĠWhat" too. We reproduce that.
    const alone = tok.encode(prompt);
    assert.deepEqual(alone.tokens, ['[CLS]', 'search', '_', 'query', ':', 'Ġ', '[SEP]']);
    assert.deepEqual(prompted.tokens, ['[CLS]', 'search', '_', 'query', ':', 'ĠWhat', 'Ġis', 'Ġlate', 'Ġinteraction', '?', '[SEP]']);
    assert.deepEqual([prompted.inputIds[0], prompted.inputIds[prompted.inputIds.length - 1]], [50281, 50282]);
    // Expected: mean over the tokens after the prompt, from an independent padded forward of the prompted ids.
    const model = await ModernBertModel.fromPretrained(dir);
    const h = model.forward({ inputIds: [prompted.inputIds] }).lastHiddenState.data;
    const from = alone.inputIds.length - 1;
    const n = prompted.inputIds.length;
    const want = Array.from({ length: 32 }, (_, d) => {
      let s = 0;
      for (let t = from; t < n; t++) s += h[t * 32 + d];
      return s / (n - from);
    });
    assertClose(st.encode(text, { promptName: 'query' }).data, want, 'pooled without the prompt');
    // The default prompt (document) applies when none is named.
    assertClose(st.encode(text).data, st.encode(text, { prompt: 'search_document: ' }).data, 'default prompt');
  });

  it('the feature-extraction pipeline uses the Sentence-Transformers modules of such a folder', async () => {
    writeFileSync(join(dir, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_cls_token: true }));
    const st = await SentenceTransformer.fromPretrained(dir);
    const embed = await pipeline('feature-extraction', dir);
    const texts = ['a short one', 'and a somewhat longer second text'];
    const out = await embed(texts, { promptName: 'query', normalize: true });
    assertClose(out.data, st.encode(texts, { promptName: 'query', normalize: true }).data, 'pipeline = SentenceTransformer');
    await assert.rejects(embed(texts, { pooling: 'mean' }), /Sentence-Transformers model: its Pooling module/);
  });
});

describe('similarity functions', () => {
  it('cosine, dot, negative euclidean and manhattan on hand-computed vectors', () => {
    const a = new Tensor(Float32Array.from([3, 4, 0, 1]), [2, 2]);
    const b = new Tensor(Float32Array.from([4, 3]), [1, 2]);
    assert.deepEqual(Array.from(similarityMatrix(a, b, 'dot').data), [24, 3]);
    const cos = similarityMatrix(a, b, 'cosine').data;
    assert.ok(Math.abs(cos[0] - 24 / 25) < 1e-6 && Math.abs(cos[1] - 3 / 5) < 1e-6);
    const eu = similarityMatrix(a, b, 'euclidean').data;
    assert.ok(Math.abs(eu[0] + Math.SQRT2) < 1e-6 && Math.abs(eu[1] + Math.sqrt(20)) < 1e-6);
    assert.deepEqual(Array.from(similarityMatrix(a, b, 'manhattan').data), [-2, -6]);
    assert.throws(() => similarityMatrix(a, new Tensor(new Float32Array(3), [1, 3])), /dimension 2 and 3/);
  });
});

describe('SentenceTransformer from a Hub repo id', () => {
  it('fetches modules.json and the module folders with the checkpoint, then loads offline from the cache', async () => {
    const dir = stFolder({
      fixture: 'tok',
      modules: [
        { type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': { pooling_mode_cls_token: true } } },
        { type: 'sentence_transformers.models.Dense', path: '2_Dense', files: { 'config.json': { in_features: 48, out_features: 6, bias: false } }, dense: { weight: randomValues(6 * 48, 0.3), in: 48, out: 6 } },
      ],
      stConfig: { prompts: { query: 'w3 ' } },
    });
    const files: Record<string, Buffer> = {};
    const walk = (sub: string) => {
      for (const f of readdirSync(join(dir, sub))) {
        const rel = sub ? `${sub}/${f}` : f;
        if (statSync(join(dir, rel)).isDirectory()) walk(rel);
        else files[rel] = readFileSync(join(dir, rel));
      }
    };
    walk('');
    const commit = 'c'.repeat(40);
    const hub = await new FakeHub({ 'org/st': { refs: { main: commit }, files: { [commit]: files }, lfs: new Set(['model.safetensors']) } }).start();
    try {
      const cacheDir = mkdtempSync(join(tmpdir(), 'mb-st-cache-'));
      const local = (await SentenceTransformer.fromPretrained(dir)).encode(['w1 w2', 'w9'], { promptName: 'query' });
      const remote = await SentenceTransformer.fromPretrained('org/st', { endpoint: hub.endpoint, cacheDir });
      assert.deepEqual(remote.encode(['w1 w2', 'w9'], { promptName: 'query' }).data, local.data);
      const offline = await SentenceTransformer.fromPretrained('org/st', { cacheDir, localFilesOnly: true });
      assert.deepEqual(offline.encode(['w1 w2', 'w9'], { promptName: 'query' }).data, local.data);
    } finally {
      await hub.stop();
    }
  });
});
