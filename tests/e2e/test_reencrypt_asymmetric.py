"""ReEncrypt across symmetric and RSA ENCRYPT_DECRYPT keys: the plaintext
never leaves the service, an asymmetric side names its key and algorithm,
and ciphertexts interoperate with an independent OAEP implementation."""

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import expect_error


@pytest.fixture(scope="module")
def keys(server):
    kms = server.client()
    sym = kms.create_key()["KeyMetadata"]
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    return kms, sym, rsa


def test_reencrypt_from_symmetric_to_rsa_oaep_decrypts_with_the_rsa_key(keys):
    kms, sym, rsa = keys
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"rotate me", EncryptionContext={"a": "1"})["CiphertextBlob"]
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "1"},
        DestinationKeyId=rsa["KeyId"],
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )
    assert out["SourceKeyId"] == sym["Arn"] and out["KeyId"] == rsa["Arn"]
    assert out["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert out["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert len(out["CiphertextBlob"]) == 256
    plain = kms.decrypt(
        CiphertextBlob=out["CiphertextBlob"], KeyId=rsa["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["Plaintext"]
    assert plain == b"rotate me"


def test_reencrypt_from_rsa_oaep_made_by_openssl_side_library_to_symmetric(keys):
    kms, sym, rsa = keys
    der = kms.get_public_key(KeyId=rsa["KeyId"])["PublicKey"]
    public = serialization.load_der_public_key(der)
    ct = public.encrypt(b"from outside", padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    out = kms.re_encrypt(
        CiphertextBlob=ct,
        SourceKeyId=rsa["Arn"],
        SourceEncryptionAlgorithm="RSAES_OAEP_SHA_1",
        DestinationKeyId=sym["KeyId"],
        DestinationEncryptionContext={"b": "2"},
    )
    assert out["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_1"
    assert "DestinationKeyMaterialId" in out and "SourceKeyMaterialId" not in out
    plain = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"b": "2"})["Plaintext"]
    assert plain == b"from outside"


def test_reencrypt_to_rsa_without_destination_algorithm_is_refused(keys):
    kms, sym, rsa = keys
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(kms.re_encrypt, "InvalidKeyUsageException", CiphertextBlob=blob, DestinationKeyId=rsa["KeyId"])


def test_reencrypt_to_rsa_with_an_encryption_context_is_a_validation_error(keys):
    kms, sym, rsa = keys
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(
        kms.re_encrypt,
        "ValidationException",
        CiphertextBlob=blob,
        DestinationKeyId=rsa["KeyId"],
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
        DestinationEncryptionContext={"c": "3"},
    )


def test_reencrypt_plaintext_too_long_for_the_destination_rsa_key_is_refused(keys):
    kms, sym, rsa = keys
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"x" * 300)["CiphertextBlob"]
    expect_error(
        kms.re_encrypt,
        "ValidationException",
        CiphertextBlob=blob,
        DestinationKeyId=rsa["KeyId"],
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


def test_decrypt_naming_a_signing_key_is_incorrect_key_as_on_aws(keys, server):
    """A key that cannot have made the ciphertext: IncorrectKeyException
    before any key-usage check (AWS)."""
    kms, sym, _ = keys
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(kms.decrypt, "IncorrectKeyException", CiphertextBlob=blob, KeyId=signer["KeyId"])
