#!/usr/bin/env python3
"""pyx12 4.0.0 on one X12 file, timed, for scripts/bench.

usage: pyx12_bench.py raw|reader|validate FILE
  raw       pyx12.rawx12file.RawX12File: raw segment strings
  reader    pyx12.x12file.X12Reader: segment objects with envelope/count checks
  validate  pyx12.x12n_document: full implementation-guide validation
Prints one JSON line like bench_837: bytes, seconds, MB/s, peak RSS.
"""
import io
import json
import logging
import os
import resource
import sys
import time

import pyx12.params
import pyx12.rawx12file
import pyx12.x12file
import pyx12.x12n_document

mode, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="latin-1").read()
logging.getLogger("pyx12").setLevel(logging.CRITICAL)
start = time.perf_counter()
segments = 0
errors = 0
if mode == "raw":
    for _ in pyx12.rawx12file.RawX12File(io.StringIO(text)):
        segments += 1
elif mode == "reader":
    for _ in pyx12.x12file.X12Reader(io.StringIO(text)):
        segments += 1
elif mode == "validate":
    class Count(logging.Handler):
        def emit(self, rec):
            global errors
            errors += 1
    log = logging.getLogger("pyx12")
    log.setLevel(logging.ERROR)
    log.addHandler(Count(logging.ERROR))
    pyx12.x12n_document.x12n_document(param=pyx12.params.params(), src_file=io.StringIO(text),
                                      fd_997=None, fd_html=None, map_path=None)
else:
    sys.exit(f"unknown mode {mode}")
secs = time.perf_counter() - start
size = os.path.getsize(path)
print(json.dumps({"what": f"pyx12 {mode}", "bytes": size, "seconds": round(secs, 3),
                  "mb_per_s": round(size / secs / 1e6, 2), "segments": segments, "errors": errors,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
