// Node-API entry: argument checks and the one table that maps JavaScript names to kernels.
// Every buffer is a typed array the caller owns; sizes are checked here so a wrong call throws
// a JavaScript error instead of touching memory out of bounds.
#include <napi.h>

#include <cstdint>
#include <string>

#include "cpu_features.h"
#include "kernels.h"
#include "threadpool.h"

namespace {

template <typename T, napi_typedarray_type Type>
T* arrayArg(const Napi::CallbackInfo& info, size_t index, const char* name, size_t minLength, bool optional = false) {
  Napi::Env env = info.Env();
  Napi::Value v = info[index];
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Type) {
    Napi::TypeError::New(env, std::string("argument '") + name + "' must be a " +
                                  (Type == napi_float32_array ? "Float32Array" : "Int32Array"))
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (arr.ElementLength() < minLength) {
    Napi::RangeError::New(env, std::string("argument '") + name + "' has " + std::to_string(arr.ElementLength()) +
                                   " elements, needs at least " + std::to_string(minLength))
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return arr.Data();
}

float* f32(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n, bool optional = false) {
  return arrayArg<float, napi_float32_array>(info, i, name, n, optional);
}
int32_t* i32(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  return arrayArg<int32_t, napi_int32_array>(info, i, name, n);
}

int intArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string("argument '") + name + "' must be a number").ThrowAsJavaScriptException();
    return 0;
  }
  int v = info[i].As<Napi::Number>().Int32Value();
  if (v < 0) {
    Napi::RangeError::New(info.Env(), std::string("argument '") + name + "' must be >= 0").ThrowAsJavaScriptException();
    return 0;
  }
  return v;
}

#define CHECK_ENV(env) \
  if ((env).IsExceptionPending()) return (env).Undefined()

mb::Activation actArg(const Napi::CallbackInfo& info, size_t i) {
  int a = info[i].As<Napi::Number>().Int32Value();
  if (a < 0 || a > int(mb::Activation::Identity)) {
    Napi::RangeError::New(info.Env(), "unknown activation code").ThrowAsJavaScriptException();
    return mb::Activation::Identity;
  }
  return mb::Activation(a);
}

// gemm(C, A, B, bias|null, M, N, K, transA, transB, beta)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int M = intArg(info, 4, "M"), N = intArg(info, 5, "N"), K = intArg(info, 6, "K");
  CHECK_ENV(env);
  float* C = f32(info, 0, "C", size_t(M) * N);
  const float* A = f32(info, 1, "A", size_t(M) * K);
  const float* B = f32(info, 2, "B", size_t(K) * N);
  const float* bias = f32(info, 3, "bias", N, true);
  CHECK_ENV(env);
  const bool transA = info[7].ToBoolean(), transB = info[8].ToBoolean();
  const float beta = info[9].ToNumber().FloatValue();
  mb::gemm(C, A, B, bias, M, N, K, transA, transB, beta);
  return env.Undefined();
}

// A zeroed typed array of n elements whose data starts on a 64-byte boundary, viewing an ArrayBuffer 64 bytes
// longer. Node's own buffers start 16 bytes past one, so every AVX-512 load and store of a row straddles two
// cache lines: aligned output costs GEMMs 3-5 % less time at the model's shapes (measured).
template <typename T>
Napi::TypedArrayOf<T> alignedArray(Napi::Env env, size_t n) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, n * sizeof(T) + 64);
  const size_t offset = (64 - reinterpret_cast<uintptr_t>(buffer.Data()) % 64) % 64;
  return Napi::TypedArrayOf<T>::New(env, n, buffer, offset);
}

// alignedFloat32Array(n) -> Float32Array of n zeros on a cache-line boundary.
Napi::Value AlignedFloat32Array(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;  // NaN fails both tests below
  if (!(n >= 0 && n <= double(SIZE_MAX / sizeof(float) - 16))) {
    Napi::RangeError::New(env, "argument 'n' must be a number of elements >= 0").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return alignedArray<float>(env, size_t(n));
}

// packWeight(W, N, K) -> Float32Array: W [N, K] packed for gemmPacked (layout of the active ISA).
Napi::Value PackWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int N = intArg(info, 1, "N"), K = intArg(info, 2, "K");
  CHECK_ENV(env);
  const float* W = f32(info, 0, "W", size_t(N) * K);
  CHECK_ENV(env);
  Napi::Float32Array packed = alignedArray<float>(env, mb::packed_weight_size(N, K));
  mb::pack_weight(packed.Data(), W, N, K);
  return packed;
}

