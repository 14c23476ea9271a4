/**
 * `aws-iam` authentication for PostgreSQL and MySQL on RDS and Aurora: for each connection a
 * fresh IAM authentication token (providers/sources/aws/rds_token.ts) from the AWS credential
 * chain is the password. The token is a bearer credential for 15 minutes, so the method requires
 * TLS with verification (`--tls verify`); `insecure` and `disable` are refused.
 *
 * Params: optional `region` (else from an RDS host name, `AWS_REGION`, `AWS_DEFAULT_REGION` or
 * the AWS profile).
 *
 * @module
 */

import type { AuthProvider } from "./mod.ts";
import { HecateError } from "../src/errors.ts";
import { DEFAULT_PORTS, type Profile } from "../src/profile.ts";

function tlsRule(p: Profile): void {
  if (p.tls.mode !== "verify") {
    throw new HecateError(
      "usage",
      `Profile "${p.name}": auth aws-iam needs --tls verify (the token is a password for 15 minutes; it is never sent without a verified TLS connection)`,
      {
        hint:
          "use --tls verify, with --ca-file for the RDS CA bundle if the system does not trust it",
      },
    );
  }
}

/** RDS/Aurora IAM database authentication. */
export const awsIamLogin: AuthProvider = {
  type: "aws-iam",
  engines: ["postgres", "mysql"],
  secretFields: [],
  requiredFields: ["host", "user"],
  validate: tlsRule,
  async credentials(p) {
    tlsRule(p);
    // Loaded on use: profiles of other methods never load the AWS modules.
    const [{ awsCredentials, awsRegion }, { rdsAuthToken, regionOfRdsHost }] = await Promise.all([
      import("./sources/aws/chain.ts"),
      import("./sources/aws/rds_token.ts"),
    ]);
    const env = (name: string) => Deno.env.get(name);
    const host = p.host!, user = p.user!;
    const region = p.params?.region || regionOfRdsHost(host) || await awsRegion(env);
    if (!region) {
      throw new HecateError(
        "secret_unresolved",
        `Profile "${p.name}": no AWS region for the IAM token`,
        { hint: "give --aws-region, or set AWS_REGION" },
      );
    }
    const creds = await awsCredentials({ env });
    const port = p.port ?? DEFAULT_PORTS[p.engine]!;
    const password = await rdsAuthToken(creds, { host, port, user, region });
    return { user, password };
  },
};
