/**
 * Certificates for the SQL Server tests, made with the `openssl` command in a temporary directory:
 * a CA and a server certificate for 127.0.0.1 signed by it, a second unrelated CA, and a
 * self-signed RSA certificate with an encrypted key for client assertions.
 *
 * @module
 */

/** Files and PEM texts made by {@link makeTestCerts}. */
export interface TestCerts {
  dir: string;
  /** CA that signed the server certificate. */
  caFile: string;
  /** A CA that signed nothing used here. */
  otherCaFile: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** Self-signed certificate for client assertions, and its key (encrypted with `passphrase`). */
  clientCertFile: string;
  clientKeyFile: string;
  clientCertPem: string;
  passphrase: string;
  /** The same client key without encryption. */
  clientPlainKeyFile: string;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Makes the certificates.
 *
 * @returns Paths and PEM texts; remove `dir` when done.
 */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "hecate-mssql-certs-" });
  const passphrase = "test-key-passphrase";
  await openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Hecate test CA",
  );
  await openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "other.key",
    "-out",
    "other.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Unrelated CA",
  );
  await openssl(
    dir,
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  );
  await openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "client.key",
    "-out",
    "client.pem",
    "-days",
    "2",
    "-subj",
    "/CN=hecate-test-app",
  );
  await openssl(
    dir,
    "pkey",
    "-in",
    "client.key",
    "-aes256",
    "-passout",
    `pass:${passphrase}`,
    "-out",
    "client-enc.key",
  );
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    otherCaFile: `${dir}/other.pem`,
    serverCertPem: await read("server.pem"),
    serverKeyPem: await read("server.key"),
    clientCertFile: `${dir}/client.pem`,
    clientKeyFile: `${dir}/client-enc.key`,
    clientCertPem: await read("client.pem"),
    passphrase,
    clientPlainKeyFile: `${dir}/client.key`,
  };
}
