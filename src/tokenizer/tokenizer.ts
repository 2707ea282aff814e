/**
 * The tokenizer: a Hugging Face `tokenizer.json` (plus `tokenizer_config.json` and
 * `special_tokens_map.json`) run by `@huggingface/tokenizers`, with what that library leaves out and a
 * model needs: character offsets, the post-processor template applied after truncation (so `[CLS]`/`[SEP]`
 * survive it), pairs, padding and batches. Ids agree with the Rust `tokenizers` crate (tested id for id).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { InputError, ModernBertError } from '../errors.js';
import { resolveModel, type HubOptions } from '../hub/hub.js';
import { alignNormalized, byteLevelTokenBytes, tokenOffsets, utf8Bytes, type TokenPiece } from './alignment.js';

/** A tokenizer file that is missing or that this library cannot run: names the file and the field. */
export class TokenizerError extends ModernBertError {}

export type TruncationSide = 'left' | 'right';
export type TruncationStrategy = 'longest_first' | 'only_first' | 'only_second';
export type Padding = 'longest' | 'max_length' | false;

export interface EncodeOptions {
  /** Second text of a pair (`[CLS] A [SEP] B [SEP]`). */
  textPair?: string | null;
  /** Add `[CLS]`/`[SEP]` per the post-processor template (default true). */
  addSpecialTokens?: boolean;
  /** Cut to `maxLength` tokens, special tokens included (default true). */
  truncation?: boolean;
  /** Default: `model_max_length` of tokenizer_config.json (8192 for ModernBERT). */
  maxLength?: number;
  /** Which end loses tokens (default: tokenizer_config's `truncation_side`, else 'right'). */
  truncationSide?: TruncationSide;
  /** Which text of a pair loses tokens (default 'longest_first', as in Hugging Face). */
  truncationStrategy?: TruncationStrategy;
}

export interface BatchEncodeOptions extends Omit<EncodeOptions, 'textPair'> {
  /** 'longest' (default) pads to the longest row, 'max_length' to `maxLength`, false leaves rows ragged. */
  padding?: Padding;
  paddingSide?: 'left' | 'right';
}

export interface Encoding {
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
  /** 1 at special tokens added by the template and at padding, else 0. */
  specialTokensMask: number[];
  /** [start, end) in the source text (UTF-16 indices: `text.slice(start, end)`); [0, 0] for added specials. */
  offsets: [number, number][];
  /** Which text each token came from: 0, 1 (pairs), or null for special tokens and padding (HF's `sequence_ids`). */
  sequenceIds: (number | null)[];
  tokens: string[];
  /** Tokens removed by truncation (0 when the text fit). */
  numTruncated: number;
}

export interface BatchEncoding {
  /** [batch][seq] ids; rows have equal length unless `padding: false`. */
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
  offsets: [number, number][][];
  encodings: Encoding[];
}

export type TextPair = [string, string];

interface TemplatePiece {
  kind: 'special' | 'sequence';
  ids: number[];
  tokens: string[];
  which: 0 | 1;
  typeId: number;
}

interface RawPostProcessor {
  type?: string;
  single?: Record<string, { id: string; type_id?: number }>[];
  pair?: Record<string, { id: string; type_id?: number }>[];
  special_tokens?: Record<string, { ids: number[]; tokens: string[] }>;
  cls?: [string, number];
  sep?: [string, number];
  processors?: RawPostProcessor[];
}

interface AddedTokenInfo {
  id: number;
  content: string;
  lstrip: boolean;
  rstrip: boolean;
}

/** Rust's `char::is_whitespace`: the Unicode White_Space property (JS `\s` also matches U+FEFF). */
const WHITE_SPACE = /^\p{White_Space}$/u;

interface Piece {
  id: number;
  token: string;
  offset: [number, number];
}

