/** The native addon (native/*.cc, built by node-gyp at install) behind the `Kernels` interface. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dtype, Kernels, PackedLinear } from './types.js';

export interface NativeInfo {
  /** The instruction set the kernels dispatch to: 'avx512', 'avx2' or 'portable' (MODERNBERT_ISA caps it). */
  isa: string;
  /** The path gemmBf16 takes: 'amx', 'avx512bf16' or 'portable' (MODERNBERT_BF16=avx512bf16|portable caps it). */
  bf16: string;
  /** What attention does with bf16 = true: bf16 products on 'amx' or 'avx512bf16' (the Linears' path), or 'float32'. */
  bf16Attention: string;
  threads: number;
  features: Record<string, boolean>;
}

interface Addon extends Omit<Kernels, 'name' | 'packLinear' | 'unpackLinear' | 'linear'> {
  alignedFloat32Array(n: number): Float32Array;
  packWeight(W: Float32Array, N: number, K: number): Float32Array;
  unpackWeight(Wp: Float32Array, N: number, K: number): Float32Array;
  packWeightBf16(W: Float32Array, N: number, K: number): Uint16Array;
  gemmBf16(C: Float32Array, A: Float32Array, Wp: Uint16Array, bias: Float32Array | null, M: number, N: number,
    K: number, beta: 0 | 1): void;
  gemmPacked(C: Float32Array, A: Float32Array, Wp: Float32Array, bias: Float32Array | null, M: number, N: number,
    K: number, beta: 0 | 1): void;
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
  crossEntropy: addon.crossEntropy,
  adamwStep: addon.adamwStep,
  sumSquares: addon.sumSquares,
  scale: addon.scale,
  addInto: addon.addInto,
  packLinear(W: Float32Array, N: number, K: number, dtype: Dtype): PackedLinear {
    return dtype === 'bf16'
      ? { dtype, N, K, data: addon.packWeightBf16(W, N, K) }
      : { dtype, N, K, data: addon.packWeight(W, N, K) };
  },
  unpackLinear(W: PackedLinear & { dtype: 'float32' }): Float32Array {
    return addon.unpackWeight(W.data, W.N, W.K);
  },
  linear(C: Float32Array, A: Float32Array, W: PackedLinear, bias: Float32Array | null, M: number, beta: 0 | 1): void {
    if (W.dtype === 'bf16') addon.gemmBf16(C, A, W.data, bias, M, W.N, W.K, beta);
    else addon.gemmPacked(C, A, W.data, bias, M, W.N, W.K, beta);
  },
};

/**
 * A Float32Array of n zeros whose data starts on a 64-byte cache-line boundary (a view into a slightly larger
 * ArrayBuffer). Kernels read and write such buffers a whole line at a time; the model allocates its activations
 * this way.
 */
export function alignedFloat32Array(n: number): Float32Array {
  return addon.alignedFloat32Array(n);
}

/**
 * Packs a Linear weight W [N, K] (PyTorch [out, in]) once for `gemmPacked`, in the layout of the ISA
 * this process uses. The result is opaque: only gemmPacked reads it.
 */
export function packWeight(W: Float32Array, N: number, K: number): Float32Array {
  return addon.packWeight(W, N, K);
}

/** C[M,N] = beta·C + A[M,K]·Wᵀ (+ bias[N]) with Wp = packWeight(W, N, K): gemm(..., false, true, beta) without repacking W. */
export function gemmPacked(C: Float32Array, A: Float32Array, Wp: Float32Array, bias: Float32Array | null, M: number,
  N: number, K: number, beta: 0 | 1): void {
  addon.gemmPacked(C, A, Wp, bias, M, N, K, beta);
}

/** Rounds a Linear weight W [N, K] to bf16 (nearest even) and packs it once for `gemmBf16` (opaque layout). */
export function packWeightBf16(W: Float32Array, N: number, K: number): Uint16Array {
  return addon.packWeightBf16(W, N, K);
}

/**
 * C[M,N] = beta·C + bf16(A)·bf16(W)ᵀ (+ bias[N]) with Wp = packWeightBf16(W, N, K): A is rounded to bf16 on
 * the fly, products are accumulated and returned in float32. AMX where present, else AVX512-BF16, else portable.
 */
export function gemmBf16(C: Float32Array, A: Float32Array, Wp: Uint16Array, bias: Float32Array | null, M: number,
  N: number, K: number, beta: 0 | 1): void {
  addon.gemmBf16(C, A, Wp, bias, M, N, K, beta);
}

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
