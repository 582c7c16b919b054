// What every script here shares: the KMS client of the AWS SDK for
// JavaScript v3, pointed only at the ferrokms endpoint the test gives
// (FERROKMS_ENDPOINT, which must be on 127.0.0.1), with the credentials and
// Region the test gives and nothing looked up anywhere else (no credential
// chain, no instance metadata: the test also sets
// AWS_EC2_METADATA_DISABLED=true), no retries and bounded timeouts.
'use strict';

const { KMSClient, KMS } = require('@aws-sdk/client-kms');

function settings() {
  const endpoint = process.env.FERROKMS_ENDPOINT || '';
  const url = new URL(endpoint);
  if (url.hostname !== '127.0.0.1') {
    throw new Error(`FERROKMS_ENDPOINT must be on 127.0.0.1, not ${endpoint}`);
  }
  const accessKeyId = process.env.FERROKMS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.FERROKMS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('FERROKMS_ACCESS_KEY_ID and FERROKMS_SECRET_ACCESS_KEY are required');
  }
  return {
    endpoint,
    region: process.env.FERROKMS_REGION || 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5000, requestTimeout: 15000 },
  };
}

// The bare client (send(new XCommand(...))).
function kmsClient() {
  return new KMSClient(settings());
}

// The aggregated client (kms.encrypt(...)), which the Encryption SDK's
// keyring calls.
function kmsAggregated() {
  return new KMS(settings());
}

// Prints one JSON document and exits 0; an unexpected error prints
// {"error": ...} and exits 1.
function run(main) {
  main()
    .then((out) => {
      process.stdout.write(JSON.stringify(out) + '\n');
    })
    .catch((e) => {
      process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }) + '\n');
      process.exitCode = 1;
    });
}

function b64(bytes) {
  return Buffer.from(bytes).toString('base64');
}

module.exports = { kmsClient, kmsAggregated, run, b64 };
