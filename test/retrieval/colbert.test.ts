/**
 * ColBERT (PyLate layout) on folders built around the fixture checkpoints. Document vectors and the text
 * tokens of queries are the fixtures' reference hidden states (cK.last_hidden_state) projected and normalised
 * here; the non-attended [MASK] expansion rows are checked against an independent padded forward (reference
 * kernels + dense attention with HF's additive key mask), itself checked against the fixture on the real rows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertClose, expected } from '../helpers/fixtures.js';
import { randomRealVocabModelDir } from '../pipelines/helpers.js';
import { randomValues, stFolder, textOf } from './helpers.js';
import { ColBERT, maxSim, PUNCTUATION } from '../../src/retrieval/colbert.js';
import { ModernBertModel, ropeTables } from '../../src/model/modernbert.js';
import { referenceKernels as ref } from '../../src/kernels/reference.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { writeSafetensors } from '../../src/safetensors/safetensors.js';

const DIM = 8;
const W = randomValues(DIM * 48, 0.3, 21);

/** Sequence `b` of case `c` of fixture 'tok': ids and reference last hidden state rows. */
function fixtureSeq(c: string, b: number) {
  const f = expected('tok');
  const [, S] = f.entry(`${c}.input_ids.right`).shape;
  const cu = f.int32(`${c}.cu_seqlens`);
  const n = cu[b + 1] - cu[b];
  return { ids: Array.from(f.int32(`${c}.input_ids.right`).subarray(b * S, b * S + n)), rows: f.float32(`${c}.last_hidden_state`).subarray(cu[b] * 48, cu[b + 1] * 48) };
}

/** A PyLate folder around fixture 'tok' (Dense 48 → 8, no bias) with the given config_sentence_transformers.json. */
function colbertFolder(cfg: Record<string, unknown>): string {
  return stFolder({
    fixture: 'tok',
    modules: [{ type: 'pylate.models.Dense.Dense', path: '1_Dense', files: { 'config.json': { in_features: 48, out_features: DIM, bias: false, activation_function: 'torch.nn.modules.linear.Identity' } }, dense: { weight: W, in: 48, out: DIM } }],
    stConfig: { similarity_fn_name: 'MaxSim', query_prefix: 'w0', document_prefix: 'w1', ...cfg },
  });
}

/** Rows [n, 48] → projected by W and L2-normalised [n, 8], in float64. */
function projectNormalize(rows: ArrayLike<number>, n: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < n; t++) {
    const y = Array.from({ length: DIM }, (_, o) => {
      let s = 0;
      for (let d = 0; d < 48; d++) s += rows[t * 48 + d] * W[o * 48 + d];
      return s;
    });
    const norm = Math.hypot(...y);
    out.push(...y.map((v) => v / norm));
  }
  return out;
}

/**
 * HF's padded ModernBERT on one row of `ids` with attention mask `mask` (keys with mask 0 are never attended;
 * every row is computed): reference kernels for everything but the attention, which is dense with the additive
 * float32 finfo.min mask, as HF's sdpa/eager path.
 */
