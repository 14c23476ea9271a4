/**
 * The PostgreSQL wire protocol implementation (src/db/pg/) against a real server
 * (tests/support/postgres.ts): SCRAM-SHA-256, MD5 and cleartext logins, the Unix socket, TLS
 * through Deno's TLS (`verify` with the default trust store) and through node:tls (`insecure`, a
 * pinned CA file), and that the `disable` and default-store `verify` paths load no `node:` module. A fake server on 127.0.0.1 (named as such below) plays a
 * SCRAM server that does not know the password, which no real server can be made to do.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/pg_wire_test.ts
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { postgresDriver } from "../src/db/postgres.ts";
import type { ConnectSettings, DbConnection } from "../src/db/driver.ts";
import { HecateError } from "../src/errors.ts";
import { Decimal, JsonText } from "../src/db/value.ts";
import { md5Answer, ScramClient } from "../src/db/pg/auth.ts";
import { paramText } from "../src/db/pg/params.ts";
import { ConnectionLostError, MessageReader, ProtocolError } from "../src/db/pg/reader.ts";
import { MessageWriter } from "../src/db/pg/writer.ts";
import { ROOT } from "./support/access.ts";
import { pgSettings, startPostgres } from "./support/postgres.ts";
import { makeCa } from "./support/tls_certs.ts";
import { hecateError } from "./support/hecate_error.ts";
import { staticGraph } from "./support/module_graph.ts";

async function rows(conn: DbConnection, sql: string): Promise<unknown[][]> {
  return (await conn.collect!(sql, [])).rows;
}

/** Every text an error carries: message, hint, and the messages of its causes. */
function allText(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    if (c instanceof Error) parts.push(c.message, c.stack ?? "");
    else parts.push(String(c));
    if (c instanceof HecateError && c.hint) parts.push(c.hint);
  }
  return parts.join("\n");
}

/** Runs the connect child with debug logging; returns its ROWS line and the node modules loaded. */
async function childRun(settings: ConnectSettings, env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--log-level=debug", `${ROOT}tests/support/pg_connect_child.ts`],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(settings)));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const lines = text.split("\n");
  return {
    code: out.code,
    rows: lines.find((l) => l.startsWith("ROWS "))?.slice(5),
    nodeModules: lines.filter((l) => l.includes("ext:deno_node")),
    text,
  };
}

