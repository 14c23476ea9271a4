/**
 * `certificate` authentication: a TLS client certificate logs in (PostgreSQL `hostssl ... cert`,
 * MySQL/MariaDB `REQUIRE X509`). The profile names the files, never their contents:
 *
 * - `certFile` + `keyFile`: PEM certificate (a chain may follow it) and PEM private key, the key
 *   possibly encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY` or the traditional `Proc-Type: 4,ENCRYPTED`);
 * - or `pfxFile`: a PKCS#12 bundle (`.p12`/`.pfx`).
 *
 * The optional secret `keyPassphrase` decrypts the key or the bundle. The files are read at
 * connect time; the key is decrypted in memory and handed to the driver as plain PEM (drivers
 * and Deno's TLS take no pass phrases), and the certificate is checked against the key first, so
 * a wrong pairing gives a clear error instead of a TLS failure.
 *
 * @module
 */

import type { ConnectSettings } from "../src/db/driver.ts";
import { HecateError } from "../src/errors.ts";
import type { Profile } from "../src/profile.ts";
import type { AuthProvider } from "./mod.ts";

/** Recognises an encrypted PEM private key (PKCS#8 or the traditional OpenSSL form). */
export const ENCRYPTED_PEM = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/;

/**
 * An `invalid_profile` error for this method.
 *
 * @param profile Profile name.
 * @param what What is wrong.
 * @param hint What to do.
 * @returns The error.
 */
export function invalid(profile: string, what: string, hint?: string): HecateError {
  return new HecateError(
    "invalid_profile",
    `Profile "${profile}" is invalid: ${what}`,
    hint ? { hint } : {},
  );
}

/**
 * Whether a key file or bundle is protected, so that `server add` asks for its pass phrase.
 * Unreadable files count as not protected (the error comes at connect time, naming the file).
 *
 * @param params The profile's params.
 * @returns `["keyPassphrase"]` or nothing.
 */
async function wantedOptionalSecrets(
  params: Readonly<Record<string, string>>,
): Promise<readonly string[]> {
  try {
    if (params.pfxFile) {
      const bytes = await Deno.readFile(params.pfxFile);
      const { default: forge } = await import("node-forge");
      try {
        forge.pkcs12.pkcs12FromAsn1(
          forge.asn1.fromDer(forge.util.createBuffer(bytes as Uint8Array<ArrayBuffer>)),
          true,
          "",
        );
        return [];
      } catch {
        return ["keyPassphrase"];
      }
    }
    if (params.keyFile && ENCRYPTED_PEM.test(await Deno.readTextFile(params.keyFile))) {
      return ["keyPassphrase"];
    }
  } catch {
    // unreadable now; reported when connecting
  }
  return [];
}

/** Checks the field combination and that TLS is on. */
function validate(profile: Profile): void {
  const { certFile, keyFile, pfxFile } = profile.params ?? {};
  const where = `for auth "certificate"`;
  if (pfxFile && (certFile || keyFile)) {
    throw invalid(profile.name, `give either 'pfxFile' or 'certFile' and 'keyFile', not both`);
  }
  if (!pfxFile) {
    if (!certFile) throw invalid(profile.name, `missing field 'certFile' (or 'pfxFile') ${where}`);
    if (!keyFile) throw invalid(profile.name, `missing field 'keyFile' ${where}`);
  }
  if (profile.tls.mode === "disable") {
    throw invalid(
      profile.name,
      `auth "certificate" needs TLS, but TLS is disabled`,
      "use --tls verify (the default)",
    );
  }
}

/** The `certificate` authentication provider. */
export const certificateAuth: AuthProvider = {
  type: "certificate",
  engines: ["postgres", "mysql"],
  secretFields: [],
  optionalSecretFields: ["keyPassphrase"],
  requiredFields: ["host", "user"],
  validate,
  wantedOptionalSecrets,
  async credentials(profile, secrets): Promise<Partial<ConnectSettings>> {
    validate(profile);
    const { loadClientCertificate } = await import("./certificate_load.ts");
    const { certPem, keyPem } = await loadClientCertificate(profile, secrets.keyPassphrase);
    return {
      ...(profile.user !== undefined ? { user: profile.user } : {}),
      tls: {
        mode: profile.tls.mode,
        ...(profile.tls.caFile ? { caFile: profile.tls.caFile } : {}),
        certPem,
        keyPem,
      },
    };
  },
};
