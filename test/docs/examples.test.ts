/**
 * Every code example of README.md and docs/*.md runs (STYLE habit 11), on tiny models.
 *
 * Blocks: ```ts / ```js run as modules under tsx, with `'modernbert'` (and `'modernbert/serve'`) pointed at
 * src/; ```sh run in bash, where `modernbert` is `node --import tsx src/cli/main.ts` (a leading `$ ` is a
 * prompt; in a block with prompts, the other lines are output and are not run); ```text blocks holding
 * `$ modernbert …` lines run those commands and compare the output shown below each one (see
 * `compareTranscript`). A block that cannot run offline is marked by `<!-- not-tested: reason -->` on the
 * line(s) before it; the test lists those. Any other ts/js/sh block must run and succeed.
 *
 * Models are named by the folders in MODELS (relative to the current folder: `./my-classifier`) or by the
 * Hub ids in HUB, served from a pre-filled offline Hugging Face cache. Each doc runs in its own temp folder
 * holding those models and the data files in DATA, blocks in order (a later block may use an earlier
 * one's output, e.g. `index build` then `search`).
 *
 * Output claims: a TypeScript statement whose comment starts with `→` (on its line, or on the comment
 * line(s) right below it) has its value checked against the claim's shape: `[a, b, …]` arrays (`…`: more
 * items like the last), `{ key, key: shape, … }` objects (keys exact unless `…`), `Tensor [dims]`, number and
 * string literals (equal), `number` / `string` / `boolean` (types), other names (anything). Text after the
 * shape is prose. So the claims state real shapes and real values (the real tokenizer's ids), never scores.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomRealVocabModelDir } from '../pipelines/helpers.js';
import { randomValues, stFolder } from '../retrieval/helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const TSX = import.meta.resolve('tsx');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');
/** The package's entry points, as the examples import them (checked against package.json's exports). */
const ENTRY: Record<string, string> = { modernbert: 'src/index.ts', 'modernbert/serve': 'src/serve/index.ts' };

// ---------------------------------------------------------------- the blocks

interface Block {
  doc: string;
  line: number;
  lang: 'ts' | 'sh' | 'text';
  code: string;
  notTested?: string;
}

const LANGS: Record<string, Block['lang']> = { ts: 'ts', typescript: 'ts', js: 'ts', javascript: 'ts', sh: 'sh', bash: 'sh', shell: 'sh', text: 'text', console: 'text' };

function extractBlocks(doc: string): Block[] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    assert.ok(end > i, `${doc}:${i + 1}: unclosed code block`);
    const lang = LANGS[open[1]];
    const code = lines.slice(i + 1, end).join('\n');
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === '') k--;
    const marker = k >= 0 ? /^<!--\s*not-tested:\s*(.*?)\s*-->$/.exec(lines[k].trim()) : null;
    // A text block is an example only when it shows CLI commands; other languages (json, python) are not run.
    if (lang && (lang !== 'text' || /^\$ modernbert /m.test(code))) blocks.push({ doc, line: i + 1, lang, code, notTested: marker?.[1] });
    else assert.equal(marker, null, `${doc}:${i + 1}: a not-tested marker before a block that is never run`);
    i = end;
  }
  return blocks;
}

// ---------------------------------------------------------------- the models and data the examples name

