"""The wire protocol with raw HTTP (http.client, requests signed by
botocore's SigV4 signer): malformed input, auth failures, limits."""

import http.client
import json
import socket

import pytest

from conftest import HTTP_TIMEOUT, raw_request

T = "TrentService."


def assert_error(resp, code, status=400):
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers.get("x-amzn-requestid"), resp.headers
    body = resp.json()
    assert body["__type"] == code, body
    return body


def test_successful_response_is_json_1_1_with_request_id(server):
    r = server.raw(T + "ListKeys", {})
    assert r.status == 200
    assert r.headers["content-type"] == "application/x-amz-json-1.1"
    assert r.headers.get("x-amzn-requestid")
    assert set(r.json()) >= {"Keys", "Truncated"}


def test_request_ids_are_unique(server):
    ids = {server.raw(T + "ListKeys", {}).headers["x-amzn-requestid"] for _ in range(5)}
    assert len(ids) == 5


def test_empty_body_is_treated_as_empty_object(server):
    r = server.raw(T + "ListKeys", b"")
    assert r.status == 200


def test_malformed_json_is_serialization_exception_400(server):
    assert_error(server.raw(T + "ListKeys", b"{not json"), "SerializationException")


def test_non_object_json_is_serialization_exception(server):
    assert_error(server.raw(T + "ListKeys", b"[1, 2]"), "SerializationException")


@pytest.mark.parametrize(
    "op,body",
    [
        ("CreateKey", {"Description": 5}),
        ("ListKeys", {"Limit": "ten"}),
        ("Encrypt", {"KeyId": ["x"], "Plaintext": "eA=="}),
        ("GenerateRandom", {"NumberOfBytes": "32"}),
        ("TagResource", {"KeyId": "k", "Tags": {"TagKey": "a"}}),
    ],
)
def test_wrong_member_type_is_serialization_exception(server, op, body):
    assert_error(server.raw(T + op, body), "SerializationException")


def test_invalid_base64_blob_is_serialization_exception(server):
    assert_error(server.raw(T + "Decrypt", {"CiphertextBlob": "!!!not base64!!!"}), "SerializationException")


def test_unknown_target_operation_is_unknown_operation_exception(server):
    assert_error(server.raw(T + "FrobnicateKey", {}), "UnknownOperationException")


def test_unknown_target_service_is_unknown_operation_exception(server):
    assert_error(server.raw("SomeOtherService.ListKeys", {}), "UnknownOperationException")


def test_missing_target_is_unknown_operation_exception(server):
    assert_error(server.raw(None, {}), "UnknownOperationException")


def test_missing_required_member_is_validation_exception(server):
    body = assert_error(server.raw(T + "DescribeKey", {}), "ValidationException")
    assert "keyId" in body["message"]


def test_generate_random_zero_bytes_raw_is_validation_exception_with_aws_text(server):
    body = assert_error(server.raw(T + "GenerateRandom", {"NumberOfBytes": 0}), "ValidationException")
    assert body["message"] == (
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_missing_authentication_is_missing_authentication_token_exception(server):
    assert_error(server.raw(T + "ListKeys", {}, sign=False), "MissingAuthenticationTokenException")


def test_garbage_authorization_header_is_incomplete_signature_exception(server):
    r = server.raw(T + "ListKeys", {}, sign=False, headers={"Authorization": "garbage", "X-Amz-Date": "20240101T000000Z"})
    assert_error(r, "IncompleteSignatureException")


def test_authorization_header_missing_signature_is_incomplete_signature_exception(server):
    r = server.raw(
        T + "ListKeys",
        {},
        sign=False,
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/kms/aws4_request, SignedHeaders=host",
            "X-Amz-Date": "20240101T000000Z",
        },
    )
    assert_error(r, "IncompleteSignatureException")


