#!/usr/bin/env python3
"""The tests' bridge to pyx12 4.0.0, the independent X12 validator.

Validates every file named on the command line in this one process (pyx12
loads its maps once per file type, so batching saves most of its start-up)
and prints one JSON object per file:

  {"file": ..., "status": "OK"|"FAIL"|"ERROR", "errors": [...],
   "counts": {"segments": n, "isa": n, "gs": n, "st": n, "clm": n, "clp": n}
             or null when pyx12's reader could not read the file}

"counts" come from pyx12's raw segment reader, so the Rust tests can check
that our reader sees the same structure. Exit status: 0 when it ran (whatever
the verdicts), 2 when pyx12 is missing: the tests then fail loudly, they
never skip.
"""
import io
import json
import logging
import re
import sys

try:
    import pyx12
    import pyx12.params
    import pyx12.rawx12file
    import pyx12.x12n_document
except ImportError:
    print("pyx12 is not installed: run scripts/test (it pip-installs pyx12==4.0.0)", file=sys.stderr)
    sys.exit(2)

if pyx12.__version__ != "4.0.0":
    print(f"pyx12 {pyx12.__version__} found, 4.0.0 expected", file=sys.stderr)
    sys.exit(2)

ISA_SEP_POS = [3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.msgs = []

    def emit(self, rec):
        self.msgs.append(rec.getMessage().replace("No current segment in error_handler. ", ""))


def precheck(text):
    if not text.startswith("ISA"):
        return "file does not start with 'ISA'"
    if len(text) < 106:
        return "file shorter than one ISA segment"
    e = text[3]
    if [i for i, c in enumerate(text[:106]) if c == e] != ISA_SEP_POS:
        return "ISA is not the fixed-width 106-character form"
    return None


def counts(text):
    c = {"segments": 0, "isa": 0, "gs": 0, "st": 0, "clm": 0, "clp": 0}
    sep = text[3]
    try:
        for seg in pyx12.rawx12file.RawX12File(io.StringIO(text)):
            c["segments"] += 1
            if seg.startswith("ISA") and len(seg) > 3:
                sep = seg[3]
            key = seg.split(sep, 1)[0].strip().lower()
            if key in c:
                c[key] += 1
    except Exception:
        return None
    return c


def validate(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    errs = []
    m = re.search(rb"[\x80-\xff]", raw)
    if m:
        errs.append(f"non-ASCII byte at offset {m.start()}")
    text = raw.decode("latin-1")
    why = precheck(text)
    if why:
        return {"file": path, "status": "ERROR", "errors": [why], "counts": None}
    log = logging.getLogger("pyx12")
    log.propagate = False
    log.setLevel(logging.ERROR)
    h = Collect()
    log.addHandler(h)
    crash = None
    try:
        pyx12.x12n_document.x12n_document(param=pyx12.params.params(), src_file=io.StringIO(text),
                                          fd_997=None, fd_html=None, map_path=None)
    except Exception as ex:
        crash = f"{type(ex).__name__}: {ex}"
    finally:
        log.removeHandler(h)
    errs += [m for m in h.msgs if not m.startswith("Failed to create")]
    status = "ERROR" if crash else ("FAIL" if errs else "OK")
    if crash:
        errs.append(crash)
    return {"file": path, "status": status, "errors": errs, "counts": counts(text)}


for path in sys.argv[1:]:
    try:
        result = validate(path)
    except OSError as ex:
        result = {"file": path, "status": "ERROR", "errors": [str(ex)], "counts": None}
    print(json.dumps(result), flush=True)
