"""Rotation of imported key material end to end (AWS: "Rotate imported key
material"): a symmetric EXTERNAL key takes new material with
ImportType=NEW_KEY_MATERIAL, which waits as PENDING_ROTATION until
RotateKeyOnDemand makes it current; EXISTING_KEY_MATERIAL re-imports only
the same bytes; each material has its own import state and expiration;
deleting any material associated with the key makes it PendingImport until
that material is imported again. Also RotateKeyOnDemand's order of checks."""

import os

from conftest import advance, expect_error
from test_import import external_key, import_material, now

DAY = 86400

SERVER = "clock"


def new_material(kms, key, material, **kw):
    kw.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return import_material(kms, key, material, ImportType="NEW_KEY_MATERIAL", **kw)["KeyMaterialId"]


def materials(kms, key):
    return kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]


def current(kms, key):
    return kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"]


def used(kms, blob):
    """The material id Decrypt names for a ciphertext."""
    return kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"]


def test_new_key_material_is_pending_rotation_until_rotate_key_on_demand_makes_it_current(srv):
    kms = srv.client()
    key = external_key(kms)
    first = import_material(kms, key, os.urandom(32))["KeyMaterialId"]
    old = kms.encrypt(KeyId=key, Plaintext=b"old")["CiphertextBlob"]
    nxt = new_material(kms, key, os.urandom(32), KeyMaterialDescription="second material")
    listed = materials(kms, key)
    assert [(m["KeyMaterialId"], m["KeyMaterialState"]) for m in listed] == [
        (first, "CURRENT"),
        (nxt, "PENDING_ROTATION"),
    ]
    pending = listed[1]
    assert pending["ImportState"] == "IMPORTED"
    assert pending["KeyMaterialDescription"] == "second material"
    assert pending["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "RotationDate" not in pending and "RotationType" not in pending
    assert kms.list_key_rotations(KeyId=key)["Rotations"] == []
    assert current(kms, key) == first

    arn = kms.rotate_key_on_demand(KeyId=key)["KeyId"]
    assert arn.endswith(key)

    assert current(kms, key) == nxt
    assert used(kms, kms.encrypt(KeyId=key, Plaintext=b"new")["CiphertextBlob"]) == nxt
    assert used(kms, old) == first
    (rotation,) = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert rotation["KeyMaterialId"] == nxt
    assert rotation["KeyMaterialState"] == "CURRENT"
    assert rotation["RotationType"] == "ON_DEMAND"
    assert "RotationDate" in rotation
    assert materials(kms, key)[0]["KeyMaterialState"] == "NON_CURRENT"


def test_rotate_key_on_demand_needs_material_pending_rotation(srv):
    kms = srv.client()
    key = external_key(kms)
    arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    expect_error(
        kms.rotate_key_on_demand, "KMSInvalidStateException", KeyId=key,
        message=f"{arn} is pending import.",
    )
    import_material(kms, key, os.urandom(32))
    expect_error(
        kms.rotate_key_on_demand, "KMSInvalidStateException", KeyId=key,
        message=f"No available key material pending rotation for the key: {arn}.",
    )


def test_reimport_of_different_bytes_as_existing_key_material_is_refused(srv):
    kms = srv.client()
    key = external_key(kms)
    material = os.urandom(32)
    first = import_material(kms, key, material)["KeyMaterialId"]
    for kw in ({}, {"KeyMaterialId": first}):
        expect_error(
            import_material, "IncorrectKeyMaterialException", kms=kms, key_id=key,
            material=os.urandom(32), ImportType="EXISTING_KEY_MATERIAL",
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", **kw,
        )
    again = import_material(
        kms, key, material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=first,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert again["KeyMaterialId"] == first
    expect_error(
        import_material, "ValidationException", kms=kms, key_id=key,
        material=os.urandom(32), ImportType="NEW_KEY_MATERIAL", KeyMaterialId=first,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


def test_deleting_any_material_of_the_key_makes_it_pending_import_and_decrypt_refuses(srv):
    kms = srv.client()
    key = external_key(kms)
    a = os.urandom(32)
    a_id = import_material(kms, key, a)["KeyMaterialId"]
    blob_a = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    b_id = new_material(kms, key, os.urandom(32))
    kms.rotate_key_on_demand(KeyId=key)
    blob_b = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]

    out = kms.delete_imported_key_material(KeyId=key, KeyMaterialId=a_id)
    assert out["KeyMaterialId"] == a_id
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert m["KeyState"] == "PendingImport"
    assert m["CurrentKeyMaterialId"] == b_id
    for blob in (blob_a, blob_b):
        e = expect_error(
            kms.decrypt, "KMSInvalidStateException", CiphertextBlob=blob,
            message=f"{m['Arn']} is pending import.",
        )
        assert a.hex() not in str(e.response)
    states = {x["KeyMaterialId"]: x["ImportState"] for x in materials(kms, key)}
    assert states == {a_id: "PENDING_IMPORT", b_id: "IMPORTED"}

    import_material(kms, key, a, KeyMaterialId=a_id, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert used(kms, blob_a) == a_id
    assert used(kms, blob_b) == b_id


def test_deleting_the_current_material_keeps_current_key_material_id(srv):
    kms = srv.client()
    key = external_key(kms)
    mid = import_material(kms, key, os.urandom(32))["KeyMaterialId"]
    assert kms.delete_imported_key_material(KeyId=key)["KeyMaterialId"] == mid
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert m["KeyState"] == "PendingImport"
    assert m["CurrentKeyMaterialId"] == mid


def test_material_pending_rotation_can_be_deleted_and_replaced(srv):
    kms = srv.client()
    key = external_key(kms)
    import_material(kms, key, os.urandom(32))
    dropped = new_material(kms, key, os.urandom(32))
    kms.delete_imported_key_material(KeyId=key, KeyMaterialId=dropped)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert dropped not in [m["KeyMaterialId"] for m in materials(kms, key)]
    replacement = new_material(kms, key, os.urandom(32))
    kms.rotate_key_on_demand(KeyId=key)
    assert current(kms, key) == replacement
    expect_error(
        kms.delete_imported_key_material, "NotFoundException", KeyId=key, KeyMaterialId=dropped
    )


def test_each_material_expires_at_its_own_valid_to(srv):
    kms = srv.client()
    key = external_key(kms)
    t = int(now(srv))
    import_material(kms, key, os.urandom(32), ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=t + 10 * DAY)
    new_material(kms, key, os.urandom(32), ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=t + 2 * DAY)
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert int(m["ValidTo"].timestamp()) == t + 10 * DAY
    advance(srv, 2 * DAY + 1)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert len(materials(kms, key)) == 1, "the expired pending material is gone"
    advance(srv, 8 * DAY)
    m = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert m["KeyState"] == "PendingImport"
    assert "CurrentKeyMaterialId" in m
    expect_error(kms.encrypt, "KMSInvalidStateException", KeyId=key, Plaintext=b"x")


def test_rotate_key_on_demand_checks_key_state_before_key_type(srv):
    kms = srv.client()
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    e = expect_error(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=rsa)
    assert e.response["Error"].get("Message", "") == ""
    kms.disable_key(KeyId=rsa)
    expect_error(kms.rotate_key_on_demand, "DisabledException", KeyId=rsa)


def test_the_on_demand_rotation_limit_answers_aws_text(srv):
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]
    for _ in range(25):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    expect_error(
        kms.rotate_key_on_demand, "LimitExceededException", KeyId=key["KeyId"],
        message="The on-demand rotations limit has been reached for the given keyId. "
        f"No more on-demand rotations can be performed for this key: {key['Arn']}",
    )


def test_imported_materials_survive_a_restart(srv):
    kms = srv.client()
    key = external_key(kms)
    a_id = import_material(kms, key, os.urandom(32))["KeyMaterialId"]
    blob_a = kms.encrypt(KeyId=key, Plaintext=b"a")["CiphertextBlob"]
    b_id = new_material(kms, key, os.urandom(32))
    kms.rotate_key_on_demand(KeyId=key)
    blob_b = kms.encrypt(KeyId=key, Plaintext=b"b")["CiphertextBlob"]
    c_id = new_material(kms, key, os.urandom(32))
    srv.restart()
    kms = srv.client()
    assert used(kms, blob_a) == a_id
    assert used(kms, blob_b) == b_id
    assert [(m["KeyMaterialId"], m["KeyMaterialState"]) for m in materials(kms, key)] == [
        (a_id, "NON_CURRENT"),
        (b_id, "CURRENT"),
        (c_id, "PENDING_ROTATION"),
    ]
    kms.rotate_key_on_demand(KeyId=key)
    assert used(kms, kms.encrypt(KeyId=key, Plaintext=b"c")["CiphertextBlob"]) == c_id


# Multi-Region keys (AWS, ImportKeyMaterial and RotateKeyOnDemand): new
# material goes into the primary (NEW_KEY_MATERIAL), then the same bytes
# into every replica (EXISTING_KEY_MATERIAL with the primary's
# KeyMaterialId); it is PENDING_MULTI_REGION_IMPORT_AND_ROTATION until
# every related key has it, then PENDING_ROTATION; RotateKeyOnDemand on
# the primary makes it current in every related key.

MRK_PRIMARY = "us-east-1"
MRK_REPLICAS = ("eu-west-1", "ap-southeast-2")


def external_mrk(srv):
    """A multi-Region EXTERNAL key with two replicas, all with one material.
    Returns the clients (primary first), the key id and the first id."""
    east = srv.client(region=MRK_PRIMARY)
    key = east.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]["KeyId"]
    first = os.urandom(32)
    first_id = import_material(east, key, first)["KeyMaterialId"]
    clients = [east]
    for region in MRK_REPLICAS:
        east.replicate_key(KeyId=key, ReplicaRegion=region)
        replica = srv.client(region=region)
        assert import_material(replica, key, first)["KeyMaterialId"] == first_id
        clients.append(replica)
    return clients, key, first_id


def existing_material(kms, key, material, key_material_id):
    return import_material(
        kms, key, material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=key_material_id,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )["KeyMaterialId"]


def states(kms, key):
    return [(m["KeyMaterialId"], m["KeyMaterialState"]) for m in materials(kms, key)]


def test_multi_region_new_key_material_waits_for_every_replica_then_rotates_on_the_primary(srv):
    (east, eu, ap), key, first = external_mrk(srv)
    old = ap.encrypt(KeyId=key, Plaintext=b"old")["CiphertextBlob"]
    material = os.urandom(32)
    nxt = new_material(east, key, material)
    assert states(east, key) == [(first, "CURRENT"), (nxt, "PENDING_MULTI_REGION_IMPORT_AND_ROTATION")]
    assert states(eu, key) == [(first, "CURRENT")]

    assert existing_material(eu, key, material, nxt) == nxt
    for kms in (east, eu):
        assert states(kms, key)[1] == (nxt, "PENDING_MULTI_REGION_IMPORT_AND_ROTATION")
    ap_arn = ap.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    primary_arn = east.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    expect_error(
        east.rotate_key_on_demand, "KMSInvalidStateException", KeyId=key,
        message=f"Key material {nxt} pending rotation in {primary_arn} is not imported into every "
        f"related multi-Region key: import it into {ap_arn} with ImportType EXISTING_KEY_MATERIAL first.",
    )

    assert existing_material(ap, key, material, nxt) == nxt
    for kms in (east, eu, ap):
        assert states(kms, key) == [(first, "CURRENT"), (nxt, "PENDING_ROTATION")]
    expect_error(eu.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key)
    east.rotate_key_on_demand(KeyId=key)

    for kms in (east, eu, ap):
        assert current(kms, key) == nxt
        assert states(kms, key) == [(first, "NON_CURRENT"), (nxt, "CURRENT")]
        assert used(kms, kms.encrypt(KeyId=key, Plaintext=b"new")["CiphertextBlob"]) == nxt
        assert used(kms, old) == first
    # Interoperable: the primary decrypts what a replica encrypted under the new material.
    assert used(east, eu.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]) == nxt


