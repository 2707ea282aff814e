// Readers (JSONL, CSV with quotes/newlines, TSV, text), the MLM collator, packing, shuffling and metrics.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  collate, DataError, maskTokens, packByTokens, packStream, permutation, readCsv, readExamples, readText, type Sequence,
  shuffleStream,
} from '../../src/train/data.js';
import { accuracy, f1, matthews, pearson, spearman } from '../../src/train/metrics.js';
import { Rng } from '../../src/train/random.js';

const dir = mkdtempSync(join(tmpdir(), 'mb-data-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const collect = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

describe('readers', () => {
  it('JSONL with chosen columns; missing column and bad JSON name the line', async () => {
    const p = file('a.jsonl', '{"sentence":"hi","y":1}\n\n{"sentence":"yo","y":0}\n');
    assert.deepEqual(await collect(readExamples(p, { text: 'sentence', label: 'y' })), [{ text: 'hi', label: 1 }, { text: 'yo', label: 0 }]);
    await assert.rejects(collect(readExamples(p, { text: 'text' })), /record 1 has no column 'text' \(columns: sentence, y\)/);
    await assert.rejects(collect(readExamples(file('b.jsonl', '{"text":"a","label":0}\n{oops\n'))), /b.jsonl:2: not valid JSON/);
  });

  it('CSV: quoted delimiters, doubled quotes, newlines inside quotes, CRLF', async () => {
    const p = file('c.csv', 'text,label\r\n"a, b",1\r\n"say ""hi""\nnext line",0\r\nplain,2');
    assert.deepEqual(await collect(readCsv(p)), [
      { text: 'a, b', label: '1' }, { text: 'say "hi"\nnext line', label: '0' }, { text: 'plain', label: '2' },
    ]);
    await assert.rejects(collect(readCsv(file('d.csv', 'a,b\n1,2,3\n'))), /d.csv:2: row has 3 fields, the header has 2/);
    await assert.rejects(collect(readCsv(file('e.csv', 'a\n"open\n'))), /never closed/);
  });

  it('TSV, plain text by line and paragraph, missing files', async () => {
    assert.deepEqual(await collect(readExamples(file('f.tsv', 'text\tpair\tlabel\nx\ty\t3\n'), { textPair: 'pair' })), [{ text: 'x', textPair: 'y', label: '3' }]);
    const t = file('g.txt', 'one\n\ntwo\nthree\n');
    assert.deepEqual(await collect(readText(t)), ['one', 'two', 'three']);
    assert.deepEqual(await collect(readText(t, 'paragraph')), ['one', 'two\nthree']);
    await assert.rejects(collect(readExamples(join(dir, 'nope.jsonl'))), DataError);
  });
});

describe('MLM collator', () => {
  it('masks 30 % of non-special tokens, 80/10/10, never specials; seeded', () => {
    const n = 200000;
    const ids = Int32Array.from({ length: n }, (_, i) => (i % 50 === 0 ? 1 : 10 + (i % 80)));
    const o = { maskTokenId: 4, vocabSize: 100, specialIds: [1, 2] };
    const { inputIds, labels } = maskTokens(ids, o, new Rng(5));
    let selected = 0;
    let masked = 0;
    let kept = 0;
    let special = 0;
    for (let i = 0; i < n; i++) {
      if (ids[i] === 1) {
        if (labels[i] !== -100 || inputIds[i] !== 1) special++;
        continue;
      }
      if (labels[i] === -100) {
        assert.equal(inputIds[i], ids[i]);
        continue;
      }
      assert.equal(labels[i], ids[i]);
      selected++;
      if (inputIds[i] === 4) masked++;
      else if (inputIds[i] === ids[i]) kept++;
    }
    assert.equal(special, 0);
    const eligible = n - n / 50;
    assert.ok(Math.abs(selected / eligible - 0.3) < 0.005, `selected ${selected / eligible}`);
    assert.ok(Math.abs(masked / selected - 0.8) < 0.01, `mask ${masked / selected}`);
    // "kept" also catches random draws equal to the original (1 % of the random 10 %).
    assert.ok(Math.abs(kept / selected - 0.101) < 0.01, `kept ${kept / selected}`);
    assert.deepEqual(maskTokens(ids, o, new Rng(5)).inputIds, inputIds);
  });
});

describe('packing and shuffling', () => {
  it('first-fit packing respects the budget and keeps every sequence once', () => {
    const lengths = [5, 9, 3, 7, 2, 8, 1, 10];
    const batches = packByTokens(lengths, 10, 2);
    assert.deepEqual(batches.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
    for (const b of batches) assert.ok(b.reduce((s, i) => s + lengths[i], 0) <= 10);
    assert.throws(() => packByTokens([11], 10), /more than the batch budget/);
  });

  it('collate builds cuSeqlens and packed labels', () => {
    const seqs: Sequence[] = [
      { ids: Int32Array.from([1, 5, 2]), tokenLabels: Int32Array.from([-100, 3, -100]) },
      { ids: Int32Array.from([1, 2]) },
    ];
    const mb = collate(seqs);
    assert.deepEqual(Array.from(mb.cuSeqlens), [0, 3, 5]);
    assert.deepEqual(Array.from(mb.tokenLabels!), [-100, 3, -100, -100, -100]);
  });

  it('streaming shuffle is a seeded permutation; streaming packing matches packByTokens', async () => {
    async function* upTo(n: number) {
      for (let i = 0; i < n; i++) yield i;
    }
    const a = await collect(shuffleStream(upTo(50), 8, new Rng(1)));
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(await collect(shuffleStream(upTo(50), 8, new Rng(1))), a);
    assert.notDeepEqual(a, Array.from({ length: 50 }, (_, i) => i));
    const lengths = [5, 9, 3, 7, 2, 8, 1, 10, 4, 4, 6];
    const seqs: Sequence[] = lengths.map((n) => ({ ids: new Int32Array(n) }));
    async function* stream() {
      yield* seqs;
    }
    const packed = await collect(packStream(stream(), 10, 2));
    assert.deepEqual(packed.map((b) => b.map((q) => seqs.indexOf(q))), packByTokens(lengths, 10, 2));
  });

  it('permutations are seeded', () => {
    assert.deepEqual(permutation(10, 3), permutation(10, 3));
    assert.notDeepEqual(permutation(10, 3), permutation(10, 4));
    assert.deepEqual([...permutation(10, 3)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('metrics (values from scikit-learn / SciPy definitions, computed by hand)', () => {
  const gold = [0, 0, 1, 1, 2, 2];
  const pred = [0, 1, 1, 1, 2, 0];
  it('accuracy, F1, Matthews', () => {
    assert.equal(accuracy(pred, gold), 4 / 6);
    // per class F1: c0 tp1 fp1 fn1 → 0.5; c1 tp2 fp1 fn0 → 0.8; c2 tp1 fp0 fn1 → 2/3.
    const f = f1(pred, gold, 3);
    assert.ok(Math.abs(f.macro - (0.5 + 0.8 + 2 / 3) / 3) < 1e-12);
    assert.ok(Math.abs(f.micro - 4 / 6) < 1e-12);
    // Gorodkin: c=4, s=6, t=[2,2,2], p=[2,3,1]: (4·6 − 12)/sqrt((36 − 14)(36 − 12)) = 12/sqrt(528).
    assert.ok(Math.abs(matthews(pred, gold, 3) - 12 / Math.sqrt(528)) < 1e-12);
    assert.ok(Math.abs(matthews([1, 0, 1, 0], [1, 0, 1, 0], 2) - 1) < 1e-12);
  });
  it('Pearson and Spearman (ties get average ranks)', () => {
    assert.ok(Math.abs(pearson([1, 2, 3], [2, 4, 6]) - 1) < 1e-12);
    // x ranks [1, 2.5, 2.5, 4], y ranks [1, 2, 3, 4]: pearson of those = 0.9486833.
    assert.ok(Math.abs(spearman([1, 2, 2, 3], [10, 20, 30, 40]) - 0.9486832980505138) < 1e-12);
  });
});

describe('encodeExamples with the ModernBERT tokenizer', async () => {
  const { readFileSync } = await import('node:fs');
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const { TOKENIZER_DIR } = await import('../helpers/fixtures.js');
  const { encodeExamples, collectAll } = await import('../../src/train/data.js');
  const tokDir = TOKENIZER_DIR;
  const tok = new Tokenizer(JSON.parse(readFileSync(join(tokDir, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(join(tokDir, 'tokenizer_config.json'), 'utf8')));
  const base = { clsTokenId: 50281, sepTokenId: 50282 };

  it('sequence classification: [CLS] A [SEP], names → ids, truncation', async () => {
    const seqs = await collectAll(encodeExamples([{ text: 'Hello world', label: 'pos' }], tok,
      { ...base, task: 'sequence-classification', maxLength: 16, label2id: { neg: 0, pos: 1 } }));
    assert.deepEqual(Array.from(seqs[0].ids), [50281, ...tok.encode('Hello world', { add_special_tokens: false }).ids, 50282]);
    assert.equal(seqs[0].label, 1);
    const long = await collectAll(encodeExamples([{ text: 'a b c d e f g h i j', textPair: 'k l', label: 0 }], tok,
      { ...base, task: 'sequence-classification', maxLength: 8 }));
    assert.equal(long[0].ids.length, 8);
    assert.equal(long[0].ids.filter((t) => t === 50282).length, 2);
    await assert.rejects(collectAll(encodeExamples([{ text: 'x', label: 'meh' }], tok,
      { ...base, task: 'sequence-classification', maxLength: 8, label2id: { neg: 0, pos: 1 } })), /unknown label "meh" \(labels: neg, pos\)/);
  });

  it('token classification: label on the first sub-token of each word', async () => {
    const [s] = await collectAll(encodeExamples([{ text: '', words: ['The', 'Fulton', 'jury'], label: [1, 2, 0] }], tok,
      { ...base, task: 'token-classification', maxLength: 64 }));
    const pieces = ['The', ' Fulton', ' jury'].map((w) => tok.encode(w, { add_special_tokens: false }).ids);
    assert.deepEqual(Array.from(s.ids), [50281, ...pieces.flat(), 50282]);
    const expected = [-100, ...pieces.flatMap((p, i) => p.map((_: number, j: number) => (j === 0 ? [1, 2, 0][i] : -100))), -100];
    assert.deepEqual(Array.from(s.tokenLabels!), expected);
  });

  it('MLM: long documents become [CLS] chunk [SEP] pieces', async () => {
    const text = 'word '.repeat(50);
    const n = tok.encode(text, { add_special_tokens: false }).ids.length;
    const seqs = await collectAll(encodeExamples([{ text }], tok, { ...base, task: 'mlm', maxLength: 12 }));
    assert.equal(seqs.length, Math.ceil(n / 10));
    assert.ok(seqs.every((q) => q.ids[0] === 50281 && q.ids[q.ids.length - 1] === 50282 && q.ids.length <= 12));
  });
});
