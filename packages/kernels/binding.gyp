{
  "targets": [
    {
      "target_name": "mnemo_cpu",
      "sources": [
        "native/cpu/addon.cc",
        "native/cpu/dense.cc",
        "native/cpu/dense_adamw.cc",
        "native/cpu/elementwise.cc",
        "native/cpu/embedding_bag.cc",
        "native/cpu/fused.cc",
        "native/cpu/fused_napi.cc",
        "native/cpu/pk_backward.cc",
        "native/cpu/pk_topk.cc",
        "native/cpu/value_store.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2", "-O1"],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O1"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
      }
    }
  ]
}
