"""Keys with fixed ids and given material (issue #20): the bootstrap file's
`key_id`/`materials`, local-kms seed files (`--seed`) and LocalStack's
`_custom_id_` / `_custom_key_material_` CreateKey tags under `--dev`.

The point of all three: the same file gives the same keys on a fresh server
(fresh data dir), so ciphertexts, MACs and signatures made on one server
are decrypted and verified on another, including ciphertexts committed here
as constants. TEST KEYS ONLY: the material below is public.
"""

import base64
import datetime
import hashlib
import hmac
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import DEFAULT_ACCOUNT, REGION, expect_error

HERE = Path(__file__).parent
SEED_YAML = HERE.parent.parent / "examples" / "local-kms-seed.yaml"

SYM_ID = "fbc147ea-264f-4f13-918d-63b51122b691"
SYM_B64 = "2LUH0VNCfp9X4mNypTGSglfDltk6ixKJgCJyW+zci3Y="
SYM_CREATED = "2021-03-04T05:06:07Z"

# Three materials: the last is current.
ROT_ID = "e9899632-d4a7-44a2-aee4-33f40a2a4648"
ROT = [
    ("OK1CQDakRkSU3Ptfm+kr5GZWARjjGdbSeCKuj2B1y7w=", "2022-01-01T00:00:00Z"),
    ("W4nfkSX51f7Jm3ZTQvroXhoGUyGeONbTHHGNKHB4kEs=", "2023-01-01T00:00:00Z"),
    ("rxTiWze3UiAleo+Q2t9b+4KI/H8KvT9cZlBsRrd2hS8=", "2024-01-01T00:00:00Z"),
]

