/**
 * The `hecate` command. All logic lives in src/; this file only runs the command tree and exits
 * with its code.
 *
 * @module
 */

import { runCli } from "./src/cli/cli.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
