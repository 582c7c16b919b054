"""Imported key material (Origin EXTERNAL) end to end, with the material
wrapped by the Python `cryptography` package exactly as the AWS docs tell
users to: RSAES-OAEP of the material, or RSA_AES_KEY_WRAP (AES key wrap with
padding of the material under an ephemeral AES-256 key, followed by the
RSA-OAEP encryption of that key). Expiry runs on the service clock moved
with FerrokmsAdvanceClock (`serve --test-clock`)."""

import base64
import hashlib
import hmac
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from conftest import advance, expect_error

DAY = 86400


SERVER = "clock"


@pytest.fixture
def kms(srv):
    return srv.client()


def now(srv):
    return advance(srv, 0)["Now"]


def external_key(kms, **kw):
    m = kms.create_key(Origin="EXTERNAL", **kw)["KeyMetadata"]
    assert m["KeyState"] == "PendingImport"
    assert m["Origin"] == "EXTERNAL"
    assert m["Enabled"] is False
    return m["KeyId"]


def wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    """Wraps key material the way the AWS developer guide shows."""
    public = serialization.load_der_public_key(public_der)
    sha = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=sha), algorithm=sha, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


def import_material(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256", spec="RSA_2048", **kw):
    p = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )
    if not kw:
        kw = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=p["ImportToken"],
        EncryptedKeyMaterial=wrap(p["PublicKey"], algorithm, material),
        **kw,
    )


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_get_parameters_for_import_gives_a_der_rsa_public_key_valid_for_24_hours(srv, kms):
    key = external_key(kms)
    t0 = now(srv)
    p = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072"
    )
    public = serialization.load_der_public_key(p["PublicKey"])
    assert public.key_size == 3072
    assert p["KeyId"].endswith(key)
    valid_to = p["ParametersValidTo"].timestamp()
    assert abs(valid_to - (t0 + DAY)) < 60


