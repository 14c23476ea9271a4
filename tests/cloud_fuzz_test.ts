/**
 * Fuzz (fast-check) of the Azure and Google sources: random reference texts are either accepted
 * or refused as usage errors (exit 2); hostile answers from a Key Vault, Secret Manager or token
 * endpoint (random statuses, bodies, JSON shapes carrying a canary) end only in exit-18 errors
 * whose messages never hold the canary, and never hang.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { parseRef } from "../providers/sources/registry.ts";
import { azureKeyVaultSource } from "../providers/sources/azure/source.ts";
import { clearAzureTokenCache } from "../providers/sources/azure/chain.ts";
import { gcpSecretManagerSource } from "../providers/sources/gcp/source.ts";
import { clearGoogleTokenCache } from "../providers/sources/gcp/adc.ts";
import type { SourceContext } from "../providers/sources/source.ts";
import { tempDir } from "./support/cli.ts";

const CANARY = "CANARY-c10ud-5ecret-b7";

Deno.test("fuzz: azure-kv: and gcp-sm: references are accepted or refused as usage errors", () => {
  const piece = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom(
      "https://",
      "a1b.vault.azure.net",
      "/secrets/",
      "projects/",
      "/versions/",
      "#",
      "?",
      "..",
      "%2F",
    ),
  );
  fc.assert(
    fc.property(
      fc.constantFrom("azure-kv:", "gcp-sm:"),
      fc.array(piece, { maxLength: 8 }),
      (scheme, parts) => {
        const text = scheme + parts.join("");
        try {
          const r = parseRef(text);
          assert.equal(r.raw, text);
        } catch (e) {
          assert.ok(e instanceof HecateError && e.code === "usage", String(e));
          assert.ok(!e.message.includes("\n"));
        }
      },
    ),
    { numRuns: 500 },
  );
});

/**
 * A source context whose Azure and Google credentials (a client secret; an authorized-user file)
 * and service endpoints all point at one loopback server.
 */
async function cloudContext(home: string, port: number): Promise<SourceContext> {
  const url = `http://127.0.0.1:${port}`;
  const keyFile = `${home}/user.json`;
  await Deno.writeTextFile(
    keyFile,
    JSON.stringify({
      type: "authorized_user",
      client_id: "c",
      client_secret: "s",
      refresh_token: "r",
      token_uri: `${url}/token`,
    }),
  );
  const vars: Record<string, string> = {
    HOME: home,
    PATH: "",
    AZURE_TENANT_ID: "t",
    AZURE_CLIENT_ID: "c",
    AZURE_CLIENT_SECRET: "s",
    AZURE_AUTHORITY_HOST: url,
    HECATE_AZURE_KEYVAULT_URL: url,
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER: url,
  };
  return { signal: AbortSignal.timeout(60_000), credentials: {}, env: (n) => vars[n] };
}

const answer = fc.record({
  status: fc.constantFrom(200, 200, 200, 400, 401, 403, 404, 429, 500, 302),
  body: fc.oneof(
    fc.constant(""),
    fc.string({ maxLength: 60 }).map((s) => s + CANARY),
    fc.jsonValue({ maxDepth: 3 }).map((j) => JSON.stringify({ x: j, error: CANARY })),
    fc.constantFrom(
      JSON.stringify({ access_token: CANARY, expires_in: "x" }),
      JSON.stringify({ access_token: 5, expires_in: 3600 }),
      JSON.stringify({ error: { code: CANARY, status: CANARY, message: CANARY } }),
      JSON.stringify({ error: CANARY, error_description: CANARY }),
      JSON.stringify({ value: 1, id: CANARY }),
      JSON.stringify({ payload: { data: "!!" + CANARY, dataCrc32c: CANARY } }),
      JSON.stringify({ payload: { data: btoa(CANARY), dataCrc32c: "1" } }),
    ),
  ),
});

