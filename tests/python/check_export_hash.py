#!/usr/bin/python3
"""tools/export_inception.py checks the SHA-256 prefix a release file's name publishes
(NAME-<8 hex>.pth, torch.hub's convention): a file whose content does not match is
refused with both digests; a matching name passes the check (and then fails on the
missing weights, with another message); a name without a prefix is not checked.

usage: /usr/bin/python3 tests/python/check_export_hash.py WORK_DIR
"""

import hashlib
import os
import subprocess
import sys

import torch

work = sys.argv[1]
os.makedirs(work, exist_ok=True)
tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                    "export_inception.py")


def export(path):
    r = subprocess.run(["/usr/bin/python3", tool, "--weights", path, "--out",
                        os.path.join(work, "x.pt")], capture_output=True, text=True)
    return r.returncode, r.stderr


plain = os.path.join(work, "weights.pth")
torch.save({"unrelated": torch.zeros(1)}, plain)
digest = hashlib.sha256(open(plain, "rb").read()).hexdigest()

wrong = os.path.join(work, "pt_inception-2015-12-05-6726825d.pth")
os.replace(plain, wrong)
code, err = export(wrong)
assert code != 0 and "does not start with the 6726825d its name publishes" in err \
    and digest in err, err

right = os.path.join(work, "pt_inception-2015-12-05-%s.pth" % digest[:8])
os.replace(wrong, right)
code, err = export(right)
assert code != 0 and "its name publishes" not in err, err  # past the check: wrong keys

unnamed = os.path.join(work, "inception.pth")
os.replace(right, unnamed)
code, err = export(unnamed)
assert code != 0 and "its name publishes" not in err, err
print("export_inception.py hash-prefix check: ok")
