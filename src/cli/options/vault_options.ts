/**
 * The `Vault:` option group of `server add` and `server edit`: where Hecate finds HashiCorp Vault
 * / OpenBao for the profile's `vault:` and `vault-db:` references and how it logs in. Each flag
 * sets a `vault.*` param (never a secret); the AppRole secret id is read from standard input or a
 * prompt and sealed in the profile's record as the source credential `source.vault.secret_id`.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import { validateVaultParams } from "../../../providers/sources/vault/settings.ts";
import type { SecretValue } from "../../profile.ts";

/** One Vault flag and the param it sets. */
interface VaultFlag {
  flag: string;
  description: string;
  param: string;
  option: string;
  path?: boolean;
  choices?: readonly string[];
}

const VAULT_FLAGS: readonly VaultFlag[] = [
  {
    flag: "--vault-addr <url>",
    description: "Vault address, https://HOST:PORT (default: $VAULT_ADDR)",
    param: "vault.addr",
    option: "vaultAddr",
  },
  {
    flag: "--vault-ca-file <file>",
    description: "the only CA trusted for Vault's certificate (default: $VAULT_CACERT)",
    param: "vault.caFile",
    option: "vaultCaFile",
    path: true,
  },
  {
    flag: "--vault-tls <mode>",
    description: "Vault TLS: verify (default), insecure, disable (http:// dev servers only)",
    param: "vault.tls",
    option: "vaultTls",
    choices: ["verify", "insecure", "disable"],
  },
  {
    flag: "--vault-namespace <ns>",
    description: "Vault Enterprise / OpenBao namespace (default: $VAULT_NAMESPACE)",
    param: "vault.namespace",
    option: "vaultNamespace",
  },
  {
    flag: "--vault-auth <method>",
    description:
      "how to log in to Vault: token ($VAULT_TOKEN, then ~/.vault-token; default), approle, kubernetes",
    param: "vault.auth",
    option: "vaultAuth",
    choices: ["token", "approle", "kubernetes"],
  },
  {
    flag: "--vault-role-id <id>",
    description:
      "approle: the role id (the secret id comes from --vault-secret-id-stdin or a file)",
    param: "vault.roleId",
    option: "vaultRoleId",
  },
  {
    flag: "--vault-secret-id-file <file>",
    description: "approle: read the secret id from FILE at each login (must be mode 0600)",
    param: "vault.secretIdFile",
    option: "vaultSecretIdFile",
    path: true,
  },
  {
    flag: "--vault-role <role>",
    description: "kubernetes: the Vault role",
    param: "vault.role",
    option: "vaultRole",
  },
  {
    flag: "--vault-jwt-file <file>",
    description:
      "kubernetes: service-account token file (default /var/run/secrets/kubernetes.io/serviceaccount/token)",
    param: "vault.jwtFile",
    option: "vaultJwtFile",
    path: true,
  },
  {
    flag: "--vault-auth-mount <path>",
    description: "approle, kubernetes: where the auth method is mounted (default: its name)",
    param: "vault.authMount",
    option: "vaultAuthMount",
  },
];

/**
 * Adds the `Vault:` option group.
 *
 * @param cmd `server add` or `server edit`.
 * @returns The same command, still in the `Vault:` group.
 */
export function addVaultOptions<T extends Command<[string]>>(cmd: T): T {
  cmd.optionsGroup("Vault:");
  for (const f of VAULT_FLAGS) {
    const o = new Option(f.flag, f.description);
    cmd.addOption(f.choices ? o.choices(f.choices) : o);
  }
  cmd.option(
    "--vault-secret-id-stdin",
    "approle: read the secret id from standard input (after the profile's secrets) and seal it",
  );
  cmd.option(
    "--vault-token-stdin",
    "token: read a Vault token for this profile from standard input (after the secret id) and " +
      "seal it; it is used before VAULT_TOKEN and ~/.vault-token",
  );
  return cmd;
}

/**
 * Collects the `vault.*` params given on the command line and checks them.
 *
 * @param opts Parsed options.
 * @param current The profile's params before this edit (for the combined check).
 * @returns The params to store (only those given).
 * @throws {HecateError} `invalid_profile` for a bad combination.
 */
export function vaultParamsFrom(
  opts: Record<string, unknown>,
  current: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of VAULT_FLAGS) {
    const v = opts[f.option];
    if (typeof v === "string") {
      out[f.param] = f.path && v && !v.startsWith("/") ? `${Deno.cwd()}/${v}` : v;
    }
  }
  if (Object.keys(out).length) validateVaultParams({ ...current, ...out });
  return out;
}

/** The sealed name of the AppRole secret id (a source credential, see providers/sources). */
export const VAULT_SECRET_ID = "source.vault.secret_id";

/** The sealed name of a profile's own Vault token. */
export const VAULT_TOKEN_SECRET = "source.vault.token";

/**
 * Reads the Vault credentials the flags ask for (`--vault-secret-id-stdin`,
 * `--vault-token-stdin`, in that order), to seal in the profile's record.
 *
 * @param opts Parsed options.
 * @param read Reads one secret line, given what it is.
 * @returns Secrets by sealed name (empty when no flag asks).
 */
export async function vaultCredentialsFrom(
  opts: Record<string, unknown>,
  read: (what: string) => Promise<string>,
): Promise<Record<string, SecretValue>> {
  const out: Record<string, SecretValue> = {};
  if (opts.vaultSecretIdStdin) out[VAULT_SECRET_ID] = { value: await read("Vault secret id") };
  if (opts.vaultTokenStdin) out[VAULT_TOKEN_SECRET] = { value: await read("Vault token") };
  return out;
}
