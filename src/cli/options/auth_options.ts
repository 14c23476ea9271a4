/**
 * Flags of `server add` and `server edit` that belong to one authentication method (for example
 * an NTLM domain or a client certificate file). Each flag maps to a key of the profile's `params`.
 * Methods add their flags here; secrets never become flags.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";

/** One method-specific flag and the profile param it sets. */
export interface AuthFlag {
  /** Commander flag spec, e.g. `--domain <domain>`. */
  flag: string;
  /** Help text. */
  description: string;
  /** The key in `profile.params`. */
  param: string;
  /** The camel-case option name commander gives it, e.g. `domain`. */
  option: string;
  /** The value is a file path, stored absolute so the profile works from any directory. */
  path?: boolean;
}

/** Method-specific flags, in help order. */
export const AUTH_FLAGS: AuthFlag[] = [
  {
    flag: "--domain <domain>",
    description: "windows: NTLM domain",
    param: "domain",
    option: "domain",
  },
  {
    flag: "--token-mode <mode>",
    description:
      "token: stored, client-secret, client-certificate, default (the Azure chain) or managed-identity",
    param: "tokenMode",
    option: "tokenMode",
  },
  {
    flag: "--tenant-id <id>",
    description: "token: Entra ID tenant",
    param: "tenantId",
    option: "tenantId",
  },
  {
    flag: "--client-id <id>",
    description: "token: application (client) id",
    param: "clientId",
    option: "clientId",
  },
  {
    flag: "--token-url <url>",
    description: "token: OAuth2 token endpoint (default: Entra ID's for the tenant)",
    param: "tokenUrl",
    option: "tokenUrl",
  },
  {
    flag: "--scope <scope>",
    description: "token: scope (default https://database.windows.net/.default)",
    param: "scope",
    option: "scope",
  },
  {
    flag: "--cert-file <file>",
    description: "certificate, token client-certificate: certificate file (PEM)",
    param: "certFile",
    option: "certFile",
    path: true,
  },
  {
    flag: "--key-file <file>",
    description: "certificate, token client-certificate: private key file (PEM, may be encrypted)",
    param: "keyFile",
    option: "keyFile",
    path: true,
  },
  {
    flag: "--pfx-file <file>",
    description: "auth certificate: client certificate and key as PKCS#12 (.p12/.pfx)",
    param: "pfxFile",
    option: "pfxFile",
    path: true,
  },
  {
    flag: "--aws-region <region>",
    description:
      "aws-iam: the database's AWS region (default: from an RDS host name, AWS_REGION or the AWS profile)",
    param: "region",
    option: "awsRegion",
  },
];

/**
 * Adds every method-specific flag to a command.
 *
 * @param cmd `server add` or `server edit`.
 * @returns The same command.
 */
export function addAuthOptions<T extends Command<[string]>>(cmd: T): T {
  for (const f of AUTH_FLAGS) cmd.option(f.flag, f.description);
  return cmd;
}

/**
 * Collects the params set by method-specific flags.
 *
 * @param opts The command's parsed options.
 * @returns Params to store (only those given).
 */
export function authParamsFrom(opts: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of AUTH_FLAGS) {
    const v = opts[f.option];
    if (typeof v === "string") {
      out[f.param] = f.path && v && !v.startsWith("/") ? `${Deno.cwd()}/${v}` : v;
    }
  }
  return out;
}
