/** Access to ../shared/fixtures (override with MODERNBERT_FIXTURES) and the tolerance checks its README gives. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { SafetensorsFile } from '../../src/safetensors/safetensors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = process.env.MODERNBERT_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures');
export const TOKENIZER_DIR = resolve(FIXTURES, '..', 'tokenizer', 'modernbert');

export const MODEL_FIXTURES = ['mlm', 'mlm-alt', 'cls-cls', 'cls-mean', 'cls-multilabel', 'cls-regression', 'tok'] as const;
export type FixtureName = (typeof MODEL_FIXTURES)[number];

export interface FixtureCase {
  id: string;
  lengths: number[];
  batch: number;
  padded_len: number;
}

export function fixtureDir(name: string): string {
  return join(FIXTURES, name);
}

export function cases(name: string): { kind: string; architecture: string; cases: FixtureCase[] } {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'cases.json'), 'utf8'));
}

export function expected(name: string): SafetensorsFile {
  return SafetensorsFile.read(join(FIXTURES, name, 'expected.safetensors'));
}

/** Rows of a [B, S] integer tensor. */
export function rows2d(file: SafetensorsFile, tensor: string): number[][] {
  const data = file.int32(tensor);
  const [B, S] = file.entry(tensor).shape;
  return Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * S, (b + 1) * S)));
}

/** Scaled max difference: max|a − e| / max(1, max|e|). */
export function scaledDiff(actual: ArrayLike<number>, expectedValues: ArrayLike<number>): number {
  assert.equal(actual.length, expectedValues.length, 'length mismatch');
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expectedValues[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    maxAbs = Math.max(maxAbs, Math.abs(expectedValues[i]));
  }
  return maxDiff / Math.max(1, maxAbs);
}

/** Asserts the README's forward tolerance: max|a − e| ≤ tol · max(1, max|e|). */
export function assertClose(actual: ArrayLike<number>, expectedValues: ArrayLike<number>, what: string, tol = 2e-5): void {
  const d = scaledDiff(actual, expectedValues);
  assert.ok(d <= tol, `${what}: scaled max diff ${d.toExponential(3)} exceeds ${tol}`);
}

/** The real-token rows of a padded [B, S, W] output, concatenated in batch order ([T, W]). */
export function realRows(padded: Float32Array, mask: number[][], width: number): Float32Array {
  const S = mask[0].length;
  const out: number[] = [];
  mask.forEach((row, b) => row.forEach((m, s) => {
    if (m) for (let w = 0; w < width; w++) out.push(padded[(b * S + s) * width + w]);
  }));
  return Float32Array.from(out);
}
