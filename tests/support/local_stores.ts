/**
 * Helpers for the local-store tests: running the CLI in-process with a chosen environment, a
 * temp vault home, a throw-away GnuPG home with a passphrase-less key and a `pass` store, and
 * an independent SOPS encoder (built here from SOPS's file format with node:crypto and npm
 * `age-encryption`; it shares no code with Hecate's decoder in providers/sources/sops/).
 */

import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { armor, Encrypter } from "age-encryption";
import { initVault } from "../../mod.ts";
import { runHecate } from "./cli.ts";
import { withAuditLock } from "../../src/audit/log.ts";

export const PASSWORD = "local-stores-test-master-password";

/** One in-process run. */
export interface Run {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs `hecate ARGS` as a child process with the master password on stdin and `env` added to
 * the bare environment runHecate gives (sources read the process environment).
 */
export async function cli(home: string, args: string[], env: Record<string, string>): Promise<Run> {
  const r = await runHecate(["--password-stdin", ...args], { home, stdin: `${PASSWORD}\n`, env });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** A fresh vault home for the duration of `fn`. */
export async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "hecate-local-" });
  try {
    await initVault({ home, password: PASSWORD, kdfIterations: 600_000 });
    await fn(home);
  } finally {
    await withAuditLock(home, () => Promise.resolve());
    await Deno.remove(home, { recursive: true });
  }
}

/** The value of NAME in `hecate env` output. */
export function envVar(out: string, name: string): string | undefined {
  const m = new RegExp(`^(?:export )?${name}=(.*)$`, "m").exec(out);
  return m?.[1]?.replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
}

/** Runs a program, failing the test on a non-zero exit; returns stdout. */
export async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    env,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

// ---- SOPS encoder (independent of Hecate's decoder) ----

function seal(key: Uint8Array, plain: string, aad: string, type = "str"): string {
  const iv = randomBytes(32);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(new TextEncoder().encode(aad));
  const data = Buffer.concat([c.update(plain, "utf8"), c.final()]);
  return `ENC[AES256_GCM,data:${data.toString("base64")},iv:${iv.toString("base64")},tag:${
    c.getAuthTag().toString("base64")
  },type:${type}]`;
}

/** Encrypts a JSON tree of strings the way `sops --encrypt --age RECIPIENT` does for JSON. */
export async function sopsEncryptJson(
  tree: Record<string, unknown>,
  recipients: string[],
): Promise<string> {
  const key = randomBytes(32);
  const hash = createHash("sha512");
  const enc = (node: unknown, path: string[]): unknown => {
    if (Array.isArray(node)) return node.map((n) => enc(n, path));
    if (node && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, enc(v, [...path, k])]));
    }
    const text = typeof node === "boolean" ? (node ? "True" : "False") : String(node);
    hash.update(text, "utf8");
    const type = typeof node === "number" ? "int" : typeof node === "boolean" ? "bool" : "str";
    return seal(key, text, `${path.join(":")}:`, type);
  };
  const out = enc(tree, []) as Record<string, unknown>;
  const lastmodified = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const age = [];
  for (const r of recipients) {
    const e = new Encrypter();
    e.addRecipient(r);
    age.push({ recipient: r, enc: armor.encode(await e.encrypt(key)) });
  }
  out.sops = {
    kms: null,
    gcp_kms: null,
    azure_kv: null,
    hc_vault: null,
    age,
    lastmodified,
    mac: seal(key, hash.digest("hex").toUpperCase(), lastmodified),
    pgp: null,
    unencrypted_suffix: "_unencrypted",
    version: "3.9.0",
  };
  return JSON.stringify(out, null, "\t");
}

// ---- A real Secret Service: gnome-keyring-daemon on a private D-Bus session ----

/** A running Secret Service and how to reach it. */
export interface SecretService {
  /** `DBUS_SESSION_BUS_ADDRESS` of its session bus. */
  address: string;
  /** Stops the daemon (and with it the session bus) and removes its files. */
  stop(): Promise<void>;
}

/**
 * Starts gnome-keyring-daemon (secrets component) under `dbus-run-session` in a temp home,
 * unlocking (creating) its login keyring with `keyringPassword` given on stdin.
 */
export async function startSecretService(keyringPassword: string): Promise<SecretService> {
  const dir = await Deno.makeTempDir({ prefix: "hecate-keyring-" });
  const child = new Deno.Command("dbus-run-session", {
    args: [
      "--",
      "sh",
      "-c",
      // The shell's pid becomes the daemon's (exec): the test stops it by that pid.
      `echo "$DBUS_SESSION_BUS_ADDRESS" > "${dir}/addr"; echo $$ > "${dir}/pid"; ` +
      "exec gnome-keyring-daemon --foreground --unlock --components=secrets",
    ],
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: dir,
      XDG_DATA_HOME: `${dir}/data`,
      XDG_RUNTIME_DIR: dir,
    },
    clearEnv: true,
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(keyringPassword));
  await w.close();
  let address = "";
  for (let i = 0; i < 100 && !address; i++) {
    await new Promise((r) => setTimeout(r, 50));
    address = (await Deno.readTextFile(`${dir}/addr`).catch(() => "")).trim();
  }
  if (!address) throw new Error("the session bus did not start");
  const pid = Number((await Deno.readTextFile(`${dir}/pid`)).trim());
  // Wait until the daemon owns the Secret Service name (a lookup answers without an error).
  for (let i = 0; i < 100; i++) {
    const r = await new Deno.Command("secret-tool", {
      args: ["lookup", "service", "hecate-probe", "username", "none"],
      env: { DBUS_SESSION_BUS_ADDRESS: address, PATH: Deno.env.get("PATH") ?? "" },
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (r.stderr.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // The login collection is made from the password after the name is owned: until it exists a
  // store fails ("Object does not exist at path .../collection/login"). Wait for a probe item to
  // store, then remove it.
  const probe = ["service", "hecate-probe", "username", "ready"];
  const tool = (args: string[], stdin: "piped" | "null") =>
    new Deno.Command("secret-tool", {
      args,
      env: { DBUS_SESSION_BUS_ADDRESS: address, PATH: Deno.env.get("PATH") ?? "" },
      clearEnv: true,
      stdin,
      stdout: "null",
      stderr: "null",
    });
  let stored = false;
  for (let i = 0; i < 100 && !stored; i++) {
    const c = tool(["store", "--label=hecate probe", "--", ...probe], "piped").spawn();
    const pw = c.stdin.getWriter();
    await pw.write(new TextEncoder().encode("probe"));
    await pw.close();
    stored = (await c.status).success;
    if (!stored) await new Promise((r) => setTimeout(r, 50));
  }
  if (!stored) throw new Error("the Secret Service's login collection did not appear");
  await tool(["clear", ...probe], "null").output();
  return {
    address,
    async stop() {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