def test_body_changed_after_signing_is_invalid_signature_exception(server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    akid, secret = server.profile_credentials()
    req = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": T + "ListKeys"},
    )
    SigV4Auth(Credentials(akid, secret), "kms", "us-east-1").add_auth(req)
    hdrs = dict(req.headers.items())
    r = raw_request(server.endpoint, None, b'{"Limit": 1}', sign=False, headers=hdrs)
    assert_error(r, "InvalidSignatureException")


def test_signature_for_another_service_is_refused(server):
    akid, secret = server.profile_credentials()
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": T + "ListKeys"},
    )
    SigV4Auth(Credentials(akid, secret), "s3", "us-east-1").add_auth(req)
    r = raw_request(server.endpoint, None, b"{}", sign=False, headers=dict(req.headers.items()))
    assert r.status == 400
    assert r.json()["__type"] in ("InvalidSignatureException", "IncompleteSignatureException")
    assert r.headers.get("x-amzn-requestid")


def test_every_error_response_has_request_id_and_json_type(server):
    responses = [
        server.raw(T + "ListKeys", b"{"),
        server.raw(T + "Nope", {}),
        server.raw(T + "ListKeys", {}, sign=False),
        server.raw(T + "DescribeKey", {"KeyId": "alias/none-e2e"}),
        server.raw(T + "GenerateRandom", {"NumberOfBytes": 0}),
        server.raw(T + "Decrypt", {"CiphertextBlob": "AAAA"}),
    ]
    for r in responses:
        assert r.status >= 400
        assert r.headers.get("x-amzn-requestid"), r
        assert r.json()["__type"], r
        assert r.headers["content-type"] == "application/x-amz-json-1.1"


def test_invalid_ciphertext_error_body_has_no_message(server):
    r = server.raw(T + "Decrypt", {"CiphertextBlob": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    body = assert_error(r, "InvalidCiphertextException")
    assert "message" not in body and "Message" not in body


def _send_oversized(endpoint, size):
    """Sends a signed-looking POST with a body of `size` bytes; returns the
    status, or None when the server closed the connection before we could
    read an answer (acceptable for an oversized body)."""
    host, port = endpoint.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", "application/x-amz-json-1.1")
        conn.putheader("X-Amz-Target", T + "Encrypt")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        chunk = b" " * 65536
        sent = 0
        try:
            while sent < size:
                n = min(len(chunk), size - sent)
                conn.send(chunk[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def test_body_over_1_mib_is_413_and_server_answers_next_request(server):
    status, headers, data = _send_oversized(server.endpoint, 1024 * 1024 + 1)
    assert status == 413
    assert headers.get("x-amzn-requestid")
    assert json.loads(data)["__type"]
    # The server is still fine.
    assert server.raw(T + "ListKeys", {}).status == 200


def test_body_of_exactly_1_mib_is_not_refused_for_size(server):
    body = b"{" + b" " * (1024 * 1024 - 2) + b"}"
    r = server.raw(T + "ListKeys", body)
    assert r.status == 200, r.body


def test_boto3_request_over_1_mib_gets_413(server):
    c = server.client(validate=False)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as ei:
        c.put_key_policy(KeyId="x", PolicyName="default", Policy="x" * (1024 * 1024 + 10))
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert server.raw(T + "ListKeys", {}).status == 200


def _signed_at(server, when):
    from unittest import mock

    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        return server.raw(T + "ListKeys", {})


def test_request_signed_20_minutes_ago_is_invalid_signature_expired(server):
    import datetime as dt

    r = _signed_at(server, dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20))
    body = assert_error(r, "InvalidSignatureException")
    assert body["message"].startswith("Signature expired:"), body


def test_request_signed_20_minutes_in_future_is_invalid_signature(server):
    import datetime as dt

    r = _signed_at(server, dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=20))
    body = assert_error(r, "InvalidSignatureException")
    assert "Signature not yet current" in body["message"], body


def test_request_signed_2_minutes_ago_is_within_skew_and_accepted(server):
    import datetime as dt

    r = _signed_at(server, dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
    assert r.status == 200, r.body
