{
  "targets": [
    {
      "target_name": "tsray_arena",
      "sources": ["native/arena.cc"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "tsray_process",
      "sources": ["native/process.cc"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
