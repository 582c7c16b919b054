"""The IAM and STS operation lists the Rust catalogs are checked against
(crates/iam/model/*-operations.txt) are those of the service models of the
pinned botocore: a newer botocore that adds or removes operations fails
here until the lists are regenerated (the message says how)."""

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
