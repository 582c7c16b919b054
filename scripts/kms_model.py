#!/usr/bin/env python3
"""The KMS service model ferrokms embeds, made from botocore's.

ferrokms validates every KMS request against AWS's own service model
(crates/server/model/kms.json, read by crates/server/src/validate.rs). That
file is botocore's `kms/2014-11-01/service-2.json` with the documentation,
HTTP bindings, error lists and output-only metadata removed: each operation
maps to its input shape, and each shape keeps only what validation and the
drift test read (type, required, pattern, min, max, enum, sensitive and the
names of member/key/value shapes).

    python3 scripts/kms_model.py            # rewrite the embedded model from the
                                            # botocore importable here
    python3 scripts/kms_model.py --check    # exit 1 if they differ (what
                                            # tests/e2e/test_model.py runs)
"""

import glob
import gzip
import json
import os
import sys

EMBEDDED = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "server", "model", "kms.json"
)
KEPT = ("type", "required", "pattern", "min", "max", "enum", "sensitive", "key", "value", "member", "members")

# ferrokms's one deliberate departure from the model: an external key store
# proxy's endpoint may name a port (`https://xks.example.com:8443`). AWS
# reaches proxies on 443 only; a self-hosted proxy (ferrokms serve --xks,
# a test's on 127.0.0.1) often listens elsewhere. docs/xks.md says so.
PATTERN_OVERRIDES = {"XksProxyUriEndpointType": "^https://[a-zA-Z0-9.-]+(:[0-9]{1,5})?$"}


def botocore_model_path():
    """The KMS model file of the botocore this Python imports."""
    import botocore

    root = os.path.join(os.path.dirname(botocore.__file__), "data", "kms")
    found = sorted(glob.glob(os.path.join(root, "*", "service-2.json*")))
    if not found:
        raise SystemExit(f"no KMS model under {root}")
    return found[-1]


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def trim(model):
    """botocore's model reduced to what ferrokms embeds (see the module doc)."""
    operations = {name: op["input"]["shape"] for name, op in sorted(model["operations"].items())}
    shapes = {}
    for name, shape in sorted(model["shapes"].items()):
        kept = {}
        for field in KEPT:
            if field not in shape:
                continue
            value = shape[field]
            if field in ("key", "value", "member"):
                value = value["shape"]
            elif field == "members":
                value = {member: spec["shape"] for member, spec in value.items()}
            kept[field] = value
        if name in PATTERN_OVERRIDES:
            kept["pattern"] = PATTERN_OVERRIDES[name]
        shapes[name] = kept
    return {
        "metadata": {"targetPrefix": model["metadata"]["targetPrefix"]},
        "operations": operations,
        "shapes": shapes,
    }


def render(trimmed):
    return json.dumps(trimmed, separators=(", ", ": "))


def main(argv):
    import botocore

    wanted = trim(load(botocore_model_path()))
    with open(EMBEDDED, encoding="utf-8") as f:
        embedded = json.load(f)
    if "--check" in argv:
        if wanted != embedded:
            print(f"crates/server/model/kms.json differs from botocore {botocore.__version__}'s KMS model")
            return 1
        return 0
    with open(EMBEDDED, "w", encoding="utf-8") as f:
        f.write(render(wanted))
    print(f"wrote {len(wanted['operations'])} operations from botocore {botocore.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
