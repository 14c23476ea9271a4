/**
 * Loading a client certificate for the `certificate` provider: reads the files, decrypts the key
 * and checks the pair. A module of its own so that node:crypto (about 30 ms to load) is paid only
 * by profiles that use a certificate.
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { HecateError } from "../src/errors.ts";
import type { Profile } from "../src/profile.ts";
import { ENCRYPTED_PEM, invalid } from "./certificate.ts";

/** Client certificate and key as PEM, ready for a TLS handshake. */
export interface ClientCertificate {
  /** The certificate, followed by any intermediate certificates. */
  certPem: string;
  /** The unencrypted private key (PKCS#8 when it was decrypted here). */
  keyPem: string;
}

async function readFile(profile: string, field: string, path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : "file cannot be read";
    throw new HecateError(
      "invalid_profile",
      `Profile "${profile}" is invalid: cannot read ${field} "${path}": ${why}`,
      { cause: e },
    );
  }
}

/** Parses a private key, decrypting it with the pass phrase when it is encrypted. */
function privateKey(
  profile: string,
  path: string,
  pem: string,
  passphrase: string | undefined,
): KeyObject {
  const encrypted = ENCRYPTED_PEM.test(pem);
  if (encrypted && passphrase === undefined) {
    throw invalid(
      profile,
      `the key file "${path}" is encrypted and the profile has no secret 'keyPassphrase'`,
      `give it with 'hecate server edit ${profile} --secret-stdin' (or --secret-ref)`,
    );
  }
  try {
    return createPrivateKey(encrypted ? { key: pem, format: "pem", passphrase } : pem);
  } catch (e) {
    if (encrypted) {
      throw new HecateError(
        "auth_failed",
        `Profile "${profile}": cannot decrypt the key file "${path}": wrong passphrase`,
        { cause: e },
      );
    }
    throw invalid(profile, `the key file "${path}" holds no usable private key`);
  }
}

/** The first certificate of a PEM text, parsed. */
function certificate(profile: string, path: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new HecateError(
      "invalid_profile",
      `Profile "${profile}" is invalid: the certificate file "${path}" holds no PEM certificate`,
      { cause: e },
    );
  }
}

function checkPair(profile: string, cert: X509Certificate, key: KeyObject, what: string): void {
  if (!cert.checkPrivateKey(key)) {
    throw invalid(profile, `the client certificate and key in ${what} do not match`);
  }
}

/** Reads a PEM certificate and key pair. */
async function fromPem(
  profile: string,
  certFile: string,
  keyFile: string,
  passphrase: string | undefined,
): Promise<ClientCertificate> {
  const dec = new TextDecoder();
  const certPem = dec.decode(await readFile(profile, "certFile", certFile));
  const keyText = dec.decode(await readFile(profile, "keyFile", keyFile));
  const key = privateKey(profile, keyFile, keyText, passphrase);
  checkPair(
    profile,
    certificate(profile, certFile, certPem),
    key,
    `"${certFile}" and "${keyFile}"`,
  );
  const keyPem = ENCRYPTED_PEM.test(keyText)
    ? String(key.export({ type: "pkcs8", format: "pem" }))
    : keyText;
  return { certPem, keyPem };
}

/** DER bytes (as a binary string, node-forge's form) to PEM. */
function pem(label: string, der: string, encode64: (s: string) => string): string {
  const b64 = encode64(der).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * Reads a PKCS#12 bundle with node-forge (loaded only here): its private key, the certificate
 * that matches the key, and the other certificates as the chain.
 */
async function fromPfx(
  profile: string,
  pfxFile: string,
  passphrase: string | undefined,
): Promise<ClientCertificate> {
  const bytes = await readFile(profile, "pfxFile", pfxFile);
  const { default: forge } = await import("node-forge");
  let p12: ReturnType<typeof forge.pkcs12.pkcs12FromAsn1>;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(bytes as Uint8Array<ArrayBuffer>));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, true, passphrase ?? "");
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    if (/MAC could not be verified|Invalid password/i.test(text)) {
      if (passphrase === undefined) {
        throw invalid(
          profile,
          `the PKCS#12 file "${pfxFile}" is protected and the profile has no secret 'keyPassphrase'`,
          `give it with 'hecate server edit ${profile} --secret-stdin' (or --secret-ref)`,
        );
      }
      throw new HecateError(
        "auth_failed",
        `Profile "${profile}": cannot open the PKCS#12 file "${pfxFile}": wrong passphrase`,
        { cause: e },
      );
    }
    throw new HecateError(
      "invalid_profile",
      `Profile "${profile}" is invalid: "${pfxFile}" is not a readable PKCS#12 file`,
      { cause: e },
    );
  }
  const { oids } = forge.pki;
  const bagsOf = (type: string) => p12.getBags({ bagType: type })[type] ?? [];
  const der = (node: Parameters<typeof forge.asn1.toDer>[0]) => forge.asn1.toDer(node).getBytes();
  // node-forge builds key and certificate objects for RSA only and keeps the raw ASN.1 for every
  // other algorithm; either way the result is PEM that node:crypto parses.
  const keyBag = [...bagsOf(oids.pkcs8ShroudedKeyBag!), ...bagsOf(oids.keyBag!)][0];
  const keyPem = keyBag?.asn1
    ? pem("PRIVATE KEY", der(keyBag.asn1), forge.util.encode64)
    : keyBag?.key
    ? forge.pki.privateKeyToPem(keyBag.key)
    : undefined;
  if (!keyPem) throw invalid(profile, `the PKCS#12 file "${pfxFile}" holds no private key`);
  const key = privateKey(profile, pfxFile, keyPem, undefined);
  const certs = bagsOf(oids.certBag!).flatMap((b) =>
    b.asn1
      ? [pem("CERTIFICATE", der(b.asn1), forge.util.encode64)]
      : b.cert
      ? [forge.pki.certificateToPem(b.cert)]
      : []
  );
  const leaf = certs.findIndex((c) => certificate(profile, pfxFile, c).checkPrivateKey(key));
  if (leaf < 0) {
    throw invalid(profile, `the PKCS#12 file "${pfxFile}" holds no certificate for its key`);
  }
  const chain = certs.filter((_, i) => i !== leaf);
  return { certPem: [certs[leaf]!, ...chain].join(""), keyPem };
}

/**
 * Loads a profile's client certificate and key.
 *
 * @param profile The profile (its `params` name the files).
 * @param passphrase The key or bundle pass phrase, if any.
 * @returns PEM texts for the TLS handshake.
 * @throws {HecateError} `invalid_profile` for a missing or unreadable file, an encrypted key
 * without pass phrase, or a certificate that does not match the key; `auth_failed` for a wrong
 * pass phrase.
 */
export async function loadClientCertificate(
  profile: Profile,
  passphrase: string | undefined,
): Promise<ClientCertificate> {
  const { certFile, keyFile, pfxFile } = profile.params ?? {};
  if (pfxFile) return await fromPfx(profile.name, pfxFile, passphrase);
  if (certFile && keyFile) return await fromPem(profile.name, certFile, keyFile, passphrase);
  throw invalid(profile.name, "missing field 'certFile' and 'keyFile' (or 'pfxFile')");
}
