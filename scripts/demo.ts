/**
 * The demo: Hecate's main job end to end on a throwaway vault. It creates a temporary home, a
 * vault, a SQLite database with a few rows, a profile for it, runs a parameterised query through
 * the `hecate` command, and prints and verifies the audit records those steps produced. Nothing
 * outside the temporary directory is touched, and it is removed at the end.
 *
 * Run: `deno task demo`
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { HECATE_PERMISSIONS } from "./permissions.ts";

const PERMISSIONS = HECATE_PERMISSIONS;
const main = new URL("../main.ts", import.meta.url).pathname;
// A demo password, shown on purpose: the vault is thrown away when the demo ends.
const DEMO_PASSWORD = "demo-only correct horse battery";

async function hecate(args: string[], stdinText: string, show = args.join(" ")): Promise<void> {
  console.log(`\n$ hecate ${show}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, main, "--home", home, ...args],
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdinText));
  await w.close();
  const { code } = await child.status;
  if (code !== 0) throw new Error(`hecate ${args[0]} exited with ${code}`);
}

const root = await Deno.makeTempDir({ prefix: "hecate-demo-" });
const home = `${root}/home`;
try {
  const dbPath = `${root}/shop.db`;
  const db = new DatabaseSync(dbPath);
  db.exec(`
    create table customers (id integer primary key, name text, country text, balance real);
    insert into customers (name, country, balance) values
      ('Ada Lovelace', 'GB', 1815.5), ('Grace Hopper', 'US', 1906.0),
      ('Emmy Noether', 'DE', 1882.25), ('Jöns Berzelius', 'SE', NULL);
  `);
  db.close();

  console.log(`Demo home: ${home} (temporary)`);
  const pw = DEMO_PASSWORD + "\n";
  await hecate(["init", "--password-stdin", "--kdf-iterations", "600000"], pw);
  await hecate(
    ["server", "add", "shop", "--engine", "sqlite", "--database", dbPath, "--password-stdin"],
    pw,
  );
  await hecate(["server", "list", "--password-stdin"], pw);
  await hecate(
    [
      "query",
      "shop",
      "select id, name, country, balance from customers where country <> ? order by id",
      "--param",
      "US",
      "--format",
      "table",
      "--password-stdin",
    ],
    pw,
    `query shop "select id, name, country, balance from customers where country <> ? order by id" --param US --format table --password-stdin`,
  );
  await hecate(["audit", "show"], "");
  await hecate(["audit", "verify", "--password-stdin"], pw);
  console.log("\nThe vault file holds only ciphertext:");
  const head = (await Deno.readTextFile(`${home}/vault.hecate`)).slice(0, 160);
  console.log(`${head}...`);
} finally {
  await Deno.remove(root, { recursive: true });
}
