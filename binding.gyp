{
  "targets": [
    {
      "target_name": "hostmem",
      "sources": ["native/hostmem.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
