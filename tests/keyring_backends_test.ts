/**
 * The two ways into the OS keyring against a real Secret Service (gnome-keyring-daemon on a
 * private D-Bus session, tests/support/local_stores.ts): the `@napi-rs/keyring` binding and the
 * `secret-tool` fallback each read what the other (or a user's `secret-tool store`) wrote, with the
 * same statuses; `--store keyring` round-trips through the binding from source and through
 * `secret-tool` from the bundle (which has no binding). Each run proves which backend ran: the
 * binding path gets no usable PATH (a `secret-tool` call would fail), the program path gets a
 * process environment whose bus does not exist (a binding call would fail), and the two writers
 * leave different item labels. The canary is never in stdout, stderr, an error or the audit trail.
 *
 * In-process, the binding's D-Bus connection is the process's (libdbus shares one session
 * connection, made on first use), so the "no Secret Service" cases run in child processes.
 */

import assert from "node:assert/strict";
import { HecateError } from "../src/errors.ts";
import { keyringSource } from "../providers/sources/keyring.ts";
import {
  clearFromKeyring,
  hecateKeyringRef,
  storeInKeyring,
} from "../providers/sources/keyring_store.ts";
import { loadNativeKeyring } from "../providers/sources/keyring_native.ts";
import { buildBundle } from "../scripts/bundle.ts";
import {
  cli,
  envVar,
  PASSWORD,
  run,
  startSecretService,
  withHome,
} from "./support/local_stores.ts";
import { runHecate } from "./support/cli.ts";

const CANARY = "CANARY-5d0e91b3-keyring-backends";
const PG = ["--engine", "postgres", "--host", "db.internal", "--user", "app"];
const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
const NO_BUS = "unix:path=/nonexistent/bus";