def test_symmetric_material_imported_with_oaep_enables_the_key(kms):
    key = external_key(kms, Description="imported")
    out = import_material(kms, key, os.urandom(32))
    assert out["KeyId"].endswith(key)
    assert len(out["KeyMaterialId"]) == 64
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert m["KeyState"] == "Enabled"
    assert m["Origin"] == "EXTERNAL"
    assert m["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in m
    assert m["CurrentKeyMaterialId"] == out["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"hello")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"


def test_reimport_accepts_only_the_same_material(kms):
    key = external_key(kms)
    material = os.urandom(32)
    first = import_material(kms, key, material, "RSAES_OAEP_SHA_1")
    expect_error(
        import_material, "IncorrectKeyMaterialException", kms=kms, key_id=key,
        material=os.urandom(32),
    )
    again = import_material(kms, key, material, "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")
    assert again["KeyMaterialId"] == first["KeyMaterialId"]


def test_delete_imported_key_material_makes_the_key_pending_import_until_reimported(kms):
    key = external_key(kms)
    material = os.urandom(32)
    mid = import_material(kms, key, material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    out = kms.delete_imported_key_material(KeyId=key)
    assert out["KeyMaterialId"] == mid
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    expect_error(
        kms.decrypt, "KMSInvalidStateException", CiphertextBlob=blob,
        message=f"{out['KeyId']} is pending import.",
    )
    # Deleting again has no effect.
    kms.delete_imported_key_material(KeyId=key)
    import_material(kms, key, material)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_expiring_material_makes_the_key_pending_import_at_valid_to(srv, kms):
    key = external_key(kms)
    material = os.urandom(32)
    valid_to = int(now(srv)) + 2 * DAY
    import_material(
        kms, key, material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to
    )
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert m["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert int(m["ValidTo"].timestamp()) == valid_to
    blob = kms.encrypt(KeyId=key, Plaintext=b"y")["CiphertextBlob"]
    advance(srv, DAY)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"y"
    out = advance(srv, DAY + 1)
    assert out["MaterialsExpired"] >= 1
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert m["KeyState"] == "PendingImport"
    assert "ExpirationModel" not in m
    expect_error(kms.decrypt, "KMSInvalidStateException", CiphertextBlob=blob)
    import_material(kms, key, material)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"y"


def test_valid_to_is_required_with_key_material_expires_and_forbidden_without(srv, kms):
    key = external_key(kms)
    p = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    wrapped = wrap(p["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    common = dict(KeyId=key, ImportToken=p["ImportToken"], EncryptedKeyMaterial=wrapped)
    expect_error(kms.import_key_material, "ValidationException", **common)
    expect_error(
        kms.import_key_material, "ValidationException",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", ValidTo=int(now(srv)) + DAY, **common,
    )
    expect_error(
        kms.import_key_material, "ValidationException",
        ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=int(now(srv)) + 366 * DAY, **common,
    )


def test_import_tokens_are_bound_to_their_key_and_expire_after_24_hours(srv, kms):
    a = external_key(kms)
    b = external_key(kms)
    p = kms.get_parameters_for_import(
        KeyId=a, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    wrapped = wrap(p["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    kw = dict(ImportToken=p["ImportToken"], EncryptedKeyMaterial=wrapped,
              ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    expect_error(kms.import_key_material, "InvalidImportTokenException", KeyId=b, **kw)
    advance(srv, DAY + 1)
    expect_error(kms.import_key_material, "ExpiredImportTokenException", KeyId=a, **kw)


def test_material_wrapped_under_another_public_key_is_invalid_ciphertext(kms):
    key = external_key(kms)
    p1 = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    p2 = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    expect_error(
        kms.import_key_material, "InvalidCiphertextException", KeyId=key,
        ImportToken=p1["ImportToken"],
        EncryptedKeyMaterial=wrap(p2["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


def test_hmac_material_imported_with_rsa_aes_key_wrap_computes_the_same_mac(kms):
    key = external_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    material = os.urandom(64)
    import_material(kms, key, material, "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048")
    mac = kms.generate_mac(KeyId=key, Message=b"msg", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(material, b"msg", hashlib.sha256).digest()


def test_rsa_private_keys_need_an_rsa_aes_wrapping_algorithm(kms):
    key = external_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    for alg in ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"):
        expect_error(
            kms.get_parameters_for_import, "UnsupportedOperationException",
            KeyId=key, WrappingAlgorithm=alg, WrappingKeySpec="RSA_4096",
        )
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import_material(kms, key, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
    sig = kms.sign(KeyId=key, Message=b"doc", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    private.public_key().verify(
        sig, b"doc",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    pub = kms.get_public_key(KeyId=key)["PublicKey"]
    assert pub == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_ecc_material_imported_with_oaep_signs_verifiably(kms):
    key = external_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    private = ec.generate_private_key(ec.SECP256R1())
    import_material(kms, key, pkcs8(private), "RSAES_OAEP_SHA_256", "RSA_2048")
    sig = kms.sign(KeyId=key, Message=b"doc", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(sig, b"doc", ec.ECDSA(hashes.SHA256()))


def test_p521_material_cannot_be_oaep_wrapped_under_rsa_2048(kms):
    key = external_key(kms, KeySpec="ECC_NIST_P521", KeyUsage="SIGN_VERIFY")
    expect_error(
        kms.get_parameters_for_import, "UnsupportedOperationException",
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048",
    )
    private = ec.generate_private_key(ec.SECP521R1())
    import_material(kms, key, pkcs8(private), "RSAES_OAEP_SHA_256", "RSA_3072")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_material_of_the_wrong_spec_is_incorrect_key_material(kms):
    key = external_key(kms, KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")
    wrong_curve = ec.generate_private_key(ec.SECP256R1())
    expect_error(
        import_material, "IncorrectKeyMaterialException", kms=kms, key_id=key,
        material=pkcs8(wrong_curve),
    )


def test_import_operations_on_an_aws_kms_key_are_unsupported(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    expect_error(
        kms.get_parameters_for_import, "UnsupportedOperationException",
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048",
    )
    expect_error(kms.delete_imported_key_material, "UnsupportedOperationException", KeyId=key)


def test_imported_material_survives_a_restart(srv):
    kms = srv.client()
    key = external_key(kms)
    import_material(kms, key, os.urandom(32))
    blob = kms.encrypt(KeyId=key, Plaintext=b"durable")["CiphertextBlob"]
    pending = external_key(kms)
    srv.restart()
    kms = srv.client()
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"durable"
    assert kms.describe_key(KeyId=pending)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_aws_cli_imports_key_material(aws, server, tmp_path):
    # The aws fixture talks to the session server, not this module's.
    kms = server.client()
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    r = aws(
        "kms", "get-parameters-for-import", "--key-id", key,
        "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048",
    )
    assert r.returncode == 0, r.stderr
    p = r.json()
    (tmp_path / "token.bin").write_bytes(base64.b64decode(p["ImportToken"]))
    (tmp_path / "material.bin").write_bytes(
        wrap(base64.b64decode(p["PublicKey"]), "RSAES_OAEP_SHA_256", os.urandom(32))
    )
    r = aws(
        "kms", "import-key-material", "--key-id", key,
        "--import-token", "fileb://token.bin",
        "--encrypted-key-material", "fileb://material.bin",
        "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["KeyMaterialId"]) == 64
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_import_condition_keys_authorize_wrapping_and_expiration(srv, kms):
    acct = kms.create_key()["KeyMetadata"]["AWSAccountId"]
    root = f"arn:aws:iam::{acct}:root"
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "strongWrapping", "Effect": "Deny", "Principal": {"AWS": root},
             "Action": "kms:GetParametersForImport", "Resource": "*",
             "Condition": {"StringNotEquals": {"kms:WrappingAlgorithm": "RSA_AES_KEY_WRAP_SHA_256",
                                               "kms:WrappingKeySpec": "RSA_4096"}}},
            {"Sid": "mustExpire", "Effect": "Deny", "Principal": {"AWS": root},
             "Action": "kms:ImportKeyMaterial", "Resource": "*",
             "Condition": {"StringEquals": {"kms:ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}}},
            {"Sid": "soon", "Effect": "Deny", "Principal": {"AWS": root},
             "Action": "kms:ImportKeyMaterial", "Resource": "*",
             "Condition": {"NumericGreaterThan": {"kms:ValidTo": str(int(now(srv)) + 30 * DAY)}}},
        ],
    })
    key = external_key(kms, Policy=policy)
    expect_error(
        kms.get_parameters_for_import, "AccessDeniedException",
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048",
    )
    material = os.urandom(32)
    alg, spec = "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"
    expect_error(import_material, "AccessDeniedException", kms=kms, key_id=key,
                 material=material, algorithm=alg, spec=spec)
    expect_error(import_material, "AccessDeniedException", kms=kms, key_id=key,
                 material=material, algorithm=alg, spec=spec,
                 ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=int(now(srv)) + 60 * DAY)
    import_material(kms, key, material, alg, spec,
                    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=int(now(srv)) + 10 * DAY)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
