/**
 * A hostile or broken MySQL server (the protocol double of tests/support/mysql_double.ts with a
 * script) against the native driver: garbled, truncated, out-of-order and oversized packets,
 * endless login exchanges, absurd result headers and a LOAD DATA LOCAL request. Each must end in
 * a one-line `connection_failed` (a protocol error) within the timeout, never a hang, a crash or
 * a local file sent.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/mysql_hostile_test.ts
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mysqlDriver } from "../src/db/mysql.ts";
import type { ConnectSettings } from "../src/db/driver.ts";
import { handshakePacket, type PacketSocket, startMysqlDouble } from "./support/mysql_double.ts";
import { hecateError } from "./support/hecate_error.ts";
import { within } from "./support/within.ts";
import { MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";

const NONCE = new TextEncoder().encode("abcdefghijklmnopqrst");

function settings(port: number, over: Partial<ConnectSettings> = {}): ConnectSettings {
  return {
    engine: "mysql",
    host: "127.0.0.1",
    port,
    user: "u",
    password: "hostile-test-pw",
    tls: { mode: "disable" },
    connectTimeoutMs: 2000,
    ...over,
  };
}

/** Accepts any login, answers the pipelined session set-up, then hands over the first command. */
async function login(s: PacketSocket): Promise<boolean> {
  s.send(0, handshakePacket(NONCE, "mysql_native_password", false));
  if (!await s.packet()) return false;
  s.send(2, Buffer.from([0, 0, 0, 2, 0, 0, 0]));
  const set = await s.packet(); // SET time_zone
  if (!set) return false;
  s.send(1, Buffer.from([0, 0, 0, 2, 0, 0, 0]));
  return (await s.packet()) !== null; // the command under test
}

/** Keeps the connection open until the client leaves. */
async function hold(s: PacketSocket): Promise<void> {
  while (await s.packet()) { /* ignore */ }
}

/** A column definition packet for a VARCHAR column named `c`. */
function column(): Buffer {
  const parts = [Buffer.from([3, 0x64, 0x65, 0x66]), Buffer.from([0, 0, 0, 1, 0x63, 0])];
  const fixed = Buffer.from([0x0c, 45, 0, 0, 1, 0, 0, 253, 0, 0, 0, 0, 0]);
  return Buffer.concat([...parts, fixed]);
}
const EOF = Buffer.from([0xfe, 0, 0, 2, 0]);

/** Connects (and for `query`, runs a statement) against a scripted double; returns the error. */
async function attack(
  script: (s: PacketSocket) => Promise<void>,
  phase: "connect" | "query",
) {
  await using d = await startMysqlDouble({ script });
  return await within(
    hecateError((async () => {
      const c = await mysqlDriver.connect(settings(d.port));
      if (phase === "connect") return;
      try {
        for await (const set of c.query("select c from t", [])) {
          for await (const _ of set.rows) { /* drain */ }
        }
      } finally {
        await c.close();
      }
    })()),
    10_000,
  );
}

Deno.test("a hostile server during the connection phase: protocol errors, no hang", async (t) => {
  const cases: [string, (s: PacketSocket) => Promise<void>, RegExp][] = [
    ["an HTTP answer instead of a handshake", async (s) => {
      s.raw(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
      await hold(s);
    }, /protocol error: Packet out of order/],
    ["another protocol version", async (s) => {
      s.send(0, Buffer.from([9, 0x35, 0]));
      await hold(s);
    }, /protocol error: Unsupported protocol version 9/],
    ["a truncated handshake", async (s) => {
      s.send(0, Buffer.from([10, 0x38, 0, 1, 2]));
      await hold(s);
    }, /protocol error: Truncated packet/],
    ["endless authentication switches", async (s) => {
      s.send(0, handshakePacket(NONCE, "mysql_native_password", false));
      for (let seq = 2;; seq += 2) {
        if (!await s.packet()) return;
        s.send(
          seq & 0xff,
          Buffer.concat([Buffer.from("\xfemysql_native_password\0", "latin1"), NONCE]),
        );
      }
    }, /protocol error: Too many authentication exchanges/],
    ["an unknown plugin", async (s) => {
      s.send(0, handshakePacket(NONCE, "mysql_native_password", false));
      await s.packet();
      s.send(2, Buffer.from("\xfedialog\0xyz\0", "latin1"));
      await hold(s);
    }, /does not support/],
  ];
  for (const [name, script, expected] of cases) {
    await t.step(name, async () => {
      const e = await attack(script, "connect");
      assert.ok(["connection_failed", "auth_failed"].includes(e.code), e.message);
      assert.match(e.message, expected);
      assert.ok(!e.message.includes("\n"));
      assert.ok(!e.message.includes("hostile-test-pw"));
    });
  }

  await t.step(
    "a packet announced at 16 MiB that never comes: timeout, no allocation",
    async () => {
      const e = await attack(async (s) => {
        s.raw(new Uint8Array([0xff, 0xff, 0xff, 0]));
        s.raw(new Uint8Array(1000));
        await hold(s);
      }, "connect");
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /timed out after 2000 ms/);
    },
  );
});