function paddedForwardOracle(model: ModernBertModel, ids: number[], mask: number[]): Float32Array {
  const c = model.config;
  const S = ids.length;
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const heads = c.num_attention_heads;
  const Dh = c.head_dim;
  const pos = Int32Array.from(ids, (_, i) => i);
  const MIN = -3.4028234663852886e38;
  const x = new Float32Array(S * H);
  const n = new Float32Array(S * H);
  ref.embedding(n, model.embeddings.tok.data, Int32Array.from(ids), S, H, c.vocab_size);
  ref.layernorm(x, n, model.embeddings.norm.w.data, null, S, H, c.norm_eps, null, null);
  model.layers.forEach((L, li) => {
    const global = c.isGlobalLayer(li);
    const tables = ropeTables(global ? c.global_rope_theta : c.local_rope_theta, Dh, c.max_position_embeddings);
    const a = L.attnNorm ? new Float32Array(S * H) : x;
    if (L.attnNorm) ref.layernorm(a, x, L.attnNorm.w.data, null, S, H, c.norm_eps, null, null);
    const qkv = new Float32Array(S * 3 * H);
    ref.gemm(qkv, a, L.Wqkv.data, null, S, 3 * H, H, false, true, 0);
    ref.rope(qkv, pos, tables.cos, tables.sin, S, heads, Dh, c.max_position_embeddings);
    const att = new Float32Array(S * H);
    for (let i = 0; i < S; i++)
      for (let h = 0; h < heads; h++) {
        const s = Array.from({ length: S }, (_, j) => {
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += qkv[i * 3 * H + h * Dh + d] * qkv[j * 3 * H + H + h * Dh + d];
          const visible = mask[j] === 1 && (global || Math.abs(i - j) <= c.window);
          return Math.fround(dot / Math.sqrt(Dh) + (visible ? 0 : MIN));
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((p, q) => p + q, 0);
        for (let d = 0; d < Dh; d++) att[i * H + h * Dh + d] = e.reduce((acc, w, j) => acc + w * qkv[j * 3 * H + 2 * H + h * Dh + d], 0) / z;
      }
    ref.gemm(x, att, L.Wo.data, null, S, H, H, false, true, 1);
    ref.layernorm(n, x, L.mlpNorm.w.data, null, S, H, c.norm_eps, null, null);
    const wi = new Float32Array(S * 2 * I);
    ref.gemm(wi, n, L.Wi.data, null, S, 2 * I, H, false, true, 0);
    const g = new Float32Array(S * I);
    ref.geglu(g, wi, S, I, c.hiddenActivation);
    ref.gemm(x, g, L.Wo2.data, null, S, H, I, false, true, 1);
  });
  const out = new Float32Array(S * H);
  ref.layernorm(out, x, model.finalNorm.w.data, null, S, H, c.norm_eps, null, null);
  return out;
}

describe('ColBERT on fixture checkpoints', () => {
  it('documents: prefix after [CLS], projection, per-token normalisation, skiplist tokens dropped (c2, every sequence)', async () => {
    for (let b = 0; b < 4; b++) {
      const s = fixtureSeq('c2', b);
      // The fixture sequence is [CLS] x1 x2 … [SEP]: x1 plays the document prefix, x3 and x5 are skiplist words.
      const skip = [`w${s.ids[3]}`, `w${s.ids[5]}`];
      const cb = await ColBERT.fromPretrained(colbertFolder({ document_prefix: `w${s.ids[1]}`, query_prefix: 'w0', document_length: 128, skiplist_words: skip }));
      const [m] = cb.encode(textOf(s.ids.slice(2, -1)), { isQuery: false });
      const keep = s.ids.flatMap((id, p) => (skip.includes(`w${id}`) ? [] : [p]));
      const rows = keep.flatMap((p) => Array.from(s.rows.subarray(p * 48, (p + 1) * 48)));
      assert.deepEqual(m.dims, [keep.length, DIM]);
      assertClose(m.data, projectNormalize(rows, keep.length), `document ${b}`);
    }
  });

  it('queries without expansion tokens (query_length = length) are the fixture rows; attended [MASK] padding is an ordinary sequence', async () => {
    const s = fixtureSeq('c2', 1);
    const folder = colbertFolder({ query_prefix: `w${s.ids[1]}`, query_length: s.ids.length, attend_to_expansion_tokens: true });
    const cb = await ColBERT.fromPretrained(folder);
    const [q] = cb.encode(textOf(s.ids.slice(2, -1)));
    assertClose(q.data, projectNormalize(s.rows, s.ids.length), 'query');
    const long = await ColBERT.fromPretrained(colbertFolder({ query_prefix: `w${s.ids[1]}`, query_length: 40, attend_to_expansion_tokens: true }));
    const tk = long.tokenize(textOf(s.ids.slice(2, -1)), true);
    assert.deepEqual(tk.ids, [...s.ids, ...Array(40 - s.ids.length).fill(248)]);
    assert.equal(tk.real, 40);
    const h = long.transformer.model.forward({ inputIds: [tk.ids] }).lastHiddenState.data;
    assertClose(long.encode(textOf(s.ids.slice(2, -1)))[0].data, projectNormalize(h, 40), 'attended expansion');
  });

  it('non-attended [MASK] expansion (PyLate default): text rows = fixture, expansion rows = HF padded forward, also beyond the local window', async () => {
    const s = fixtureSeq('c2', 2); // 10 tokens; query_length 16 puts expansion tokens past the local window of every text token
    const cb = await ColBERT.fromPretrained(colbertFolder({ query_prefix: `w${s.ids[1]}`, query_length: 16 }));
    const text = textOf(s.ids.slice(2, -1));
    const [q] = cb.encode([text, 'w1 w2 w3'], { batchSize: 2 }); // batched with another query
    assert.deepEqual(q.dims, [16, DIM]);
    const ids = [...s.ids, ...Array(6).fill(248)];
    const mask = ids.map((_, i) => (i < 10 ? 1 : 0));
    const oracle = paddedForwardOracle(cb.transformer.model, ids, mask);
    assertClose(oracle.subarray(0, 10 * 48), s.rows, 'oracle vs fixture on the text rows');
    assertClose(q.data.subarray(0, 10 * DIM), projectNormalize(s.rows, 10), 'text rows');
    assertClose(q.data, projectNormalize(oracle, 16), 'all rows');
    // Expansion rows do not see each other: a longer expansion leaves the first ones unchanged.
    const longer = await ColBERT.fromPretrained(colbertFolder({ query_prefix: `w${s.ids[1]}`, query_length: 20 }));
    assertClose(longer.encode(text)[0].data.subarray(0, 13 * DIM), q.data.subarray(0, 13 * DIM), 'expansion rows independent');
  });

  it('MaxSim and rank on hand-computed vectors', async () => {
    const q = new Tensor(Float32Array.from([1, 0, 0, 1]), [2, 2]);
    const d1 = new Tensor(Float32Array.from([0.6, 0.8, 1, 0]), [2, 2]); // best per query vector: 1 and 0.8
    const d2 = new Tensor(Float32Array.from([0, -1]), [1, 2]); // 0 and -1
    assert.ok(Math.abs(maxSim(q, d1) - 1.8) < 1e-6);
    assert.equal(maxSim(q, d2), -1);
    assert.equal(maxSim(q, new Tensor(new Float32Array(0), [0, 2])), 0);
    assert.throws(() => maxSim(q, new Tensor(new Float32Array(3), [1, 3])), /dimension 2, document vectors 3/);
    const cb = await ColBERT.fromPretrained(colbertFolder({}));
    const docs = ['w1 w2 w3', 'w9 w8', 'w5 w5 w5 w5'];
    const ranked = cb.rank('w1 w2', docs, { returnDocuments: true });
    const [qv] = cb.encode('w1 w2');
    const scores = cb.encode(docs, { isQuery: false }).map((d) => maxSim(qv, d));
    assert.deepEqual(ranked.map((r) => r.index), [0, 1, 2].sort((a, b) => scores[b] - scores[a]));
    ranked.forEach((r) => assert.ok(Math.abs(r.score - scores[r.index]) < 1e-5 && r.document === docs[r.index]));
  });
});

describe('ColBERT with the real ModernBERT tokenizer', () => {
  it('query and document prefixes, [MASK] expansion to query_length, punctuation skiplist and document_length, token by token', async () => {
    const dir = randomRealVocabModelDir();
    writeFileSync(join(dir, 'modules.json'), JSON.stringify([
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Dense', type: 'pylate.models.Dense.Dense' },
    ]));
    mkdirSync(join(dir, '1_Dense'));
    writeFileSync(join(dir, '1_Dense', 'config.json'), JSON.stringify({ in_features: 32, out_features: 4, bias: false }));
    writeSafetensors(join(dir, '1_Dense', 'model.safetensors'), new Map([['linear.weight', { dtype: 'F32', shape: [4, 32], data: randomValues(128, 0.3) }]]));
    // Stanford-style prefixes that exist in ModernBERT's vocabulary.
    writeFileSync(join(dir, 'config_sentence_transformers.json'), JSON.stringify({ query_prefix: '[unused0]', document_prefix: '[unused1]', query_length: 12, document_length: 8 }));
    const cb = await ColBERT.fromPretrained(dir);
    const tok = cb.transformer.tokenizer;
    const q = cb.tokenize('What is ColBERT?', true);
    assert.deepEqual(q.ids.map((i) => tok.idToToken(i)), ['[CLS]', '[unused0]', 'What', 'Ġis', 'ĠCol', 'B', 'ERT', '?', '[SEP]', '[MASK]', '[MASK]', '[MASK]']);
    assert.equal(q.real, 9);
    const d = cb.tokenize('Hello, world. And more words here', false);
    assert.deepEqual(d.ids.map((i) => tok.idToToken(i)), ['[CLS]', '[unused1]', 'Hello', ',', 'Ġworld', '.', 'ĠAnd', '[SEP]']);
    assert.deepEqual([...cb.skiplist].sort((a, b) => a - b), PUNCTUATION.map((p) => tok.tokenToId(p)!).sort((a, b) => a - b));
    const [dv] = cb.encode('Hello, world. And more words here', { isQuery: false });
    assert.deepEqual(dv.dims, [6, 4]); // 8 tokens less ',' and '.'
    const [qv] = cb.encode('What is ColBERT?');
    assert.deepEqual(qv.dims, [12, 4]);
    for (let r = 0; r < 12; r++) assert.ok(Math.abs(Math.hypot(...qv.data.subarray(r * 4, r * 4 + 4)) - 1) < 1e-5);
  });

  it('a prefix missing from the tokenizer is a clear error', async () => {
    const dir = stFolder({ fixture: 'tok', modules: [{ type: 'pylate.models.Dense.Dense', path: '1_Dense', files: { 'config.json': { in_features: 48, out_features: DIM, bias: false } }, dense: { weight: W, in: 48, out: DIM } }] });
    await assert.rejects(ColBERT.fromPretrained(dir), /the tokenizer has no token "\[Q\] " \(the query prefix\); PyLate adds it/);
  });
});
