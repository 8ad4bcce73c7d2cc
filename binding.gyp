{
  "targets": [
    {
      "target_name": "hiberlab_native",
      "sources": ["native/module.c", "native/host-memory.c", "native/crc32.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