const hasSecretService = ["secret-tool", "gnome-keyring-daemon", "dbus-run-session"].every((c) => {
  try {
    return new Deno.Command("which", { args: [c], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
});

/** The labels of the items with these attributes, as `secret-tool search --all` lists them. */
async function labels(bus: string, service: string, account: string): Promise<string[]> {
  const out = await new Deno.Command("secret-tool", {
    args: ["search", "--all", "--", "service", service, "username", account],
    env: { PATH, DBUS_SESSION_BUS_ADDRESS: bus },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return [...text.matchAll(/^label = (.*)$/gm)].map((m) => m[1]!);
}

/** A directory whose `secret-tool` logs each call to `log` and runs the real one. */
async function spyTool(dir: string): Promise<{ path: string; calls: () => Promise<number> }> {
  const real = new TextDecoder().decode(
    (await new Deno.Command("which", { args: ["secret-tool"], stdout: "piped" }).output()).stdout,
  ).trim();
  await Deno.writeTextFile(
    `${dir}/secret-tool`,
    `#!/bin/sh\necho "$1" >> "${dir}/log"\nexec "${real}" "$@"\n`,
    { mode: 0o755 },
  );
  return {
    path: `${dir}:${PATH}`,
    calls: async () =>
      (await Deno.readTextFile(`${dir}/log`).catch(() => "")).split("\n").filter(Boolean).length,
  };
}

/**
 * Runs `fn` with one backend, checked: the binding is used when Hecate's environment reader and
 * the process agree on DBUS_SESSION_BUS_ADDRESS (it gets no usable PATH then, so a secret-tool
 * call would fail); the programs when they differ (through a logging secret-tool, which must run).
 */
async function withBackend<T>(
  backend: "binding" | "program",
  bus: string,
  spy: { path: string; calls: () => Promise<number> },
  fn: (env: (name: string) => string | undefined) => Promise<T>,
): Promise<T> {
  const before = Deno.env.get("DBUS_SESSION_BUS_ADDRESS");
  Deno.env.set("DBUS_SESSION_BUS_ADDRESS", backend === "binding" ? bus : "unix:path=/other/bus");
  const vars: Record<string, string> = {
    PATH: backend === "binding" ? "/nonexistent" : spy.path,
    DBUS_SESSION_BUS_ADDRESS: bus,
  };
  const calls = await spy.calls();
  try {
    return await fn((name) => vars[name]);
  } finally {
    if (before === undefined) Deno.env.delete("DBUS_SESSION_BUS_ADDRESS");
    else Deno.env.set("DBUS_SESSION_BUS_ADDRESS", before);
    if (backend === "program") assert.ok((await spy.calls()) > calls, "secret-tool did not run");
  }
}

function read(ref: string, env: (name: string) => string | undefined): Promise<string> {
  const parsed = keyringSource.parse("keyring", ref.slice("keyring:".length));
  return keyringSource.resolve(parsed, {
    signal: new AbortController().signal,
    credentials: {},
    env,
  }).then((r) => r.fields.value!);
}

/** The error a read fails with (asserted to be exit 18 and free of the canary). */
async function readError(ref: string, env: (name: string) => string | undefined) {
  const e = await read(ref, env).then(() => undefined, (e: unknown) => e);
  assert.ok(e instanceof HecateError, `${ref}: expected a HecateError, got ${e}`);
  assert.equal(e.exitCode, 18);
  assert.ok(!`${e.message} ${e.hint ?? ""}`.includes(CANARY));
  return e;
}

Deno.test({
  name: "keyring: binding and secret-tool read each other's entries; same statuses",
  ignore: !hasSecretService || Deno.build.os !== "linux",
  async fn() {
    assert.ok(await loadNativeKeyring(), "the binding must load from source on Linux");
    const svc = await startSecretService("keyring-backends-pw");
    const tmp = await Deno.makeTempDir({ prefix: "hecate-keyring-spy-" });
    try {
      const bus = svc.address;
      const spy = await spyTool(tmp);
      // A user's own item, made with secret-tool (value on stdin).
      await run(
        "secret-tool",
        ["store", "--label=user item", "--", "service", "billing-db", "username", "app/prod"],
        { PATH, DBUS_SESSION_BUS_ADDRESS: bus },
        `${CANARY}-user`,
      );
      for (const backend of ["binding", "program"] as const) {
        await withBackend(backend, bus, spy, async (env) => {
          assert.equal(await read("keyring:billing-db/app/prod", env), `${CANARY}-user`, backend);
        });
      }

      // Hecate's own entries, one written by each backend; each read by the other.
      await withBackend(
        "binding",
        bus,
        spy,
        (env) => storeInKeyring("vid", "by-binding", CANARY, env),
      );
      await withBackend(
        "program",
        bus,
        spy,
        (env) => storeInKeyring("vid", "by-tool", CANARY, env),
      );
      // The writers label differently: this is how the test knows which one wrote.
      assert.deepEqual(await labels(bus, "hecate", "vid/by-binding"), [
        "keyring:vid/by-binding@hecate",
      ]);
      assert.deepEqual(await labels(bus, "hecate", "vid/by-tool"), ["Hecate: by-tool"]);
      await withBackend("program", bus, spy, async (env) => {
        assert.equal(await read(hecateKeyringRef("vid", "by-binding"), env), CANARY);
      });
      await withBackend("binding", bus, spy, async (env) => {
        assert.equal(await read(hecateKeyringRef("vid", "by-tool"), env), CANARY);
      });

      // Replacing: the binding updates the item secret-tool made (no second item).
      await withBackend("binding", bus, spy, (env) => storeInKeyring("vid", "by-tool", "v2", env));
      assert.equal((await labels(bus, "hecate", "vid/by-tool")).length, 1);
      await withBackend("program", bus, spy, async (env) => {
        assert.equal(await read(hecateKeyringRef("vid", "by-tool"), env), "v2");
      });

      // A missing item: not found, exit 18, naming the source and the reference, both ways.
      for (const backend of ["binding", "program"] as const) {
        await withBackend(backend, bus, spy, async (env) => {
          const e = await readError("keyring:billing-db/nobody", env);
          assert.match(e.message, /OS keyring: "keyring:billing-db\/nobody": not found/, backend);
          assert.match(e.hint ?? "", /secret-tool store/);
        });
      }
      // Clearing: each backend removes the entry the other wrote.
      assert.ok(
        await withBackend("program", bus, spy, (env) => clearFromKeyring("vid", "by-binding", env)),
      );
      assert.ok(
        await withBackend("binding", bus, spy, (env) => clearFromKeyring("vid", "by-tool", env)),
      );
      assert.deepEqual(await labels(bus, "hecate", "vid/by-binding"), []);
      assert.deepEqual(await labels(bus, "hecate", "vid/by-tool"), []);
      assert.equal(
        await withBackend("binding", bus, spy, (env) => clearFromKeyring("vid", "by-tool", env)),
        false,
      );
    } finally {
      await svc.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

async function noCanary(home: string, r: { out: string; err: string }, what: string) {
  for (const t of [r.out, r.err]) assert.ok(!t.includes(CANARY), `${what}: canary shown`);
  const trail = await Deno.readTextFile(`${home}/audit.jsonl`).catch(() => "");
  assert.ok(!trail.includes(CANARY), `${what}: canary in the audit trail`);
}

/** `hecate ARGS` from source, the master password and then `stdin` on standard input. */
async function hecate(home: string, args: string[], env: Record<string, string>, stdin = "") {
  const r = await runHecate(["--password-stdin", ...args], {
    home,
    stdin: `${PASSWORD}\n${stdin}`,
    env,
  });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** The bundle's launcher, run away from the checkout with only the given environment. */
async function bundled(
  launcher: string,
  home: string,
  args: string[],
  env: Record<string, string>,
  stdin = "",
) {
  const child = new Deno.Command(launcher, {
    args: ["--home", home, "--password-stdin", ...args],
    clearEnv: true,
    env: {
      PATH,
      HOME: Deno.env.get("HOME") ?? "/tmp",
      DENO: Deno.execPath(),
      NO_COLOR: "1",
      ...env,
    },
    cwd: "/",
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(`${PASSWORD}\n${stdin}`));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

Deno.test({
  name: "keyring: --store keyring round trip through the binding (source) and secret-tool (bundle)",
  ignore: !hasSecretService || Deno.build.os !== "linux",
  async fn() {
    const svc = await startSecretService("keyring-cli-pw");
    const build = await Deno.makeTempDir({ prefix: "hecate-keyring-bundle-" });
    try {
      const env = { PATH, DBUS_SESSION_BUS_ADDRESS: svc.address };
      const launcher = await buildBundle(`${build}/out`);
      // The bundle resolves no bare specifier at run time: the binding's import() is gone.
      for await (const f of Deno.readDir(`${build}/out`)) {
        if (!f.name.endsWith(".js")) continue;
        const text = await Deno.readTextFile(`${build}/out/${f.name}`);
        assert.ok(!text.includes(`import("@napi-rs/keyring")`), f.name);
      }
      await withHome(async (home) => {
        // From source: the binding writes (its label), `env` reads, `remove` clears.
        const add = await hecate(
          home,
          ["server", "add", "kb", ...PG, "--store", "keyring", "--secret-stdin"],
          env,
          `${CANARY}-src\n`,
        );
        assert.equal(add.code, 0, add.err);
        const shown = await cli(home, ["server", "show", "kb", "--json"], env);
        const ref = /"keyring:hecate\/([^"]+\/kb)"/.exec(shown.out);
        assert.ok(ref, shown.out);
        const account = ref[1]!;
        assert.deepEqual(await labels(svc.address, "hecate", account), [
          `keyring:${account}@hecate`,
        ]);
        // The bundle reads the binding's entry through secret-tool.
        const viaBundle = await bundled(launcher, home, ["env", "kb"], env);
        assert.equal(viaBundle.code, 0, viaBundle.err);
        assert.equal(envVar(viaBundle.out, "PGPASSWORD"), `${CANARY}-src`);

        // The attack: the binding's loader require()s the file NAPI_RS_NATIVE_LIBRARY_PATH names
        // instead of its addon. Hecate skips the binding then (secret-tool in a child reads),
        // so this module never runs in the process.
        const evil = `${build}/evil.cjs`;
        await Deno.writeTextFile(
          evil,
          `require("fs").writeFileSync(${JSON.stringify(`${build}/ran`)}, "x");\n` +
            "class AsyncEntry { async getSecret() { return [...Buffer.from('evil')]; } }\n" +
            "module.exports = { AsyncEntry };\n",
        );
        const hijack = await cli(home, ["env", "kb"], {
          ...env,
          NAPI_RS_NATIVE_LIBRARY_PATH: evil,
        });
        assert.equal(hijack.code, 0, hijack.err);
        assert.equal(envVar(hijack.out, "PGPASSWORD"), `${CANARY}-src`);
        assert.equal(await Deno.stat(`${build}/ran`).then(() => "ran", () => "not run"), "not run");

        // From the bundle: secret-tool writes (its label); source reads it through the binding.
        const addB = await bundled(
          launcher,
          home,
          ["server", "add", "kt", ...PG, "--store", "keyring", "--secret-stdin"],
          env,
          `${CANARY}-bundle\n`,
        );
        assert.equal(addB.code, 0, addB.err);
        const accountT = account.replace(/kb$/, "kt");
        assert.deepEqual(await labels(svc.address, "hecate", accountT), ["Hecate: kt"]);
        const viaSource = await cli(home, ["env", "kt"], env);
        assert.equal(viaSource.code, 0, viaSource.err);
        assert.equal(envVar(viaSource.out, "PGPASSWORD"), `${CANARY}-bundle`);

        // A missing entry: exit 18 naming the source, from both.
        assert.equal(
          (await cli(home, [
            "server",
            "add",
            "gone",
            ...PG,
            "--secret-ref",
            "keyring:billing-db/nobody",
          ], env)).code,
          0,
        );
        const missing = [
          await cli(home, ["env", "gone"], env),
          await bundled(launcher, home, ["env", "gone"], env),
        ];
        for (const r of missing) {
          assert.equal(r.code, 18, r.err);
          assert.match(r.err, /OS keyring: "keyring:billing-db\/nobody": not found/);
        }
        // No session bus: exit 18 unreachable from both, and --store keyring adds nothing.
        const down = { PATH, DBUS_SESSION_BUS_ADDRESS: NO_BUS };
        const unreachable = [
          await cli(home, ["env", "kb"], down),
          await bundled(launcher, home, ["env", "kb"], down),
          await hecate(
            home,
            ["server", "add", "kd", ...PG, "--store", "keyring", "--secret-stdin"],
            down,
            `${CANARY}\n`,
          ),
          await bundled(
            launcher,
            home,
            ["server", "add", "kd", ...PG, "--store", "keyring", "--secret-stdin"],
            down,
            `${CANARY}\n`,
          ),
        ];
        for (const r of unreachable) assert.equal(r.code, 18, r.err);
        // Pinned to the Secret Service, the binding says unreachable (its default would fall
        // back to the kernel keyring and say "not found", or store there).
        assert.match(unreachable[0]!.err, /unreachable \(OS keyring binding: platform failure\)/);
        assert.match(unreachable[1]!.err, /unreachable \(secret-tool exit/);
        assert.match(unreachable[2]!.err, /storing failed \(platform failure\)/);
        assert.match(unreachable[3]!.err, /storing failed \(secret-tool exit/);
        assert.notEqual((await cli(home, ["server", "show", "kd"], env)).code, 0);

        // Removing clears each entry, whichever backend made it and whichever removes it.
        assert.equal((await bundled(launcher, home, ["server", "remove", "kb"], env)).code, 0);
        assert.equal((await hecate(home, ["server", "remove", "kt"], env)).code, 0);
        assert.deepEqual(await labels(svc.address, "hecate", account), []);
        assert.deepEqual(await labels(svc.address, "hecate", accountT), []);

        // (viaBundle and viaSource print the value: `env` is asked for it.)
        for (const r of [add, shown, addB, ...missing, ...unreachable]) {
          await noCanary(home, r, "keyring CLI");
        }
      });
    } finally {
      await Deno.remove(build, { recursive: true });
      await svc.stop();
    }
  },
});
