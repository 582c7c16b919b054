"""Asymmetric, HMAC and key-agreement keys (issue #5), end to end.

Every signature, ciphertext, shared secret and data key pair made by
ferrokms is checked by independent implementations: Python `cryptography`
and the `openssl` command line (with the PEM made from GetPublicKey's DER),
and the other way round (OpenSSL / cryptography encrypt, ferrokms decrypts).
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils

from conftest import expect_error

OPENSSL = shutil.which("openssl")
MSG = b"the quick brown fox jumps over the lazy dog" * 3

HASHES = {
    "SHA_256": (hashes.SHA256(), hashlib.sha256, "-sha256"),
    "SHA_384": (hashes.SHA384(), hashlib.sha384, "-sha384"),
    "SHA_512": (hashes.SHA512(), hashlib.sha512, "-sha512"),
}

RSA_SIGNING = [
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
]
ECDSA = {
    "ECC_NIST_P256": "ECDSA_SHA_256",
    "ECC_NIST_P384": "ECDSA_SHA_384",
    "ECC_NIST_P521": "ECDSA_SHA_512",
    "ECC_SECG_P256K1": "ECDSA_SHA_256",
}
CURVES = {
    "ECC_NIST_P256": ec.SECP256R1(),
    "ECC_NIST_P384": ec.SECP384R1(),
    "ECC_NIST_P521": ec.SECP521R1(),
    "ECC_SECG_P256K1": ec.SECP256K1(),
}


# --- helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def akms(server):
    return server.client()


_keys: dict = {}


def get_key(client, spec, usage):
    """One key per (spec, usage) for the module (RSA-4096 is slow to make)."""
    k = (spec, usage)
    if k not in _keys:
        _keys[k] = client.create_key(KeySpec=spec, KeyUsage=usage, Description="asym e2e")[
            "KeyMetadata"
        ]
    return _keys[k]


def hash_of(alg):
    return HASHES[alg[-7:]]


def public_key(client, key_id):
    return client.get_public_key(KeyId=key_id)["PublicKey"]


def write_pem(tmp_path: Path, der: bytes, name="pub.pem") -> Path:
    p = tmp_path / name
    p.write_bytes(
        serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return p


def openssl(*args, input=None):
    assert OPENSSL, "openssl CLI is required"
    return subprocess.run(
        [OPENSSL, *args], input=input, capture_output=True, timeout=60, check=False
    )


def crypto_verify(der, alg, sig, msg):
    """Verify with `cryptography`; raises InvalidSignature on failure."""
    pub = serialization.load_der_public_key(der)
    if alg.startswith("RSASSA_PSS"):
        h = hash_of(alg)[0]
        pub.verify(sig, msg, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    elif alg.startswith("RSASSA_PKCS1"):
        pub.verify(sig, msg, padding.PKCS1v15(), hash_of(alg)[0])
    elif alg.startswith("ECDSA"):
        pub.verify(sig, msg, ec.ECDSA(hash_of(alg)[0]))
    elif alg == "ED25519_SHA_512":
        pub.verify(sig, msg)
    elif alg == "ML_DSA_SHAKE_256":
        pub.verify(sig, msg)
    else:
        raise AssertionError(alg)


def openssl_verify(tmp_path, der, alg, sig, msg):
    pem = write_pem(tmp_path, der)
    (tmp_path / "msg").write_bytes(msg)
    (tmp_path / "sig").write_bytes(sig)
    if alg == "ED25519_SHA_512":
        args = ["pkeyutl", "-verify", "-pubin", "-inkey", str(pem), "-rawin",
                "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig")]
    else:
        args = ["dgst", hash_of(alg)[2], "-verify", str(pem), "-signature", str(tmp_path / "sig")]
        if alg.startswith("RSASSA_PSS"):
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
        args.append(str(tmp_path / "msg"))
    r = openssl(*args)
    out = r.stdout + r.stderr
    return r.returncode == 0 and (b"Verified OK" in out or b"Signature Verified Successfully" in out)


# Ed25519ph (RFC 8032 §5.1, empty context) verification in pure Python:
# neither OpenSSL 3.0 nor `cryptography` exposes Ed25519ph.
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_I = pow(2, (_P - 1) // 4, _P)


def _xrecover(y):
    xx = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    x = pow(xx, (_P + 3) // 8, _P)
    if (x * x - xx) % _P != 0:
        x = x * _I % _P
    if x % 2 != 0:
        x = _P - x
    return x


def _add(a, b):
    x1, y1 = a
    x2, y2 = b
    x3 = (x1 * y2 + x2 * y1) * pow(1 + _D * x1 * x2 * y1 * y2, _P - 2, _P)
    y3 = (y1 * y2 + x1 * x2) * pow(1 - _D * x1 * x2 * y1 * y2, _P - 2, _P)
    return (x3 % _P, y3 % _P)


def _mul(pt, e):
    q = (0, 1)
    while e:
        if e & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        e >>= 1
    return q


def _decode_point(s):
    y = int.from_bytes(s, "little") & ((1 << 255) - 1)
    x = _xrecover(y)
    if (x & 1) != (s[31] >> 7):
        x = _P - x
    pt = (x, y)
    assert (-x * x + y * y - 1 - _D * x * x * y * y) % _P == 0, "not on curve"
    return pt


_B = (_xrecover(4 * pow(5, _P - 2, _P) % _P), 4 * pow(5, _P - 2, _P) % _P)


def ed25519ph_verify(pub32: bytes, sig: bytes, msg: bytes) -> bool:
    if len(sig) != 64:
        return False
    dom = b"SigEd25519 no Ed25519 collisions" + bytes([1, 0])
    ph = hashlib.sha512(msg).digest()
    r_pt = _decode_point(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if s >= _L:
        return False
    a_pt = _decode_point(pub32)
    k = int.from_bytes(hashlib.sha512(dom + sig[:32] + pub32 + ph).digest(), "little") % _L
    return _mul(_B, s) == _add(r_pt, _mul(a_pt, k))


# --- CreateKey / DescribeKey / GetPublicKey ---------------------------------

SPEC_USAGE = [
    ("RSA_2048", "ENCRYPT_DECRYPT", {"EncryptionAlgorithms": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]}),
    ("RSA_3072", "SIGN_VERIFY", {"SigningAlgorithms": sorted(RSA_SIGNING)}),
    ("ECC_NIST_P256", "SIGN_VERIFY", {"SigningAlgorithms": ["ECDSA_SHA_256"]}),
    ("ECC_NIST_P384", "KEY_AGREEMENT", {"KeyAgreementAlgorithms": ["ECDH"]}),
    ("ECC_NIST_P521", "SIGN_VERIFY", {"SigningAlgorithms": ["ECDSA_SHA_512"]}),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", {"SigningAlgorithms": ["ECDSA_SHA_256"]}),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", {"SigningAlgorithms": ["ED25519_PH_SHA_512", "ED25519_SHA_512"]}),
    ("ML_DSA_44", "SIGN_VERIFY", {"SigningAlgorithms": ["ML_DSA_SHAKE_256"]}),
    ("HMAC_224", "GENERATE_VERIFY_MAC", {"MacAlgorithms": ["HMAC_SHA_224"]}),
    ("HMAC_512", "GENERATE_VERIFY_MAC", {"MacAlgorithms": ["HMAC_SHA_512"]}),
]
ALG_LISTS = ["EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms"]


@pytest.mark.parametrize("spec,usage,lists", SPEC_USAGE, ids=[f"{s}-{u}" for s, u, _ in SPEC_USAGE])
def test_create_and_describe_show_only_the_matching_algorithm_list(akms, spec, usage, lists):
    md = get_key(akms, spec, usage)
    described = akms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    for m in (md, described):
        assert m["KeySpec"] == spec and m["CustomerMasterKeySpec"] == spec
        assert m["KeyUsage"] == usage
        assert m["KeyState"] == "Enabled"
        for name in ALG_LISTS:
            if name in lists:
                assert sorted(m[name]) == sorted(lists[name]), m
            else:
                assert name not in m, m
        assert "CurrentKeyMaterialId" not in m


@pytest.mark.parametrize(
    "spec,usage",
    [
        ("RSA_2048", "KEY_AGREEMENT"),
        ("RSA_2048", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P256", "ENCRYPT_DECRYPT"),
        ("ECC_SECG_P256K1", "KEY_AGREEMENT"),
        ("ECC_NIST_EDWARDS25519", "KEY_AGREEMENT"),
        ("ML_DSA_65", "ENCRYPT_DECRYPT"),
        ("HMAC_256", "SIGN_VERIFY"),
        ("SYMMETRIC_DEFAULT", "SIGN_VERIFY"),
        ("SYMMETRIC_DEFAULT", "GENERATE_VERIFY_MAC"),
    ],
)
def test_invalid_spec_usage_combinations_are_validation_errors(akms, spec, usage):
    expect_error(
        akms.create_key,
        "ValidationException",
        message=f"KeyUsage {usage} is not compatible with KeySpec {spec}",
        KeySpec=spec,
        KeyUsage=usage,
    )


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "HMAC_256", "ML_DSA_44"])
def test_key_usage_is_required_for_non_symmetric_specs(akms, spec):
    expect_error(akms.create_key, "ValidationException", KeySpec=spec)


def test_sm2_is_refused(akms):
    for usage in ("SIGN_VERIFY", "ENCRYPT_DECRYPT", "KEY_AGREEMENT"):
        expect_error(akms.create_key, "UnsupportedOperationException", KeySpec="SM2", KeyUsage=usage)


def test_customer_master_key_spec_still_works(akms):
    md = akms.create_key(CustomerMasterKeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert md["KeySpec"] == "ECC_NIST_P256"


@pytest.mark.parametrize(
    "spec,usage",
    [("RSA_2048", "ENCRYPT_DECRYPT"), ("ECC_NIST_P256", "KEY_AGREEMENT"), ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"), ("ML_DSA_44", "SIGN_VERIFY")],
)
def test_get_public_key_is_spki_der_that_openssl_reads(akms, tmp_path, spec, usage):
    md = get_key(akms, spec, usage)
    out = akms.get_public_key(KeyId=md["Arn"])
    assert out["KeyId"] == md["Arn"]
    assert out["KeySpec"] == spec and out["CustomerMasterKeySpec"] == spec
    assert out["KeyUsage"] == usage
    der = out["PublicKey"]
    serialization.load_der_public_key(der)
    (tmp_path / "k.der").write_bytes(der)
    if not spec.startswith("ML_DSA"):  # OpenSSL 3.0 predates ML-DSA
        r = openssl("pkey", "-pubin", "-inform", "DER", "-in", str(tmp_path / "k.der"), "-noout")
        assert r.returncode == 0, r.stderr
    if usage == "ENCRYPT_DECRYPT":
        assert out["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
        assert "SigningAlgorithms" not in out and "KeyAgreementAlgorithms" not in out
    elif usage == "KEY_AGREEMENT":
        assert out["KeyAgreementAlgorithms"] == ["ECDH"]
        assert "SigningAlgorithms" not in out and "EncryptionAlgorithms" not in out
    else:
        assert out["SigningAlgorithms"]
        assert "EncryptionAlgorithms" not in out


def test_get_public_key_of_symmetric_and_hmac_keys_is_unsupported(akms, key):
    expect_error(akms.get_public_key, "UnsupportedOperationException", KeyId=key["KeyId"])
    h = get_key(akms, "HMAC_256", "GENERATE_VERIFY_MAC")
    expect_error(akms.get_public_key, "UnsupportedOperationException", KeyId=h["KeyId"])


def test_asymmetric_keys_do_not_rotate(akms):
    md = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    expect_error(akms.enable_key_rotation, "UnsupportedOperationException", KeyId=md["KeyId"])
    assert akms.get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"] is False


# --- Sign / Verify ----------------------------------------------------------

SIGN_CASES = (
    [(s, "SIGN_VERIFY", a) for s in ("RSA_2048", "RSA_3072", "RSA_4096") for a in RSA_SIGNING]
    + [(s, "SIGN_VERIFY", a) for s, a in ECDSA.items()]
)


@pytest.mark.parametrize("spec,usage,alg", SIGN_CASES, ids=[f"{s}-{a}" for s, _, a in SIGN_CASES])
def test_signatures_verify_in_openssl_and_cryptography_raw_and_digest(akms, tmp_path, spec, usage, alg):
    md = get_key(akms, spec, usage)
    der = public_key(akms, md["KeyId"])
    digest = hash_of(alg)[1](MSG).digest()

    raw_sig = akms.sign(KeyId=md["KeyId"], Message=MSG, SigningAlgorithm=alg)
    assert raw_sig["KeyId"] == md["Arn"] and raw_sig["SigningAlgorithm"] == alg
    dig_sig = akms.sign(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)

    for sig in (raw_sig["Signature"], dig_sig["Signature"]):
        # A DIGEST signature is a signature of the original message.
        crypto_verify(der, alg, sig, MSG)
        assert openssl_verify(tmp_path, der, alg, sig, MSG)
        # ferrokms Verify accepts it either way round.
        for mt, m in (("RAW", MSG), ("DIGEST", digest)):
            out = akms.verify(KeyId=md["KeyId"], Message=m, MessageType=mt, Signature=sig, SigningAlgorithm=alg)
            assert out["SignatureValid"] is True and out["SigningAlgorithm"] == alg

    with pytest.raises(InvalidSignature):
        crypto_verify(der, alg, raw_sig["Signature"], MSG + b"!")
    assert not openssl_verify(tmp_path, der, alg, raw_sig["Signature"], MSG + b"!")
    expect_error(
        akms.verify, "KMSInvalidSignatureException",
        KeyId=md["KeyId"], Message=MSG + b"!", Signature=raw_sig["Signature"], SigningAlgorithm=alg,
    )


def test_rsa_pkcs1_digest_signature_is_byte_identical_to_raw(akms):
    md = get_key(akms, "RSA_2048", "SIGN_VERIFY")
    alg = "RSASSA_PKCS1_V1_5_SHA_384"
    a = akms.sign(KeyId=md["KeyId"], Message=MSG, SigningAlgorithm=alg)["Signature"]
    b = akms.sign(KeyId=md["KeyId"], Message=hashlib.sha384(MSG).digest(), MessageType="DIGEST", SigningAlgorithm=alg)["Signature"]
    assert a == b and len(a) == 256


def test_ed25519_signatures_verify_in_openssl_and_cryptography(akms, tmp_path):
    md = get_key(akms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    der = public_key(akms, md["KeyId"])
    sig = akms.sign(KeyId=md["KeyId"], Message=MSG, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    assert len(sig) == 64
    crypto_verify(der, "ED25519_SHA_512", sig, MSG)
    assert openssl_verify(tmp_path, der, "ED25519_SHA_512", sig, MSG)
    akms.verify(KeyId=md["KeyId"], Message=MSG, Signature=sig, SigningAlgorithm="ED25519_SHA_512")
    # ED25519_SHA_512 needs RAW; ED25519_PH_SHA_512 needs DIGEST.
    expect_error(akms.sign, "ValidationException", KeyId=md["KeyId"], Message=hashlib.sha512(MSG).digest(),
                 MessageType="DIGEST", SigningAlgorithm="ED25519_SHA_512")
    expect_error(akms.sign, "ValidationException", KeyId=md["KeyId"], Message=MSG,
                 SigningAlgorithm="ED25519_PH_SHA_512")


def test_ed25519ph_signs_the_digest_as_a_message(akms):
    md = get_key(akms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    pub32 = serialization.load_der_public_key(public_key(akms, md["KeyId"])).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    digest = hashlib.sha512(MSG).digest()
    sig = akms.sign(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST",
                    SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
    # AWS: KMS still applies the SHA-512 prehash to the DIGEST it is given,
    # so this is the Ed25519ph signature of the 64-byte digest.
    assert ed25519ph_verify(pub32, sig, digest)
    assert not ed25519ph_verify(pub32, sig, MSG)
    akms.verify(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", Signature=sig,
                SigningAlgorithm="ED25519_PH_SHA_512")
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    expect_error(akms.verify, "KMSInvalidSignatureException", KeyId=md["KeyId"], Message=digest,
                 MessageType="DIGEST", Signature=bad, SigningAlgorithm="ED25519_PH_SHA_512")


@pytest.mark.parametrize("spec,cls", [("ML_DSA_44", mldsa.MLDSA44PublicKey), ("ML_DSA_65", mldsa.MLDSA65PublicKey), ("ML_DSA_87", mldsa.MLDSA87PublicKey)])
def test_ml_dsa_signatures_verify_in_cryptography(akms, spec, cls):
    md = get_key(akms, spec, "SIGN_VERIFY")
    der = public_key(akms, md["KeyId"])
    pub = serialization.load_der_public_key(der)
    assert isinstance(pub, cls)
    sig = akms.sign(KeyId=md["KeyId"], Message=MSG, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    assert len(sig) == {"ML_DSA_44": 2420, "ML_DSA_65": 3309, "ML_DSA_87": 4627}[spec]
    pub.verify(sig, MSG)
    akms.verify(KeyId=md["KeyId"], Message=MSG, Signature=sig, SigningAlgorithm="ML_DSA_SHAKE_256")
    expect_error(akms.verify, "KMSInvalidSignatureException", KeyId=md["KeyId"], Message=MSG + b"x",
                 Signature=sig, SigningAlgorithm="ML_DSA_SHAKE_256")
    expect_error(akms.sign, "ValidationException", KeyId=md["KeyId"], Message=hashlib.sha512(MSG).digest(),
                 MessageType="DIGEST", SigningAlgorithm="ML_DSA_SHAKE_256",
                 message=f"Message type DIGEST is incompatible with key spec {spec}.")
    expect_error(akms.sign, "UnsupportedOperationException", KeyId=md["KeyId"], Message=b"m" * 64,
                 MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")


def test_signatures_made_elsewhere_verify_in_ferrokms_never_false(akms):
    md = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    der = public_key(akms, md["KeyId"])
    # A well-formed signature by some other key is invalid, not "false".
    other = ec.generate_private_key(ec.SECP256R1()).sign(MSG, ec.ECDSA(hashes.SHA256()))
    expect_error(akms.verify, "KMSInvalidSignatureException", KeyId=md["KeyId"], Message=MSG,
                 Signature=other, SigningAlgorithm="ECDSA_SHA_256")
    # Prehashed signing by ferrokms verifies with cryptography's Prehashed.
    digest = hashlib.sha256(MSG).digest()
    sig = akms.sign(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    serialization.load_der_public_key(der).verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


@pytest.mark.parametrize("alg,good", [("ECDSA_SHA_256", 32)])
def test_wrong_length_digest_is_a_validation_error(akms, alg, good):
    md = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    for n in (good - 1, good + 1, 20, 48, 64):
        expect_error(akms.sign, "ValidationException", KeyId=md["KeyId"], Message=b"d" * n,
                     MessageType="DIGEST", SigningAlgorithm=alg,
                     message=f"Digest is invalid length for algorithm {alg}.")
        expect_error(akms.verify, "ValidationException", KeyId=md["KeyId"], Message=b"d" * n,
                     MessageType="DIGEST", Signature=b"s" * 70, SigningAlgorithm=alg)
    rsa_key = get_key(akms, "RSA_2048", "SIGN_VERIFY")
    expect_error(akms.sign, "ValidationException", KeyId=rsa_key["KeyId"], Message=b"d" * 32,
                 MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_512")


def test_wrong_signature_size_or_garbage_is_invalid_signature(akms):
    for spec, alg in (("RSA_2048", "RSASSA_PSS_SHA_256"), ("ECC_NIST_P384", "ECDSA_SHA_384"),
                      ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"), ("ML_DSA_44", "ML_DSA_SHAKE_256")):
        md = get_key(akms, spec, "SIGN_VERIFY")
        for sig in (b"\x00", b"\x30" * 7, b"\xff" * 600):
            expect_error(akms.verify, "KMSInvalidSignatureException", KeyId=md["KeyId"], Message=MSG,
                         Signature=sig, SigningAlgorithm=alg)


def test_sign_with_an_algorithm_the_key_does_not_support(akms):
    md = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    for alg in ("ECDSA_SHA_384", "RSASSA_PSS_SHA_256", "ED25519_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256"):
        expect_error(akms.sign, "InvalidKeyUsageException", KeyId=md["KeyId"], Message=MSG,
                     SigningAlgorithm=alg, message=f"Algorithm {alg} is incompatible with key spec ECC_NIST_P256.")
    r = get_key(akms, "RSA_2048", "SIGN_VERIFY")
    expect_error(akms.verify, "InvalidKeyUsageException", KeyId=r["KeyId"], Message=MSG,
                 Signature=b"x" * 256, SigningAlgorithm="ECDSA_SHA_256")


def test_sign_and_verify_need_a_sign_verify_key(akms, key):
    for md in (key, get_key(akms, "RSA_2048", "ENCRYPT_DECRYPT"), get_key(akms, "ECC_NIST_P384", "KEY_AGREEMENT"),
               get_key(akms, "HMAC_256", "GENERATE_VERIFY_MAC")):
        e = expect_error(akms.sign, "InvalidKeyUsageException", KeyId=md["KeyId"], Message=MSG,
                         SigningAlgorithm="ECDSA_SHA_256")
        assert "which is not valid for Sign." in e.response["Error"]["Message"]
        expect_error(akms.verify, "InvalidKeyUsageException", KeyId=md["KeyId"], Message=MSG,
                     Signature=b"x" * 64, SigningAlgorithm="ECDSA_SHA_256")


def test_sign_on_disabled_and_pending_deletion_keys(akms):
    md = akms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    sig = akms.sign(KeyId=md["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    akms.disable_key(KeyId=md["KeyId"])
    expect_error(akms.sign, "DisabledException", message=f"{md['Arn']} is disabled.", KeyId=md["KeyId"],
                 Message=MSG, SigningAlgorithm="ECDSA_SHA_256")
    expect_error(akms.verify, "DisabledException", KeyId=md["KeyId"], Message=MSG, Signature=sig,
                 SigningAlgorithm="ECDSA_SHA_256")
    expect_error(akms.get_public_key, "DisabledException", KeyId=md["KeyId"])
    akms.enable_key(KeyId=md["KeyId"])
    akms.verify(KeyId=md["KeyId"], Message=MSG, Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    akms.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    expect_error(akms.sign, "KMSInvalidStateException", message=f"{md['Arn']} is pending deletion.",
                 KeyId=md["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")


def test_sign_through_an_alias(akms, alias_name):
    md = get_key(akms, "ECC_NIST_P521", "SIGN_VERIFY")
    akms.create_alias(AliasName=alias_name, TargetKeyId=md["KeyId"])
    out = akms.sign(KeyId=alias_name, Message=MSG, SigningAlgorithm="ECDSA_SHA_512")
    assert out["KeyId"] == md["Arn"]
    akms.verify(KeyId=alias_name, Message=MSG, Signature=out["Signature"], SigningAlgorithm="ECDSA_SHA_512")


# --- Encrypt / Decrypt with RSA ---------------------------------------------

OAEP = {
    "RSAES_OAEP_SHA_1": hashes.SHA1(),
    "RSAES_OAEP_SHA_256": hashes.SHA256(),
}
LIMITS = {("RSA_2048", "RSAES_OAEP_SHA_1"): 214, ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
          ("RSA_3072", "RSAES_OAEP_SHA_1"): 342, ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
          ("RSA_4096", "RSAES_OAEP_SHA_1"): 470, ("RSA_4096", "RSAES_OAEP_SHA_256"): 446}


@pytest.mark.parametrize("spec,alg", list(LIMITS), ids=[f"{s}-{a}" for s, a in LIMITS])
def test_oaep_ciphertexts_from_openssl_and_cryptography_decrypt(akms, tmp_path, spec, alg):
    md = get_key(akms, spec, "ENCRYPT_DECRYPT")
    der = public_key(akms, md["KeyId"])
    pub = serialization.load_der_public_key(der)
    h = OAEP[alg]
    limit = LIMITS[(spec, alg)]
    pt = bytes(range(256)) * 2
    pt = pt[:limit]
    ct = pub.encrypt(pt, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
    out = akms.decrypt(KeyId=md["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm=alg)
    assert out["Plaintext"] == pt and out["KeyId"] == md["Arn"] and out["EncryptionAlgorithm"] == alg
    assert "KeyMaterialId" not in out

    pem = write_pem(tmp_path, der)
    (tmp_path / "pt").write_bytes(b"hello from openssl")
    md_name = "sha1" if alg.endswith("SHA_1") else "sha256"
    r = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(pem), "-in", str(tmp_path / "pt"),
                "-out", str(tmp_path / "ct"), "-pkeyopt", "rsa_padding_mode:oaep",
                "-pkeyopt", f"rsa_oaep_md:{md_name}", "-pkeyopt", f"rsa_mgf1_md:{md_name}")
    assert r.returncode == 0, r.stderr
    out = akms.decrypt(KeyId=md["Arn"], CiphertextBlob=(tmp_path / "ct").read_bytes(), EncryptionAlgorithm=alg)
    assert out["Plaintext"] == b"hello from openssl"

    # ferrokms's own ciphertext is raw OAEP: the size of the modulus.
    enc = akms.encrypt(KeyId=md["KeyId"], Plaintext=pt, EncryptionAlgorithm=alg)
    assert enc["EncryptionAlgorithm"] == alg and len(enc["CiphertextBlob"]) == pub.key_size // 8
    assert akms.decrypt(KeyId=md["KeyId"], CiphertextBlob=enc["CiphertextBlob"], EncryptionAlgorithm=alg)["Plaintext"] == pt
    # One byte over the limit is refused.
    expect_error(akms.encrypt, "ValidationException", KeyId=md["KeyId"], Plaintext=pt + b"x" if len(pt) == limit else b"x" * (limit + 1),
                 EncryptionAlgorithm=alg)
    # The other OAEP hash does not decrypt it.
    other = "RSAES_OAEP_SHA_1" if alg.endswith("256") else "RSAES_OAEP_SHA_256"
    expect_error(akms.decrypt, "InvalidCiphertextException", KeyId=md["KeyId"], CiphertextBlob=enc["CiphertextBlob"],
                 EncryptionAlgorithm=other)


def test_asymmetric_encrypt_rules(akms, key):
    md = get_key(akms, "RSA_2048", "ENCRYPT_DECRYPT")
    expect_error(akms.encrypt, "InvalidKeyUsageException", KeyId=md["KeyId"], Plaintext=b"x")
    expect_error(akms.encrypt, "InvalidKeyUsageException", KeyId=md["KeyId"], Plaintext=b"x",
                 EncryptionAlgorithm="SYMMETRIC_DEFAULT")
    expect_error(akms.encrypt, "ValidationException", KeyId=md["KeyId"], Plaintext=b"x",
                 EncryptionAlgorithm="RSAES_OAEP_SHA_256", EncryptionContext={"a": "b"})
    expect_error(akms.decrypt, "InvalidCiphertextException", KeyId=md["KeyId"], CiphertextBlob=b"x" * 256,
                 EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    expect_error(akms.decrypt, "InvalidCiphertextException", KeyId=md["KeyId"], CiphertextBlob=b"x" * 17,
                 EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    # Symmetric keys refuse the OAEP algorithms; signing keys refuse Encrypt.
    expect_error(akms.encrypt, "InvalidKeyUsageException", KeyId=key["KeyId"], Plaintext=b"x",
                 EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    s = get_key(akms, "RSA_2048", "SIGN_VERIFY")
    expect_error(akms.encrypt, "InvalidKeyUsageException", KeyId=s["KeyId"], Plaintext=b"x",
                 EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    # Data keys and ReEncrypt need a symmetric encryption key.
    expect_error(akms.generate_data_key, "InvalidKeyUsageException", KeyId=md["KeyId"], KeySpec="AES_256")
    expect_error(akms.generate_data_key_pair, "InvalidKeyUsageException", KeyId=md["KeyId"], KeyPairSpec="RSA_2048")
    # Symmetric encryption is unchanged.
    ct = akms.encrypt(KeyId=key["KeyId"], Plaintext=b"sym", EncryptionContext={"a": "b"})["CiphertextBlob"]
    assert akms.decrypt(CiphertextBlob=ct, EncryptionContext={"a": "b"})["Plaintext"] == b"sym"


# --- HMAC ---------------------------------------------------------------------

@pytest.mark.parametrize("spec,alg,fn", [("HMAC_224", "HMAC_SHA_224", hashlib.sha224), ("HMAC_256", "HMAC_SHA_256", hashlib.sha256),
                                         ("HMAC_384", "HMAC_SHA_384", hashlib.sha384), ("HMAC_512", "HMAC_SHA_512", hashlib.sha512)])
def test_hmac_generate_and_verify(akms, spec, alg, fn):
    md = get_key(akms, spec, "GENERATE_VERIFY_MAC")
    out = akms.generate_mac(KeyId=md["KeyId"], Message=MSG, MacAlgorithm=alg)
    assert out["MacAlgorithm"] == alg and out["KeyId"] == md["Arn"]
    assert len(out["Mac"]) == fn().digest_size
    assert akms.generate_mac(KeyId=md["KeyId"], Message=MSG, MacAlgorithm=alg)["Mac"] == out["Mac"]
    v = akms.verify_mac(KeyId=md["KeyId"], Message=MSG, MacAlgorithm=alg, Mac=out["Mac"])
    assert v["MacValid"] is True and v["MacAlgorithm"] == alg
    expect_error(akms.verify_mac, "KMSInvalidMacException", KeyId=md["KeyId"], Message=MSG + b"!", MacAlgorithm=alg, Mac=out["Mac"])
    expect_error(akms.verify_mac, "KMSInvalidMacException", KeyId=md["KeyId"], Message=MSG, MacAlgorithm=alg, Mac=out["Mac"][:-1])
    wrong = "HMAC_SHA_256" if alg != "HMAC_SHA_256" else "HMAC_SHA_512"
    expect_error(akms.generate_mac, "InvalidKeyUsageException", KeyId=md["KeyId"], Message=MSG, MacAlgorithm=wrong)
    # Not a hash: a different key gives a different MAC.
    other = akms.create_key(KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert akms.generate_mac(KeyId=other["KeyId"], Message=MSG, MacAlgorithm=alg)["Mac"] != out["Mac"]
    assert out["Mac"] != fn(MSG).digest()
    assert hmac.compare_digest(out["Mac"], out["Mac"])


def test_mac_needs_an_hmac_key(akms, key):
    expect_error(akms.generate_mac, "InvalidKeyUsageException", KeyId=key["KeyId"], Message=MSG, MacAlgorithm="HMAC_SHA_256")
    s = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    expect_error(akms.verify_mac, "InvalidKeyUsageException", KeyId=s["KeyId"], Message=MSG, MacAlgorithm="HMAC_SHA_256", Mac=b"x" * 32)
    h = get_key(akms, "HMAC_256", "GENERATE_VERIFY_MAC")
    expect_error(akms.encrypt, "InvalidKeyUsageException", KeyId=h["KeyId"], Plaintext=b"x")


# --- DeriveSharedSecret ---------------------------------------------------------

@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"])
def test_derive_shared_secret_matches_cryptography(akms, spec):
    md = get_key(akms, spec, "KEY_AGREEMENT")
    kms_pub = serialization.load_der_public_key(public_key(akms, md["KeyId"]))
    peer = ec.generate_private_key(CURVES[spec])
    peer_der = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = akms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
    assert out["KeyId"] == md["Arn"] and out["KeyAgreementAlgorithm"] == "ECDH" and out["KeyOrigin"] == "AWS_KMS"
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_pub)


def test_derive_shared_secret_bad_public_keys(akms):
    md = get_key(akms, "ECC_NIST_P256", "KEY_AGREEMENT")
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    point_only = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    rsa_der = rsa.generate_private_key(65537, 2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (b"garbage", b"\x30\x03\x02\x01\x01", other_curve, point_only, rsa_der, b"\x00" * 91):
        expect_error(akms.derive_shared_secret, "ValidationException", KeyId=md["KeyId"],
                     KeyAgreementAlgorithm="ECDH", PublicKey=bad)
    s = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    good = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    expect_error(akms.derive_shared_secret, "InvalidKeyUsageException", KeyId=s["KeyId"],
                 KeyAgreementAlgorithm="ECDH", PublicKey=good)


# --- GenerateDataKeyPair ---------------------------------------------------------

PAIR_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
              "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"]


@pytest.mark.parametrize("spec", PAIR_SPECS)
def test_data_key_pairs_load_in_openssl_and_cryptography(akms, key, tmp_path, spec):
    ctx = {"purpose": "e2e"}
    out = akms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec=spec, EncryptionContext=ctx)
    assert out["KeyPairSpec"] == spec and out["KeyId"] == key["Arn"]
    assert len(out["KeyMaterialId"]) == 64
    priv = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    pub_from_priv = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pub_from_priv == out["PublicKey"]
    if spec.startswith("RSA"):
        assert priv.key_size == int(spec[4:])
    elif spec.startswith("ECC_NIST_EDWARDS"):
        assert isinstance(priv, ed25519.Ed25519PrivateKey)
    else:
        assert priv.curve.name == CURVES[spec].name
    (tmp_path / "priv.der").write_bytes(out["PrivateKeyPlaintext"])
    r = openssl("pkey", "-inform", "DER", "-in", str(tmp_path / "priv.der"), "-pubout", "-outform", "DER")
    assert r.returncode == 0 and r.stdout == out["PublicKey"], r.stderr
    # The encrypted copy is an ordinary symmetric ciphertext under the KMS key.
    dec = akms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == out["PrivateKeyPlaintext"] and dec["KeyId"] == key["Arn"]
    expect_error(akms.decrypt, "InvalidCiphertextException", CiphertextBlob=out["PrivateKeyCiphertextBlob"])

    wo = akms.generate_data_key_pair_without_plaintext(KeyId=key["KeyId"], KeyPairSpec=spec)
    assert "PrivateKeyPlaintext" not in wo and wo["KeyPairSpec"] == spec
    p2 = serialization.load_der_private_key(akms.decrypt(CiphertextBlob=wo["PrivateKeyCiphertextBlob"])["Plaintext"], password=None)
    assert p2.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == wo["PublicKey"]
    assert wo["PublicKey"] != out["PublicKey"]


def test_data_key_pair_rules(akms, key):
    expect_error(akms.generate_data_key_pair, "UnsupportedOperationException", KeyId=key["KeyId"], KeyPairSpec="SM2")
    s = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    expect_error(akms.generate_data_key_pair_without_plaintext, "InvalidKeyUsageException", KeyId=s["KeyId"], KeyPairSpec="ECC_NIST_P256")
    h = get_key(akms, "HMAC_256", "GENERATE_VERIFY_MAC")
    expect_error(akms.generate_data_key_pair, "InvalidKeyUsageException", KeyId=h["KeyId"], KeyPairSpec="ECC_NIST_P256")
    md = akms.create_key()["KeyMetadata"]
    akms.disable_key(KeyId=md["KeyId"])
    expect_error(akms.generate_data_key_pair, "DisabledException", KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P256")


# --- DryRun ---------------------------------------------------------------------

def test_dry_run_on_every_new_operation(akms, key):
    s = get_key(akms, "ECC_NIST_P256", "SIGN_VERIFY")
    e = get_key(akms, "RSA_2048", "ENCRYPT_DECRYPT")
    h = get_key(akms, "HMAC_256", "GENERATE_VERIFY_MAC")
    a = get_key(akms, "ECC_NIST_P256", "KEY_AGREEMENT")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sig = akms.sign(KeyId=s["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    ct = akms.encrypt(KeyId=e["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1")["CiphertextBlob"]
    mac = akms.generate_mac(KeyId=h["KeyId"], Message=MSG, MacAlgorithm="HMAC_SHA_256")["Mac"]
    calls = [
        (akms.sign, dict(KeyId=s["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")),
        (akms.verify, dict(KeyId=s["KeyId"], Message=MSG, Signature=sig, SigningAlgorithm="ECDSA_SHA_256")),
        (akms.encrypt, dict(KeyId=e["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1")),
        (akms.decrypt, dict(KeyId=e["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_1")),
        (akms.generate_mac, dict(KeyId=h["KeyId"], Message=MSG, MacAlgorithm="HMAC_SHA_256")),
        (akms.verify_mac, dict(KeyId=h["KeyId"], Message=MSG, MacAlgorithm="HMAC_SHA_256", Mac=mac)),
        (akms.derive_shared_secret, dict(KeyId=a["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer)),
        (akms.generate_data_key_pair, dict(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256")),
        (akms.generate_data_key_pair_without_plaintext, dict(KeyId=key["KeyId"], KeyPairSpec="RSA_2048")),
    ]
    for fn, kw in calls:
        expect_error(fn, "DryRunOperationException", status=400, DryRun=True, **kw)
    # DryRun still reports the errors it can see.
    expect_error(akms.sign, "InvalidKeyUsageException", KeyId=s["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_384", DryRun=True)


# --- durability -----------------------------------------------------------------

def test_private_keys_survive_a_restart(server_factory):
    srv = server_factory()
    c = srv.client()
    keys = {
        spec: c.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
        for spec, usage in (("ECC_NIST_P256", "SIGN_VERIFY"), ("RSA_2048", "ENCRYPT_DECRYPT"),
                            ("HMAC_384", "GENERATE_VERIFY_MAC"), ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
                            ("ML_DSA_44", "SIGN_VERIFY"), ("ECC_NIST_P521", "KEY_AGREEMENT"))
    }
    pubs = {s: c.get_public_key(KeyId=k)["PublicKey"] for s, k in keys.items() if not s.startswith("HMAC")}
    sig = c.sign(KeyId=keys["ECC_NIST_P256"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    mac = c.generate_mac(KeyId=keys["HMAC_384"], Message=MSG, MacAlgorithm="HMAC_SHA_384")["Mac"]
    ct = c.encrypt(KeyId=keys["RSA_2048"], Plaintext=b"durable", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    srv.restart()
    c = srv.client()
    for s, der in pubs.items():
        assert c.get_public_key(KeyId=keys[s])["PublicKey"] == der
    c.verify(KeyId=keys["ECC_NIST_P256"], Message=MSG, Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    c.verify_mac(KeyId=keys["HMAC_384"], Message=MSG, MacAlgorithm="HMAC_SHA_384", Mac=mac)
    assert c.decrypt(KeyId=keys["RSA_2048"], CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"durable"
    sig2 = c.sign(KeyId=keys["ECC_NIST_EDWARDS25519"], Message=MSG, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    serialization.load_der_public_key(pubs["ECC_NIST_EDWARDS25519"]).verify(sig2, MSG)