// unpackWeight(Wp, N, K) -> Float32Array: the W [N, K] that packWeight(W, N, K) packed, exactly.
Napi::Value UnpackWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int N = intArg(info, 1, "N"), K = intArg(info, 2, "K");
  CHECK_ENV(env);
  const float* Wp = f32(info, 0, "Wp", mb::packed_weight_size(N, K));
  CHECK_ENV(env);
  if (info[0].As<Napi::Float32Array>().ElementLength() != mb::packed_weight_size(N, K)) {
    Napi::RangeError::New(env, "argument 'Wp' is not packWeight(W, N, K) for this N and K").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Float32Array W = Napi::Float32Array::New(env, size_t(N) * K);
  mb::unpack_weight(W.Data(), Wp, N, K);
  return W;
}

// gemmPacked(C, A, Wp, bias|null, M, N, K, beta): gemm(C, A, W, bias, M, N, K, false, true, beta), Wp = packWeight(W).
Napi::Value GemmPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int M = intArg(info, 4, "M"), N = intArg(info, 5, "N"), K = intArg(info, 6, "K");
  CHECK_ENV(env);
  float* C = f32(info, 0, "C", size_t(M) * N);
  const float* A = f32(info, 1, "A", size_t(M) * K);
  const float* Wp = f32(info, 2, "Wp", mb::packed_weight_size(N, K));
  const float* bias = f32(info, 3, "bias", N, true);
  CHECK_ENV(env);
  if (info[2].As<Napi::Float32Array>().ElementLength() != mb::packed_weight_size(N, K)) {
    Napi::RangeError::New(env, "argument 'Wp' is not packWeight(W, N, K) for this N and K").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  mb::gemm_packed(C, A, Wp, bias, M, N, K, info[7].ToNumber().FloatValue());
  return env.Undefined();
}

// packWeightBf16(W, N, K) -> Uint16Array: W [N, K] rounded to bf16 and packed for gemmBf16.
Napi::Value PackWeightBf16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int N = intArg(info, 1, "N"), K = intArg(info, 2, "K");
  CHECK_ENV(env);
  const float* W = f32(info, 0, "W", size_t(N) * K);
  CHECK_ENV(env);
  Napi::Uint16Array packed = alignedArray<uint16_t>(env, mb::packed_weight_bf16_size(N, K));
  mb::pack_weight_bf16(packed.Data(), W, N, K);
  return packed;
}

// gemmBf16(C, A, Wp, bias|null, M, N, K, beta): C = beta*C + bf16(A)·bf16(W)ᵀ + bias, Wp = packWeightBf16(W).
Napi::Value GemmBf16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int M = intArg(info, 4, "M"), N = intArg(info, 5, "N"), K = intArg(info, 6, "K");
  CHECK_ENV(env);
  float* C = f32(info, 0, "C", size_t(M) * N);
  const float* A = f32(info, 1, "A", size_t(M) * K);
  const float* bias = f32(info, 3, "bias", N, true);
  CHECK_ENV(env);
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array ||
      info[2].As<Napi::Uint16Array>().ElementLength() != mb::packed_weight_bf16_size(N, K)) {
    Napi::TypeError::New(env, "argument 'Wp' must be packWeightBf16(W, N, K) for this N and K").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  mb::gemm_bf16(C, A, info[2].As<Napi::Uint16Array>().Data(), bias, M, N, K, info[7].ToNumber().FloatValue());
  return env.Undefined();
}

// layernorm(out, x, w, b|null, T, D, eps, mean|null, rstd|null)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 4, "T"), D = intArg(info, 5, "D");
  CHECK_ENV(env);
  float* out = f32(info, 0, "out", size_t(T) * D);
  const float* x = f32(info, 1, "x", size_t(T) * D);
  const float* w = f32(info, 2, "weight", D);
  const float* b = f32(info, 3, "bias", D, true);
  float* mean = f32(info, 7, "mean", T, true);
  float* rstd = f32(info, 8, "rstd", T, true);
  CHECK_ENV(env);
  mb::layernorm(out, x, w, b, T, D, info[6].ToNumber().FloatValue(), mean, rstd);
  return env.Undefined();
}

// geglu(out, x, T, I, act)
Napi::Value Geglu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 2, "T"), I = intArg(info, 3, "I");
  CHECK_ENV(env);
  float* out = f32(info, 0, "out", size_t(T) * I);
  const float* x = f32(info, 1, "x", size_t(T) * 2 * I);
  const mb::Activation act = actArg(info, 4);
  CHECK_ENV(env);
  mb::geglu(out, x, T, I, act);
  return env.Undefined();
}