def test_multi_region_replica_takes_no_new_key_material_and_no_other_bytes_under_the_primarys_id(srv):
    (east, eu, _), key, _ = external_mrk(srv)
    expect_error(
        new_material, "UnsupportedOperationException", kms=eu, key=key, material=os.urandom(32)
    )
    nxt = new_material(east, key, os.urandom(32))
    expect_error(
        existing_material, "IncorrectKeyMaterialException",
        kms=eu, key=key, material=os.urandom(32), key_material_id=nxt,
    )
    assert len(states(eu, key)) == 1
    assert states(east, key)[1] == (nxt, "PENDING_MULTI_REGION_IMPORT_AND_ROTATION")


def test_multi_region_deleting_pending_material_in_the_primary_deletes_it_from_the_replicas(srv):
    (east, eu, ap), key, first = external_mrk(srv)
    material = os.urandom(32)
    nxt = new_material(east, key, material)
    for kms in (eu, ap):
        existing_material(kms, key, material, nxt)
    # From a replica: that replica only.
    assert ap.delete_imported_key_material(KeyId=key, KeyMaterialId=nxt)["KeyMaterialId"] == nxt
    assert states(ap, key) == [(first, "CURRENT")]
    assert states(eu, key)[1] == (nxt, "PENDING_MULTI_REGION_IMPORT_AND_ROTATION")
    # From the primary: every related key.
    assert east.delete_imported_key_material(KeyId=key, KeyMaterialId=nxt)["KeyMaterialId"] == nxt
    for kms in (east, eu, ap):
        assert states(kms, key) == [(first, "CURRENT")]
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