Deno.test("PostgreSQL wire protocol against a real server", async (t) => {
  await using pg = await startPostgres({ tls: true });

  await t.step("SCRAM-SHA-256: right password logs in, wrong one is refused", async () => {
    const c = await postgresDriver.connect(pgSettings(pg));
    assert.deepEqual(await rows(c, "select current_user::text"), [[pg.user]]);
    await c.close();
    const method = await pg.psql(
      `select left(rolpassword, 13) from pg_authid where rolname = '${pg.user}'`,
    );
    assert.equal(method.trim(), "SCRAM-SHA-256");
    const bad = "Wr0ng-scram-Passw0rd";
    const e = await hecateError(postgresDriver.connect(pgSettings(pg, { password: bad })));
    assert.equal(e.code, "auth_failed");
    assert.equal(e.driverCode, "28P01");
    assert.ok(!allText(e).includes(bad) && !allText(e).includes(pg.password), e.message);
  });

  for (const kind of ["md5", "cleartext"] as const) {
    await t.step(`${kind}: right password logs in; wrong and missing ones differ`, async () => {
      const login = pg.logins[kind];
      // Plain TCP: the profile must allow a cleartext or MD5 answer explicitly (see below).
      const s = pgSettings(pg, {
        user: login.user,
        password: login.password,
        tls: { mode: "disable", allowPlainAuth: true },
      });
      const c = await postgresDriver.connect(s);
      assert.deepEqual(await rows(c, "select current_user::text, 2"), [[login.user, 2]]);
      await c.close();

      const bad = `Wr0ng-${kind}-Passw0rd`;
      const wrong = await hecateError(postgresDriver.connect({ ...s, password: bad }));
      assert.equal(wrong.code, "auth_failed");
      assert.equal(wrong.driverCode, "28P01");
      assert.match(wrong.message, /password authentication failed/);
      for (const secret of [bad, login.password]) {
        assert.ok(!allText(wrong).includes(secret), wrong.message);
      }

      const { password: _, ...noPassword } = s;
      const none = await hecateError(postgresDriver.connect(noPassword));
      assert.equal(none.code, "auth_failed");
      assert.match(none.message, /asks for a password and none was given/);
      assert.notEqual(none.message, wrong.message);
    });
  }

  await t.step(
    "cleartext and md5 without verified TLS or the allowance: refused, nothing sent",
    async () => {
      for (const kind of ["md5", "cleartext"] as const) {
        const login = pg.logins[kind];
        for (const tls of [{ mode: "disable" as const }, { mode: "insecure" as const }]) {
          const e = await hecateError(
            postgresDriver.connect(
              pgSettings(pg, { user: login.user, password: login.password, tls }),
            ),
          );
          assert.equal(e.code, "auth_failed");
          assert.equal(e.exitCode, 3);
          const method = kind === "md5" ? "MD5" : "cleartext";
          assert.match(e.message, new RegExp(`asks for the password in ${method}.*was not sent`));
          assert.match(e.hint ?? "", /--allow-plain-auth/);
          assert.ok(!allText(e).includes(login.password));
        }
        // insecure TLS with the allowance logs in (the server offers TLS).
        const c = await postgresDriver.connect(pgSettings(pg, {
          user: login.user,
          password: login.password,
          tls: { mode: "insecure", allowPlainAuth: true },
        }));
        await c.close();
      }
    },
  );

  await t.step("md5: the server really used md5 and cleartext the password method", async () => {
    const method = await pg.psql(
      `select left(rolpassword, 3) from pg_authid where rolname = '${pg.logins.md5.user}'`,
    );
    assert.equal(method.trim(), "md5");
    const hba = await pg.psql(
      "select string_agg(auth_method, ',' order by line_number) from pg_hba_file_rules",
    );
    assert.match(hba, /md5,password/);
  });

  await t.step("Unix socket: host is the socket directory", async () => {
    const c = await postgresDriver.connect(
      pgSettings(pg, { host: pg.socketDir, password: "" }),
    );
    const r = await rows(
      c,
      "select inet_client_addr() is null, current_setting('application_name')",
    );
    assert.deepEqual(r, [[true, "hecate"]]);
    await c.close();
  });

  await t.step("verify with a CA file and insecure (through node:tls) are encrypted", async () => {
    for (const tls of [{ mode: "verify", caFile: pg.caFile! }, { mode: "insecure" }] as const) {
      const c = await postgresDriver.connect(pgSettings(pg, { tls }));
      assert.deepEqual(
        await rows(c, "select ssl from pg_stat_ssl where pid = pg_backend_pid()"),
        [[true]],
        tls.mode,
      );
      await c.close();
    }
    // verify checks the name: the certificate is for 127.0.0.1 and localhost only.
    const e = await hecateError(
      postgresDriver.connect(
        pgSettings(pg, { tls: { mode: "verify", caFile: pg.caFile!, serverName: "db.example" } }),
      ),
    );
    assert.equal(e.code, "connection_failed");
    assert.match(e.message, /TLS/);
  });

  await t.step("array, object, bytea and Date parameters reach the server intact", async () => {
    const c = await postgresDriver.connect(pgSettings(pg));
    try {
      const d = new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 250));
      const r = await c.collect!(
        "select $1::int[], $2::text[], $3::jsonb ->> 'k', $4::bytea, $5::timestamptz, $6::bool",
        [[1, null, 3], ['a"b', "c\\d", "", null], { k: "v" }, new Uint8Array([0, 1, 254]), d, true],
        { mode: "text" },
      );
      assert.deepEqual(r.rows, [[
        "{1,NULL,3}",
        '{"a\\"b","c\\\\d","",NULL}',
        "v",
        "\\x0001fe",
        "2024-02-29 12:00:00.25+00",
        "t",
      ]]);
    } finally {
      await c.close();
    }
  });

  await t.step(
    "a NUL in the statement text is query_failed; the session stays usable",
    async () => {
      const c = await postgresDriver.connect(pgSettings(pg));
      try {
        const e = await hecateError(c.collect!("select 1\0", []));
        assert.equal(e.code, "query_failed");
        assert.match(e.message, /NUL/);
        // In a parameter the server refuses it (text values cannot hold NUL).
        const p = await hecateError(c.collect!("select $1::text", ["a\0b"]));
        assert.equal(p.code, "query_failed");
        assert.equal(p.driverCode, "22021");
        assert.deepEqual(await rows(c, "select 3"), [[3]]);
      } finally {
        await c.close();
      }
    },
  );

  await t.step(
    "a connection cut mid-result is connection_failed, and the session is gone",
    async () => {
      // A relay between driver and server that drops both sides after 64 KiB of results.
      const relay = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const relayed = (async () => {
        const client = await relay.accept();
        const server = await Deno.connect({ hostname: pg.host, port: pg.port });
        const up = client.readable.pipeTo(server.writable).catch(() => {});
        let seen = 0;
        const buf = new Uint8Array(16384);
        for (;;) {
          const n = await server.read(buf).catch(() => null);
          if (n === null) break;
          seen += n;
          if (seen > 65536) break; // the login took a few hundred bytes: this is mid-result
          await client.write(buf.subarray(0, n)).catch(() => {});
        }
        for (const c of [client, server]) {
          try {
            c.close();
          } catch {
            // closed by the pipe
          }
        }
        await up;
      })();
      try {
        const port = (relay.addr as Deno.NetAddr).port;
        const c = await postgresDriver.connect(pgSettings(pg, { port }));
        let n = 0;
        const e = await hecateError((async () => {
          for await (
            const set of c.query("select g, md5(g::text) from generate_series(1, 100000) g", [])
          ) {
            for await (const _ of set.rows) n++;
          }
        })());
        assert.ok(n > 0 && n < 100000, `${n} rows before the cut`);
        assert.equal(e.code, "connection_failed");
        assert.equal(
          e.message,
          "Connection to PostgreSQL lost: Connection terminated unexpectedly",
        );
        const after = await hecateError(c.ping());
        assert.match(after.message, /closed|lost/);
        await c.close();
      } finally {
        relay.close();
        await relayed;
      }
    },
  );

  await t.step("disable and verify (default trust store) load no node: module", async () => {
    const disable = await childRun(pgSettings(pg));
    assert.equal(disable.code, 0, disable.text.slice(-2000));
    assert.equal(disable.rows, "[[1,false]]");
    assert.deepEqual(disable.nodeModules, []);

    // DENO_CERT adds the test CA to the child's default store, as a system CA would be.
    const trusted = { DENO_CERT: pg.caFile! };
    const verify = await childRun(pgSettings(pg, { tls: { mode: "verify" } }), trusted);
    assert.equal(verify.code, 0, verify.text.slice(-2000));
    assert.equal(verify.rows, "[[1,true]]");
    assert.deepEqual(verify.nodeModules, []);

    // The check can fail: the node:tls transport shows up in the same log.
    const insecure = await childRun(pgSettings(pg, { tls: { mode: "insecure" } }));
    assert.equal(insecure.code, 0, insecure.text.slice(-2000));
    assert.equal(insecure.rows, "[[1,true]]");
    assert.ok(insecure.nodeModules.length > 0);
  });

  await t.step("a profile's CA file pins: the default store is not trusted then", async () => {
    const trusted = { DENO_CERT: pg.caFile! };
    const pinnedRight = await childRun(
      pgSettings(pg, { tls: { mode: "verify", caFile: pg.caFile! } }),
      trusted,
    );
    assert.equal(pinnedRight.code, 0, pinnedRight.text.slice(-2000));
    assert.equal(pinnedRight.rows, "[[1,true]]");
    // Another CA pinned: the server's certificate is refused although the default store (with
    // DENO_CERT) would accept it.
    const dir = await Deno.makeTempDir({ prefix: "hecate-pg-pin-" });
    try {
      const other = await makeCa(dir, "other-ca");
      const pinnedWrong = await childRun(
        pgSettings(pg, { tls: { mode: "verify", caFile: other.certFile } }),
        trusted,
      );
      assert.notEqual(pinnedWrong.code, 0);
      assert.equal(pinnedWrong.rows, undefined);
      assert.match(pinnedWrong.text, /TLS/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A fake SCRAM server: a real server always knows the password, so only a fake can show that the
// client refuses a server that cannot prove it.

type FakeBehaviour = "wrong-signature" | "skip-final" | "plus-only";

function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

function auth(code: number, data: Uint8Array = new Uint8Array()): Uint8Array {
  const body = new Uint8Array(4 + data.length);
  new DataView(body.buffer).setInt32(0, code);
  body.set(data, 4);
  return message("R", body);
}

/** Reads one frontend message (the startup message has no type byte). */
async function readMessage(conn: Deno.Conn, typed: boolean): Promise<Uint8Array> {
  const head = new Uint8Array(typed ? 5 : 4);
  await readFull(conn, head);
  const len = new DataView(head.buffer).getInt32(typed ? 1 : 0);
  const body = new Uint8Array(len - 4);
  await readFull(conn, body);
  return body;
}

async function readFull(conn: Deno.Conn, buf: Uint8Array): Promise<void> {
  let got = 0;
  while (got < buf.length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) throw new Error("fake server: client went away");
    got += n;
  }
}

/** Serves one login on a fresh port, misbehaving as told. */
function fakeScramServer(behaviour: FakeBehaviour) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const enc = new TextEncoder();
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await readMessage(conn, false); // StartupMessage
      const mechanisms = behaviour === "plus-only" ? "SCRAM-SHA-256-PLUS\0\0" : "SCRAM-SHA-256\0\0";
      await conn.write(auth(10, enc.encode(mechanisms)));
      if (behaviour === "plus-only") {
        await conn.read(new Uint8Array(1024)).catch(() => null);
        return;
      }
      const initial = new TextDecoder().decode(await readMessage(conn, true));
      const clientNonce = /r=([^,]+)/.exec(initial)![1]!;
      const serverFirst = `r=${clientNonce}fakeservernonce,s=${btoa("0123456789abcdef")},i=4096`;
      await conn.write(auth(11, enc.encode(serverFirst)));
      await readMessage(conn, true); // client-final-message with the proof
      if (behaviour === "wrong-signature") {
        await conn.write(auth(12, enc.encode(`v=${btoa("x".repeat(32))}`)));
      }
      await conn.write(auth(0));
      await conn.write(message("Z", enc.encode("I")));
      await conn.read(new Uint8Array(1024)).catch(() => null);
    } finally {
      conn.close();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await served.catch(() => {});
    },
  };
}