// activation(out, x, n, act)
Napi::Value Activation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = intArg(info, 2, "n");
  CHECK_ENV(env);
  float* out = f32(info, 0, "out", n);
  const float* x = f32(info, 1, "x", n);
  const mb::Activation act = actArg(info, 3);
  CHECK_ENV(env);
  mb::activation(out, x, n, act);
  return env.Undefined();
}

// embedding(out, table, ids, T, D, vocab)
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 3, "T"), D = intArg(info, 4, "D"), V = intArg(info, 5, "vocab");
  CHECK_ENV(env);
  float* out = f32(info, 0, "out", size_t(T) * D);
  const float* table = f32(info, 1, "table", size_t(V) * D);
  const int32_t* ids = i32(info, 2, "ids", T);
  CHECK_ENV(env);
  for (int t = 0; t < T; t++)
    if (ids[t] < 0 || ids[t] >= V) {
      Napi::RangeError::New(env, "token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                     " is outside the vocabulary [0, " + std::to_string(V) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  mb::embedding(out, table, ids, T, D);
  return env.Undefined();
}

// rope(qkv, pos, cos, sin, T, H, Dh, maxPos)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 4, "T"), H = intArg(info, 5, "H"), Dh = intArg(info, 6, "Dh"),
            P = intArg(info, 7, "maxPos");
  CHECK_ENV(env);
  float* qkv = f32(info, 0, "qkv", size_t(T) * 3 * H * Dh);
  const int32_t* pos = i32(info, 1, "pos", T);
  const float* c = f32(info, 2, "cos", size_t(P) * (Dh / 2));
  const float* s = f32(info, 3, "sin", size_t(P) * (Dh / 2));
  CHECK_ENV(env);
  for (int t = 0; t < T; t++)
    if (pos[t] < 0 || pos[t] >= P) {
      Napi::RangeError::New(env, "position " + std::to_string(pos[t]) + " is outside the RoPE table [0, " +
                                     std::to_string(P) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  mb::rope(qkv, pos, c, s, T, H, Dh);
  return env.Undefined();
}

// attention(out, lse|null, qkv, cuSeqlens, numSeqs, H, Dh, window, scale, bf16)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int S = intArg(info, 4, "numSeqs"), H = intArg(info, 5, "H"), Dh = intArg(info, 6, "Dh");
  CHECK_ENV(env);
  const int32_t* cu = i32(info, 3, "cuSeqlens", size_t(S) + 1);
  CHECK_ENV(env);
  if (cu[0] != 0) {
    Napi::RangeError::New(env, "cuSeqlens must start at 0").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (int s = 0; s < S; s++)
    if (cu[s + 1] < cu[s]) {
      Napi::RangeError::New(env, "cuSeqlens must be non-decreasing").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  const int T = cu[S];
  float* out = f32(info, 0, "out", size_t(T) * H * Dh);
  float* lse = f32(info, 1, "lse", size_t(H) * T, true);
  const float* qkv = f32(info, 2, "qkv", size_t(T) * 3 * H * Dh);
  CHECK_ENV(env);
  if (!info[9].IsBoolean()) {
    Napi::TypeError::New(env, "argument 'bf16' must be a boolean").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int window = info[7].ToNumber().Int32Value();
  mb::attention(out, lse, qkv, cu, S, H, Dh, window, info[8].ToNumber().FloatValue(), info[9].As<Napi::Boolean>().Value());
  return env.Undefined();
}

// cuSeqlens[0..S] must start at 0 and never decrease; returns T = cuSeqlens[S], or -1 with an exception pending.
int checkCuSeqlens(Napi::Env env, const int32_t* cu, int S) {
  if (cu[0] != 0) {
    Napi::RangeError::New(env, "cuSeqlens must start at 0").ThrowAsJavaScriptException();
    return -1;
  }
  for (int s = 0; s < S; s++)
    if (cu[s + 1] < cu[s]) {
      Napi::RangeError::New(env, "cuSeqlens must be non-decreasing").ThrowAsJavaScriptException();
      return -1;
    }
  return cu[S];
}

// attentionBackward(dqkv, dout, qkv, out, lse, cuSeqlens, numSeqs, H, Dh, window, scale)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int S = intArg(info, 6, "numSeqs"), H = intArg(info, 7, "H"), Dh = intArg(info, 8, "Dh");
  CHECK_ENV(env);
  const int32_t* cu = i32(info, 5, "cuSeqlens", size_t(S) + 1);
  CHECK_ENV(env);
  const int T = checkCuSeqlens(env, cu, S);
  CHECK_ENV(env);
  float* dqkv = f32(info, 0, "dqkv", size_t(T) * 3 * H * Dh);
  const float* dout = f32(info, 1, "dout", size_t(T) * H * Dh);
  const float* qkv = f32(info, 2, "qkv", size_t(T) * 3 * H * Dh);
  const float* out = f32(info, 3, "out", size_t(T) * H * Dh);
  const float* lse = f32(info, 4, "lse", size_t(H) * T);
  CHECK_ENV(env);
  const int window = info[9].ToNumber().Int32Value();
  mb::attention_backward(dqkv, dout, qkv, out, lse, cu, S, H, Dh, window, info[10].ToNumber().FloatValue());
  return env.Undefined();
}

// layernormBackward(dx, dw, db|null, dout, x, w, mean, rstd, T, D)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 8, "T"), D = intArg(info, 9, "D");
  CHECK_ENV(env);
  float* dx = f32(info, 0, "dx", size_t(T) * D);
  float* dw = f32(info, 1, "dw", D);
  float* db = f32(info, 2, "db", D, true);
  const float* dout = f32(info, 3, "dout", size_t(T) * D);
  const float* x = f32(info, 4, "x", size_t(T) * D);
  const float* w = f32(info, 5, "weight", D);
  const float* mean = f32(info, 6, "mean", T);
  const float* rstd = f32(info, 7, "rstd", T);
  CHECK_ENV(env);
  mb::layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, T, D);
  return env.Undefined();
}

// gegluBackward(dx, dout, x, T, I, act)
Napi::Value GegluBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 3, "T"), I = intArg(info, 4, "I");
  CHECK_ENV(env);
  float* dx = f32(info, 0, "dx", size_t(T) * 2 * I);
  const float* dout = f32(info, 1, "dout", size_t(T) * I);
  const float* x = f32(info, 2, "x", size_t(T) * 2 * I);
  const mb::Activation act = actArg(info, 5);
  CHECK_ENV(env);
  mb::geglu_backward(dx, dout, x, T, I, act);
  return env.Undefined();
}