/** Folder names the examples use → the tiny model behind each (built once; every doc folder links them). */
const MODELS: Record<string, () => string> = {
  // Masked LM, classifiers and tagger: 2 layers, hidden 32, random weights, the real ModernBERT tokenizer.
  'ModernBERT-base': () => randomRealVocabModelDir('ModernBertForMaskedLM'),
  'my-classifier': () => randomRealVocabModelDir('ModernBertForSequenceClassification', 2),
  'my-cross-encoder': () => randomRealVocabModelDir('ModernBertForSequenceClassification', 1),
  'my-ner': () => randomRealVocabModelDir('ModernBertForTokenClassification', 3),
  // Sentence-Transformers and PyLate folders around the `tok` fixture (word-level test tokenizer).
  'modernbert-embed-base': () => stFolder({
    fixture: 'tok',
    modules: [
      { type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': { pooling_mode_mean_tokens: true } } },
      { type: 'sentence_transformers.models.Normalize', path: '2_Normalize' },
    ],
    stConfig: { prompts: { query: 'search_query: ', document: 'search_document: ' }, default_prompt_name: null },
  }),
  'gte-modernbert-base': () => stFolder({
    fixture: 'tok',
    modules: [
      { type: 'sentence_transformers.models.Pooling', path: '1_Pooling', files: { 'config.json': { pooling_mode_cls_token: true } } },
      { type: 'sentence_transformers.models.Normalize', path: '2_Normalize' },
    ],
  }),
  'GTE-ModernColBERT-v1': () => stFolder({
    fixture: 'tok',
    modules: [{ type: 'pylate.models.Dense.Dense', path: '1_Dense', files: { 'config.json': { in_features: 48, out_features: 8, bias: false } }, dense: { weight: randomValues(8 * 48, 0.3), in: 48, out: 8 } }],
    stConfig: { similarity_fn_name: 'MaxSim', query_length: 12, document_length: 32 },
    extraTokens: ['[Q] ', '[D] '],
  }),
};
/** Other names of the same models. */
const ALIASES: Record<string, string> = { 'my-model': 'ModernBERT-base', 'my-embedder': 'ModernBERT-base' };
/** Hub repo ids the examples use → the model in the offline cache. */
const HUB: Record<string, string> = { 'answerdotai/ModernBERT-base': 'ModernBERT-base' };

const CORPUS = [
  { _id: 'd1', title: 'ColBERT', text: 'Late interaction compares every query token with every document token.' },
  { _id: 'd2', title: 'ModernBERT', text: 'An encoder with alternating local and global attention.' },
  { _id: 'd3', title: 'Fruit', text: 'An apple a day keeps the doctor away.' },
];
/** Data files the examples read, written into each doc folder. */
const DATA: Record<string, string> = {
  'docs.jsonl': ['"The first document."', '{"text": "The second one."}'].join('\n') + '\n',
  'texts.jsonl': ['"A cat sat on the mat."', '"A feline rested on a rug."'].join('\n') + '\n',
  'queries.txt': 'what is late interaction?\nwhat is ModernBERT?\n',
  'corpus.jsonl': CORPUS.map((d) => JSON.stringify(d)).join('\n') + '\n',
  'train.jsonl': Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: i % 2 ? 'I loved it, wonderful.' : 'Terrible, I hated it.', label: i % 2 ? 'positive' : 'negative' })).join('\n') + '\n',
  'test.jsonl': [{ text: 'Wonderful!', label: 'positive' }, { text: 'Awful.', label: 'negative' }].map((r) => JSON.stringify(r)).join('\n') + '\n',
  'scifact/corpus.jsonl': CORPUS.map((d) => JSON.stringify(d)).join('\n') + '\n',
  'scifact/queries.jsonl': [{ _id: 'q1', text: 'what is late interaction?' }, { _id: 'q2', text: 'what is ModernBERT?' }].map((q) => JSON.stringify(q)).join('\n') + '\n',
  'scifact/qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n',
};

let modelDirs: Record<string, string>;
let hubCache: string;
let scratch: string;

function buildModels(): void {
  scratch = mkdtempSync(join(tmpdir(), 'mb-docs-'));
  modelDirs = Object.fromEntries(Object.entries(MODELS).map(([name, build]) => [name, build()]));
  for (const [alias, name] of Object.entries(ALIASES)) modelDirs[alias] = modelDirs[name];
  hubCache = join(scratch, 'hf-cache');
  const commit = 'a'.repeat(40);
  for (const [repo, name] of Object.entries(HUB)) {
    const folder = join(hubCache, `models--${repo.replace('/', '--')}`);
    mkdirSync(join(folder, 'refs'), { recursive: true });
    mkdirSync(join(folder, 'snapshots'), { recursive: true });
    writeFileSync(join(folder, 'refs', 'main'), commit);
    symlinkSync(modelDirs[name], join(folder, 'snapshots', commit));
  }
}

