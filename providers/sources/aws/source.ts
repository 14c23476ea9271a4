/**
 * The `aws-sm:` secret source as registered: parsing here (cheap, used at `server add`), the
 * Secrets Manager client and the credential chain loaded on the first resolution.
 *
 * @module
 */

import type { SecretSource } from "../source.ts";
import { AWS_SM_TITLE, parseAwsSmRef } from "./sm_ref.ts";

let loaded: Promise<typeof import("./secrets_manager.ts")> | undefined;
// One import() per process: a second import() of a loaded module still goes through the loader.
const load = () => {
  loaded ??= import("./secrets_manager.ts");
  loaded.catch(() => loaded = undefined);
  return loaded;
};
const client = () => load().then((m) => m.awsSecretsManager);

/** AWS Secrets Manager (`aws-sm:`); see ./secrets_manager.ts. */
export const awsSecretsManagerSource: SecretSource = {
  schemes: ["aws-sm"],
  title: AWS_SM_TITLE,
  parse: parseAwsSmRef,
  resolve: async (ref, ctx) => await (await client()).resolve(ref, ctx),
  health: async (ref, ctx) => await (await client()).health!(ref, ctx),
  prepare: (ref, env) => {
    load().then((m) => m.prepareSecretValue(ref, env)).catch(() => {});
  },
};
