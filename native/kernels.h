// The native kernel API: plain functions over caller-owned float buffers.
// Shapes are given in comments as [rows, cols], row-major, contiguous.
// Every kernel has a TypeScript reference with the same meaning in src/kernels/reference.ts.
#pragma once
#include <cstdint>
#include <cstddef>

namespace mb {

enum class Activation : int { GeluErf = 0, GeluTanh = 1, Silu = 2, Relu = 3, Identity = 4 };

// C[M,N] = beta*C + op(A)[M,K] · op(B)[K,N] (+ bias[N] when bias != nullptr).
// op(A) = A [M,K] or, with transA, Aᵀ where A is [K,M]; op(B) = B [K,N] or, with transB, Bᵀ where B is [N,K].
// transB = true is PyTorch's Linear: y = x Wᵀ with W [out, in]. beta is 0 or 1 (1 accumulates).
void gemm(float* C, const float* A, const float* B, const float* bias,
          int M, int N, int K, bool transA, bool transB, float beta);

// out[T,D] = LayerNorm(x[T,D]) * w[D] + b[D] (b may be null). mean/rstd [T] are written when non-null.
void layernorm(float* out, const float* x, const float* w, const float* b, int T, int D, float eps,
               float* mean, float* rstd);

// out[T,I] = act(x[T, 0:I]) * x[T, I:2I]   (x is [T, 2I], the Wi output)
void geglu(float* out, const float* x, int T, int I, Activation act);

// out[n] = act(x[n])  (in place allowed)
void activation(float* out, const float* x, int64_t n, Activation act);

// out[T,D] = table[ids[t], :]
void embedding(float* out, const float* table, const int32_t* ids, int T, int D);

// Rotate-half RoPE in place on the q and k parts of qkv[T, 3, H, Dh].
// cos/sin are [maxPos, Dh/2] tables (float32, as the reference computes them); pos[T] per token.
void rope(float* qkv, const int32_t* pos, const float* cos, const float* sin, int T, int H, int Dh);

// Variable-length attention over packed sequences, tiled online softmax (never T×T).
// qkv [T, 3, H, Dh] (after RoPE); out [T, H*Dh]; cuSeqlens [numSeqs+1].
// window < 0: global; else token i sees j iff |i-j| <= window (within its own sequence).
// lse [H, T] (log-sum-exp of the scaled scores) is written when non-null (needed by the backward).
// bf16 (inference in dtype bf16): both products take bf16 operands (Q·scale·log2 e, K, V and the softmax
// numerators P, rounded to nearest even) with float32 accumulation, on the bf16 path gemm_bf16 uses (AMX or
// AVX512-BF16: bf16_attention_path_name()); without one, or with bf16 = false, the float32 kernel.
void attention(float* out, float* lse, const float* qkv, const int32_t* cuSeqlens, int numSeqs,
               int H, int Dh, int window, float scale, bool bf16);
// "amx", "avx512bf16" or "float32": what attention(..., bf16 = true) runs.
const char* bf16_attention_path_name();

// Backward of `attention` (FlashAttention-2: P recomputed per tile from the saved lse, D_i = rowsum(dO∘O)).
// dout, out [T, H*Dh]; lse [H, T] from the forward; writes dq, dk, dv into dqkv [T, 3, H, Dh] (overwrites).
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse,
                        const int32_t* cuSeqlens, int numSeqs, int H, int Dh, int window, float scale);

// dx[T,D] = d LayerNorm / dx; dw[D] += Σ_t dout·x̂, db[D] += Σ_t dout (db may be null); mean/rstd from the forward.
void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int T, int D);

// Backward of geglu: dx[T,2I] (overwrites) from dout[T,I] and the forward's input x[T,2I].
void geglu_backward(float* dx, const float* dout, const float* x, int T, int I, Activation act);

// dx[n] = dout[n] · act'(x[n])  (dx may alias dout)
void activation_backward(float* dx, const float* dout, const float* x, int64_t n, Activation act);

// Backward of rope: rotates the q and k gradients in dqkv[T, 3, H, Dh] back by -angle, in place.
void rope_backward(float* dqkv, const int32_t* pos, const float* cos, const float* sin, int T, int H, int Dh);

// y[i] += x[i] (the backward's residual stream gathering a branch's gradient).
void add_into(float* y, const float* x, int64_t n);

// dtable[ids[t], :] += dout[t, :] for every t with ids[t] != paddingIdx (paddingIdx < 0: none skipped).
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int T, int D, int paddingIdx);


// Prepacked weights for the forward Linear (gemm with transB = true and a fixed W [N, K]): pack_weight
// writes W into packed_weight_size(N, K) floats in the layout the active ISA's microkernel reads, and
// gemm_packed(C, A, Wp, ...) = gemm(C, A, W, ..., transA = false, transB = true, beta).
size_t packed_weight_size(int N, int K);
void pack_weight(float* Wp, const float* W, int N, int K);
// W [N, K] back from pack_weight's layout, exactly.
void unpack_weight(float* W, const float* Wp, int N, int K);
void gemm_packed(float* C, const float* A, const float* Wp, const float* bias, int M, int N, int K, float beta);

// bf16 Linear: C[M,N] = beta*C + bf16(A)[M,K] · bf16(W)ᵀ (+ bias[N]), float32 accumulation and output.
// pack_weight_bf16 rounds W [N, K] to bf16 into packed_weight_bf16_size(N, K) values (AMX tile order);
// A is rounded on the fly. Runs on AMX, else AVX512-BF16, else portable float32 loops (bf16_path_name()).
size_t packed_weight_bf16_size(int N, int K);
void pack_weight_bf16(uint16_t* Wp, const float* W, int N, int K);
void gemm_bf16(float* C, const float* A, const uint16_t* Wp, const float* bias, int M, int N, int K, float beta);
const char* bf16_path_name();

// Cross-entropy over rows of logits [N, C] against targets [N] (each in [0, C) or ignoreIndex): returns the sum of
// the counted rows' losses; with grad (which may alias logits), writes (softmax − onehot)·scale into counted rows
// and zeros into ignored ones.
double cross_entropy(float* grad, const float* logits, const int32_t* targets, int N, int C, int ignoreIndex,
                     float scale);

// One AdamW update of a tensor's n values, in place (Adam's t = step ≥ 1): m ← β1·m + (1−β1)·g,
// v ← β2·v + (1−β2)·g²; with `stable` (StableAdamW) the rate is divided by max(1, sqrt(mean(g² / max(v̂, ε²))));
// then p ← p·(1 − lr_t·weightDecay) − (lr_t / bc1)·m / (sqrt(v / bc2) + ε).
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weightDecay, int step, bool stable);

// Σ x[i]² in double (the gradient's global norm squared), and x[i] ← x[i]·factor (gradient averaging, clipping).
double sum_squares(const float* x, int64_t n);
void scale(float* x, int64_t n, double factor);

// Measured float32 FMA throughput (widest FMA the active ISA has) of this machine with the pool's threads, in GFLOP/s.
double fma_peak_gflops(double seconds);

}  // namespace mb