// activationBackward(dx, dout, x, n, act)
Napi::Value ActivationBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = intArg(info, 3, "n");
  CHECK_ENV(env);
  float* dx = f32(info, 0, "dx", n);
  const float* dout = f32(info, 1, "dout", n);
  const float* x = f32(info, 2, "x", n);
  const mb::Activation act = actArg(info, 4);
  CHECK_ENV(env);
  mb::activation_backward(dx, dout, x, n, act);
  return env.Undefined();
}

// ropeBackward(dqkv, pos, cos, sin, T, H, Dh, maxPos)
Napi::Value RopeBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 4, "T"), H = intArg(info, 5, "H"), Dh = intArg(info, 6, "Dh"),
            P = intArg(info, 7, "maxPos");
  CHECK_ENV(env);
  float* dqkv = f32(info, 0, "dqkv", size_t(T) * 3 * H * Dh);
  const int32_t* pos = i32(info, 1, "pos", T);
  const float* c = f32(info, 2, "cos", size_t(P) * (Dh / 2));
  const float* s = f32(info, 3, "sin", size_t(P) * (Dh / 2));
  CHECK_ENV(env);
  for (int t = 0; t < T; t++)
    if (pos[t] < 0 || pos[t] >= P) {
      Napi::RangeError::New(env, "position " + std::to_string(pos[t]) + " is outside the RoPE table [0, " +
                                     std::to_string(P) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  mb::rope_backward(dqkv, pos, c, s, T, H, Dh);
  return env.Undefined();
}

// embeddingBackward(dtable, dout, ids, T, D, vocab, paddingIdx); paddingIdx < 0 skips nothing.
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int T = intArg(info, 3, "T"), D = intArg(info, 4, "D"), V = intArg(info, 5, "vocab");
  CHECK_ENV(env);
  float* dtable = f32(info, 0, "dtable", size_t(V) * D);
  const float* dout = f32(info, 1, "dout", size_t(T) * D);
  const int32_t* ids = i32(info, 2, "ids", T);
  CHECK_ENV(env);
  const int paddingIdx = info[6].ToNumber().Int32Value();
  for (int t = 0; t < T; t++)
    if (ids[t] < 0 || ids[t] >= V) {
      Napi::RangeError::New(env, "token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                     " is outside the vocabulary [0, " + std::to_string(V) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  mb::embedding_backward(dtable, dout, ids, T, D, paddingIdx);
  return env.Undefined();
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  double seconds = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0.2;
  return Napi::Number::New(info.Env(), mb::fma_peak_gflops(seconds));
}

// crossEntropy(logits, targets, N, C, grad | null, ignoreIndex, scale) -> sum of the counted rows' losses
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int N = intArg(info, 2, "N"), C = intArg(info, 3, "C");
  CHECK_ENV(env);
  const float* logits = f32(info, 0, "logits", size_t(N) * C);
  const int32_t* targets = i32(info, 1, "targets", N);
  float* grad = f32(info, 4, "grad", size_t(N) * C, true);
  CHECK_ENV(env);
  const int ignoreIndex = info[5].ToNumber().Int32Value();
  for (int n = 0; n < N; n++)
    if (targets[n] != ignoreIndex && (targets[n] < 0 || targets[n] >= C)) {
      Napi::RangeError::New(env, "target " + std::to_string(targets[n]) + " at row " + std::to_string(n) + " is outside [0, " +
                                     std::to_string(C) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  return Napi::Number::New(env, mb::cross_entropy(grad, logits, targets, N, C, ignoreIndex, info[6].ToNumber().FloatValue()));
}

// adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step, stable)
Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = intArg(info, 4, "n"), step = intArg(info, 10, "step");
  CHECK_ENV(env);
  float* p = f32(info, 0, "p", n);
  const float* g = f32(info, 1, "g", n);
  float* m = f32(info, 2, "m", n);
  float* v = f32(info, 3, "v", n);
  CHECK_ENV(env);
  if (step < 1) {
    Napi::RangeError::New(env, "argument 'step' must be >= 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const auto num = [&](size_t i) { return info[i].ToNumber().DoubleValue(); };
  mb::adamw_step(p, g, m, v, n, num(5), num(6), num(7), num(8), num(9), step, info[11].ToBoolean().Value());
  return env.Undefined();
}

// sumSquares(x, n) -> Σ x²
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = intArg(info, 1, "n");
  CHECK_ENV(env);
  const float* x = f32(info, 0, "x", n);
  CHECK_ENV(env);
  return Napi::Number::New(env, mb::sum_squares(x, n));
}

// scale(x, n, factor)
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = intArg(info, 1, "n");
  CHECK_ENV(env);
  float* x = f32(info, 0, "x", n);
  CHECK_ENV(env);
  mb::scale(x, n, info[2].ToNumber().DoubleValue());
  return env.Undefined();
}

// addInto(y, x, n): y += x
Napi::Value AddInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = intArg(info, 2, "n");
  CHECK_ENV(env);
  float* y = f32(info, 0, "y", n);
  CHECK_ENV(env);
  const float* x = f32(info, 1, "x", n);
  CHECK_ENV(env);
  mb::add_into(y, x, n);
  return env.Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  mb::set_num_threads(info[0].ToNumber().Int32Value());
  return Napi::Number::New(info.Env(), mb::num_threads());
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const mb::CpuFeatures& f = mb::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", mb::isa_name(mb::active_isa()));
  o.Set("threads", mb::num_threads());
  o.Set("bf16", mb::bf16_path_name());
  o.Set("bf16Attention", mb::bf16_attention_path_name());
  Napi::Object feats = Napi::Object::New(env);
  feats.Set("avx2", f.avx2);
  feats.Set("fma", f.fma);
  feats.Set("avx512f", f.avx512f);
  feats.Set("avx512bw", f.avx512bw);
  feats.Set("avx512vl", f.avx512vl);
  feats.Set("avx512bf16", f.avx512bf16);
  feats.Set("amxBf16", f.amxBf16);
  o.Set("features", feats);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("alignedFloat32Array", Napi::Function::New(env, AlignedFloat32Array));
  exports.Set("packWeight", Napi::Function::New(env, PackWeight));
  exports.Set("gemmPacked", Napi::Function::New(env, GemmPacked));
  exports.Set("unpackWeight", Napi::Function::New(env, UnpackWeight));
  exports.Set("packWeightBf16", Napi::Function::New(env, PackWeightBf16));
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16));
  exports.Set("layernorm", Napi::Function::New(env, LayerNorm));
  exports.Set("geglu", Napi::Function::New(env, Geglu));
  exports.Set("activation", Napi::Function::New(env, Activation));
  exports.Set("embedding", Napi::Function::New(env, Embedding));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
  exports.Set("layernormBackward", Napi::Function::New(env, LayerNormBackward));
  exports.Set("gegluBackward", Napi::Function::New(env, GegluBackward));
  exports.Set("activationBackward", Napi::Function::New(env, ActivationBackward));
  exports.Set("ropeBackward", Napi::Function::New(env, RopeBackward));
  exports.Set("embeddingBackward", Napi::Function::New(env, EmbeddingBackward));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy));
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("scale", Napi::Function::New(env, Scale));
  exports.Set("addInto", Napi::Function::New(env, AddInto));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(modernbert, Init)
