/**
 * The `azure-kv:` secret source as registered: parsing here (cheap, used at `server add`), the
 * Key Vault client and the Azure credential chain loaded on the first resolution.
 *
 * @module
 */

import type { SecretSource } from "../source.ts";
import { AZURE_KV_TITLE, parseAzureKvRef } from "./ref.ts";

let loaded: Promise<typeof import("./keyvault.ts")> | undefined;
// One import() per process: a second import() of a loaded module still goes through the loader.
const load = () => {
  loaded ??= import("./keyvault.ts");
  loaded.catch(() => loaded = undefined);
  return loaded;
};
const client = () => load().then((m) => m.azureKeyVault);

/** Azure Key Vault (`azure-kv:`); see ./keyvault.ts and ./chain.ts. */
export const azureKeyVaultSource: SecretSource = {
  schemes: ["azure-kv"],
  title: AZURE_KV_TITLE,
  parse: parseAzureKvRef,
  resolve: async (ref, ctx) => await (await client()).resolve(ref, ctx),
  health: async (ref, ctx) => await (await client()).health!(ref, ctx),
  prepare: (ref, env) => {
    load().then((m) => m.prepareGetSecret(ref, env)).catch(() => {});
  },
};
