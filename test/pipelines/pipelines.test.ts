/**
 * Pipelines on the fixture models (tiny tokenizer) and on a random model with the real ModernBERT tokenizer.
 * Expected values come from the models' padded `forward` path, computed here independently of the
 * pipelines' packed path.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultModelPath } from '../../src/hub/default-model.js';
import { pipeline, SUPPORTED_TASKS } from '../../src/pipelines/registry.js';
import { cosineSimilarity } from '../../src/pipelines/feature-extraction.js';
import { aggregate, type PreEntity } from '../../src/pipelines/token-classification.js';
import { ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification } from '../../src/model/heads.js';
import { ModernBertModel } from '../../src/model/modernbert.js';
import { PreTrainedTokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixtureModelDir, randomRealVocabModelDir } from './helpers.js';

function softmax(x: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

describe('pipeline registry', () => {
  it('rejects an unknown task with the list of tasks', async () => {
    await assert.rejects(pipeline('summarization' as 'fill-mask', '/nonexistent'), (e: Error) =>
      /unknown task 'summarization'/.test(e.message) && Object.keys(SUPPORTED_TASKS).every((t) => e.message.includes(t)));
  });

  it('without a model, runs the shipped default model; a package without one says to pass a model', async () => {
    const fill = await pipeline('fill-mask');
    const got = (await fill('The capital of France is [MASK].', { topK: 3 })) as { token: number; score: number }[];
    assert.equal(got.length, 3);
    const want = (await (await pipeline('fill-mask', defaultModelPath()))('The capital of France is [MASK].', { topK: 3 })) as { token: number }[];
    assert.deepEqual(got.map((p) => p.token), want.map((p) => p.token));
    const empty = mkdtempSync(join(tmpdir(), 'mb-no-default-'));
    try {
      assert.throws(() => defaultModelPath(empty), /no default model is installed.*--model/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('fill-mask (fixture mlm, vocab 512)', () => {
  let dir: string;
  let tok: PreTrainedTokenizer;
  let model: ModernBertForMaskedLM;
  before(async () => {
    dir = fixtureModelDir('mlm');
    tok = PreTrainedTokenizer.fromDirectory(dir);
    model = await ModernBertForMaskedLM.fromPretrained(dir);
  });

  it('scores and orders the top k at each mask like softmax(forward logits), several masks and texts', async () => {
    const fill = await pipeline('fill-mask', dir);
    const texts = ['the cat [MASK] the dog', 'a [MASK] b [MASK] c', 'x[MASK]'];
    const out = (await fill(texts, { topK: 3 })) as unknown[];
    assert.equal(out.length, 3);
    for (const [i, text] of texts.entries()) {
      const ids = tok.encode(text).inputIds;
      const { logits } = model.forward({ inputIds: [ids] });
      const V = model.config.vocab_size;
      const masks = ids.flatMap((id, p) => (id === 504 ? [p] : []));
      const perMask = (masks.length === 1 ? [out[i]] : out[i]) as { score: number; token: number; tokenStr: string; sequence: string }[][];
      assert.equal(perMask.length, masks.length);
      masks.forEach((p, m) => {
        const probs = softmax(logits.data.subarray(p * V, (p + 1) * V));
        const order = probs.map((_, k) => k).sort((a, b) => probs[b] - probs[a]).slice(0, 3);
        assert.deepEqual(perMask[m].map((x) => x.token), order);
        perMask[m].forEach((x, r) => {
          close(x.score, probs[order[r]]);
          assert.equal(x.tokenStr, tok.decode([x.token]).trim());
          const filled = ids.slice();
          filled[p] = x.token;
          assert.equal(x.sequence, tok.decode(filled, { skipSpecialTokens: true }));
        });
      });
    }
    const single = (await fill('the [MASK]')) as { score: number }[];
    assert.equal(single.length, 5);
    assert.ok(single[0].score >= single[4].score, 'sorted best first');
  });

  it('says clearly when a text has no [MASK]', async () => {
    const fill = await pipeline('fill-mask', dir);
    await assert.rejects(fill(['the [MASK]', 'no mask here']), /input 1 has no \[MASK\] token/);
  });
});

describe('feature-extraction (fixture mlm encoder)', () => {
  let dir: string;
  let tok: PreTrainedTokenizer;
  let enc: ModernBertModel;
  before(async () => {
    dir = fixtureModelDir('mlm');
    tok = PreTrainedTokenizer.fromDirectory(dir);
    enc = await ModernBertModel.fromPretrained(dir);
  });

  it('packs a mixed-length batch and pools mean / cls / none exactly as the padded forward', async () => {
    const embed = await pipeline('feature-extraction', dir);
    const texts = ['a', 'the cat and the dog ran far away from here', 'xyz xyz', 'the ' .repeat(30)];
    const H = enc.config.hidden_size;
    const batch = tok.encodeBatch(texts);
    const { lastHiddenState } = enc.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask });
    const S = batch.inputIds[0].length;
    const mean = await embed(texts, { pooling: 'mean' });
    const cls = await embed(texts, { pooling: 'cls' });
    const none = await embed(texts, { pooling: 'none' });
    assert.deepEqual(mean.dims, [4, H]);
    assert.deepEqual(none.dims, [4, S, H]);
    texts.forEach((_, b) => {
      const n = batch.attentionMask[b].reduce((x, y) => x + y, 0);
      for (let d = 0; d < H; d++) {
        let sum = 0;
        for (let t = 0; t < n; t++) sum += lastHiddenState.data[(b * S + t) * H + d];
        close(mean.data[b * H + d], sum / n, 2e-5);
        close(cls.data[b * H + d], lastHiddenState.data[b * S * H + d], 2e-5);
      }
      for (let i = 0; i < S * H; i++) close(none.data[b * S * H + i], lastHiddenState.data[b * S * H + i], 2e-5);
    });
    const unit = await embed(texts, { pooling: 'mean', normalize: true });
    for (let b = 0; b < 4; b++) {
      close(Math.hypot(...unit.data.subarray(b * H, (b + 1) * H)), 1, 1e-5);
      close(cosineSimilarity(unit.row(b), mean.row(b)), 1, 1e-5);
    }
  });

  it('windows a text longer than the model: the count-weighted mean of its windows', async () => {
    const embed = await pipeline('feature-extraction', dir);
    const text = 'the cat and the dog '.repeat(40); // ~200 tokens; the model takes 128
    const ids = tok.encode(text, { addSpecialTokens: false, truncation: false }).inputIds;
    assert.ok(ids.length > 128, `only ${ids.length} tokens`);
    const out = await embed(text, { pooling: 'mean', window: { size: 64, overlap: 16 } });
    const H = enc.config.hidden_size;
    const expected = new Float64Array(H);
    let total = 0;
    for (let start = 0; ; start += 62 - 16) {
      const w = [501, ...ids.slice(start, start + 62), 502];
      const h = enc.forward({ inputIds: [w] }).lastHiddenState.data;
      for (let t = 0; t < w.length; t++) for (let d = 0; d < H; d++) expected[d] += h[t * H + d];
      total += w.length;
      if (start + 62 >= ids.length) break;
    }
    for (let d = 0; d < H; d++) close(out.data[d], expected[d] / total, 2e-5);
    await assert.rejects(embed(text, { pooling: 'none', window: true }), /window needs pooling/);
  });

  it('truncates at the model limit with a warning, or refuses with truncation: false', async () => {
    const warnings: string[] = [];
    const embed = await pipeline('feature-extraction', dir, { onWarning: (m) => warnings.push(m) });
    const long = 'the cat '.repeat(200);
    await embed(long, { pooling: 'cls' });
    assert.match(warnings[0], /truncated to 128/);
    const strict = await pipeline('feature-extraction', dir, { truncation: false });
    await assert.rejects(strict(long), /more than the model's limit of 128/);
  });
});

describe('text-classification and rerank (fixture cls models)', () => {
  it('softmax over id2label for single-label, with topK and pairs', async () => {
    const dir = fixtureModelDir('cls-cls');
    const tok = PreTrainedTokenizer.fromDirectory(dir);
    const model = await ModernBertForSequenceClassification.fromPretrained(dir);
    const clf = await pipeline('text-classification', dir);
    const inputs = ['the cat', { text: 'the dog', textPair: 'a cat' }];
    const out = (await clf(inputs, { topK: null })) as { label: string; score: number }[][];
    const encs = [tok.encode('the cat'), tok.encode('the dog', { textPair: 'a cat' })];
    encs.forEach((e, i) => {
      const probs = softmax(model.forward({ inputIds: [e.inputIds] }).logits.data);
      assert.equal(out[i].length, 3);
      for (const { label, score } of out[i]) close(score, probs[['negative', 'neutral', 'positive'].indexOf(label)]);
      assert.ok(out[i][0].score >= out[i][1].score && out[i][1].score >= out[i][2].score, 'sorted best first');
    });
    const top = (await clf('the cat')) as { label: string; score: number }[];
    assert.deepEqual(top, [out[0][0]]);
  });

  it('sigmoid for multi-label, raw value for regression', async () => {
    for (const [name, fn] of [['cls-multilabel', (v: number) => 1 / (1 + Math.exp(-v))], ['cls-regression', (v: number) => v]] as const) {
      const dir = fixtureModelDir(name);
      const tok = PreTrainedTokenizer.fromDirectory(dir);
      const model = await ModernBertForSequenceClassification.fromPretrained(dir);
      const clf = await pipeline('text-classification', dir);
      const out = (await clf('the dog', { topK: null })) as { label: string; score: number }[];
      const logits = model.forward({ inputIds: [tok.encode('the dog').inputIds] }).logits.data;
      for (const { label, score } of out) close(score, fn(logits[Number(model.config.label2id[label])]));
    }
  });

  it('rerank scores (query, document) pairs and sorts best first', async () => {
    const dir = fixtureModelDir('cls-regression');
    const tok = PreTrainedTokenizer.fromDirectory(dir);
    const model = await ModernBertForSequenceClassification.fromPretrained(dir);
    const rr = await pipeline('rerank', dir);
    const documents = ['the cat', 'a dog', 'the the the', 'xyz'];
    const out = await rr({ query: 'cat', documents }, { returnDocuments: true });
    const expected = documents.map((d) => 1 / (1 + Math.exp(-model.forward({ inputIds: [tok.encode('cat', { textPair: d }).inputIds] }).logits.data[0])));
    assert.equal(out.length, 4);
    for (const r of out) {
      close(r.score, expected[r.index]);
      assert.equal(r.document, documents[r.index]);
    }
    assert.ok(out.every((r, i) => i === 0 || out[i - 1].score >= r.score), 'sorted best first');
    assert.equal((await rr({ query: 'cat', documents }, { topK: 2 })).length, 2);
  });
});

describe('token-classification (fixture tok)', () => {
  it("per-token labels with offsets from softmax(forward logits); 'O' ignored by default", async () => {
    const dir = fixtureModelDir('tok');
    const tok = PreTrainedTokenizer.fromDirectory(dir);
    const model = await ModernBertForTokenClassification.fromPretrained(dir);
    const tag = await pipeline('token-classification', dir);
    const text = 'the cat saw a dog in paris';
    const out = (await tag(text, { ignoreLabels: [] })) as { entity: string; score: number; index: number; word: string; start: number; end: number }[];
    const e = tok.encode(text);
    const logits = model.forward({ inputIds: [e.inputIds] }).logits.data;
    assert.equal(out.length, e.inputIds.length - 2);
    for (const x of out) {
      const probs = softmax(logits.subarray(x.index * 5, x.index * 5 + 5));
      const best = probs.indexOf(Math.max(...probs));
      assert.equal(x.entity, model.config.id2label[String(best)]);
      close(x.score, probs[best]);
      assert.deepEqual([x.start, x.end], e.offsets[x.index]);
      assert.equal(x.word, e.tokens[x.index]);
    }
    const filtered = (await tag(text)) as { entity: string }[];
    assert.deepEqual(filtered, out.filter((x) => x.entity !== 'O'));
  });

  it('aggregates words and entity groups as Hugging Face (simple, first, max, average)', () => {
    const labels = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
    // "Jo hnny went to Par is": tokens, subword flags and scores chosen so each strategy differs.
    const p = (id: number, start: number, end: number, isSubword: boolean, scores: number[]): PreEntity =>
      ({ id, word: String(id), scores: Float64Array.from(scores), start, end, index: id, isSubword });
    const pre = [
      p(1, 0, 2, false, [0.1, 0.7, 0.1, 0.05, 0.05]), // Jo: B-PER
      p(2, 2, 6, true, [0.1, 0.05, 0.15, 0.6, 0.1]), // hnny: B-LOC alone, but a subword of "Johnny"
      p(3, 6, 11, false, [0.9, 0.025, 0.025, 0.025, 0.025]), // went: O
      p(4, 11, 14, false, [0.8, 0.05, 0.05, 0.05, 0.05]), // to: O
      p(5, 14, 18, false, [0.1, 0.1, 0.1, 0.6, 0.1]), // Par: B-LOC
      p(6, 18, 20, true, [0.1, 0.1, 0.1, 0.05, 0.65]), // is: I-LOC
    ];
    const decode = (ids: number[]) => ids.join('+');
    const run = (s: 'simple' | 'first' | 'max' | 'average') =>
      (aggregate(pre, s, (i) => labels[i], decode) as { entityGroup: string; score: number; word: string; start: number; end: number }[])
        .map((g) => [g.entityGroup, Number(g.score.toFixed(4)), g.word, g.start, g.end]);
    // simple: tokens grouped; B-LOC after B-PER starts a new group; O O join; B-LOC I-LOC join.
    assert.deepEqual(run('simple'), [['PER', 0.7, '1', 0, 2], ['LOC', 0.6, '2', 2, 6], ['O', 0.85, '3+4', 6, 14], ['LOC', 0.625, '5+6', 14, 20]]);
    // first: a word takes its first token's label and score.
    assert.deepEqual(run('first'), [['PER', 0.7, '1+2', 0, 6], ['O', 0.85, '3+4', 6, 14], ['LOC', 0.6, '5+6', 14, 20]]);
    // max: the token with the highest score decides ("Jo" 0.7 > "hnny" 0.6; "is" 0.65 > "Par" 0.6 → I-LOC).
    assert.deepEqual(run('max'), [['PER', 0.7, '1+2', 0, 6], ['O', 0.85, '3+4', 6, 14], ['LOC', 0.65, '5+6', 14, 20]]);
    // average: mean scores per word; Johnny → [0.1, 0.375, 0.125, 0.325, 0.075] → B-PER 0.375.
    assert.deepEqual(run('average'), [['PER', 0.375, '1+2', 0, 6], ['O', 0.85, '3+4', 6, 14], ['LOC', 0.375, '5+6', 14, 20]]);
  });
});

describe('pipelines with the real ModernBERT tokenizer (random model, vocab 50368)', () => {
  it('fill-mask and feature-extraction run end to end on real text', async () => {
    const dir = randomRealVocabModelDir();
    const fill = await pipeline('fill-mask', dir);
    const out = (await fill('The capital of France is [MASK].', { topK: 4 })) as { score: number; token: number; tokenStr: string; sequence: string }[];
    assert.equal(out.length, 4);
    const tok = PreTrainedTokenizer.fromDirectory(dir);
    for (const x of out) {
      assert.ok(x.token >= 0 && x.token < 50368 && x.score > 0 && x.score < 1, JSON.stringify(x));
      assert.ok(!x.tokenStr.startsWith('Ġ'), x.tokenStr);
      const ids = tok.encode('The capital of France is [MASK].').inputIds;
      ids[6] = x.token;
      assert.equal(x.sequence, tok.decode(ids, { skipSpecialTokens: true }));
    }
    const embed = await pipeline('embeddings', dir);
    const e = await embed(['Hello world', 'Un texte en français, avec des accents.', '日本語のテキスト 😀'], { pooling: 'mean', normalize: true });
    assert.deepEqual(e.dims, [3, 32]);
    close(cosineSimilarity(e.row(0), e.row(0)), 1);
  });

  it('text-classification pairs, rerank and token-classification offsets with the real tokenizer', async () => {
    const clsDir = randomRealVocabModelDir('ModernBertForSequenceClassification', 2);
    const tok = PreTrainedTokenizer.fromDirectory(clsDir);
    const model = await ModernBertForSequenceClassification.fromPretrained(clsDir);
    const clf = await pipeline('text-classification', clsDir);
    const pair = { text: 'A man is eating food.', textPair: 'Un homme mange 🍝.' };
    const out = (await clf(pair, { topK: null })) as { label: string; score: number }[];
    const probs = softmax(model.forward({ inputIds: [tok.encode(pair.text, { textPair: pair.textPair }).inputIds] }).logits.data);
    for (const { label, score } of out) close(score, probs[Number(label.slice(6))]);
    const rr = await pipeline('rerank', clsDir);
    const ranked = await rr({ query: 'food', documents: ['pasta', 'a car', 'été'] });
    assert.deepEqual(ranked.map((r) => r.index).sort(), [0, 1, 2]);
    const tokDir = randomRealVocabModelDir('ModernBertForTokenClassification', 3);
    const tagger = await pipeline('token-classification', tokDir);
    const text = 'My name is Wolfgang and I live in Berlin 🇩🇪.';
    const tokens = (await tagger(text, { ignoreLabels: [] })) as { word: string; start: number; end: number; index: number }[];
    const enc = tok.encode(text);
    assert.equal(tokens.length, enc.inputIds.length - 2);
    for (const t of tokens) assert.deepEqual([t.start, t.end], enc.offsets[t.index]);
    const groups = (await tagger(text, { aggregationStrategy: 'first', ignoreLabels: [] })) as { word: string; start: number; end: number }[];
    // A group's word is the decoded text of its span where the span is plain ASCII. (Byte pieces of an
    // emoji share its offsets, and HF's word heuristic may start a word inside it, so spans can overlap there.)
    assert.ok(groups.length > 0, 'no groups');
    for (const g of groups)
      if (/^[\x00-\x7f]*$/.test(text.slice(g.start, g.end))) assert.equal(g.word, text.slice(g.start, g.end));
  });
});
