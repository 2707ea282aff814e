{
  "targets": [
    {
      "target_name": "modernbert",
      "sources": [
        "native/binding.cc",
        "native/cpu_features.cc",
        "native/threadpool.cc",
        "native/gemm.cc",
        "native/gemm_bf16.cc",
        "native/attention.cc",
        "native/elementwise.cc",
        "native/optim.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions", "-O2"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
