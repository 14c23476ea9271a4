/**
 * Child process for tests/audit_state_slots_test.ts: writes the state file of HOME over and over
 * (seq 1, 2, …, each with the key SHA-256(seq)) and prints each seq once its write returned, until
 * it is killed.
 */

import { sha256 } from "../../src/sha256.ts";
import { writeState } from "../../src/audit/state.ts";

const home = Deno.args[0]!;
const out = Deno.stdout;
for (let seq = Number(Deno.args[1] ?? 1);; seq++) {
  const key = sha256(new TextEncoder().encode(String(seq)));
  await writeState(home, { seq, mac: key, key, size: seq, segmentFirst: 1, segmentStarted: seq });
  await out.write(new TextEncoder().encode(`${seq}\n`));
}
