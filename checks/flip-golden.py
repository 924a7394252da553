"""Changes one hex digit of the first register of PLATFORM in a golden measurements file, so
checks/offline.sh can show that a golden check fails on a changed value.

    python3 checks/flip-golden.py checks/golden/snp-qemu.json snp
"""

import json
import sys

path, platform = sys.argv[1], sys.argv[2]
with open(path) as f:
    docs = json.load(f)
if isinstance(docs, dict):
    docs = [docs]
doc = next(d for d in docs if d["platform"] == platform)
reg = doc["registers"][0]
reg["value"] = ("1" if reg["value"][0] == "0" else "0") + reg["value"][1:]
with open(path, "w") as f:
    json.dump(docs, f, indent=2)
print(f"{path}: changed {platform} {reg['name']} {reg['bank']}")