Deno.test("a hostile server answering a statement: protocol errors, no hang", async (t) => {
  const cases: [string, (s: PacketSocket) => Promise<void>, RegExp][] = [
    ["65,535 columns announced", async (s) => {
      if (!await login(s)) return;
      s.send(1, Buffer.from([0xfc, 0xff, 0xff]));
      await hold(s);
    }, /protocol error: Malformed result set header/],
    ["a row value longer than its packet", async (s) => {
      if (!await login(s)) return;
      s.send(1, Buffer.from([1]));
      s.send(2, column());
      s.send(3, EOF);
      s.send(4, Buffer.from([0xfc, 0xff, 0xff, 0x41]));
      await hold(s);
    }, /protocol error: Row value past the end/],
    ["a garbled column definition", async (s) => {
      if (!await login(s)) return;
      s.send(1, Buffer.from([1]));
      s.send(2, Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1]));
      await hold(s);
    }, /protocol error/],
    ["a LOAD DATA LOCAL request", async (s) => {
      if (!await login(s)) return;
      s.send(1, Buffer.from("\xfb/etc/passwd", "latin1"));
      // Whatever the client sends next must not be the file.
      const next = await s.packet();
      if (next && next.payload.toString().includes("root:")) throw new Error("file sent");
      await hold(s);
    }, /protocol error: The server asked for a local file/],
    ["packets out of order", async (s) => {
      if (!await login(s)) return;
      s.send(7, Buffer.from([1]));
      await hold(s);
    }, /protocol error: Packet out of order/],
    ["the server leaving mid-row", async (s) => {
      if (!await login(s)) return;
      s.send(1, Buffer.from([1]));
      s.send(2, column());
      s.send(3, EOF);
      s.raw(new Uint8Array([10, 0, 0, 4, 5, 0x61]));
      s.socket.destroy();
    }, /Connection to MySQL lost/],
  ];
  for (const [name, script, expected] of cases) {
    await t.step(name, async () => {
      const e = await attack(script, "query");
      assert.equal(e.code, "connection_failed", e.message);
      assert.match(e.message, expected);
      assert.ok(!e.message.includes("\n"));
    });
  }
});

Deno.test("hecate query against a server asking for a local file: exit 6, nothing sent", async () => {
  let sawFile = false;
  await using d = await startMysqlDouble({
    script: async (s) => {
      if (!await login(s)) return;
      s.send(1, Buffer.from("\xfb/etc/passwd", "latin1"));
      for (;;) {
        const p = await s.packet();
        if (!p) return;
        if (p.payload.toString().includes("root:")) sawFile = true;
      }
    },
  });
  await using dir = await tempDir("hecate-mysql-hostile-");
  const home = `${dir.path}/home`;
  const run = (stdin: string, ...args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, stdin: `${MASTER_PASSWORD}\n${stdin}` });
  assert.equal(
    (await runHecate(["--password-stdin", "init", "--kdf-iterations", "600000"], {
      home,
      stdin: `${MASTER_PASSWORD}\n`,
    })).code,
    0,
  );
  const add = await run(
    "hostile-test-pw\n",
    "server",
    "add",
    "evil",
    "--engine",
    "mysql",
    "--host",
    "127.0.0.1",
    "--port",
    String(d.port),
    "--user",
    "u",
    "--tls",
    "disable",
    "--secret-stdin",
  );
  assert.equal(add.code, 0, add.stderr);
  const r = await run("", "query", "evil", "select 1");
  assert.equal(r.code, 6, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /asked for a local file/);
  assert.ok(!sawFile);
});

Deno.test("random answers to the login and to a statement: documented errors, no secret, no hang", async () => {
  const canary = "Canary-Passw0rd-7f3a";
  let answer = new Uint8Array();
  let afterLogin = false;
  await using d = await startMysqlDouble({
    script: async (s) => {
      if (afterLogin) {
        if (!await login(s)) return;
      } else {
        s.send(0, handshakePacket(NONCE, "mysql_native_password", false));
        if (!await s.packet()) return;
      }
      // The random answer, then the end of the connection: whatever the client makes of the
      // answer, it must not wait for more.
      s.raw(answer);
      s.socket.end();
    },
  });
  let failures = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.boolean(),
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom(1, 2, 3, 7),
      async (phase, body, seq) => {
        afterLogin = phase;
        // A framed packet with a random body (and sometimes a wrong sequence number).
        answer = new Uint8Array([body.length, 0, 0, phase ? seq - 1 : seq + 1, ...body]);
        const run = async () => {
          const c = await mysqlDriver.connect(
            settings(d.port, { password: canary, connectTimeoutMs: 2000 }),
          );
          try {
            if (!phase) return;
            for await (const set of c.query("select 1", [])) {
              for await (const _ of set.rows) { /* drain */ }
            }
          } finally {
            await c.close();
          }
        };
        let error: unknown = null;
        await within(run().catch((e) => error = e), 10_000);
        if (error === null) return; // a well-formed answer by chance
        failures++;
        assert.ok(error instanceof HecateError, String(error));
        assert.ok(
          ["connection_failed", "auth_failed", "query_failed"].includes(error.code),
          `${error.code}: ${error.message}`,
        );
        assert.ok(!error.message.includes(canary), error.message);
        assert.ok(!error.message.includes("\n"), error.message);
      },
    ),
    { numRuns: 60 },
  );
  assert.ok(failures > 30, `only ${failures} runs failed: the answers were too tame`);
});
