/**
 * Test certificates made with the `openssl` command: a fresh CA, server certificates for
 * 127.0.0.1 / localhost, client certificates, encrypted keys and PKCS#12 bundles. Everything lives
 * in a directory the caller owns and removes.
 *
 * @example
 * ```ts
 * const ca = await makeCa(dir, "Test CA");
 * const server = await issueCert(ca, dir, "server", { cn: "127.0.0.1", server: true });
 * ```
 *
 * @module
 */

const INSTALL_HINT = "run scripts/install_test_deps.sh";

/** A certificate authority: its certificate and key files. */
export interface TestCa {
  /** PEM certificate file. */
  certFile: string;
  /** PEM private key file (unencrypted). */
  keyFile: string;
}

/** An issued certificate and its key. */
export interface IssuedCert {
  /** PEM certificate file. */
  certFile: string;
  /** PEM private key file (unencrypted). */
  keyFile: string;
}

/** Options for {@link issueCert}. */
export interface IssueOptions {
  /** Subject common name. */
  cn: string;
  /** A server certificate (SAN 127.0.0.1 and localhost, serverAuth) instead of a client one. */
  server?: boolean;
  /** Subject alternative names for a server certificate. @default {"IP:127.0.0.1,DNS:localhost"} */
  san?: string;
  /** An RSA 2048 key instead of EC P-256. @default {false} */
  rsa?: boolean;
}

function openssl(): string {
  for (const dir of ["/usr/bin", "/usr/local/bin", "/bin"]) {
    try {
      if (Deno.statSync(`${dir}/openssl`).isFile) return `${dir}/openssl`;
    } catch {
      // try the next
    }
  }
  throw new Error(`openssl not found: ${INSTALL_HINT}`);
}

/**
 * Runs openssl with a clean environment; secrets for it go through `env:` arguments.
 *
 * @param args Arguments.
 * @param env Extra environment (e.g. a pass phrase for `-passout env:PASS`).
 */
export async function runOpenssl(args: string[], env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(openssl(), {
    args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]} failed (exit ${out.code}): ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Makes a self-signed CA.
 *
 * @param dir Directory for the files.
 * @param name File name stem and part of the subject.
 * @returns The CA's files.
 */
export async function makeCa(dir: string, name: string): Promise<TestCa> {
  const certFile = `${dir}/${name}.crt`, keyFile = `${dir}/${name}.key`;
  await runOpenssl([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    `/CN=Hecate test ${name}`,
  ]);
  return { certFile, keyFile };
}

/**
 * Issues a server or client certificate signed by a CA.
 *
 * @param ca The signing CA.
 * @param dir Directory for the files.
 * @param name File name stem.
 * @param options Subject and kind.
 * @returns The certificate and key files.
 */
export async function issueCert(
  ca: TestCa,
  dir: string,
  name: string,
  options: IssueOptions,
): Promise<IssuedCert> {
  const certFile = `${dir}/${name}.crt`, keyFile = `${dir}/${name}.key`;
  const csr = `${dir}/${name}.csr`, ext = `${dir}/${name}.ext`;
  await runOpenssl([
    "req",
    "-new",
    ...(options.rsa ? ["-newkey", "rsa:2048", "-nodes"] : EC),
    "-keyout",
    keyFile,
    "-out",
    csr,
    "-subj",
    `/CN=${options.cn}`,
  ]);
  await Deno.writeTextFile(
    ext,
    options.server
      ? `basicConstraints=CA:FALSE\nsubjectAltName=${
        options.san ?? "IP:127.0.0.1,DNS:localhost"
      }\n` +
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
      : "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
  await runOpenssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-CAcreateserial",
    "-out",
    certFile,
    "-days",
    "2",
    "-extfile",
    ext,
  ]);
  await Deno.chmod(keyFile, 0o600);
  return { certFile, keyFile };
}

/**
 * Writes a key encrypted with a pass phrase (PKCS#8, AES-256-CBC).
 *
 * @param keyFile The unencrypted key.
 * @param out Where to write the encrypted key.
 * @param passphrase The pass phrase.
 */
export async function encryptKey(keyFile: string, out: string, passphrase: string): Promise<void> {
  await runOpenssl(
    ["pkcs8", "-topk8", "-in", keyFile, "-out", out, "-v2", "aes-256-cbc", "-passout", "env:PASS"],
    { PASS: passphrase },
  );
}

/**
 * Writes a PKCS#12 bundle of a certificate and its key.
 *
 * @param cert The certificate and key.
 * @param out Where to write the `.p12` file.
 * @param passphrase The export password.
 */
export async function makePfx(cert: IssuedCert, out: string, passphrase: string): Promise<void> {
  await runOpenssl(
    [
      "pkcs12",
      "-export",
      "-in",
      cert.certFile,
      "-inkey",
      cert.keyFile,
      "-out",
      out,
      "-passout",
      "env:PASS",
    ],
    { PASS: passphrase },
  );
}
