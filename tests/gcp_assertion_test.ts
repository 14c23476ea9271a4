/**
 * The service-account assertion (providers/sources/gcp/assertion.ts), made with WebCrypto alone:
 * `jose`, as Google's libraries' peers verify, accepts it with the account's public key (header,
 * kid, claims); another key's signature, a PKCS#1 or garbage `private_key`, and random text are
 * refused at import, never signed with.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeProtectedHeader, exportPKCS8, generateKeyPair, jwtVerify } from "jose";
import { importServiceAccountKey, signRs256 } from "../providers/sources/gcp/assertion.ts";

Deno.test("an RS256 assertion verifies with the account's public key and not with another", async () => {
  const sa = await generateKeyPair("RS256", { extractable: true });
  const other = await generateKeyPair("RS256");
  const key = await importServiceAccountKey(await exportPKCS8(sa.privateKey));
  const jwt = await signRs256(key, { kid: "k-1" }, {
    iss: "sa@p.iam.gserviceaccount.com",
    aud: "https://oauth2.googleapis.com/token",
    scope: "https://www.googleapis.com/auth/cloud-platform",
    iat: 1_800_000_000,
    exp: 1_800_003_600,
  });
  assert.deepEqual(decodeProtectedHeader(jwt), { alg: "RS256", typ: "JWT", kid: "k-1" });
  const { payload } = await jwtVerify(jwt, sa.publicKey, {
    issuer: "sa@p.iam.gserviceaccount.com",
    audience: "https://oauth2.googleapis.com/token",
    currentDate: new Date(1_800_000_100_000),
  });
  assert.equal(payload.scope, "https://www.googleapis.com/auth/cloud-platform");
  await assert.rejects(
    jwtVerify(jwt, other.publicKey, { currentDate: new Date(1_800_000_100_000) }),
  );
});

Deno.test("a private_key that is not a PKCS#8 RSA key is refused at import", async () => {
  const ec = await generateKeyPair("ES256", { extractable: true });
  const ecPem = await exportPKCS8(ec.privateKey);
  for (
    const pem of [
      "",
      "not a key",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n",
      "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      ecPem,
    ]
  ) {
    await assert.rejects(importServiceAccountKey(pem), `accepted: ${pem.slice(0, 40)}`);
  }
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 200 }), async (text) => {
      const pem = `-----BEGIN PRIVATE KEY-----\n${text}\n-----END PRIVATE KEY-----\n`;
      // Random text is refused with an error (never a hang, never a key).
      await assert.rejects(importServiceAccountKey(pem));
    }),
    { numRuns: 200 },
  );
});
