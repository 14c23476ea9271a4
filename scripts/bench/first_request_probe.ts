/**
 * One fresh-process probe for `deno task bench tlsstart` (./first_request.ts): does one thing
 * (`PROBE_MODE`) against `PROBE_HTTPS` / `PROBE_HTTP` (the Vault double's addresses, CA in
 * `PROBE_CA`) and prints a JSON object of milliseconds: the step's own time, and for `tls` the
 * first and the second connection of the process.
 *
 * @module
 */

const mode = Deno.env.get("PROBE_MODE") ?? "";
const https = new URL(Deno.env.get("PROBE_HTTPS") ?? "https://127.0.0.1:1");
const http = new URL(Deno.env.get("PROBE_HTTP") ?? "http://127.0.0.1:1");
const ca = await Deno.readTextFile(Deno.env.get("PROBE_CA") ?? "/dev/null");
const out: Record<string, number> = {};
const time = async (name: string, fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  out[name] = performance.now() - t0;
};
const tls = async () => {
  const c = await Deno.connectTls({
    hostname: https.hostname,
    port: Number(https.port),
    caCerts: [ca],
  });
  await c.handshake();
  c.close();
};
const get = async (url: URL) => {
  const res = await fetch(new URL("/v1/sys/health", url));
  await res.body?.cancel();
};
if (mode === "tcp") {
  await time("tcp", async () => {
    (await Deno.connect({ hostname: http.hostname, port: Number(http.port) })).close();
  });
} else if (mode === "tls") {
  await time("first", tls);
  await time("second", tls);
} else if (mode === "http") {
  await time("first", () => get(http));
  await time("second", () => get(http));
} else if (mode === "https") {
  await time("first", () => get(https));
} else if (mode === "client") {
  // An HTTP client with the CA added (what a per-source client would cost to make).
  await time("client", () => Promise.resolve(Deno.createHttpClient({ caCerts: [ca] }).close()));
} else if (mode === "rng") {
  // AES key generation draws from the TLS library's random generator: its first use in the
  // process pays the same one-time cost as the first TLS connection, and the connection after
  // it does not.
  await time(
    "aes",
    () => crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt"]),
  );
  await time("tls", tls);
}
console.log(JSON.stringify(out));