function readJson(path: string, required: boolean): Record<string, unknown> | null {
  if (!existsSync(path)) {
    if (required) throw new TokenizerError(`${path} not found (a tokenizer folder needs tokenizer.json)`);
    return null;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new TokenizerError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A special token in tokenizer_config / special_tokens_map: a string or `{ content }`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

function parseTemplate(pp: RawPostProcessor | null, source: string): { single: TemplatePiece[]; pair: TemplatePiece[] } | null {
  if (!pp) return null;
  const special = (token: string, id: number, typeId = 0): TemplatePiece => ({ kind: 'special', ids: [id], tokens: [token], which: 0, typeId });
  const seq = (which: 0 | 1, typeId = 0): TemplatePiece => ({ kind: 'sequence', ids: [], tokens: [], which, typeId });
  switch (pp.type) {
    case 'TemplateProcessing': {
      const convert = (items: RawPostProcessor['single']) =>
        (items ?? []).map((item): TemplatePiece => {
          if (item.SpecialToken) {
            const st = pp.special_tokens?.[item.SpecialToken.id];
            if (!st) throw new TokenizerError(`${source}: post_processor uses special token '${item.SpecialToken.id}' without defining it`);
            return { kind: 'special', ids: st.ids, tokens: st.tokens, which: 0, typeId: item.SpecialToken.type_id ?? 0 };
          }
          if (item.Sequence) return seq(item.Sequence.id === 'B' ? 1 : 0, item.Sequence.type_id ?? 0);
          throw new TokenizerError(`${source}: unknown post_processor template item ${JSON.stringify(item)}`);
        });
      return { single: convert(pp.single), pair: convert(pp.pair) };
    }
    case 'BertProcessing': {
      const [cls, clsId] = pp.cls!;
      const [sep, sepId] = pp.sep!;
      return {
        single: [special(cls, clsId), seq(0), special(sep, sepId)],
        pair: [special(cls, clsId), seq(0), special(sep, sepId), seq(1, 1), special(sep, sepId, 1)],
      };
    }
    case 'RobertaProcessing': {
      const [cls, clsId] = pp.cls!;
      const [sep, sepId] = pp.sep!;
      return {
        single: [special(cls, clsId), seq(0), special(sep, sepId)],
        pair: [special(cls, clsId), seq(0), special(sep, sepId), special(sep, sepId), seq(1), special(sep, sepId)],
      };
    }
    case 'ByteLevel':
      return null; // offsets trimming only; adds no tokens
    case 'Sequence': {
      const found = (pp.processors ?? []).map((p) => parseTemplate(p, source)).filter((t) => t !== null);
      return found[0] ?? null;
    }
    default:
      throw new TokenizerError(`${source}: post_processor type '${pp.type}' is not supported`);
  }
}

/** The pattern the Rust ByteLevel pre-tokenizer splits on when `use_regex` is true (GPT-2's). */
const BYTE_LEVEL_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * Rewrites a ByteLevel pre-tokenizer with `use_regex` into the equivalent Split (GPT-2 pattern,
 * isolated) + ByteLevel without regex. Same meaning in Rust; but `@huggingface/tokenizers` 0.2.0 runs the
 * built-in pattern as a raw JS regex whose `\s` wrongly includes U+FEFF, while Split patterns go through
 * its Oniguruma translation (`\s` = White_Space) and then agree with Rust (the BOM cases in the tests).
 */
function withExplicitByteLevelSplit(tokenizerJson: Record<string, unknown>): Record<string, unknown> {
  type Pre = { type?: string; use_regex?: boolean; pretokenizers?: Pre[] };
  const rewrite = (p: Pre): Pre[] =>
    p.type === 'ByteLevel' && p.use_regex !== false
      ? [{ type: 'Split', pattern: { Regex: BYTE_LEVEL_PATTERN }, behavior: 'Isolated', invert: false } as Pre, { ...p, use_regex: false }]
      : p.type === 'Sequence' ? [{ ...p, pretokenizers: (p.pretokenizers ?? []).flatMap(rewrite) }] : [p];
  const pre = tokenizerJson.pre_tokenizer as Pre | null | undefined;
  if (!pre) return tokenizerJson;
  const out = rewrite(pre);
  return { ...tokenizerJson, pre_tokenizer: out.length === 1 ? out[0] : { type: 'Sequence', pretokenizers: out } };
}

export class PreTrainedTokenizer {
  readonly modelMaxLength: number;
  readonly truncationSide: TruncationSide;
  readonly paddingSide: 'left' | 'right';
  readonly clsToken: string | null;
  readonly sepToken: string | null;
  readonly padToken: string | null;
  readonly maskToken: string | null;
  readonly unkToken: string | null;
  readonly padTokenId: number;
  readonly maskTokenId: number | null;
  readonly vocabSize: number;
  private readonly template: { single: TemplatePiece[]; pair: TemplatePiece[] } | null;
  private readonly byteLevel: boolean;
  private readonly normalize: ((s: string) => string) | null;
  private readonly added = new Map<number, AddedTokenInfo>();
  /** Added tokens matched on the original text that take in whitespace (split off before the library runs). */
  private readonly stripTokens: AddedTokenInfo[] = [];
  private readonly specialIds = new Set<number>();
  private readonly hf: HfTokenizer;

  constructor(
    readonly tokenizerJson: Record<string, unknown>,
    readonly tokenizerConfig: Record<string, unknown> = {},
    specialTokensMap: Record<string, unknown> = {},
    source = 'tokenizer',
  ) {
    const config = { ...specialTokensMap, ...tokenizerConfig };
    try {
      this.hf = new HfTokenizer(withExplicitByteLevelSplit(tokenizerJson), config);
    } catch (e) {
      throw new TokenizerError(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    const maxLen = config.model_max_length;
    // transformers writes a huge sentinel (1e30) when a model has no limit.
    this.modelMaxLength = typeof maxLen === 'number' && maxLen < 1e9 ? maxLen : 8192;
    this.truncationSide = config.truncation_side === 'left' ? 'left' : 'right';
    this.paddingSide = config.padding_side === 'left' ? 'left' : 'right';
    this.clsToken = tokenContent(config.cls_token);
    this.sepToken = tokenContent(config.sep_token);
    this.padToken = tokenContent(config.pad_token);
    this.maskToken = tokenContent(config.mask_token);
    this.unkToken = tokenContent(config.unk_token);
    type RawAdded = { id: number; content: string; lstrip?: boolean; rstrip?: boolean; special?: boolean; normalized?: boolean; single_word?: boolean };
    for (const t of (tokenizerJson.added_tokens ?? []) as RawAdded[]) {
      const info = { id: t.id, content: t.content, lstrip: !!t.lstrip, rstrip: !!t.rstrip };
      this.added.set(t.id, info);
      if (t.special) this.specialIds.add(t.id);
      if ((t.lstrip || t.rstrip) && t.normalized === false && !t.single_word && t.content !== '') this.stripTokens.push(info);
    }
    const padId = this.padToken === null ? undefined : this.hf.token_to_id(this.padToken);
    this.padTokenId = padId ?? 0;
    this.maskTokenId = (this.maskToken === null ? undefined : this.hf.token_to_id(this.maskToken)) ?? null;
    this.vocabSize = Math.max(...this.hf.get_vocab(true).values()) + 1;
    this.template = parseTemplate((tokenizerJson.post_processor ?? null) as RawPostProcessor | null, source);
    const dec = tokenizerJson.decoder as { type?: string; decoders?: { type?: string }[] } | null;
    const pre = tokenizerJson.pre_tokenizer as { type?: string; pretokenizers?: { type?: string }[] } | null;
    this.byteLevel = dec?.type === 'ByteLevel' || pre?.type === 'ByteLevel' || !!pre?.pretokenizers?.some((p) => p.type === 'ByteLevel');
    const normalizer = this.hf.normalizer;
    this.normalize = normalizer ? (s: string) => normalizer.normalize(s) : null;
  }

  /** Reads tokenizer.json, tokenizer_config.json and special_tokens_map.json from a folder. */
  static fromDirectory(dir: string): PreTrainedTokenizer {
    const tj = readJson(join(dir, 'tokenizer.json'), true)!;
    const tc = readJson(join(dir, 'tokenizer_config.json'), false) ?? {};
    const sm = readJson(join(dir, 'special_tokens_map.json'), false) ?? {};
    return new PreTrainedTokenizer(tj, tc, sm, join(dir, 'tokenizer.json'));
  }

  /** A local folder or a Hub repo id (downloaded into the Hugging Face cache). */
  static async fromPretrained(dirOrRepoId: string, options: HubOptions = {}): Promise<PreTrainedTokenizer> {
    const dir = await resolveModel(dirOrRepoId, { ...options, files: 'tokenizer' });
    return PreTrainedTokenizer.fromDirectory(dir);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * The text's tokens (no special tokens added) with their offsets in `text`. Added tokens that strip
   * the whitespace beside them ([MASK]) are split off here, with Rust's whitespace (Unicode White_Space;
   * the library's `trimEnd` also eats U+FEFF); the sections between them go to the library.
   */
  private pieces(text: string): Piece[] {
    if (typeof text !== 'string') throw new InputError(`text must be a string, got ${text === null ? 'null' : typeof text}`);
    const out: Piece[] = [];
    let pos = 0;
    for (const m of this.stripMatches(text)) {
      this.encodeSection(text, pos, m.start, out);
      out.push({ id: m.id, token: m.content, offset: [m.start, m.end] });
      pos = m.end;
    }
    this.encodeSection(text, pos, text.length, out);
    return out;
  }

  /** Occurrences of lstrip/rstrip added tokens in the original text, leftmost first, widened over whitespace. */
  private stripMatches(text: string): { id: number; content: string; start: number; end: number }[] {
    const found: { id: number; content: string; start: number; end: number }[] = [];
    for (const t of this.stripTokens)
      for (let i = text.indexOf(t.content); i >= 0; i = text.indexOf(t.content, i + 1))
        found.push({ id: t.id, content: t.content, start: i, end: i + t.content.length });
    found.sort((x, y) => x.start - y.start || y.end - x.end);
    const out: typeof found = [];
    let prevEnd = 0;
    for (const m of found) {
      if (m.start < prevEnd) continue;
      const t = this.added.get(m.id)!;
      if (t.lstrip) while (m.start > prevEnd && WHITE_SPACE.test(text[m.start - 1])) m.start--;
      if (t.rstrip) while (m.end < text.length && WHITE_SPACE.test(text[m.end])) m.end++;
      out.push(m);
      prevEnd = m.end;
    }
    return out;
  }

  /** Tokens of text[start, end) by the library, with offsets recovered by alignment. */
  private encodeSection(text: string, start: number, end: number, out: Piece[]): void {
    if (start >= end) return;
    const section = text.slice(start, end);
    const { ids, tokens }: { ids: number[]; tokens: string[] } = this.hf.encode(section, { add_special_tokens: false });
    const aligned = alignNormalized(section, this.normalize);
    const tokenPieces: TokenPiece[] = ids.map((id, i) => {
      const added = this.added.get(id);
      if (added) return { bytes: utf8Bytes(added.content), lstrip: added.lstrip, rstrip: added.rstrip };
      const bytes = this.byteLevel ? byteLevelTokenBytes(tokens[i]) : utf8Bytes(tokens[i].replace(/^##/, '').replace(/▁/g, ' '));
      return { bytes, lstrip: false, rstrip: false };
    });
    const offsets = tokenOffsets(aligned, tokenPieces, section.length);
    ids.forEach((id, i) => out.push({ id, token: tokens[i], offset: [offsets[i][0] + start, offsets[i][1] + start] }));
  }

  /** How many tokens the template adds around one text (`pair` false) or a pair. */
  numSpecialTokensToAdd(pair = false): number {
    if (!this.template) return 0;
    return (pair ? this.template.pair : this.template.single).reduce((n, p) => n + p.ids.length, 0);
  }

  /** Encodes one text or pair: truncation first, then the template's special tokens. */
  encode(text: string, options: EncodeOptions = {}): Encoding {
    const pair = options.textPair ?? null;
    const addSpecial = options.addSpecialTokens ?? true;
    let a = this.pieces(text);
    let b = pair === null ? null : this.pieces(pair);
    const maxLength = options.maxLength ?? this.modelMaxLength;
    let numTruncated = 0;
    if (options.truncation ?? true) {
      const budget = maxLength - (addSpecial ? this.numSpecialTokensToAdd(b !== null) : 0);
      if (budget < 0)
        throw new InputError(`maxLength ${maxLength} is smaller than the ${maxLength - budget} special tokens the template adds`);
      const before = a.length + (b?.length ?? 0);
      [a, b] = truncatePair(a, b, budget, maxLength, options.truncationStrategy ?? 'longest_first', options.truncationSide ?? this.truncationSide);
      numTruncated = before - a.length - (b?.length ?? 0);
    }
    return this.assemble(a, b, addSpecial, numTruncated);
  }

  /** Ids already tokenized (e.g. a window of a long text) wrapped in the template's special tokens; offsets [0, 0]. */
  wrapWithSpecialTokens(ids: ArrayLike<number>): Encoding {
    return this.assemble(Array.from(ids, (id) => ({ id, token: this.idToToken(id) ?? '', offset: [0, 0] as [number, number] })), null, true, 0);
  }

  private assemble(a: Piece[], b: Piece[] | null, addSpecial: boolean, numTruncated: number): Encoding {
    const enc: Encoding = { inputIds: [], attentionMask: [], tokenTypeIds: [], specialTokensMask: [], offsets: [], sequenceIds: [], tokens: [], numTruncated };
    const pushSeq = (seq: Piece[], which: 0 | 1, typeId: number) => {
      for (const p of seq) {
        enc.inputIds.push(p.id);
        enc.tokens.push(p.token);
        enc.offsets.push(p.offset);
        enc.sequenceIds.push(which);
        enc.tokenTypeIds.push(typeId);
        enc.specialTokensMask.push(0);
      }
    };
    if (!addSpecial || !this.template) {
      pushSeq(a, 0, 0);
      if (b) pushSeq(b, 1, this.template ? 1 : 0);
    } else {
      for (const piece of b === null ? this.template.single : this.template.pair) {
        if (piece.kind === 'sequence') {
          pushSeq(piece.which === 0 ? a : b!, piece.which, piece.typeId);
          continue;
        }
        piece.ids.forEach((id, i) => {
          enc.inputIds.push(id);
          enc.tokens.push(piece.tokens[i]);
          enc.offsets.push([0, 0]);
          enc.sequenceIds.push(null);
          enc.tokenTypeIds.push(piece.typeId);
          enc.specialTokensMask.push(1);
        });
      }
    }
    enc.attentionMask = enc.inputIds.map(() => 1);
    return enc;
  }

  /** Encodes texts or [text, pair] tuples, padded per `padding`. */
  encodeBatch(inputs: (string | TextPair)[], options: BatchEncodeOptions = {}): BatchEncoding {
    if (!Array.isArray(inputs)) throw new InputError('encodeBatch takes an array of texts or [text, pair] tuples');
    const encodings = inputs.map((x) => (Array.isArray(x) ? this.encode(x[0], { ...options, textPair: x[1] }) : this.encode(x, options)));
    const padding = options.padding ?? 'longest';
    if (padding !== false && encodings.length > 0) {
      const target = padding === 'max_length' ? (options.maxLength ?? this.modelMaxLength) : Math.max(...encodings.map((e) => e.inputIds.length));
      for (const e of encodings) this.pad(e, target, options.paddingSide ?? this.paddingSide);
    }
    return {
      inputIds: encodings.map((e) => e.inputIds),
      attentionMask: encodings.map((e) => e.attentionMask),
      tokenTypeIds: encodings.map((e) => e.tokenTypeIds),
      offsets: encodings.map((e) => e.offsets),
      encodings,
    };
  }

  private pad(e: Encoding, target: number, side: 'left' | 'right'): void {
    const n = target - e.inputIds.length;
    if (n <= 0) return;
    const fill = <T>(arr: T[], v: T) => {
      const pad = Array.from({ length: n }, () => v);
      if (side === 'right') arr.push(...pad);
      else arr.unshift(...pad);
    };
    fill(e.inputIds, this.padTokenId);
    fill(e.attentionMask, 0);
    fill(e.tokenTypeIds, 0);
    fill(e.specialTokensMask, 1);
    fill<[number, number]>(e.offsets, [0, 0]);
    fill<number | null>(e.sequenceIds, null);
    fill(e.tokens, this.padToken ?? '');
  }

  /**
   * Text of `ids`, as transformers decodes: the Rust crate's decode (for byte-level models, each token's
   * bytes, or its own UTF-8 when it is an added token outside the byte alphabet, read as lossy UTF-8), then
   * `clean_up_tokenization` when asked (default: tokenizer_config's `clean_up_tokenization_spaces`).
   */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean; cleanUpTokenizationSpaces?: boolean } = {}): string {
    const kept = Array.from(ids).filter((id) => !(options.skipSpecialTokens && this.specialIds.has(id)));
    let text: string;
    if (this.byteLevel) {
      // Ids without a token (a model vocab padded beyond the tokenizer's) decode to nothing, as in Rust.
      const parts = kept.flatMap((id) => {
        const token = this.hf.id_to_token(id);
        return token === undefined ? [] : [byteLevelTokenBytes(token) ?? utf8Bytes(token)];
      });
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
      text = new TextDecoder().decode(bytes);
    } else {
      text = kept.length === 0 ? '' : this.hf.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    }
    const cleanUp = options.cleanUpTokenizationSpaces ?? this.tokenizerConfig.clean_up_tokenization_spaces === true;
    return cleanUp ? cleanUpTokenization(text) : text;
  }

  /** Token strings (no special tokens), e.g. `['The', 'Ġcapital']`. */
  tokenize(text: string): string[] {
    return this.pieces(text).map((p) => p.token);
  }
}

/** Cuts a text (and its pair) to `budget` tokens, from `side`, as the Rust crate does. */
function truncatePair(a: Piece[], b: Piece[] | null, budget: number, maxLength: number, strategy: TruncationStrategy, side: TruncationSide): [Piece[], Piece[] | null] {
  const cut = (seq: Piece[], keep: number) => (keep >= seq.length ? seq : side === 'right' ? seq.slice(0, keep) : seq.slice(seq.length - keep));
  if (b === null) {
    if (strategy === 'only_second') throw new InputError("truncationStrategy 'only_second' needs a text pair");
    return [cut(a, budget), null];
  }
  const total = a.length + b.length;
  if (total <= budget) return [a, b];
  // As in Rust, truncating one text of a pair must leave it at least one token.
  if (strategy === 'only_first') {
    if (b.length >= budget) throw new InputError(`cannot truncate only the first text: the second alone has ${b.length} tokens, and only ${budget} fit`);
    return [cut(a, budget - b.length), b];
  }
  if (strategy === 'only_second') {
    if (a.length >= budget) throw new InputError(`cannot truncate only the second text: the first alone has ${a.length} tokens, and only ${budget} fit`);
    return [a, cut(b, budget - a.length)];
  }
  // Rust's rule (utils/truncation.rs): the shorter text keeps everything if the longer can take the rest;
  // otherwise the shorter gets ⌊budget/2⌋ and the longer ⌈budget/2⌉. Rust measures texts only up to
  // maxLength tokens (tokenize_with_limit stops there), so two texts both over maxLength count as equal
  // and the first gets ⌊budget/2⌋ (exact when the limit falls on a pre-token boundary).
  const short = Math.min(a.length, b.length);
  let n1: number;
  let n2: number;
  if (2 * short > budget) {
    [n1, n2] = [Math.floor(budget / 2), Math.ceil(budget / 2)];
    if (short <= maxLength && a.length > b.length) [n1, n2] = [n2, n1];
  } else {
    [n1, n2] = a.length <= b.length ? [a.length, budget - a.length] : [budget - b.length, b.length];
  }
  return [cut(a, n1), cut(b, n2)];
}

/** transformers' `clean_up_tokenization`: removes the space before punctuation and English contractions. */
function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',').replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/** `AutoTokenizer.fromPretrained(dirOrRepoId)`, the Transformers.js spelling. */
export const AutoTokenizer = {
  fromPretrained: (dirOrRepoId: string, options: HubOptions = {}) => PreTrainedTokenizer.fromPretrained(dirOrRepoId, options),
};