Deno.test("fuzz: hostile cloud answers end in exit 18 with no canary in the message", async () => {
  const dir = await tempDir("hecate-cloud-fuzz-");
  let current = { status: 200, body: "" };
  let tokenOk = true;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (tokenOk && (path.endsWith("/token"))) {
      return Response.json({ access_token: "tok", expires_in: 3600 });
    }
    return new Response(current.body, {
      status: current.status,
      headers: current.status === 302 ? { location: "http://127.0.0.1:1/" } : {},
    });
  });
  const ctx = await cloudContext(dir.path, server.addr.port);
  const azure = parseRef("azure-kv:https://abc.vault.azure.net/secrets/db#password");
  const gcp = parseRef("gcp-sm:projects/billing-prod/secrets/db#password");
  try {
    await fc.assert(
      fc.asyncProperty(answer, fc.boolean(), fc.boolean(), async (a, useGcp, throughToken) => {
        current = a;
        tokenOk = !throughToken;
        clearAzureTokenCache();
        clearGoogleTokenCache();
        try {
          const r = useGcp
            ? await gcpSecretManagerSource.resolve(gcp, ctx)
            : await azureKeyVaultSource.resolve(azure, ctx);
          // Only a well-formed answer with the field gets through.
          assert.equal(typeof r.fields.password, "string");
        } catch (e) {
          assert.ok(e instanceof HecateError, String(e));
          assert.equal(e.code, "secret_unresolved");
          assert.ok(!e.message.includes(CANARY), e.message);
          assert.ok(!(e.hint ?? "").includes(CANARY));
        }
      }),
      { numRuns: 300 },
    );
  } finally {
    await server.shutdown();
    await dir.dispose();
    clearAzureTokenCache();
    clearGoogleTokenCache();
  }
});

Deno.test("attack: a Secret Manager or Key Vault endpoint that streams an endless answer, or a small gzip that inflates past 1 MiB, is cut off: exit 18", async () => {
  const dir = await tempDir("hecate-cloud-big-");
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let pulled = 0;
  let mode: "endless" | "bomb" = "endless";
  const gz = new Uint8Array(
    await new Response(
      new Blob([new Uint8Array(16 << 20).fill(0x61)]).stream()
        .pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname.endsWith("/token")) {
      return Response.json({ access_token: "tok", expires_in: 3600 });
    }
    if (mode === "bomb") {
      return new Response(gz, {
        headers: { "content-encoding": "gzip", "content-length": String(gz.byteLength) },
      });
    }
    return new Response(
      new ReadableStream({
        pull(c) {
          // 256 MiB at most, so a reader without a limit ends the test instead of hanging it.
          if ((pulled += chunk.byteLength) > 256 << 20) c.close();
          else c.enqueue(chunk);
        },
      }),
    );
  });
  const ctx = await cloudContext(dir.path, server.addr.port);
  const refs = [
    [gcpSecretManagerSource, parseRef("gcp-sm:projects/billing-prod/secrets/db")],
    [azureKeyVaultSource, parseRef("azure-kv:https://abc.vault.azure.net/secrets/db")],
  ] as const;
  try {
    for (const m of ["endless", "bomb"] as const) {
      mode = m;
      for (const [source, ref] of refs) {
        pulled = 0;
        clearAzureTokenCache();
        clearGoogleTokenCache();
        await assert.rejects(source.resolve(ref, ctx), (e: unknown) => {
          assert.ok(e instanceof HecateError, String(e));
          assert.equal(e.code, "secret_unresolved");
          assert.match(e.message, /malformed/);
          assert.match(e.hint ?? "", /too large/);
          return true;
        });
        // The reader stopped near the limit (socket buffers aside), not at the stream's end.
        if (m === "endless") assert.ok(pulled < 64 << 20, `${ref.scheme}: pulled ${pulled}`);
      }
    }
  } finally {
    await server.shutdown();
    await dir.dispose();
  }
});