RSA_ID = "ff08d6c4-7bb0-4898-bfdb-73ef240b3779"
RSA_PEM = """-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAoKGLdS3Ngn1EoEL6UF1/EKy6NK8LIQv4/EVKP+4OF7AhDQ1u
SiIDjToKzINWHVP4yHfhl/o7bFORuhf951mp1O7PFwTNlKI3INwDaCcTZY0CDlMK
luIWtfAeRdJSdQfMxHyBDB+MOWfYEwE5cOiRBgFRjnxApsZWVdu92ehDJulsoJT8
MyHYdlW/USvB+73/FL09ha3bsY2sMZg+v+mBBJyX+LKTwhzRkn1BUBjnoZ1IDM8f
+c7VxlEohExO9ePhYqLDJP41YOVu78U63bOSL7mAKNqG+MkfwmHXmq0opmj+ukrX
g7DUAvck0FWwbrKaFLOmzpJk1iLnKFi6GBAodQIDAQABAoIBAAvzoSD9oLQkFnJX
MXE/16e5tlwbpxgVIDhC/pCNqaJFElx6gpmE+N8t8aZAYmypthHSa6hnb7ryZ94h
EV0AnKSRhTqY+qPjwvbQr/c0qxqL+JpwvtG1rktou5Pl34lCJI/9FIv+n+wYiCj3
1xqJz1qTSApyP8w45y0ZvcFEKRTwvHV+oOGD2r6HlrdfcTG+7bM20Zj1NtzNDpi4
djQCyW1tDprxGU1lU8hUH32a0u2Ys/oMekKRz23zX0M6e8AL//poRSTpj2y5f/BN
LCFe6K/i4MYK3Q53DtTch9HipvZcWkqtKx8QCe5JjwJq5q2dK63ttMD0GuUJjUXB
LZdxVPkCgYEA4HlGUTP4M+Q5THLmx/xjZUOA8uU2ROhfoKL0Cdks3SO9A3v7oed1
w8sBomcWOmgjpU/tU1IZP7Zw5zgy+0WhMtZ81pcIk7NMUDzPfOg0zaIPM+0UUTWT
R9+uzEFT0coC9g8bYg35lJMfuTkH2CeaDH+Q5Icc9SXbhZmoohtVLmkCgYEAtzDe
50IqbgsJ/tIHXXKYv/Nb7qjgff4C9jBB9UYGE62A6K7d9xdZH05LB2lNaGOPQvc8
ynX2ZY1SDKKXgp8RIl2sVTPSC6jMY91BZa3U3RuKlGyeInpf5JGA1RGwVrdD1e0x
OmmDsZsZ/KycQr7hkiG1dXN5RtYsTSiNjqR/AC0CgYEA2XyG5ZxNqbFA1tIoybC+
eNl7cVslRoRCSrg3a+dQMX4z3tFcT1Sb5DSng7sPbU2C4+NZ1LWhovpXz57CvnOL
KF9qGtvAwqIgmUkh2yp8JpQS2MOmQLyA001k5Z+R35wzXEXsyQczPoGBZgtcj1Bn
UB60usYyB09DruDe4xlKYakCgYBogsQYcWIdh8S7EP3MrU1B7Ufcf5IbryfnZh6r
HLjozwqFNQZDKpnYx2T8pHHaBTq9PKn845Gf3CEcPkJr7e3rij+AGGFT74gzzQ27
QZH4VvcXuGP7TY+Zqf0zEbVls4ZK7Ngx9/J/B/qqcZtwZM/x+7M3f5qH9DYwCtu/
rk8aPQKBgQDMXcs1j19IpliLZ3d0MczqT0lVI6UFXZYCNeBv4te0urMbz5T1bo0U
QsD3ekfIpZBN7Cvlq+c7tGxQttdbd+iqCShfPb/46X0Wc6pBlwHW5cFcy5tBVtTu
mbLYMKUxQxnls9Th0xHiFnl+aVMeCZDps7fncCCqem/KYwTx8DUNVQ==
-----END RSA PRIVATE KEY-----"""
ECC_ID = "cfca2a77-b2ac-44a4-a21c-badc896d2caf"
ECC_PEM = """-----BEGIN EC PRIVATE KEY-----
MHcCAQEEII08VVg7sg6cxrWAUCZX3Ch9kLb5xUeQIKKaXBSMT8KsoAoGCCqGSM49
AwEHoUQDQgAEUaPsiJ0QgIb0pHKF1jtAdqzpQGxWh1decsM8OMIkCYqvNy+EyfF2
jIt92sfro6blZEsQR0L9uNyXO5TzQaSZ0A==
-----END EC PRIVATE KEY-----"""
HMAC_ID = "3a1d43c2-0e2b-4c39-9f3e-8a6f0b5d7e21"
HMAC_HEX = "89738e1963a5a964fbb56355cc25ec9964470ee42c653dc30a42b675f9d2c151"
MRK_ID = "mrk-2ffa578cfcfa421cb435812fca7b09fd"
MRK_B64 = "KlX9HHQTF9TcpDUik5cUgJ8tk1u4zqSmRWsqpdcVWcI="
MRK_REPLICA = "us-west-2"
EXT_ID = "4d029dae-ffee-46ad-b045-2467302299fb"
EXT_B64 = "R6MTE2UZfEpioLVNBjozs54L5M5QsNsm2PT4kPKcPoQ="

CONTEXT = {"purpose": "issue-20"}
MESSAGE = b"seeded keys sign the same on every server"

# Made once by this server from the fixed material above (encrypt with
# EncryptionContext CONTEXT) and committed: the user's real use case is a
# ciphertext kept in a repo or a fixture that any fresh server decrypts.
COMMITTED = {
    "sym": "ASRmYmMxNDdlYS0yNjRmLTRmMTMtOTE4ZC02M2I1MTEyMmI2OTExMTExMjIyMjMzMzMAAAAAebd3lTiNc8HvKJhz6BmPl+zrIpSWJq4Pi+rSbX0ny83vbkqr1p71zIcNVYNWqDi8ZFPh/A==",
    "rot_oldest": "ASRlOTg5OTYzMi1kNGE3LTQ0YTItYWVlNC0zM2Y0MGEyYTQ2NDgxMTExMjIyMjMzMzMAAAAAx4pyO5eOpV2AAn/os+481pZUywc/AEBCAUMfKIEoxLeSarcjelLZlGXOAkXmXjfYXfBPHg==",
    "mrk": "ASRtcmstMmZmYTU3OGNmY2ZhNDIxY2I0MzU4MTJmY2E3YjA5ZmQxMTExMjIyMjMzMzMAAAAAovSrg4bzz3WJARzMYqdZzLGFkGRh8ukd9Hcivs7Vcr8ym2XQL0g6gBlNupSC8RfxqDV2MA==",
    "ext": "ASQ0ZDAyOWRhZS1mZmVlLTQ2YWQtYjA0NS0yNDY3MzAyMjk5ZmIxMTExMjIyMjMzMzMAAAAAy6VfFoKyOw++12OLhYhGg7/BDdv2YKZJZ2BqhGkmFGP8TxTCpnigfvG9OD+DJHabsYsRJQ==",
    "seed_aes": "ASQ0ZDg0YzFiMS01ZDMyLTQ4MjgtYjZhOC01ODk3MzE4NDA3ZGYxMTExMjIyMjMzMzMAAAACX+h1R0ZosYca+gFBqkVTilptK5JTZo7LSC1LiMWDTdz3Ur2+4anG5MlRUWpv7jWdIL4RcQ==",
}
COMMITTED_PLAINTEXT = b"committed with issue #20"