Deno.test("SCRAM: a fake server that cannot prove it knows the password is refused", async (t) => {
  const password = "fake-server-Passw0rd";
  const cases: [FakeBehaviour, RegExp][] = [
    ["wrong-signature", /signature does not match/],
    ["skip-final", /without proof/],
    ["plus-only", /SCRAM-SHA-256-PLUS \(channel binding\), which Hecate does not support/],
  ];
  for (const [behaviour, expected] of cases) {
    await t.step(behaviour, async () => {
      const fake = fakeScramServer(behaviour);
      try {
        const e = await hecateError(postgresDriver.connect({
          engine: "postgres",
          host: "127.0.0.1",
          port: fake.port,
          user: "someone",
          password,
          tls: { mode: "disable" },
          connectTimeoutMs: 5000,
        }));
        assert.equal(e.code, "connection_failed");
        assert.match(e.message, expected);
        assert.ok(!allText(e).includes(password));
      } finally {
        await fake.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The pieces on their own.

/**
 * A fake server that asks for the password in cleartext (3) or as MD5 (5) and records every
 * frontend message it gets after the startup message: a man in the middle on a TLS-off connection.
 */
function fakePlainServer(code: 3 | 5) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const got: Uint8Array[] = [];
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await readMessage(conn, false); // StartupMessage
      await conn.write(code === 5 ? auth(5, new Uint8Array([1, 2, 3, 4])) : auth(3));
      for (;;) {
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        if (n === null) break;
        got.push(buf.slice(0, n));
      }
    } catch {
      // the client hung up
    } finally {
      conn.close();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    got,
    async close() {
      listener.close();
      await served.catch(() => {});
    },
  };
}

Deno.test("a fake server asking for a cleartext or MD5 password over TLS-off gets no password", async (t) => {
  const password = "plain-canary-Passw0rd";
  for (const code of [3, 5] as const) {
    await t.step(code === 3 ? "cleartext" : "MD5", async () => {
      const fake = fakePlainServer(code);
      try {
        const e = await hecateError(postgresDriver.connect({
          engine: "postgres",
          host: "127.0.0.1",
          port: fake.port,
          user: "someone",
          password,
          tls: { mode: "disable" },
          connectTimeoutMs: 5000,
        }));
        assert.equal(e.code, "auth_failed");
        assert.match(e.message, /the password was not sent/);
        assert.ok(!allText(e).includes(password));
      } finally {
        await fake.close();
      }
      const sent = new Uint8Array(fake.got.reduce((n, b) => n + b.length, 0));
      let at = 0;
      for (const b of fake.got) (sent.set(b, at), at += b.length);
      // No PasswordMessage ('p') at all, and neither the password nor its MD5 answer.
      assert.ok(!sent.includes(0x70), `sent: ${[...sent]}`);
      const text = new TextDecoder().decode(sent);
      assert.ok(!text.includes(password));
      assert.ok(!text.includes(await md5Answer("someone", password, new Uint8Array([1, 2, 3, 4]))));
    });
  }
});

Deno.test("SCRAM-SHA-256: the RFC 7677 example exchange", async () => {
  const scram = new ScramClient("pencil", { nonce: "rOprNGfwEbeRWgbNEkqO", user: "user" });
  const enc = new TextEncoder(), dec = new TextDecoder();
  assert.equal(dec.decode(scram.clientFirst()), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const final = await scram.clientFinal(enc.encode(
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  ));
  assert.equal(
    dec.decode(final),
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  );
  assert.equal(scram.verified, false);
  scram.verifyServerFinal(enc.encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  assert.equal(scram.verified, true);
});

Deno.test("SCRAM-SHA-256: a nonce that does not extend ours and a huge iteration count are refused", async () => {
  const enc = new TextEncoder();
  const scram = new ScramClient("pw", { nonce: "abc" });
  scram.clientFirst();
  await assert.rejects(() => scram.clientFinal(enc.encode("r=xyzdef,s=AAAA,i=4096")), /nonce/);
  await assert.rejects(
    () => scram.clientFinal(enc.encode("r=abcdef,s=AAAA,i=1000000000")),
    /iteration count/,
  );
});

Deno.test("MD5 answer is md5(md5(password + user) + salt) in hex, prefixed md5", async () => {
  const salt = new Uint8Array([1, 2, 250, 4]);
  const inner = createHash("md5").update("secretuser1").digest("hex");
  const expected = "md5" + createHash("md5").update(inner).update(salt).digest("hex");
  assert.equal(await md5Answer("user1", "secret", salt), expected);
});

Deno.test("paramText: the text form of each parameter type", () => {
  assert.equal(paramText(null), null);
  assert.equal(paramText(undefined), null);
  assert.equal(paramText("x"), "x");
  assert.equal(paramText(1.5), "1.5");
  assert.equal(paramText(-9007199254740993n), "-9007199254740993");
  assert.equal(paramText(true), "true");
  assert.equal(paramText(new Uint8Array([0, 255, 16])), "\\x00ff10");
  assert.equal(paramText(new Decimal("1.10")), "1.10");
  assert.equal(paramText(new JsonText('{"a":1}')), '{"a":1}');
  assert.equal(paramText({ a: [1, "b"] }), '{"a":[1,"b"]}');
  assert.equal(
    paramText([1, null, 'q"uote', "back\\slash", [2, 3], new Uint8Array([1])]),
    '{"1",NULL,"q\\"uote","back\\\\slash",{"2","3"},"\\\\x01"}',
  );
  // Local time with its offset, as npm pg sent it.
  const d = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
  const text = paramText(d)!;
  assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.006[+-]\d\d:\d\d$/);
  assert.equal(new Date(text).getTime(), d.getTime());
  assert.throws(() => paramText(new Date(NaN)), RangeError);
});

Deno.test("MessageReader: a length beyond 1 GiB is refused before anything is allocated", async () => {
  // A fake peer (no server involved): one DataRow header announcing 3 GiB.
  const header = new Uint8Array([0x44, 0xc0, 0x00, 0x00, 0x00]);
  let sent = false;
  const transport = {
    read(buf: Uint8Array): Promise<number | null> {
      if (sent) return Promise.resolve(null);
      sent = true;
      buf.set(header);
      return Promise.resolve(header.length);
    },
    write: () => Promise.resolve(),
    close: () => {},
  };
  const r = new MessageReader(transport);
  await assert.rejects(() => r.next(), (e: unknown) => {
    assert.ok(e instanceof ProtocolError);
    assert.match(e.message, /too large/);
    return true;
  });
  assert.ok(r.buf.length <= 1024 * 1024, "the buffer did not grow");
});

Deno.test("MessageReader: messages split across reads and larger than the buffer", async () => {
  // A fake transport (no server involved): hands out a byte stream in tiny reads.
  const w = new MessageWriter();
  const big = "x".repeat(2 * 1024 * 1024);
  w.query("a").query(big).query("b");
  const bytes = w.take();
  let at = 0;
  const transport = {
    read(buf: Uint8Array): Promise<number | null> {
      if (at >= bytes.length) return Promise.resolve(null);
      // Small reads at the edges of the big message, large ones inside it.
      const n = Math.min(
        buf.length,
        bytes.length - at,
        at < 16 || at > bytes.length - 16 ? 3 : 70000,
      );
      buf.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write: () => Promise.resolve(),
    close: () => {},
  };
  const r = new MessageReader(transport);
  const texts: string[] = [];
  for (let i = 0; i < 3; i++) {
    assert.equal(await r.next(), 0x51);
    texts.push(new TextDecoder().decode(r.buf.subarray(r.start, r.end - 1)));
  }
  assert.deepEqual(texts.map((t) => t.length), [1, big.length, 1]);
  assert.equal(texts[1], big);
  await assert.rejects(() => r.next(), ConnectionLostError);
});

Deno.test("the PostgreSQL driver's static imports hold no node: module and no npm package", async () => {
  const { modules: seen, imports } = await staticGraph([`${ROOT}src/db/postgres.ts`]);
  const outside = imports.filter((i) => i.from.startsWith("file://") && !i.to.startsWith("file://"))
    .map((i) => `${i.from} -> ${i.specifier}`);
  assert.ok(seen.size >= 10, "the walk must reach the protocol modules");
  assert.deepEqual(outside, []);
  // The node:tls transport and MD5 stay behind import().
  assert.ok(![...seen].some((s) => s.endsWith("/node_transport.ts")));
});
