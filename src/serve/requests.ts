/**
 * Request bodies of the HTTP API, checked field by field: each check names the field and what it should
 * be, and throws an ApiError (400) that the server turns into a JSON error reply.
 */
export class ApiError extends Error {
  constructor(readonly status: number, readonly type: string, message: string) {
    super(message);
  }
}

export const badRequest = (message: string) => new ApiError(400, 'Validation', message);

export type Body = Record<string, unknown>;

export function asBody(body: unknown): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  return body as Body;
}

export function optionalBool(b: Body, key: string, fallback: boolean): boolean {
  const v = b[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw badRequest(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function text(v: unknown, where: string): string {
  if (typeof v !== 'string') throw badRequest(`${where} must be a string, got ${v === null ? 'null' : typeof v}`);
  if (v.length === 0) throw badRequest(`${where} is empty`);
  return v;
}

/** A string or a non-empty array of strings (TEI's `inputs`, OpenAI's `input`). */
export function texts(b: Body, key: string): string[] {
  const v = b[key];
  if (v === undefined) throw badRequest(`"${key}" is required: a string or an array of strings`);
  if (typeof v === 'string') return [text(v, `"${key}"`)];
  if (!Array.isArray(v)) throw badRequest(`"${key}" must be a string or an array of strings`);
  if (v.length === 0) throw badRequest(`"${key}" is an empty array`);
  return v.map((x, i) => text(x, `"${key}"[${i}]`));
}

export function requiredText(b: Body, key: string): string {
  if (b[key] === undefined) throw badRequest(`"${key}" is required`);
  return text(b[key], `"${key}"`);
}

/** TEI's `truncation_direction`: "Right" (default) or "Left". */
export function truncationSide(b: Body): 'left' | 'right' {
  const v = b.truncation_direction;
  if (v === undefined || v === null) return 'right';
  if (typeof v === 'string' && /^(left|right)$/i.test(v)) return v.toLowerCase() as 'left' | 'right';
  throw badRequest(`"truncation_direction" must be "Right" or "Left", got ${JSON.stringify(v)}`);
}

export type PredictItem = string | [string, string];

/**
 * /predict's `inputs`, as TEI reads them: a string or a [text, text_pair] pair is one input (the reply is
 * one label list); an array of strings and pairs is a batch (the reply is one list per input). A
 * two-string array is therefore a pair, as in TEI.
 */
export function predictInputs(b: Body): { items: PredictItem[]; single: boolean } {
  const v = b.inputs;
  if (v === undefined) throw badRequest('"inputs" is required: a string, a [text, text_pair] pair, or an array of them');
  const isPair = (x: unknown): x is [string, string] => Array.isArray(x) && x.length === 2 && x.every((s) => typeof s === 'string');
  if (typeof v === 'string') return { items: [text(v, '"inputs"')], single: true };
  if (isPair(v)) return { items: [[text(v[0], '"inputs"[0]'), text(v[1], '"inputs"[1]')]], single: true };
  if (!Array.isArray(v)) throw badRequest('"inputs" must be a string, a [text, text_pair] pair, or an array of them');
  if (v.length === 0) throw badRequest('"inputs" is an empty array');
  const items = v.map((x, i): PredictItem => {
    if (isPair(x)) return [text(x[0], `"inputs"[${i}][0]`), text(x[1], `"inputs"[${i}][1]`)];
    if (Array.isArray(x)) throw badRequest(`"inputs"[${i}] must be a string or a [text, text_pair] pair of two strings`);
    return text(x, `"inputs"[${i}]`);
  });
  return { items, single: false };
}

export function stringArray(b: Body, key: string): string[] {
  const v = b[key];
  if (!Array.isArray(v)) throw badRequest(`"${key}" is required: an array of strings`);
  if (v.length === 0) throw badRequest(`"${key}" is an empty array`);
  return v.map((x, i) => text(x, `"${key}"[${i}]`));
}
