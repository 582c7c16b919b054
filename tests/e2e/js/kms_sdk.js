// The AWS SDK for JavaScript v3 (@aws-sdk/client-kms) against ferrokms.
//
//   node kms_sdk.js envelope KEY_ID
//       GenerateDataKey (AES_256), encrypt a message locally with
//       node:crypto AES-256-GCM under the plaintext data key, forget it,
//       Decrypt the encrypted data key, decrypt the message.
//   node kms_sdk.js sign KEY_ID SIGNING_ALGORITHM
//       Sign a message, Verify it (true), Verify a changed message (the
//       SDK's KMSInvalidSignatureException), and return the public key.
//   node kms_sdk.js encrypt KEY_ID
//       One Encrypt call; its error, if any, as the SDK reports it.
//
// Endpoint and credentials: see common.js. Prints one JSON document.
'use strict';

const crypto = require('node:crypto');
const {
  GenerateDataKeyCommand,
  DecryptCommand,
  EncryptCommand,
  SignCommand,
  VerifyCommand,
  GetPublicKeyCommand,
} = require('@aws-sdk/client-kms');
const { kmsClient, run, b64 } = require('./common');

function sdkError(e) {
  return {
    name: e.name,
    message: e.message,
    httpStatusCode: e.$metadata && e.$metadata.httpStatusCode,
    requestId: e.$metadata && e.$metadata.requestId,
    fault: e.$fault,
  };
}

async function envelope(keyId) {
  const kms = kmsClient();
  const context = { purpose: 'js-envelope', stage: 'test' };
  const dk = await kms.send(
    new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
  );
  const message = Buffer.from('envelope encryption through the AWS SDK for JavaScript v3');
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(dk.Plaintext), iv);
  const sealed = Buffer.concat([cipher.update(message), cipher.final()]);
  const tag = cipher.getAuthTag();
  const dataKeyLength = dk.Plaintext.length;
  dk.Plaintext.fill(0);
  const back = await kms.send(
    new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: context }),
  );
  const decipher = crypto.createDecipheriv('aes-256-gcm', Buffer.from(back.Plaintext), iv);
  decipher.setAuthTag(tag);
  const opened = Buffer.concat([decipher.update(sealed), decipher.final()]);
  // The same encrypted data key under another context must not open.
  let wrongContext;
  try {
    await kms.send(
      new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { purpose: 'other' } }),
    );
    wrongContext = { name: null };
  } catch (e) {
    wrongContext = sdkError(e);
  }
  return {
    generateKeyId: dk.KeyId,
    decryptKeyId: back.KeyId,
    dataKeyLength,
    encryptionAlgorithm: back.EncryptionAlgorithm,
    roundTrip: opened.equals(message),
    wrongContext,
  };
}

async function sign(keyId, algorithm) {
  const kms = kmsClient();
  const message = Buffer.from('signed through the AWS SDK for JavaScript v3');
  const signed = await kms.send(
    new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }),
  );
  const verified = await kms.send(
    new VerifyCommand({
      KeyId: keyId,
      Message: message,
      MessageType: 'RAW',
      Signature: signed.Signature,
      SigningAlgorithm: algorithm,
    }),
  );
  let tampered;
  try {
    const r = await kms.send(
      new VerifyCommand({
        KeyId: keyId,
        Message: Buffer.concat([message, Buffer.from('!')]),
        MessageType: 'RAW',
        Signature: signed.Signature,
        SigningAlgorithm: algorithm,
      }),
    );
    tampered = { name: null, signatureValid: r.SignatureValid };
  } catch (e) {
    tampered = sdkError(e);
  }
  const pub = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  return {
    keyId: signed.KeyId,
    signingAlgorithm: signed.SigningAlgorithm,
    signature: b64(signed.Signature),
    message: b64(message),
    signatureValid: verified.SignatureValid,
    tampered,
    publicKeyDer: b64(pub.PublicKey),
    keySpec: pub.KeySpec,
  };
}

async function encryptOnce(keyId) {
  const kms = kmsClient();
  try {
    const r = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    return { ok: true, keyId: r.KeyId };
  } catch (e) {
    return { ok: false, error: sdkError(e) };
  }
}

const [command, ...args] = process.argv.slice(2);
const commands = {
  envelope: () => envelope(args[0]),
  sign: () => sign(args[0], args[1]),
  encrypt: () => encryptOnce(args[0]),
};
if (!commands[command]) {
  process.stderr.write(`unknown command ${command}; one of ${Object.keys(commands).join(', ')}\n`);
  process.exit(2);
}
run(commands[command]);
