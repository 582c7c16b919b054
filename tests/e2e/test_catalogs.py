"""The service models ferrokms is built from are those of the pinned
botocore: the KMS model embedded in crates/server/model/kms.json (every
operation, member, enum value and bound the server validates against), and the
IAM and STS operation lists the Rust catalogs are checked against
(crates/iam/model/*-operations.txt). A newer botocore that changes any of them
fails here until they are regenerated (the message says how)."""

import json
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_operation_lists_match_the_pinned_botocore_models(service):
    listed = [line for line in (ROOT / "crates" / "iam" / "model" / f"{service}-operations.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    model = sorted(botocore.session.get_session().get_service_model(service).operation_names)
    assert listed == model, (
        f"crates/iam/model/{service}-operations.txt differs from botocore's {service} model: "
        "regenerate it from botocore.session.get_session().get_service_model(...).operation_names")


def test_embedded_kms_model_is_the_pinned_botocores():
    """Drift guard: scripts/kms_model.py --check trims botocore's KMS model the
    way the embedded one was made and compares them, operation by operation and
    shape by shape."""
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "kms_model.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, (check.stdout + check.stderr
                                   + "\nregenerate it with: python3 scripts/kms_model.py (in the test venv)")


def test_embedded_kms_model_has_every_botocore_operation_and_enum_value():
    """The same comparison spelled out, so a failure names what drifted."""
    embedded = json.loads((ROOT / "crates" / "server" / "model" / "kms.json").read_text())
    model = botocore.session.get_session().get_service_model("kms")
    assert sorted(embedded["operations"]) == sorted(model.operation_names)
    for name in model.shape_names:
        shape = model.shape_for(name)
        mine = embedded["shapes"].get(name)
        assert mine is not None, f"shape {name} missing"
        if shape.type_name == "string":
            assert mine.get("enum", []) == shape.enum, name
        if shape.type_name == "structure":
            assert sorted(mine.get("members", {})) == sorted(shape.members), name
