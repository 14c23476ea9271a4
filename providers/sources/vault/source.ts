/**
 * The `vault:` and `vault-db:` sources as registered: parsing here (cheap, used at `server add`
 * and by every resolution), the HTTP client, login, KV, database and lease code (./mod.ts) loaded
 * on the first call, so a command whose profile has no Vault reference does not load it.
 *
 * @module
 */

import type { SecretSource } from "../source.ts";
import { parseVaultRef } from "./ref.ts";

const impl = () => import("./mod.ts").then((m) => m.vaultSource);

const lazy: Omit<SecretSource, "schemes" | "title"> = {
  credentialScope: "vault",
  parse: (scheme, rest) => parseVaultRef(scheme, rest),
  resolve: async (ref, ctx) => await (await impl()).resolve(ref, ctx),
  renew: async (lease, ctx) => await (await impl()).renew!(lease, ctx),
  revoke: async (lease, ctx) => await (await impl()).revoke!(lease, ctx),
  health: async (ref, ctx) => await (await impl()).health!(ref, ctx),
};

/** `vault:` (KV v1/v2), as registered; see ./mod.ts. */
export const vaultKvSource: SecretSource = {
  ...lazy,
  schemes: ["vault"],
  title: "HashiCorp Vault",
};

/** `vault-db:` (dynamic database logins under a lease), as registered; see ./mod.ts. */
export const vaultDbSource: SecretSource = {
  ...lazy,
  schemes: ["vault-db"],
  title: "HashiCorp Vault database secrets",
  dynamic: true,
};
