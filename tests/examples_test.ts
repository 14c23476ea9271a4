/** Runs examples/library.ts (the code docs/LIBRARY.md shows) against a real PostgreSQL server. */

import assert from "node:assert/strict";
import { initVault, openVault } from "../mod.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";

Deno.test("examples/library.ts runs as documented", async () => {
  await using pg = await startPostgres();
  const home = await Deno.makeTempDir({ prefix: "hecate-example-" });
  const password = "example-master-password";
  try {
    await initVault({ home, password, kdfIterations: 600_000 });
    const vault = await openVault({ home, password });
    await vault.profiles.add(pgProfile(pg, "billing"));
    await Deno.writeTextFile(`${home}/pw`, password, { mode: 0o600 });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../examples/library.ts", import.meta.url).pathname, "billing"],
      env: { HECATE_HOME: home, HECATE_PASSWORD_FILE: `${home}/pw`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(
      text.replace(/pool stats: .*\n/, ""),
      [
        "profiles: billing",
        "columns: n:int4, square:int4",
        "row: 1 1",
        "row: 2 4",
        "row: 3 9",
        "one-shot: ok",
        "pool: 1 2 3 4 5 6 | breaker: closed",
        "error: query_failed 42P01 7",
        "",
      ].join("\n"),
    );
    const stats = JSON.parse(/pool stats: (.*)\n/.exec(text)![1]!);
    assert.ok(stats.total <= 4 && stats.inUse === 0);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
