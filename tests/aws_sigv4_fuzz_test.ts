/**
 * Hecate's own SigV4 signer (providers/sources/aws/sign.ts) against AWS's (`@smithy/signature-v4`,
 * the signer of the AWS SDK for JavaScript): for random query names and values, header values,
 * bodies, session tokens and service names, the header signature and the presigned query string
 * must be exactly the ones AWS's signer computes for the same request and time.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { signRequest } from "../providers/sources/aws/sign.ts";

const KEY_ID = "AKIAHECATETEST000009";
const SECRET_KEY = "fuzz/Secret+Key=with/odd+chars/HECATE009";
const DATE = new Date(Date.UTC(2026, 11, 3, 12, 0, 7));
const AMZ_DATE = "20261203T120007Z";

const text = fc.string({ unit: "grapheme", minLength: 0, maxLength: 12 });
const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9._~-]{0,10}$/);

function smithy(service: string, region: string, sessionToken: string | undefined) {
  return new SignatureV4({
    credentials: {
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET_KEY,
      ...(sessionToken ? { sessionToken } : {}),
    },
    region,
    service,
    sha256: Sha256,
    // What Hecate's services expect (not S3): each path segment encoded again.
    uriEscapePath: true,
    // Hecate signs the payload's hash without sending it as x-amz-content-sha256 (only S3
    // requires that header).
    applyChecksum: false,
  });
}

Deno.test("SigV4 header signing matches AWS's signer for random requests", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(name, text, { maxKeys: 4 }),
      fc.string({ maxLength: 10 }).map((v) => v.trim()).filter((v) => v.length > 0),
      text,
      fc.option(fc.stringMatching(/^[A-Za-z0-9/+=]{8,40}$/), { nil: undefined }),
      fc.constantFrom("secretsmanager", "sts"),
      fc.constantFrom("eu-west-1", "us-east-1", "ap-southeast-2"),
      fc.constantFrom("", "/", "/v1/a b/c%2Fd"),
      async (query, target, body, token, service, region, path) => {
        const url = new URL(`https://api.example.com:8443${path}`);
        for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
        const req = await signRequest(
          { accessKeyId: KEY_ID, secretAccessKey: SECRET_KEY, sessionToken: token, origin: "t" },
          {
            method: "POST",
            url,
            headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": target },
            body,
            service,
            region,
            datetime: AMZ_DATE,
          },
        );
        const mine = /Signature=([0-9a-f]{64})$/.exec(req.headers.get("authorization") ?? "");
        assert.ok(mine, "no signature");
        const headers: Record<string, string> = {
          host: url.host,
          "content-type": "application/x-amz-json-1.1",
          "x-amz-target": target,
        };
        const theirs = await smithy(service, region, token).sign({
          method: "POST",
          protocol: "https:",
          hostname: url.hostname,
          port: Number(url.port),
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers,
          body,
        }, { signingDate: DATE });
        const expected = /Signature=([0-9a-f]{64})$/.exec(String(theirs.headers.authorization));
        assert.equal(mine[1], expected?.[1]);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("SigV4 presigned query matches AWS's signer for random parameters", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(name.filter((n) => !n.startsWith("X-Amz")), text, { maxKeys: 4 }),
      fc.option(fc.stringMatching(/^[A-Za-z0-9/+=]{8,40}$/), { nil: undefined }),
      async (query, token) => {
        const url = new URL("https://db.example.com:5432/");
        for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
        url.searchParams.set("X-Amz-Expires", "900");
        const req = await signRequest(
          { accessKeyId: KEY_ID, secretAccessKey: SECRET_KEY, sessionToken: token, origin: "t" },
          {
            method: "GET",
            url,
            headers: {},
            service: "rds-db",
            region: "eu-central-1",
            signQuery: true,
            datetime: AMZ_DATE,
          },
        );
        const mine = new URL(req.url).searchParams.get("X-Amz-Signature");
        const theirs = await smithy("rds-db", "eu-central-1", token).presign({
          method: "GET",
          protocol: "https:",
          hostname: url.hostname,
          port: 5432,
          path: "/",
          query,
          headers: { host: url.host },
        }, { expiresIn: 900, signingDate: DATE });
        assert.equal(mine, String(theirs.query?.["X-Amz-Signature"]));
      },
    ),
    { numRuns: 200 },
  );
});
