/**
 * `deno task bench tlsstart`: where the first HTTPS request of a fresh Deno process spends its
 * time, the part of a secret source's cost on the cron path that no code of Hecate's runs. Each
 * probe (./first_request_probe.ts) is a new `deno run --no-config` process against the Vault
 * double (HTTPS with its own CA, and a plain-HTTP one), run in turns, medians of the in-process
 * timings: a TCP connect; `Deno.connectTls` and its handshake, the process's first connection
 * and its second; a first and second plain-HTTP `fetch`; a first HTTPS `fetch`;
 * `Deno.createHttpClient` with a CA; and one AES key generation followed by a TLS connection.
 *
 * @module
 */

import { startVaultDouble } from "../../tests/support/vault_double.ts";

const PROBE = new URL("./first_request_probe.ts", import.meta.url).pathname;
const MODES = ["tcp", "tls", "http", "https", "client", "rng"] as const;

/**
 * Runs the section.
 *
 * @param rounds Rounds of all probes, in turns.
 */
export async function benchFirstRequest(rounds = 11): Promise<void> {
  await using tls = await startVaultDouble();
  await using plain = await startVaultDouble({ plain: true });
  const env = {
    NO_COLOR: "1",
    PROBE_HTTPS: tls.addr,
    PROBE_HTTP: plain.addr,
    PROBE_CA: tls.caFile,
    // The CA among the trusted roots for fetch, as the vault section sets it for `hecate`.
    DENO_CERT: tls.caFile,
  };
  const runs = new Map<string, number[]>();
  const probe = async (mode: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-config", "--allow-net", "--allow-env", "--allow-read", PROBE],
      env: { ...env, PROBE_MODE: mode },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).slice(0, 400));
    return JSON.parse(new TextDecoder().decode(out.stdout)) as Record<string, number>;
  };
  for (const m of MODES) await probe(m); // compile once
  for (let i = 0; i < rounds; i++) {
    for (const m of MODES) {
      for (const [k, v] of Object.entries(await probe(m))) {
        const key = `${m}.${k}`;
        runs.set(key, [...(runs.get(key) ?? []), v]);
      }
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ms = (key: string) => med(runs.get(key) ?? [NaN]).toFixed(1);
  console.log(
    `first HTTPS request of a fresh process (median of ${rounds}, ms): TCP connect ${
      ms("tcp.tcp")
    }; ` +
      `TLS connect+handshake first ${ms("tls.first")}, second ${ms("tls.second")}; ` +
      `plain fetch first ${ms("http.first")}, second ${ms("http.second")}; HTTPS fetch first ${
        ms("https.first")
      }; ` +
      `createHttpClient with a CA ${ms("client.client")}; AES key generation ${ms("rng.aes")}, ` +
      `then a first TLS connection ${ms("rng.tls")}`,
  );
}
