/**
 * The `azure-kv:` secret source as registered: parsing here (cheap, used at `server add`), the
 * Key Vault client and the Azure credential chain loaded on the first resolution.
 *
 * @module
 */

import type { SecretSource } from "../source.ts";
import { AZURE_KV_TITLE, parseAzureKvRef } from "./ref.ts";

const client = () => import("./keyvault.ts").then((m) => m.azureKeyVault);

/** Azure Key Vault (`azure-kv:`); see ./keyvault.ts and ./chain.ts. */
export const azureKeyVaultSource: SecretSource = {
  schemes: ["azure-kv"],
  title: AZURE_KV_TITLE,
  parse: parseAzureKvRef,
  resolve: async (ref, ctx) => await (await client()).resolve(ref, ctx),
  health: async (ref, ctx) => await (await client()).health!(ref, ctx),
  prepare: (ref, env) => {
    import("./keyvault.ts").then((m) => m.prepareGetSecret(ref, env)).catch(() => {});
  },
};
