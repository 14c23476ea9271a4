/**
 * `deno task bench agent`: `hecate query pg "select 1"` served by the unlock agent (no password,
 * no key: the agent runs the statement and streams its rows back) against the same command with
 * an API key (the unattended path: HKDF unlock and the query in the command's own process).
 * Interleaved runs, medians; goal: the agent path at most 1.1x the API-key path.
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { measure, medianInterleaved, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";

/**
 * Runs the section.
 *
 * @param root The bench's temporary directory.
 * @param password The master password of the bench vaults.
 * @param pwFile A 0600 file holding it.
 * @param hecateCmd Builds a `hecate --home HOME ...` command line.
 */
export async function benchAgent(
  root: string,
  password: string,
  pwFile: string,
  hecateCmd: (home: string, ...args: string[]) => string[],
): Promise<void> {
  await using pg = await startPostgres();
  const home = `${root}/home-agent`;
  const vault = await vaultWith(home, password, [serverProfile("pg", "postgres", pg)]);
  const apiKey = await vault.apiKeys.create({ name: "bench", profiles: ["pg"], expires: null });
  await vault.close();
  const unlock = await new Deno.Command(hecateCmd(home)[0]!, {
    args: [...hecateCmd(home, "unlock", "--for", "30m", "--idle", "30m").slice(1)],
    env: { HECATE_PASSWORD_FILE: pwFile, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!unlock.success) throw new Error(new TextDecoder().decode(unlock.stderr));
  const query = hecateCmd(home, "query", "pg", "select 1");
  try {
    // Warm Deno's caches (and the agent's first connection path) once.
    await measure(query);
    await measure(query, { env: { HECATE_API_KEY: apiKey } });
    const m = await medianInterleaved(11, {
      agent: () => measure(query),
      apiKey: () => measure(query, { env: { HECATE_API_KEY: apiKey } }),
    });
    report(
      "select 1 via the unlock agent vs with an API key (interleaved, median of 11)",
      m.agent,
      m.apiKey,
      "API key",
      "agent",
    );
    console.log(
      `agent path goal: at most 1.10x the API-key path; measured ` +
        `${(m.agent.wallS / m.apiKey.wallS).toFixed(2)}x`,
    );
  } finally {
    await new Deno.Command(hecateCmd(home)[0]!, {
      args: [...hecateCmd(home, "lock").slice(1)],
      stdout: "null",
      stderr: "null",
    }).output();
  }
}
