#!/usr/bin/env python3
"""Trim an AWS service model (botocore's service-2.json) to what the server's
request validator needs: operations -> input shape, and per shape its type,
members, required list and constraints. Documentation is dropped.

Usage: tools/trim_model.py path/to/service-2.json[.gz] > crates/server/model/SERVICE.json
botocore ships the models: <venv>/lib/python3*/site-packages/botocore/data/kms/2014-11-01/service-2.json.gz
"""
import gzip
import json
import sys

path = sys.argv[1]
opener = gzip.open if path.endswith(".gz") else open
with opener(path, "rt") as f:
    model = json.load(f)

ops = {name: op.get("input", {}).get("shape") for name, op in model["operations"].items()}
keep = ("type", "required", "min", "max", "pattern", "enum", "sensitive")
shapes = {}
for name, shape in model["shapes"].items():
    out = {k: shape[k] for k in keep if k in shape}
    if "members" in shape:
        out["members"] = {m: v["shape"] for m, v in shape["members"].items()}
    for k in ("member", "key", "value"):
        if k in shape:
            out[k] = shape[k]["shape"]
    shapes[name] = out

json.dump({"metadata": {"targetPrefix": model["metadata"].get("targetPrefix")},
           "operations": ops, "shapes": shapes}, sys.stdout, indent=None)
sys.stdout.write("\n")
