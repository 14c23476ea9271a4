/**
 * Runs tests/support/audit_burst.ts (8 concurrent writers appending `query` records) in a child
 * and kills it with SIGKILL once it has acknowledged enough final records: the crash tests of the
 * trail's group commit and of its locked sections share it.
 *
 * @module
 */

import assert from "node:assert/strict";

const BURST = new URL("./audit_burst.ts", import.meta.url).pathname;

/**
 * Starts the burst child and kills it after at least `acks` acknowledged records.
 *
 * @param home The vault home whose trail the child appends to.
 * @param start The `rows` value of the child's first record (records count up from it).
 * @param acks How many acknowledgements to wait for before the kill.
 * @returns The `rows` values the child acknowledged (each acknowledged only once final).
 */
export async function burstUntilKilled(
  home: string,
  start: number,
  acks: number,
): Promise<number[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      BURST,
      home,
      "8",
      String(start),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let killed = false;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    if (!killed && text.split("\n").length > acks) {
      child.kill("SIGKILL"); // in the middle of whatever hold, write or flush it is in
      killed = true;
    }
  }
  const status = await child.status;
  const err = await new Response(child.stderr).text();
  assert.equal(status.signal, "SIGKILL", `the child ended on its own: ${err}`);
  // Only whole lines are acknowledgements (the kill may cut the last one).
  return text.split("\n").slice(0, -1).filter((l) => l).map(Number);
}
