import assert from "node:assert/strict";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";

Deno.test("the hecate task in deno.json runs with exactly the documented permission set", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = config.tasks.hecate;
  const flags = task.split(/\s+/).filter((w) => w.startsWith("--allow-") || w === "-A");
  assert.deepEqual(flags.sort(), [...HECATE_PERMISSIONS].sort());
  assert.ok(!task.includes(" -A") && !task.includes("--allow-all"));
});

Deno.test("README's 'deno install' line grants exactly the documented permission set", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  // The command with its continuation lines joined.
  const install = readme.replaceAll("\\\n", " ").split("\n").find((l) =>
    l.startsWith("deno install -g")
  );
  assert.ok(install, "README has a 'deno install -g' line");
  const flags = install.split(/\s+/).filter((w) => w.startsWith("--allow-")).sort();
  assert.deepEqual(flags, [...HECATE_PERMISSIONS].sort());
});

Deno.test("only src/run/spawn.ts starts a process (the sole user of --allow-run)", async () => {
  const root = new URL("../", import.meta.url);
  // Code, not prose: a call or an import that starts a process.
  const SPAWNS = /new Deno\.Command\(|Deno\.run\(|["']node:child_process["']/;
  const found: string[] = [];
  const scan = async (path: string) => {
    const url = new URL(path, root);
    const info = await Deno.stat(url);
    if (info.isDirectory) {
      for await (const e of Deno.readDir(url)) await scan(`${path}/${e.name}`);
    } else if (path.endsWith(".ts") && SPAWNS.test(await Deno.readTextFile(url))) {
      found.push(path);
    }
  };
  for (const top of ["src", "providers", "main.ts", "mod.ts"]) await scan(top);
  assert.deepEqual(found, ["src/run/spawn.ts"]);
});

Deno.test("only src/vault/pkcs11/cryptoki.ts uses FFI (the sole user of --allow-ffi)", async () => {
  const root = new URL("../", import.meta.url);
  const FFI = /Deno\.dlopen\(|Deno\.UnsafePointer|Deno\.UnsafeCallback|Deno\.UnsafeFnPointer/;
  const found: string[] = [];
  const scan = async (path: string) => {
    const url = new URL(path, root);
    const info = await Deno.stat(url);
    if (info.isDirectory) {
      for await (const e of Deno.readDir(url)) await scan(`${path}/${e.name}`);
    } else if (path.endsWith(".ts") && FFI.test(await Deno.readTextFile(url))) {
      found.push(path);
    }
  };
  for (const top of ["src", "providers", "main.ts", "mod.ts"]) await scan(top);
  assert.deepEqual(found, ["src/vault/pkcs11/cryptoki.ts"]);
});

Deno.test("without --allow-run, spawning fails as usage and names the missing permission", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hecate-norun-" });
  try {
    const script = `${dir}/norun.ts`;
    const spawn = new URL("../src/run/spawn.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { spawnWithEnv } from "${spawn}";\n` +
        `try { await spawnWithEnv("true", [], {}); console.log("started"); }\n` +
        `catch (e) { console.log(e.code, e.message); }\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", "--allow-read", "--allow-env", script],
      env: { NO_COLOR: "1" },
    }).output();
    assert.match(
      new TextDecoder().decode(out.stdout),
      /^usage Command "true" cannot be started: .*--allow-run/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a helper program a source runs never sees the variables that unlock the vault", async () => {
  const { runCaptured } = await import("../src/run/spawn.ts");
  Deno.env.set("HECATE_API_KEY", "hcx_canary-not-for-children");
  Deno.env.set("HECATE_T_VISIBLE", "yes");
  try {
    const out = await runCaptured("/bin/sh", [
      "-c",
      'printf "%s %s" "${HECATE_API_KEY-unset}" "${HECATE_T_VISIBLE-unset}"',
    ]);
    assert.equal(new TextDecoder().decode(out.stdout), "unset yes");
    const given = await runCaptured("/bin/sh", ["-c", 'printf "%s" "$X"'], {
      env: { X: "from stdin-less env" },
      clearEnv: true,
    });
    assert.equal(new TextDecoder().decode(given.stdout), "from stdin-less env");
    const fed = await runCaptured("/bin/cat", [], { input: new TextEncoder().encode("in") });
    assert.equal(new TextDecoder().decode(fed.stdout), "in");
  } finally {
    Deno.env.delete("HECATE_API_KEY");
    Deno.env.delete("HECATE_T_VISIBLE");
  }
});