/** A fresh folder with every model linked under its name and the data files. */
function docFolder(doc: string): string {
  const dir = join(scratch, doc.replace(/[/.]/g, '_'));
  mkdirSync(dir);
  for (const [name, path] of Object.entries(modelDirs)) symlinkSync(path, join(dir, name));
  for (const [file, text] of Object.entries(DATA)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

const ENV = () => ({ HF_HUB_CACHE: hubCache, HF_HUB_OFFLINE: '1', HF_TOKEN: undefined as string | undefined });

// ---------------------------------------------------------------- output claims

type Shape =
  | { kind: 'array'; items: Shape[]; open: boolean }
  | { kind: 'object'; fields: [string, Shape | null][]; open: boolean }
  | { kind: 'tensor'; dims: Shape }
  | { kind: 'literal'; value: number | string | boolean | null }
  | { kind: 'type'; type: 'number' | 'string' | 'boolean' }
  | { kind: 'any' };

/** Parses the shape at the start of `claim`; the rest is prose. Throws when the claim does not start with one. */
export function parseShape(claim: string): Shape {
  let p = 0;
  const ws = () => {
    while (p < claim.length && /\s/.test(claim[p])) p++;
  };
  const eat = (s: string) => {
    ws();
    if (claim.startsWith(s, p)) {
      p += s.length;
      return true;
    }
    return false;
  };
  const rest = () => eat('…') || eat('...');
  const fail = (what: string): never => {
    throw new Error(`cannot read the output claim "${claim}" at ${p}: expected ${what}`);
  };
  const shape = (): Shape => {
    ws();
    if (eat('[')) {
      const items: Shape[] = [];
      let open = false;
      while (!eat(']')) {
        if (rest()) open = true;
        else items.push(shape());
        if (!eat(',') && !claim.startsWith(']', (ws(), p))) fail('"," or "]"');
      }
      return { kind: 'array', items, open };
    }
    if (eat('{')) {
      const fields: [string, Shape | null][] = [];
      let open = false;
      while (!eat('}')) {
        if (rest()) open = true;
        else {
          ws();
          const key = /^[A-Za-z_$][\w$]*/.exec(claim.slice(p))?.[0] ?? fail('a key');
          p += key.length;
          fields.push([key, eat(':') ? shape() : null]);
        }
        if (!eat(',') && !claim.startsWith('}', (ws(), p))) fail('"," or "}"');
      }
      return { kind: 'object', fields, open };
    }
    const num = /^-?\d+(\.\d+)?(e-?\d+)?/.exec(claim.slice(p));
    if (num) {
      p += num[0].length;
      return { kind: 'literal', value: Number(num[0]) };
    }
    const str = /^'((?:[^'\\]|\\.)*)'|^"((?:[^"\\]|\\.)*)"/.exec(claim.slice(p));
    if (str) {
      p += str[0].length;
      return { kind: 'literal', value: JSON.parse(`"${(str[1] ?? str[2]).replace(/\\'/g, "'")}"`) };
    }
    const word = /^[A-Za-z_$][\w$]*/.exec(claim.slice(p))?.[0] ?? fail('a shape');
    p += word.length;
    if (word === 'Tensor') return { kind: 'tensor', dims: shape() };
    if (word === 'true' || word === 'false') return { kind: 'literal', value: word === 'true' };
    if (word === 'null') return { kind: 'literal', value: null };
    if (word === 'number' || word === 'string' || word === 'boolean') return { kind: 'type', type: word };
    return { kind: 'any' };
  };
  return shape();
}

