/**
 * The unlock agent's socket under random input (fast-check): requests without the session token
 * get nothing at all; requests with it but random arguments get an `E` frame with a documented
 * error code or a result, never a crash, a hang or a secret; the agent keeps serving its owner.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { readSession } from "../src/agent/client.ts";
import { agentPaths } from "../src/agent/paths.ts";
import { FRAME, FrameReader } from "../src/agent/protocol.ts";
import { exitCodeFor } from "../src/errors.ts";
import { auditLines, passwordFile, PW, runHecate, vaultWith } from "./support/access.ts";
import { within } from "./support/within.ts";

/** Sends raw bytes on a new connection and returns every frame of the answer. */
async function exchange(
  socket: string,
  payload: Uint8Array,
): Promise<{ type: number; text: string }[]> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    let n = 0;
    while (n < payload.length) n += await conn.write(payload.subarray(n));
    // Half-close: a request without a newline ends here, as a client that gives up would.
    await conn.closeWrite();
    const frames = new FrameReader(conn.readable);
    const out: { type: number; text: string }[] = [];
    for (;;) {
      const f = await frames.next();
      if (!f) return out;
      out.push({ type: f.type, text: new TextDecoder().decode(f.payload) });
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the reader
    }
  }
}

Deno.test("agent socket fuzz: no token, no answer; with the token, random arguments end in a documented error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hecate-agent-fuzz-" });
  await Deno.chmod(dir, 0o700);
  const home = `${dir}/home`;
  await Deno.mkdir(home, { mode: 0o700 });
  let pid: number | undefined;
  try {
    await (await vaultWith(home, ["a"])).close();
    const pwFile = await passwordFile(dir);
    const up = await runHecate(["--home", home, "unlock", "--idle", "10m"], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(up.code, 0, up.stderr);
    const session = (await readSession(home))!;
    pid = session.pid;
    const socket = agentPaths(home).socket;
    const enc = new TextEncoder();

    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (bytes, newline) => {
        const payload = newline ? new Uint8Array([...bytes, 0x0a]) : bytes;
        const frames = await within(exchange(socket, payload), 5000);
        assert.deepEqual(frames, [], "nothing without the token");
      }),
      { numRuns: 150 },
    );

    const refused = async () =>
      (await auditLines(home)).filter((e) => e.event === "agent.use" && e.reason === "bad_token")
        .length;
    // A request cut off without its newline reaches EOF, and Deno closes the connection on EOF,
    // so the last record may land just after the client saw the close: wait a bounded while.
    for (let i = 0; i < 40 && await refused() < 150; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await refused(), 150, "every refused request is in the trail");

    const anything = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          op: fc.constantFrom("query", "list", "show", "ping", "nope", ""),
          profile: fc.oneof(fc.constantFrom("a", "missing"), anything),
          sql: fc.oneof(fc.constantFrom("select 1", "select ?", "select * from nowhere"), anything),
          params: fc.oneof(fc.array(fc.string(), { maxLength: 2 }), anything),
          format: fc.oneof(fc.constantFrom("csv", "json", "table"), anything),
          color: fc.oneof(fc.boolean(), anything),
        }, { requiredKeys: ["op"] }),
        async (args) => {
          const line = JSON.stringify({ v: 1, token: session.token, ...args }) + "\n";
          const frames = await within(exchange(socket, enc.encode(line)), 5000);
          assert.ok(frames.length > 0, "an answer");
          const last = frames.at(-1)!;
          assert.ok(last.type === FRAME.ok || last.type === FRAME.error, `ends with O or E`);
          if (last.type === FRAME.error) {
            const e = JSON.parse(last.text);
            assert.equal(typeof exitCodeFor(e.code), "number", `documented code: ${last.text}`);
          }
          for (const f of frames) {
            assert.ok(!f.text.includes(PW) && !f.text.includes("secret-of-a"), "no secret");
          }
        },
      ),
      { numRuns: 200 },
    );

    const after = await runHecate(["--home", home, "query", "a", "select 1 as x"]);
    assert.equal(after.code, 0, `the agent still serves its owner: ${after.stderr}`);
    assert.equal(after.stdout, "x\n1\n");
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
  } finally {
    if (pid !== undefined) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // ended already
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await Deno.remove(dir, { recursive: true });
  }
});
