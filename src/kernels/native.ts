/** The native addon (native/*.cc, built by node-gyp at install) behind the `Kernels` interface. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './types.js';

export interface NativeInfo {
  /** The instruction set the kernels dispatch to: 'avx512', 'avx2' or 'portable' (MODERNBERT_ISA caps it). */
  isa: string;
  threads: number;
  features: Record<string, boolean>;
}

interface Addon extends Omit<Kernels, 'name'> {
  fmaPeak(seconds: number): number;
  setNumThreads(n: number): number;
  info(): NativeInfo;
}

function findAddon(): string {
  // Works from src/kernels (tsx) and dist/src/kernels (compiled): walk up to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'build', 'Release', 'modernbert.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('native addon build/Release/modernbert.node not found: run `npm ci` (or `npm run install`) to build it');
}

const addon = createRequire(import.meta.url)(findAddon()) as Addon;

export const nativeKernels: Kernels = {
  name: 'native',
  gemm: addon.gemm,
  layernorm: addon.layernorm,
  geglu: addon.geglu,
  activation: addon.activation,
  embedding: addon.embedding,
  rope: addon.rope,
  attention: addon.attention,
  attentionBackward: addon.attentionBackward,
  layernormBackward: addon.layernormBackward,
  gegluBackward: addon.gegluBackward,
  activationBackward: addon.activationBackward,
  ropeBackward: addon.ropeBackward,
  embeddingBackward: addon.embeddingBackward,
};

/** Sets the size of the native thread pool (n ≤ 0: MODERNBERT_NUM_THREADS, else all cores); returns it. */
export function setNumThreads(n: number): number {
  return addon.setNumThreads(n);
}

/** What the addon detected and uses: ISA, thread count, CPU features. */
export function nativeInfo(): NativeInfo {
  return addon.info();
}

/** Measured float32 FMA throughput of this machine with the pool's threads, in GFLOP/s. */
export function measureFmaPeak(seconds = 0.3): number {
  return addon.fmaPeak(seconds);
}
