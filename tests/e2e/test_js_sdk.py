"""The AWS SDK for JavaScript v3 (`@aws-sdk/client-kms`) and the AWS
Encryption SDK for JavaScript (`@aws-crypto/client-node`) against a server
this module starts, beside the Python Encryption SDK (`aws-encryption-sdk`):

- the envelope flow: GenerateDataKey, AES-256-GCM with node:crypto, Decrypt
  of the data key, decryption; Sign/Verify with an RSA and an ECC key (the
  signatures also checked here with `cryptography`, from the public key);
  an AccessDenied whose message is AWS's text, the same one boto3 gets;
- an Encryption SDK message made by Python decrypted by JavaScript, and
  the reverse, with the encryption context checked on both sides.

The scripts are in tests/e2e/js/; their packages (package-lock.json) are
installed by `bash tests/e2e/js/install.sh` (scripts/test.sh runs it) into
FERROKMS_NODE_DIR (default ~/.cache/ferrokms-node). Without node, or without
that install, the tests skip saying so. They run once per CI run: skipped on
the PostgreSQL round (FERROKMS_TEST_PG_URL), which has nothing JavaScript
would see differently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from accounts import AD, IB, no_allow
from conftest import PG_URL, REGION, clean_env, expect_error
from policies import allow

SERVER = "dev"

JS_DIR = Path(__file__).parent / "js"
NODE_DIR = Path(os.environ.get("FERROKMS_NODE_DIR", str(Path.home() / ".cache" / "ferrokms-node")))
NODE_TIMEOUT = 60.0


def _skip_reason():
    if PG_URL:
        return "the JavaScript SDK tests run once per CI run, on the SQLite round (FERROKMS_TEST_PG_URL is set)"
    if shutil.which("node") is None:
        return "node is not installed: the JavaScript SDK tests need Node.js (20 or later) and npm"
    want = hashlib.sha256((JS_DIR / "package.json").read_bytes() + (JS_DIR / "package-lock.json").read_bytes()).hexdigest()
    try:
        have = (NODE_DIR / ".package-lock.sha256").read_text().strip()
    except OSError:
        have = ""
    if have != want:
        return f"the JavaScript packages of tests/e2e/js are not installed in {NODE_DIR} at this package-lock.json: run `bash tests/e2e/js/install.sh`"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def node(script, *args, endpoint, access_key, secret_key):
    """Runs tests/e2e/js/SCRIPT with node; returns its JSON output. The
    environment has no AWS_* of the caller's: only the endpoint and
    credentials given, and instance metadata lookups turned off."""
    env = clean_env()
    env.update(
        NODE_PATH=str(NODE_DIR / "node_modules"),
        FERROKMS_ENDPOINT=endpoint,
        FERROKMS_ACCESS_KEY_ID=access_key,
        FERROKMS_SECRET_ACCESS_KEY=secret_key,
        FERROKMS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SDK_LOAD_CONFIG="0",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    p = subprocess.run(
        ["node", str(JS_DIR / script), *args],
        env=env,
        cwd=str(JS_DIR),
        capture_output=True,
        timeout=NODE_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    out = p.stdout.decode("utf-8", "replace").strip()
    assert p.returncode == 0, f"node {script} {args} exited {p.returncode}: {out} {p.stderr.decode('utf-8', 'replace')[-2000:]}"
    return json.loads(out.splitlines()[-1])


@pytest.fixture(scope="module")
def user(A):
    """An IAM user allowed every KMS action by its identity policy, with an
    access key the server issued (so the JavaScript SDK's SigV4 signature
    is verified in full)."""
    return A.user(allow("kms:*"))


def js(user, script, *args):
    return node(
        script,
        *args,
        endpoint=user.kms.meta.endpoint_url,
        access_key=user.creds["AccessKeyId"],
        secret_key=user.creds["SecretAccessKey"],
    )


def test_envelope_encryption_with_the_javascript_sdk(A, user):
    key = A.key()
    out = js(user, "kms_sdk.js", "envelope", key["KeyId"])
    assert out["roundTrip"] is True, out
    assert out["dataKeyLength"] == 32, out
    assert out["generateKeyId"] == key["Arn"], out
    assert out["decryptKeyId"] == key["Arn"], out
    assert out["encryptionAlgorithm"] == "SYMMETRIC_DEFAULT", out
    # Another encryption context: the SDK's InvalidCiphertextException.
    assert out["wrongContext"]["name"] == "InvalidCiphertextException", out
    assert out["wrongContext"]["httpStatusCode"] == 400, out
    assert out["wrongContext"]["requestId"], out


@pytest.mark.parametrize(
    "spec,algorithm",
    [("RSA_2048", "RSASSA_PSS_SHA_256"), ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_384"), ("ECC_NIST_P256", "ECDSA_SHA_256")],
)
def test_sign_and_verify_with_the_javascript_sdk(A, user, spec, algorithm):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    key = A.key(KeySpec=spec, KeyUsage="SIGN_VERIFY")
    out = js(user, "kms_sdk.js", "sign", key["KeyId"], algorithm)
    assert out["keyId"] == key["Arn"], out
    assert out["signingAlgorithm"] == algorithm, out
    assert out["signatureValid"] is True, out
    assert out["keySpec"] == spec, out
    # A changed message: KMSInvalidSignatureException, as on AWS.
    assert out["tampered"]["name"] == "KMSInvalidSignatureException", out
    assert out["tampered"]["httpStatusCode"] == 400, out
    # The signature JavaScript got is one the public key verifies here too.
    pub = serialization.load_der_public_key(base64.b64decode(out["publicKeyDer"]))
    sig, msg = base64.b64decode(out["signature"]), base64.b64decode(out["message"])
    if spec.startswith("RSA"):
        pad = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            if "PSS" in algorithm
            else padding.PKCS1v15()
        )
        h = hashes.SHA256() if algorithm.endswith("256") else hashes.SHA384()
        pub.verify(sig, msg, pad, h)
    else:
        pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    # And boto3 verifies it through the server.
    assert user.kms.verify(KeyId=key["KeyId"], Message=msg, Signature=sig, SigningAlgorithm=algorithm)["SignatureValid"]


def test_access_denied_text_is_aws_and_the_same_as_boto3_gets(A):
    # A user with no identity policy; the key's default policy delegates to
    # the account's IAM policies: "no identity-based policy allows".
    nobody = A.user()
    key = A.key()
    want = no_allow("Encrypt", key["Arn"], nobody.arn, IB)
    out = js(nobody, "kms_sdk.js", "encrypt", key["Arn"])
    assert out["ok"] is False, out
    err = out["error"]
    assert err["name"] == AD, err
    assert err["message"] == want, err
    assert err["httpStatusCode"] == 400, err
    assert err["fault"] == "client", err
    assert err["requestId"], err
    expect_error(nobody.kms.encrypt, AD, message=want, KeyId=key["Arn"], Plaintext=b"x")


# --- the Encryption SDKs, Python and JavaScript ---------------------------


def python_esdk(user, tmp_path):
    """The Python Encryption SDK's client and a strict KMS master key
    provider whose KMS client goes to this server only: its botocore
    session reads a config file naming the endpoint, with the user's
    credentials set on it."""
    aws_encryption_sdk = pytest.importorskip("aws_encryption_sdk", reason="aws-encryption-sdk is not in the test venv (tests/e2e/requirements.txt)")
    import botocore.session

    cfg = tmp_path / "aws-config"
    cfg.write_text(f"[default]\nregion = {REGION}\nendpoint_url = {user.kms.meta.endpoint_url}\n")
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(cfg))
    session.set_config_variable("credentials_file", os.devnull)
    session.set_credentials(user.creds["AccessKeyId"], user.creds["SecretAccessKey"])
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=aws_encryption_sdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    return client, session


def provider(aws_encryption_sdk, session, key_arn):
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)


CONTEXT = {"tenant": "acme", "purpose": "cross-sdk"}


def test_python_encryption_sdk_message_decrypts_in_javascript(A, user, tmp_path):
    client, session = python_esdk(user, tmp_path)
    import aws_encryption_sdk

    key = A.key()
    plaintext = os.urandom(3000)
    message, header = client.encrypt(
        source=plaintext, key_provider=provider(aws_encryption_sdk, session, key["Arn"]), encryption_context=CONTEXT
    )
    assert header.encryption_context.items() >= CONTEXT.items()
    out = js(user, "esdk.js", "decrypt", key["Arn"], base64.b64encode(message).decode())
    assert base64.b64decode(out["plaintext"]) == plaintext
    # Both SDKs add their signing key to the context (the default suite
    # signs); the caller's pairs are all there, unchanged.
    assert out["encryptionContext"].items() >= CONTEXT.items(), out
    assert out["encryptionContext"] == dict(header.encryption_context), out


def test_javascript_encryption_sdk_message_decrypts_in_python(A, user, tmp_path):
    client, session = python_esdk(user, tmp_path)
    import aws_encryption_sdk

    key = A.key()
    plaintext = os.urandom(5000)
    out = js(user, "esdk.js", "encrypt", key["Arn"], json.dumps(CONTEXT), base64.b64encode(plaintext).decode())
    message = base64.b64decode(out["message"])
    opened, header = client.decrypt(source=message, key_provider=provider(aws_encryption_sdk, session, key["Arn"]))
    assert opened == plaintext
    assert header.encryption_context.items() >= CONTEXT.items()
    # A message under another key is refused by a strict provider of this
    # key: the Python SDK does not reach for keys it was not given.
    other = A.key()
    with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):
        client.decrypt(source=message, key_provider=provider(aws_encryption_sdk, session, other["Arn"]))