/** Where `value` (as the block reported it: JSON, a Tensor as `{ __tensor: dims }`) differs from `shape`, or null. */
export function mismatch(value: unknown, shape: Shape, at = 'value'): string | null {
  const show = (v: unknown) => JSON.stringify(v)?.slice(0, 120);
  switch (shape.kind) {
    case 'any':
      return null;
    case 'type':
      return typeof value === shape.type ? null : `${at} is ${show(value)}, not a ${shape.type}`;
    case 'literal':
      return Object.is(value, shape.value) ? null : `${at} is ${show(value)}, not ${show(shape.value)}`;
    case 'tensor': {
      const dims = (value as { __tensor?: unknown } | null)?.__tensor;
      if (!Array.isArray(dims)) return `${at} is ${show(value)}, not a Tensor`;
      return mismatch(dims, shape.dims, `${at}.dims`);
    }
    case 'array': {
      const arr = value;
      if (!Array.isArray(arr)) return `${at} is ${show(value)}, not an array`;
      if (shape.open ? arr.length < shape.items.length : arr.length !== shape.items.length)
        return `${at} has ${arr.length} items, the claim ${shape.open ? 'at least ' : ''}${shape.items.length}`;
      for (let i = 0; i < arr.length; i++) {
        const item = shape.items[Math.min(i, shape.items.length - 1)];
        const m = item ? mismatch(arr[i], item, `${at}[${i}]`) : null;
        if (m) return m;
      }
      return null;
    }
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${at} is ${show(value)}, not an object`;
      const rec = value as Record<string, unknown>;
      const have = Object.keys(rec).filter((k) => rec[k] !== undefined).sort();
      const want = shape.fields.map(([k]) => k);
      for (const k of want) if (!(k in rec)) return `${at} has no key "${k}" (keys: ${have.join(', ')})`;
      if (!shape.open && have.join() !== [...want].sort().join()) return `${at} has keys ${have.join(', ')}, the claim ${want.join(', ')}`;
      for (const [k, s] of shape.fields) {
        const m = s ? mismatch(rec[k], s, `${at}.${k}`) : null;
        if (m) return m;
      }
      return null;
    }
  }
}

/**
 * The block as a module that reports its claimed values: `stmt; // → claim` (or the claim on the comment
 * line below) becomes `__claim(n, value)`. Expression statements report their value (`console.log(x)`: x),
 * `const name = …` (or `const [name] = …`) reports `name`.
 */
function instrument(code: string): { source: string; claims: { line: number; shape: Shape; text: string }[] } {
  const lines = code.split('\n');
  const claims: { line: number; shape: Shape; text: string }[] = [];
  let last = -1;
  const out = lines.map((line, i) => {
    const own = /^(.*?;)\s*\/\/(.*)$/.exec(line);
    const below = /^\s*\/\/\s*→(.*)$/.exec(line);
    let stmtLine = -1;
    let text = '';
    if (own && own[2].trim().startsWith('→')) {
      stmtLine = i;
      text = own[2].trim().slice(1);
    } else if (below && last >= 0) {
      stmtLine = last;
      text = below[1];
    }
    if (!/^\s*\/\//.test(line) && line.trim() !== '') last = i;
    if (stmtLine < 0) return line;
    claims.push({ line: stmtLine + 1, shape: parseShape(text), text: text.trim() });
    return line;
  });
  for (const [n, c] of claims.entries()) {
    const i = c.line - 1;
    const stmt = (/^(.*?;)\s*\/\//.exec(out[i])?.[1] ?? out[i]).trim();
    const decl = /^(?:const|let|var)\s+(?:\[\s*([\w$]+)\s*\]|\{\s*([\w$]+)\s*\}|([\w$]+))\s*=/.exec(stmt);
    if (decl) out[i] = `${stmt} __claim(${n}, ${decl[1] ?? decl[2] ?? decl[3]});`;
    else {
      assert.ok(!/^(import|export|const|let|var|if|for|while|return|function|class)\b/.test(stmt) && stmt.endsWith(';'),
        `line ${c.line} of the block: the claim "${c.text}" is on a statement the test cannot evaluate: ${stmt}`);
      const expr = stmt.slice(0, -1);
      const log = /^console\.log\((.*)\)$/.exec(expr);
      out[i] = `__claim(${n}, ${log ? log[1] : expr});`;
    }
  }
  return { source: out.join('\n'), claims };
}

/** What the child reports for a claimed value: JSON, with typed arrays as arrays and Tensors as their dims. */
const REPORT = `
const __values: Record<number, unknown> = {};
const __plain = (v: any): unknown => {
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) return v.map(__plain);
  if (v && typeof v === 'object' && Array.isArray(v.dims) && ArrayBuffer.isView(v.data)) return { __tensor: v.dims };
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, __plain(x)]));
  return v;
};
const __claim = (n: number, v: unknown) => void (__values[n] = __plain(v));
process.once('beforeExit', () => process.stdout.write('\\n__CLAIMS__' + JSON.stringify(__values) + '\\n'));
`;

/** Runs a TypeScript block as a module (tsx) in the doc's folder and checks its claims. */
async function runTs(block: Block, dir: string): Promise<void> {
  const { source, claims } = instrument(block.code);
  const rewritten = source.replace(/(from\s+|import\()(['"])(modernbert(?:\/[\w-]+)?)\2/g, (_m, pre: string, q: string, spec: string) => {
    assert.ok(ENTRY[spec], `${block.doc}:${block.line}: imports '${spec}', which the package does not export`);
    return `${pre}${q}${pathToFileURL(join(ROOT, ENTRY[spec])).href}${q}`;
  });
  const file = join(dir, `block-${block.line}.mts`);
  writeFileSync(file, `${REPORT}\n${rewritten}\nexport {};\n`);
  const r = await spawnNode(['--import', TSX, file], dir);
  assert.equal(r.code, 0, `${block.doc}:${block.line}: the block failed (exit ${r.code}):\n${r.stderr}`);
  const report = r.stdout.split('\n').find((l) => l.startsWith('__CLAIMS__'));
  assert.ok(report, `${block.doc}:${block.line}: the block did not finish (no report)`);
  const values = JSON.parse(report.slice('__CLAIMS__'.length)) as Record<string, unknown>;
  for (const [n, c] of claims.entries()) {
    assert.ok(String(n) in values, `${block.doc}:${block.line + c.line}: the claimed statement did not run`);
    const m = mismatch(values[n], c.shape);
    assert.equal(m, null, `${block.doc}:${block.line + c.line}: "→ ${c.text}": ${m}`);
  }
}

// ---------------------------------------------------------------- shell

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    const env: Record<string, string | undefined> = { ...process.env, ...ENV() };
    const child = execFile(file, args, { cwd, env: env as NodeJS.ProcessEnv, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin!.end();
  });
}

const spawnNode = (args: string[], cwd: string) => run(process.execPath, args, cwd);
const bash = (script: string, cwd: string) =>
  run('bash', ['-c', `set -euo pipefail\nmodernbert() { "${process.execPath}" --import "${TSX}" "${CLI}" "$@"; }\n${script}`], cwd);

/** The commands of a sh block: with `$ ` prompts, only those lines (others are output); else every line. */
function commands(code: string): string {
  const lines = code.split('\n');
  return lines.some((l) => l.startsWith('$ ')) ? lines.filter((l) => l.startsWith('$ ')).map((l) => l.slice(2)).join('\n') : code;
}

/**
 * A transcript (`$ command` then its output): each command runs, and each output line shown must appear in
 * the real output, in order. `key: value` lines compare the key only (values depend on the machine);
 * `...` stands for lines left out; other lines compare exactly.
 */
async function compareTranscript(block: Block, dir: string): Promise<void> {
  const steps: { cmd: string; shown: string[] }[] = [];
  for (const l of block.code.split('\n')) {
    if (l.startsWith('$ ')) steps.push({ cmd: l.slice(2), shown: [] });
    else if (steps.length && l.trim() !== '' && l.trim() !== '...') steps[steps.length - 1].shown.push(l);
  }
  for (const s of steps) {
    const r = await bash(s.cmd, dir);
    assert.equal(r.code, 0, `${block.doc}:${block.line}: \`${s.cmd}\` failed:\n${r.stderr}`);
    const got = r.stdout.split('\n');
    let at = 0;
    for (const want of s.shown) {
      const key = /^([\w ]+): /.exec(want)?.[1];
      const found = got.findIndex((g, j) => j >= at && (key ? g.startsWith(`${key}: `) : g === want));
      assert.ok(found >= 0, `${block.doc}:${block.line}: \`${s.cmd}\` printed no line ${key ? `"${key}: …"` : `"${want}"`} (in order); it printed:\n${r.stdout}`);
      at = found + 1;
    }
  }
}

// ---------------------------------------------------------------- the test

const ALL = DOCS.flatMap(extractBlocks);
const SKIPPED = ALL.filter((b) => b.notTested);

describe('documentation examples', () => {
  before(buildModels);
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('the examples import entry points the package exports', () => {
    const exportsMap = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).exports as Record<string, unknown>;
    for (const spec of Object.keys(ENTRY)) assert.ok(exportsMap[spec.replace(/^modernbert/, '.')], `package.json exports no ${spec}`);
  });

  // Docs run side by side (each in its own folder); the blocks of one doc in order.
  describe('per document', { concurrency: 3 }, () => {
  for (const doc of DOCS) {
    const blocks = ALL.filter((b) => b.doc === doc);
    if (blocks.length === 0) continue;
    describe(doc, () => {
      let dir: string;
      before(() => (dir = docFolder(doc)));
      for (const b of blocks) {
        const name = `${b.lang} block at line ${b.line}`;
        if (b.notTested !== undefined) {
          it(name, { skip: `not tested: ${b.notTested || 'no reason given'}` }, () => {});
          continue;
        }
        it(name, async () => {
          if (b.lang === 'ts') await runTs(b, dir);
          else if (b.lang === 'text') await compareTranscript(b, dir);
          else {
            const r = await bash(commands(b.code), dir);
            assert.equal(r.code, 0, `${b.doc}:${b.line}: the block failed (exit ${r.code}):\n${r.stderr}`);
          }
        });
      }
    });
  }
  });

  it('the claim checker accepts true claims and rejects false ones', () => {
    const check = (value: unknown, claim: string) => mismatch(value, parseShape(claim));
    assert.equal(check({ __tensor: [2, 8] }, 'Tensor [2, hidden]: prose'), null);
    assert.match(check({ __tensor: [3, 8] }, 'Tensor [2, hidden]') ?? '', /dims\[0\] is 3/);
    assert.equal(check([{ a: 1, b: 'x' }, { a: 2, b: 'y' }], '[{ a: number, b }, …] best first'), null);
    assert.match(check([{ a: 1 }], '[{ a, b }, …]') ?? '', /no key "b"/);
    assert.match(check([{ a: 1, b: 2, c: 3 }], '[{ a, b }]') ?? '', /keys a, b, c/);
    assert.equal(check([{ a: 1, b: 2, c: 3 }], '[{ a, b, … }]'), null);
    assert.match(check([1, 2], '[1, 2, 3]') ?? '', /2 items/);
    assert.match(check('x.', "'x'") ?? '', /not "x"/);
    assert.throws(() => parseShape('one vector'.replace('one', '(')), /cannot read the output claim/);
  });

  it('the links between README.md and docs/ resolve', () => {
    for (const doc of DOCS) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|#)/.test(target)) continue;
        const path = resolve(ROOT, dirname(doc), target.split('#')[0]);
        assert.ok(existsSync(path), `${doc}: the link ${target} points at nothing`);
      }
    }
  });

  it('lists the blocks it does not run, each with a reason', (t) => {
    for (const b of SKIPPED) {
      t.diagnostic(`not tested: ${b.doc}:${b.line} (${b.lang}): ${b.notTested}`);
      assert.ok(b.notTested, `${b.doc}:${b.line}: a not-tested marker needs a reason`);
    }
    t.diagnostic(`${ALL.length - SKIPPED.length} blocks run, ${SKIPPED.length} not tested`);
    assert.ok(ALL.length - SKIPPED.length > 0);
  });
});