def toml_str(s: str) -> str:
    """A PEM as a TOML multi-line literal string."""
    return "'''" + s + "'''"


def bootstrap_toml(rot_count: int = 3, ext_valid_to: str = None) -> str:
    """The test's bootstrap file; `rot_count` materials of the rotated key."""
    valid_to = ext_valid_to or (
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    rot = "".join(
        f"""
[[accounts.keys.materials]]
base64 = "{b}"
created = {d}
"""
        for b, d in ROT[:rot_count]
    )
    return f"""
[[accounts]]
id = "{DEFAULT_ACCOUNT}"

[[accounts.keys]]
alias = "alias/fixed"
key_id = "{SYM_ID}"
created = "{SYM_CREATED}"
description = "fixed symmetric"
[[accounts.keys.materials]]
base64 = "{SYM_B64}"

[[accounts.keys]]
alias = "alias/rotated"
key_id = "{ROT_ID}"
created = "{ROT[0][1]}"
{rot}

[[accounts.keys]]
key_id = "{RSA_ID}"
key_spec = "RSA_2048"
key_usage = "SIGN_VERIFY"
[[accounts.keys.materials]]
pem = {toml_str(RSA_PEM)}

[[accounts.keys]]
key_id = "{ECC_ID}"
key_spec = "ECC_NIST_P256"
key_usage = "SIGN_VERIFY"
[[accounts.keys.materials]]
pem = {toml_str(ECC_PEM)}

[[accounts.keys]]
key_id = "{HMAC_ID}"
key_spec = "HMAC_256"
[[accounts.keys.materials]]
hex = "{HMAC_HEX}"

[[accounts.keys]]
alias = "alias/mrk"
key_id = "{MRK_ID}"
replica_regions = ["{MRK_REPLICA}"]
[[accounts.keys.materials]]
base64 = "{MRK_B64}"

[[accounts.keys]]
key_id = "{EXT_ID}"
origin = "EXTERNAL"
[[accounts.keys.materials]]
base64 = "{EXT_B64}"
valid_to = "{valid_to}"
"""


def seeded_server(server_factory, *args, dev=False):
    s = server_factory(start=False, dev=dev)
    s.extra_args = list(args)
    return s


def boot(server_factory, tmp_path, text, name="boot.toml", dev=False):
    f = tmp_path / name
    f.write_text(text)
    f.chmod(0o600)
    s = seeded_server(server_factory, "--bootstrap", str(f), dev=dev)
    s.start()
    return s


def epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def all_material_texts():
    """Every given material as text a leak would show (base64, hex, PEM body)."""
    out = [SYM_B64, MRK_B64, EXT_B64, HMAC_HEX] + [b for b, _ in ROT]
    out += [base64.b64decode(b).hex() for b in (SYM_B64, MRK_B64, EXT_B64)]
    for pem in (RSA_PEM, ECC_PEM):
        out += [line for line in pem.splitlines()[1:-1] if len(line) > 40]
    return out


def assert_no_material_in_clear(server):
    """Nothing under the data dir (SQLite, audit trail, credentials) nor the
    server's logs holds any given material in the clear."""
    texts = [t.encode() for t in all_material_texts()]
    raws = [base64.b64decode(b) for b in (SYM_B64, MRK_B64, EXT_B64)] + [bytes.fromhex(HMAC_HEX)]
    blobs = [p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file()]
    blobs += [p.read_bytes() for p in server.workdir.glob("server-stderr-*.log")]
    for blob in blobs:
        for t in texts + raws:
            assert t not in blob, "key material found in the clear"


def test_fixed_keys_work_the_same_on_a_fresh_server(server_factory, tmp_path):
    s1 = boot(server_factory, tmp_path, bootstrap_toml())
    c1 = s1.client()
    md = c1.describe_key(KeyId="alias/fixed")["KeyMetadata"]
    assert md["KeyId"] == SYM_ID
    assert md["CreationDate"].timestamp() == epoch(SYM_CREATED)
    assert md["Description"] == "fixed symmetric"
    made = {}
    for name, key in [("sym", SYM_ID), ("rot", "alias/rotated"), ("mrk", MRK_ID), ("ext", EXT_ID)]:
        made[name] = c1.encrypt(KeyId=key, Plaintext=b"p-" + name.encode(), EncryptionContext=CONTEXT)["CiphertextBlob"]
    ext = c1.describe_key(KeyId=EXT_ID)["KeyMetadata"]
    assert (ext["Origin"], ext["KeyState"], ext["ExpirationModel"]) == ("EXTERNAL", "Enabled", "KEY_MATERIAL_EXPIRES")
    rot = c1.list_key_rotations(KeyId=ROT_ID)["Rotations"]
    assert [r["RotationDate"].timestamp() for r in rot] == [epoch(d) for _, d in ROT[1:]]
    mrk = c1.describe_key(KeyId=MRK_ID)["KeyMetadata"]["MultiRegionConfiguration"]
    assert [r["Region"] for r in mrk["ReplicaKeys"]] == [MRK_REPLICA]

    # The material is the file's: checked against it outside the server.
    mac = c1.generate_mac(KeyId=HMAC_ID, Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(bytes.fromhex(HMAC_HEX), MESSAGE, hashlib.sha256).digest()
    blob = made["sym"]
    id_len = blob[1]
    header = blob[: 2 + id_len + 12 + 4]
    nonce, body = blob[len(header) : len(header) + 12], blob[len(header) + 12 :]
    aad = header + b"".join(
        len(x).to_bytes(4, "big") + x for k, v in sorted(CONTEXT.items()) for x in (k.encode(), v.encode())
    )
    assert AESGCM(base64.b64decode(SYM_B64)).decrypt(nonce, body, aad) == b"p-sym"
    sigs = {}
    for key, pem, alg in [
        (RSA_ID, RSA_PEM, "RSASSA_PKCS1_V1_5_SHA_256"),
        (ECC_ID, ECC_PEM, "ECDSA_SHA_256"),
    ]:
        private = serialization.load_pem_private_key(pem.encode(), None)
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert c1.get_public_key(KeyId=key)["PublicKey"] == spki
        sig = c1.sign(KeyId=key, Message=MESSAGE, SigningAlgorithm=alg)["Signature"]
        if key == RSA_ID:
            private.public_key().verify(sig, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        else:
            private.public_key().verify(sig, MESSAGE, ec.ECDSA(hashes.SHA256()))
        sigs[key] = (sig, alg)
    assert s1.stop() == 0
    assert_no_material_in_clear(s1)

    # A fresh data dir, the same file: everything made on s1 opens on s2.
    s2 = boot(server_factory, tmp_path, bootstrap_toml(), name="boot2.toml")
    assert s2.data_dir != s1.data_dir
    c2 = s2.client()
    for name, blob in made.items():
        assert c2.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)["Plaintext"] == b"p-" + name.encode()
    replica = s2.client(region=MRK_REPLICA)
    assert replica.decrypt(CiphertextBlob=made["mrk"], EncryptionContext=CONTEXT)["KeyId"].endswith(MRK_ID)
    assert c2.verify_mac(KeyId=HMAC_ID, Message=MESSAGE, Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]
    for key, (sig, alg) in sigs.items():
        assert c2.verify(KeyId=key, Message=MESSAGE, Signature=sig, SigningAlgorithm=alg)["SignatureValid"]
    for name, blob64 in COMMITTED.items():
        if name == "seed_aes":
            continue
        out = c2.decrypt(CiphertextBlob=base64.b64decode(blob64), EncryptionContext=CONTEXT)
        assert out["Plaintext"] == COMMITTED_PLAINTEXT, name

    # Applying the file again changes nothing.
    before = {k["KeyId"] for k in c2.list_keys()["Keys"]}
    s2.restart()
    c2 = s2.client()
    assert {k["KeyId"] for k in c2.list_keys()["Keys"]} == before
    assert "created key" not in s2.stderr_text()
    assert c2.describe_key(KeyId="alias/fixed")["KeyMetadata"]["KeyId"] == SYM_ID
    assert_no_material_in_clear(s2)


def test_ciphertexts_of_older_materials_still_decrypt(server_factory, tmp_path):
    # Server A knows only the first material: its ciphertext is under it.
    a = boot(server_factory, tmp_path, bootstrap_toml(rot_count=1))
    old = a.client().encrypt(KeyId=ROT_ID, Plaintext=b"old", EncryptionContext=CONTEXT)["CiphertextBlob"]
    a.stop()
    # Server B (fresh) has the whole history: the old ciphertext decrypts,
    # new ones are under the newest material.
    b = boot(server_factory, tmp_path, bootstrap_toml(), name="b.toml")
    cb = b.client()
    assert cb.decrypt(CiphertextBlob=old, EncryptionContext=CONTEXT)["Plaintext"] == b"old"
    new = cb.encrypt(KeyId=ROT_ID, Plaintext=b"new", EncryptionContext=CONTEXT)["CiphertextBlob"]
    assert new[: 2 + new[1] + 12] == old[: 2 + old[1] + 12]
    assert int.from_bytes(new[2 + new[1] + 12 : 2 + new[1] + 16], "big") == 2
    rotations = cb.list_key_rotations(KeyId=ROT_ID)["Rotations"]
    md = cb.describe_key(KeyId=ROT_ID)["KeyMetadata"]
    assert md["CurrentKeyMaterialId"] == rotations[-1]["KeyMaterialId"]
    # A's data dir with B's longer history: the key exists with fewer
    # materials than the file gives, and the server says so and refuses.
    a.extra_args = ["--bootstrap", str(tmp_path / "b.toml")]
    with pytest.raises(RuntimeError):
        a.start()
    err = a.stderr_text()
    assert f"key alias/rotated" in err and "1 material(s), where the file gives 3" in err


def test_committed_constants_decrypt_on_a_fresh_server(server_factory, tmp_path):
    s = boot(server_factory, tmp_path, bootstrap_toml())
    c = s.client()
    for name in ("sym", "rot_oldest", "mrk", "ext"):
        out = c.decrypt(CiphertextBlob=base64.b64decode(COMMITTED[name]), EncryptionContext=CONTEXT)
        assert out["Plaintext"] == COMMITTED_PLAINTEXT, name
    # The MRK constant opens in the replica's Region too.
    r = s.client(region=MRK_REPLICA)
    out = r.decrypt(CiphertextBlob=base64.b64decode(COMMITTED["mrk"]), EncryptionContext=CONTEXT)
    assert out["Plaintext"] == COMMITTED_PLAINTEXT


def test_local_kms_seed_file_read_unchanged(server_factory, tmp_path):
    s1 = seeded_server(server_factory, "--seed", str(SEED_YAML))
    s1.start()
    c1 = s1.client(region="eu-west-2")
    md = c1.describe_key(KeyId="alias/testing")["KeyMetadata"]
    assert md["Arn"] == f"arn:aws:kms:eu-west-2:{DEFAULT_ACCOUNT}:key/4d84c1b1-5d32-4828-b6a8-5897318407df"
    # Three backing keys: two rotations; the last backing key is current.
    assert len(c1.list_key_rotations(KeyId="4d84c1b1-5d32-4828-b6a8-5897318407df")["Rotations"]) == 2
    blob = c1.encrypt(KeyId="alias/testing", Plaintext=b"seeded", EncryptionContext=CONTEXT)["CiphertextBlob"]
    header_len = 2 + blob[1] + 12 + 4
    assert int.from_bytes(blob[header_len - 4 : header_len], "big") == 2
    last = bytes.fromhex("2f2500a9bf20b20e73e832d278f55ae2d36c60880aa825ea6aa25de014648f05")
    aad = blob[:header_len] + b"".join(
        len(x).to_bytes(4, "big") + x for k, v in sorted(CONTEXT.items()) for x in (k.encode(), v.encode())
    )
    assert AESGCM(last).decrypt(blob[header_len : header_len + 12], blob[header_len + 12 :], aad) == b"seeded"
    rotating = c1.get_key_rotation_status(KeyId="4d029dae-ffee-46ad-b045-2467302299fc")
    assert rotating["KeyRotationEnabled"] and rotating["NextRotationDate"].year == 2099
    assert c1.describe_key(KeyId="4c7b8180-37fc-4e2f-a2a8-f4a352efcf37")["KeyMetadata"]["KeyState"] == "Enabled"
    pending = c1.describe_key(KeyId="17914fff-3286-4647-9a3a-721a33738389")["KeyMetadata"]
    assert (pending["Origin"], pending["KeyState"]) == ("EXTERNAL", "PendingImport")
    sig = c1.sign(KeyId="alias/signing", Message=MESSAGE, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    specs = {
        k["KeyId"]: c1.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeySpec"] for k in c1.list_keys()["Keys"]
    }
    assert sorted(specs.values()) == sorted(["SYMMETRIC_DEFAULT"] * 4 + ["RSA_2048"] * 2 + ["ECC_NIST_P384"])
    oaep = c1.encrypt(
        KeyId="0b7ec1c4-60a4-4b8e-9d43-2f1f6e8e2a51", Plaintext=b"rsa", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    s1.stop()

    s2 = seeded_server(server_factory, "--seed", str(SEED_YAML))
    s2.start()
    c2 = s2.client(region="eu-west-2")
    assert c2.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)["Plaintext"] == b"seeded"
    out = c2.decrypt(CiphertextBlob=base64.b64decode(COMMITTED["seed_aes"]), EncryptionContext=CONTEXT)
    assert out["Plaintext"] == COMMITTED_PLAINTEXT
    assert c2.verify(KeyId="alias/signing", Message=MESSAGE, Signature=sig, SigningAlgorithm="RSASSA_PSS_SHA_256")[
        "SignatureValid"
    ]
    out = c2.decrypt(
        KeyId="0b7ec1c4-60a4-4b8e-9d43-2f1f6e8e2a51", CiphertextBlob=oaep, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )
    assert out["Plaintext"] == b"rsa"
    s2.restart()
    assert "created key" not in s2.stderr_text()

    # --seed-region (local-kms's KMS_REGION) moves the keys.
    s3 = seeded_server(server_factory, "--seed", str(SEED_YAML), "--seed-region", "ap-southeast-2")
    s3.start()
    arn = s3.client(region="ap-southeast-2").describe_key(KeyId="alias/testing")["KeyMetadata"]["Arn"]
    assert arn.startswith(f"arn:aws:kms:ap-southeast-2:{DEFAULT_ACCOUNT}:key/")


CUSTOM_ID = "00000000-0000-4000-8000-000000000020"


def test_localstack_custom_tags_only_under_dev(server_factory):
    material = base64.b64encode(os.urandom(32)).decode()
    # Without --dev: _custom_id_ is an ordinary tag and picks nothing;
    # _custom_key_material_ is refused and nothing is created.
    s = server_factory()
    c = s.client()
    k = c.create_key(Tags=[{"TagKey": "_custom_id_", "TagValue": CUSTOM_ID}])["KeyMetadata"]["KeyId"]
    assert k != CUSTOM_ID
    assert {"TagKey": "_custom_id_", "TagValue": CUSTOM_ID} in c.list_resource_tags(KeyId=k)["Tags"]
    expect_error(lambda: c.describe_key(KeyId=CUSTOM_ID), "NotFoundException")
    count = len(c.list_keys()["Keys"])
    for tags in (
        [{"TagKey": "_custom_key_material_", "TagValue": material}],
        [{"TagKey": "_custom_id_", "TagValue": CUSTOM_ID}, {"TagKey": "_custom_key_material_", "TagValue": material}],
    ):
        e = expect_error(lambda: c.create_key(Tags=tags), "TagException")
        assert material not in str(e)
    assert len(c.list_keys()["Keys"]) == count
    expect_error(lambda: c.describe_key(KeyId=CUSTOM_ID), "NotFoundException")
    # An over-long value (no valid tag value) is not echoed either.
    long_value = base64.b64encode(os.urandom(300)).decode()
    loose = s.client(validate=False)
    e = expect_error(
        lambda: loose.create_key(Tags=[{"TagKey": "_custom_key_material_", "TagValue": long_value}]),
        "ValidationException",
    )
    assert long_value not in str(e) and "tags.1.member.tagValue" in str(e)
    s.stop()
    for p in list(s.data_dir.rglob("*")) + list(s.workdir.glob("server-stderr-*.log")):
        if p.is_file():
            assert material.encode() not in p.read_bytes()

    # With --dev: the id and the material are the tags'.
    d = server_factory(dev=True)
    dc = d.client(access_key=DEFAULT_ACCOUNT, secret_key="x")
    md = dc.create_key(
        Tags=[
            {"TagKey": "_custom_id_", "TagValue": CUSTOM_ID},
            {"TagKey": "_custom_key_material_", "TagValue": material},
            {"TagKey": "team", "TagValue": "a"},
        ]
    )["KeyMetadata"]
    assert md["KeyId"] == CUSTOM_ID
    assert dc.list_resource_tags(KeyId=CUSTOM_ID)["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    blob = dc.encrypt(KeyId=CUSTOM_ID, Plaintext=b"dev")["CiphertextBlob"]
    header_len = 2 + blob[1] + 12 + 4
    plain = AESGCM(base64.b64decode(material)).decrypt(
        blob[header_len : header_len + 12], blob[header_len + 12 :], blob[:header_len]
    )
    assert plain == b"dev"
    # The same id again: AlreadyExistsException, and the key is unchanged.
    e = expect_error(
        lambda: dc.create_key(Tags=[{"TagKey": "_custom_id_", "TagValue": CUSTOM_ID}]), "AlreadyExistsException"
    )
    assert CUSTOM_ID in str(e)
    assert dc.decrypt(CiphertextBlob=blob)["Plaintext"] == b"dev"
    # A malformed id, material of the wrong length: refused.
    expect_error(lambda: dc.create_key(Tags=[{"TagKey": "_custom_id_", "TagValue": "my-key"}]), "ValidationException")
    short = base64.b64encode(os.urandom(16)).decode()
    e = expect_error(
        lambda: dc.create_key(Tags=[{"TagKey": "_custom_key_material_", "TagValue": short}]),
        "IncorrectKeyMaterialException",
    )
    assert short not in str(e)
    # HMAC and ECC material (the SEC 1 DER LocalStack users pass).
    hkey = os.urandom(32)
    hid = dc.create_key(
        KeySpec="HMAC_256",
        KeyUsage="GENERATE_VERIFY_MAC",
        Tags=[{"TagKey": "_custom_key_material_", "TagValue": base64.b64encode(hkey).decode()}],
    )["KeyMetadata"]["KeyId"]
    mac = dc.generate_mac(KeyId=hid, Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(hkey, MESSAGE, hashlib.sha256).digest()
    private = serialization.load_pem_private_key(ECC_PEM.encode(), None)
    der = base64.b64encode(
        private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    ).decode()
    eid = dc.create_key(
        KeySpec="ECC_NIST_P256",
        KeyUsage="SIGN_VERIFY",
        Tags=[{"TagKey": "_custom_key_material_", "TagValue": der}],
    )["KeyMetadata"]["KeyId"]
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert dc.get_public_key(KeyId=eid)["PublicKey"] == spki
    d.stop()
    audit = (d.data_dir / "audit" / "audit.jsonl").read_bytes()
    assert b'"tagKey":"_custom_key_material_","tagValue":"HIDDEN_DUE_TO_SECURITY_REASONS"' in audit.replace(
        b'"TagKey"', b'"tagKey"'
    ).replace(b'"TagValue"', b'"tagValue"')
    for p in list(d.data_dir.rglob("*")) + list(d.workdir.glob("server-stderr-*.log")):
        if p.is_file():
            body = p.read_bytes()
            assert material.encode() not in body and base64.b64decode(material) not in body


BAD = [
    ('key_id = "not-a-key"\n[[accounts.keys.materials]]\nbase64 = "%s"' % SYM_B64, "key not-a-key: key_id 'not-a-key' is not a key id"),
    ('key_id = "%s"\n[[accounts.keys.materials]]\nbase64 = "%s"' % (SYM_ID, base64.b64encode(b"x" * 16).decode()), "material 1 has 16 bytes; SYMMETRIC_DEFAULT material is exactly 32 bytes"),
    ('key_id = "%s"\nkey_spec = "HMAC_256"\n[[accounts.keys.materials]]\nhex = "%s"' % (HMAC_ID, "ab" * 20), "material 1 has 20 bytes; HMAC_256 material is 32 to 64 bytes"),
    ('key_id = "%s"\nkey_spec = "RSA_2048"\nkey_usage = "SIGN_VERIFY"\n[[accounts.keys.materials]]\npem = %s' % (RSA_ID, toml_str(ECC_PEM)), "is an SEC 1 EC private key (BEGIN EC PRIVATE KEY), not a private key of key spec RSA_2048"),
    ('key_id = "%s"\nkey_spec = "ECC_NIST_P384"\nkey_usage = "SIGN_VERIFY"\n[[accounts.keys.materials]]\npem = %s' % (ECC_ID, toml_str(ECC_PEM)), "not a private key of key spec ECC_NIST_P384"),
    ('key_id = "%s"\nreplica_regions = ["us-west-2"]\n[[accounts.keys.materials]]\nbase64 = "%s"' % (SYM_ID, SYM_B64), "is not a multi-Region key"),
    ('alias = "alias/x"\n[[accounts.keys.materials]]\nbase64 = "%s"' % SYM_B64, "need a key_id"),
    ('key_id = "%s"\n[[accounts.keys.materials]]\nbase64 = "%s"\nvalid_to = "2099-01-01T00:00:00Z"' % (SYM_ID, SYM_B64), "only EXTERNAL keys' material expires"),
    ('key_id = "%s"\n[[accounts.keys.materials]]\nbase64 = "%s"\nextra = 1' % (SYM_ID, SYM_B64), "unknown field"),
    ('key_id = "%s"\nkey_spec = "RSA_2048"\nkey_usage = "SIGN_VERIFY"\n[[accounts.keys.materials]]\nbase64 = "%s"' % (RSA_ID, SYM_B64), "is raw bytes; a RSA_2048 key's material is a private key"),
]


@pytest.mark.parametrize("entry,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_entries_stop_the_server_with_a_clear_error(server_factory, tmp_path, entry, message):
    f = tmp_path / "bad.toml"
    f.write_text(f'[[accounts]]\nid = "{DEFAULT_ACCOUNT}"\n[[accounts.keys]]\n{entry}\n')
    s = seeded_server(server_factory, "--bootstrap", str(f))
    with pytest.raises(RuntimeError):
        s.start()
    err = s.stderr_text()
    assert message in err, err[-2000:]
    for t in all_material_texts():
        assert t not in err


def test_a_key_id_with_other_material_is_refused(server_factory, tmp_path):
    s = boot(server_factory, tmp_path, bootstrap_toml())
    s.stop()
    other = bootstrap_toml().replace(SYM_B64, MRK_B64, 1)
    (tmp_path / "other.toml").write_text(other)
    s.extra_args = ["--bootstrap", str(tmp_path / "other.toml")]
    with pytest.raises(RuntimeError):
        s.start()
    err = s.stderr_text()
    assert f"key alias/fixed: key arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:key/{SYM_ID} already exists with other key material (material 1 differs)" in err
    assert SYM_B64 not in err and MRK_B64 not in err


def test_bad_seed_files_stop_the_server(server_factory, tmp_path):
    text = SEED_YAML.read_text()
    cases = [
        (
            text.replace("f42bcf634d5e387cd1903d2fc2638cc92ec2a387762a3b06ae193e0f2b1728c9", "f42bcf63"),
            "seed Aes key 4d84c1b1-5d32-4828-b6a8-5897318407df: backing key 1 has 4 bytes",
        ),
        (
            text.replace("          KeyUsage: SIGN_VERIFY # or ENCRYPT_DECRYPT\n", ""),
            "seed Rsa key cfca2a77-b2ac-44a4-a21c-badc896d2cac: KeyUsage must be SIGN_VERIFY or ENCRYPT_DECRYPT",
        ),
        (text.replace("BackingKeys:", "BackingKey:", 1), "unknown field `BackingKey`"),
        (text.replace("KeyId: 4d84c1b1-5d32-4828-b6a8-5897318407df", "KeyId: key-1", 1), "KeyId is not a key id"),
    ]
    for i, (body, message) in enumerate(cases):
        f = tmp_path / f"seed-{i}.yaml"
        f.write_text(body)
        s = seeded_server(server_factory, "--seed", str(f))
        with pytest.raises(RuntimeError):
            s.start()
        err = s.stderr_text()
        assert message in err, err[-2000:]
        assert "f42bcf634d5e387cd1903d2fc2638cc92ec2a387762a3b06ae193e0f2b1728c9" not in err
