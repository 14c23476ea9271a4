/**
 * The `gcp-sm:` secret source as registered: parsing here (cheap, used at `server add`), the
 * Secret Manager client and Application Default Credentials loaded on the first resolution.
 *
 * @module
 */

import type { SecretSource } from "../source.ts";
import { GCP_SM_TITLE, parseGcpSmRef } from "./ref.ts";

let loaded: Promise<typeof import("./secret_manager.ts")> | undefined;
// One import() per process: a second import() of a loaded module still goes through the loader.
const load = () => {
  loaded ??= import("./secret_manager.ts");
  loaded.catch(() => loaded = undefined);
  return loaded;
};
const client = () => load().then((m) => m.gcpSecretManager);

/** Google Secret Manager (`gcp-sm:`); see ./secret_manager.ts and ./adc.ts. */
export const gcpSecretManagerSource: SecretSource = {
  schemes: ["gcp-sm"],
  title: GCP_SM_TITLE,
  parse: parseGcpSmRef,
  resolve: async (ref, ctx) => await (await client()).resolve(ref, ctx),
  health: async (ref, ctx) => await (await client()).health!(ref, ctx),
  prepare: (_ref, env) => {
    load().then((m) => m.prepareAccess(env)).catch(() => {});
  },
};
