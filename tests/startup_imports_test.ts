/**
 * The cron path (`HECATE_API_KEY=... hecate query ...`) must not load what only people at a
 * terminal need: the prompt, the QR encoder, the password-strength estimator, the TOTP library;
 * nor the modules of the other commands. This walks the static import graph of main.ts plus the
 * `query` command's module (which src/cli/command_table.ts imports for a `query` run), as
 * `deno info --json` reports it, and checks that those are reached only through `import()`.
 */

import assert from "node:assert/strict";
import { ROOT } from "./support/access.ts";
import { staticGraph } from "./support/module_graph.ts";

const QUERY = `${ROOT}src/cli/commands/query.ts`;

Deno.test("a query run loads the prompt, QR, zxcvbn, otpauth packages and other commands only on demand", async () => {
  const { modules: seen, imports } = await staticGraph([`${ROOT}main.ts`, QUERY]);
  const staticBare = new Set(
    imports.filter((i) => !i.specifier.startsWith(".")).map((i) => i.specifier),
  );
  assert.ok(staticBare.has("commander") || staticBare.has("@commander-js/extra-typings"));
  assert.ok(seen.size > 20, "the walk must reach the command tree");
  for (const lazy of ["@inquirer/password", "qrcode", "otpauth", "@zxcvbn-ts/core"]) {
    assert.ok(!staticBare.has(lazy), `${lazy} is imported statically`);
  }
  // The FFI code of the PKCS#11 slot loads only when a token is used (src/api/open.ts).
  for (const ffi of ["vault/pkcs11/cryptoki.ts", "vault/pkcs11/slot.ts", "api/pkcs11_open.ts"]) {
    assert.ok(!seen.has(`file://${ROOT}src/${ffi}`), `${ffi} is imported statically`);
  }
  for (
    const other of ["server", "backup", "import", "totp", "apikey", "audit", "init", "run", "slot"]
  ) {
    const mod = `file://${ROOT}src/cli/commands/${other}.ts`;
    assert.ok(!seen.has(mod), `the ${other} command is imported statically`);
  }
});

Deno.test("the cron path's static imports hold no npm package and no node: module", async () => {
  // main.ts runs a `query` command line without the command tree (src/cli/cron_path.ts); what it
  // imports statically loads on every run, so none of it may start Deno's Node layer.
  const { modules, imports } = await staticGraph([`${ROOT}main.ts`]);
  assert.ok(modules.size > 20, "the walk must reach the vault and the audit trail");
  const outside = imports.filter((i) => !i.to.startsWith("file://"))
    .map((i) => `${i.from.replace(`file://${ROOT}`, "")} -> ${i.specifier}`);
  assert.deepEqual(outside, []);
});

Deno.test("the cron path loads a secret source's client only when a profile uses that source", async () => {
  // The registry and each source's reference parser load on every run; the HTTP clients, login and
  // credential chains (and aws4fetch, jose, the keyring binding) only through `import()` on a
  // source's first call.
  const { modules, imports } = await staticGraph([`${ROOT}main.ts`, QUERY]);
  const registry = `file://${ROOT}providers/sources/registry.ts`;
  assert.ok(modules.has(registry), "the walk must reach the source registry");
  for (
    const client of [
      "vault/mod.ts",
      "vault/client.ts",
      "vault/auth.ts",
      "aws/secrets_manager.ts",
      "aws/chain.ts",
      "azure/keyvault.ts",
      "azure/chain.ts",
      "gcp/secret_manager.ts",
      "gcp/adc.ts",
      "cloud_http.ts",
    ]
  ) {
    const mod = `file://${ROOT}providers/sources/${client}`;
    assert.ok(!modules.has(mod), `${client} is imported statically`);
  }
  const bare = new Set(imports.map((i) => i.specifier));
  for (const pkg of ["aws4fetch", "jose", "@napi-rs/keyring"]) {
    assert.ok(!bare.has(pkg), `${pkg} is imported statically`);
  }
});
