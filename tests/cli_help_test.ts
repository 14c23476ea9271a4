/**
 * `server add --help` and `server edit --help` list their options in the groups people read them
 * by (connection, authentication, TLS, SSH, secrets), engine/host/user first, and every option
 * of the command in exactly one group.
 */

import assert from "node:assert/strict";
import { describeProgram } from "../src/cli/tree.ts";
import { runHecate } from "./support/access.ts";

/** The help's option groups: heading -> long flags, in the order printed. */
function groupsOf(help: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of help.split("\n")) {
    const heading = /^([A-Z][A-Za-z ]*):$/.exec(line);
    if (heading) {
      current = heading[1] === "Arguments" ? undefined : [];
      if (current) groups.set(heading[1]!, current);
      continue;
    }
    const flag = /^ {2}(?:-\w, )?(--[\w-]+)/.exec(line);
    if (flag && current) current.push(flag[1]!);
  }
  return groups;
}

for (const sub of ["add", "edit"]) {
  Deno.test(`server ${sub} --help groups its options`, async () => {
    const run = await runHecate(["server", sub, "--help"]);
    assert.equal(run.code, 0, run.stderr);
    const groups = groupsOf(run.stdout);
    assert.deepEqual([...groups.keys()], [
      "Connection",
      "Authentication",
      "TLS",
      "SSH",
      "Secrets",
      "Vault",
      "Options",
    ]);
    const connection = groups.get("Connection")!;
    const first = sub === "add" ? ["--engine", "--host"] : ["--host"];
    assert.deepEqual(connection.slice(0, first.length), first);
    assert.ok(connection.indexOf("--user") < 5, "--user among the first connection options");
    assert.ok(groups.get("Authentication")!.includes("--auth"));
    assert.ok(groups.get("Authentication")!.includes("--domain"));
    assert.ok(groups.get("TLS")!.includes("--tls"));
    assert.ok(groups.get("TLS")!.includes("--ca-file"));
    assert.ok(groups.get("SSH")!.every((f) => /^--(no-)?ssh/.test(f)));
    assert.deepEqual(groups.get("Secrets"), [
      "--secret-stdin",
      "--secret-ref",
      "--from",
      "--source-timeout",
      "--cache-ttl",
      "--rotate-every",
      "--complexity",
      ...(sub === "edit"
        ? ["--no-complexity", "--no-rotate-every", "--no-from", "--no-cache-ttl", "--keep-versions"]
        : []),
      "--ssh-secret-stdin",
      ...(sub === "add" ? ["--store"] : []),
    ]);
    assert.ok(groups.get("Vault")!.every((f) => f.startsWith("--vault-")));
    assert.deepEqual(groups.get("Options"), ["--help"]);
    // Every option of the command, once.
    const tree = await describeProgram();
    const cmd = tree.subcommands.find((c) => c.name === "server")!.subcommands
      .find((c) => c.name === sub)!;
    const listed = [...groups.values()].flat();
    assert.equal(new Set(listed).size, listed.length);
    assert.deepEqual([...listed].sort(), cmd.options.map((o) => o.long).sort());
  });
}
