// The AWS Encryption SDK for JavaScript (@aws-crypto/client-node) with a
// KMS keyring whose KMS client is the SDK v3 client of common.js.
//
//   node esdk.js encrypt KEY_ARN CONTEXT_JSON PLAINTEXT_B64
//       prints {"message": base64 of the Encryption SDK message}
//   node esdk.js decrypt KEY_ARN MESSAGE_B64
//       prints {"plaintext": base64, "encryptionContext": {...}}
//
// Commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT (the SDK's default).
'use strict';

const { buildClient, CommitmentPolicy, KmsKeyringNode } = require('@aws-crypto/client-node');
const { kmsAggregated, run, b64 } = require('./common');

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

function keyring(keyArn) {
  const client = kmsAggregated();
  return new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => client });
}

async function encryptCmd(keyArn, contextJson, plaintextB64) {
  const encryptionContext = JSON.parse(contextJson);
  const { result } = await encrypt(keyring(keyArn), Buffer.from(plaintextB64, 'base64'), {
    encryptionContext,
  });
  return { message: b64(result) };
}

async function decryptCmd(keyArn, messageB64) {
  const { plaintext, messageHeader } = await decrypt(keyring(keyArn), Buffer.from(messageB64, 'base64'));
  return { plaintext: b64(plaintext), encryptionContext: messageHeader.encryptionContext };
}

const [command, ...args] = process.argv.slice(2);
const commands = {
  encrypt: () => encryptCmd(args[0], args[1], args[2]),
  decrypt: () => decryptCmd(args[0], args[1]),
};
if (!commands[command]) {
  process.stderr.write(`unknown command ${command}; one of ${Object.keys(commands).join(', ')}\n`);
  process.exit(2);
}
run(commands[command]);
