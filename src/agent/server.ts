/**
 * The unlock agent process (`hecate unlock` starts it; src/agent/start.ts). It reads its start
 * message (home, one credential: the master password, an age identity's text or a token's PIN;
 * limits) from standard input, never from argv or the environment, unlocks once with the same
 * `openVault` call a one-shot command makes (asking its parent for the vault's one-time code if
 * TOTP is on), then takes the running agent's place (./handover.ts) and serves requests on a Unix
 * socket until `hecate lock`, a newer agent replacing it, its time limit, its idle limit, a change
 * of the vault file, the loss of its socket, or SIGTERM. It runs operations itself and sends back
 * only their output: the root key and the profiles' secrets stay in this process. See
 * docs/GATEWAY.md.
 *
 * @module
 */

import { policyAuditOptions, withinCeiling } from "../policy/overrides.ts";
import { HecateError } from "../errors.ts";
import { openVault, type Pkcs11UnlockOptions, type Vault } from "../hecate.ts";
import type { Actor } from "../audit/log.ts";
import { VAULT_FILE } from "../vault/store.ts";
import { randomBytes } from "../vault/primitives.ts";
import { timingSafeEqual, toBase64Url, utf8 } from "../vault/encoding.ts";
import { writeResults } from "../cli/query_run.ts";
import { AgentAuditLog } from "./audit.ts";
import { isOwnSocket, type OwnFiles, removeOwnFiles, takePlace, tempSocket } from "./handover.ts";
import { agentPaths, type AgentSession } from "./paths.ts";
import {
  type AgentRequest,
  FRAME,
  frame,
  MAX_REQUEST_BYTES,
  type ProfileRequest,
  PROTOCOL_VERSION,
  type QueryRequest,
  type WireError,
} from "./protocol.ts";

/**
 * The start message a parent writes on the agent's stdin (one JSON line). It carries exactly one
 * credential, as `openVault` takes it.
 */
export interface StartMessage {
  home: string;
  /** The master password. */
  password?: string;
  /** The text of an age identity file (read by `hecate unlock`: the agent never reads the file). */
  identity?: string;
  /** A token's module, label and PIN. */
  pkcs11?: Pkcs11UnlockOptions;
  totp?: string;
  forMs: number;
  idleMs: number;
  /** The agent's start time as `hecate unlock` read it with `ps` (./process_start.ts), if known. */
  started?: string;
}

/** How often the limits and the vault file are checked between requests. */
const WATCH_MS = 250;

/** How long a client has to send its request line. */
const REQUEST_READ_MS = 10_000;

const FORMATS: readonly string[] = ["table", "csv", "tsv", "json", "ndjson"];

/** Whether a request's arguments have the types `query` needs (anything else is `usage`). */
function isQuery(req: QueryRequest): boolean {
  const r = req as unknown as Record<string, unknown>;
  return typeof r.profile === "string" && r.profile !== "" && typeof r.sql === "string" &&
    Array.isArray(r.params) && r.params.every((p) => typeof p === "string") &&
    typeof r.format === "string" && FORMATS.includes(r.format) && typeof r.color === "boolean" &&
    (r.totp === undefined || typeof r.totp === "string");
}

/** What identifies the vault file: a write replaces it (new inode) or changes mtime/size. */
async function fingerprint(home: string): Promise<string> {
  try {
    const s = await Deno.stat(`${home}/${VAULT_FILE}`);
    return `${s.ino}:${s.mtime?.getTime()}:${s.size}`;
  } catch {
    return "missing";
  }
}

/** Reads stdin line by line (the start message, then an answer to a code request). */
class Lines {
  readonly #reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  #buf = "";
  async next(): Promise<string | undefined> {
    for (;;) {
      const i = this.#buf.indexOf("\n");
      if (i >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      this.#buf += value;
    }
  }
  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

async function say(message: unknown): Promise<void> {
  const bytes = utf8(JSON.stringify(message) + "\n");
  let n = 0;
  while (n < bytes.length) n += await Deno.stdout.write(bytes.subarray(n));
}

function wire(e: unknown): WireError {
  if (e instanceof HecateError) {
    return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
  return { code: "internal", message: "The unlock agent failed" };
}

/** Makes `HOME/agent` a 0700 directory of this user (refusing a symlink or a foreign one). */
async function privateDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { mode: 0o700 }).catch((e) => {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  });
  const info = await Deno.lstat(dir);
  if (!info.isDirectory || info.uid !== Deno.uid()) {
    throw new HecateError("insecure_home", `"${dir}" is not a directory of this user`);
  }
  await Deno.chmod(dir, 0o700);
}

/** One running agent. */
class Agent {
  readonly #home: string;
  readonly #vault: Vault;
  /** Who unlocked (the password, an age slot, a token slot): the actor of the agent's records. */
  readonly #actor: Actor;
  readonly #audit: AgentAuditLog;
  readonly #token: Uint8Array;
  readonly #listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>;
  /** Its socket's identity: the files it may remove when it ends. */
  readonly #own: OwnFiles;
  readonly #expires: Date;
  readonly #idleMs: number;
  readonly #print: string;
  #lastUse = Date.now();
  /** Requests being served: a long query is not idleness. */
  #active = 0;
  #ended = false;
  #connectLock: Promise<void> = Promise.resolve();
  #requestCode: string | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    init: {
      home: string;
      vault: Vault;
      audit: AgentAuditLog;
      token: Uint8Array;
      listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>;
      own: OwnFiles;
      expires: Date;
      idleMs: number;
      print: string;
    },
  ) {
    this.#home = init.home;
    this.#vault = init.vault;
    this.#actor = init.vault.actor;
    this.#audit = init.audit;
    this.#token = init.token;
    this.#listener = init.listener;
    this.#own = init.own;
    this.#expires = init.expires;
    this.#idleMs = init.idleMs;
    this.#print = init.print;
  }

  /** When the agent ends at the latest. */
  expiresAt(): string {
    return this.#expires.toISOString();
  }

  /** The code source of the vault: the code a request carried, for a profile that needs one. */
  code(): Promise<string | undefined> {
    return Promise.resolve(this.#requestCode);
  }

  async serve(): Promise<void> {
    // One timer for every limit (a timeout past 2^31 ms would fire at once).
    this.#timer = setInterval(() => this.#tick(), WATCH_MS);
    for await (const conn of this.#listener) {
      this.#handle(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // closed already
        }
      });
    }
    // The listener closes when the agent ends: end() records that and exits the process.
    await new Promise(() => {});
  }

  async #tick(): Promise<void> {
    if (this.#ended) return;
    if (Date.now() >= this.#expires.getTime()) return await this.end("limit");
    if (this.#active === 0 && Date.now() - this.#lastUse >= this.#idleMs) {
      return await this.end("idle");
    }
    if (await fingerprint(this.#home) !== this.#print) return await this.end("vault_changed");
    // Its socket removed or taken by another agent (one that found this one not answering):
    // no client can reach it any more, so it does not keep the vault open.
    if (!await isOwnSocket(this.#home, this.#own)) await this.end("socket_gone");
  }

  async #readRequest(conn: Deno.UnixConn): Promise<AgentRequest | undefined> {
    const reader = conn.readable.getReader();
    let text = "";
    const dec = new TextDecoder();
    // A client that never finishes its line does not keep a connection open for ever.
    const deadline = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }, REQUEST_READ_MS);
    try {
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return undefined;
        text += dec.decode(value, { stream: true });
        if (text.length > MAX_REQUEST_BYTES) return undefined;
      }
    } catch {
      return undefined; // closed by the deadline, or reset by the client
    } finally {
      clearTimeout(deadline);
      reader.releaseLock();
    }
    try {
      return JSON.parse(text.slice(0, text.indexOf("\n"))) as AgentRequest;
    } catch {
      return undefined;
    }
  }

  async #handle(conn: Deno.UnixConn): Promise<void> {
    const send = async (type: number, payload: Uint8Array) => {
      const bytes = frame(type, payload);
      let n = 0;
      while (n < bytes.length) n += await conn.write(bytes.subarray(n));
    };
    const req = await this.#readRequest(conn);
    const given = typeof req?.token === "string" ? utf8(req.token) : new Uint8Array(0);
    if (!req || req.v !== PROTOCOL_VERSION || !timingSafeEqual(given, this.#token)) {
      // Whoever reached the socket without the session's token gets nothing but a closed
      // connection; the attempt is recorded.
      await this.#audit.append({
        event: "agent.use",
        actor: { kind: "none" },
        outcome: "fail",
        reason: "bad_token",
        detail: { pid: Deno.pid },
      }).catch(() => {});
      return;
    }
    // Checked here too, not only by the 250 ms tick: no request is served past a limit or from
    // a vault file that has changed since the unlock.
    const over = this.#ended
      ? "ended"
      : Date.now() >= this.#expires.getTime()
      ? "limit"
      : this.#active === 0 && Date.now() - this.#lastUse >= this.#idleMs
      ? "idle"
      : await fingerprint(this.#home) !== this.#print
      ? "vault_changed"
      : undefined;
    if (over !== undefined) {
      await send(FRAME.unavailable, new Uint8Array(0)).catch(() => {});
      await this.end(over);
      return;
    }
    this.#lastUse = Date.now();
    if (req.op === "lock") {
      // Answered once the end is recorded and the files are gone: `hecate lock` returns then, and
      // a newer agent taking this one's place finds the place free.
      const reason = req.reason === "replaced" ? "replaced" : "lock";
      await this.end(reason, () => send(FRAME.ok, utf8("{}")).catch(() => {}));
    } else if (req.op === "ping") {
      await send(FRAME.ok, utf8(JSON.stringify({ pid: Deno.pid, expires: this.#expires })));
    } else if (req.op === "query" && isQuery(req)) {
      this.#active++;
      try {
        await this.#query(req, send);
      } finally {
        this.#active--;
      }
    } else if (req.op === "list" || (req.op === "show" && typeof req.profile === "string")) {
      await this.#profiles(req, send);
    } else {
      const e = new HecateError("usage", "The unlock agent got a request it does not know");
      await send(FRAME.error, utf8(JSON.stringify(wire(e))));
    }
  }

  async #query(
    req: QueryRequest,
    send: (type: number, payload: Uint8Array) => Promise<void>,
  ): Promise<void> {
    try {
      // One connect at a time: the held agent.use and the request's code belong to it.
      const conn = await this.#serialized(async () => {
        this.#requestCode = req.totp;
        this.#audit.hold({
          event: "agent.use",
          actor: this.#actor,
          profile: req.profile,
          outcome: "ok",
          detail: { op: "query", pid: Deno.pid },
        });
        try {
          return await this.#vault.connect(req.profile);
        } finally {
          this.#requestCode = undefined;
          await this.#audit.release();
        }
      });
      await writeResults(
        conn,
        req.sql,
        req.params,
        req.format,
        req.color,
        (chunk) => send(FRAME.data, chunk),
      );
      await send(FRAME.ok, utf8("{}"));
    } catch (e) {
      await send(FRAME.error, utf8(JSON.stringify(wire(e)))).catch(() => {});
    } finally {
      this.#lastUse = Date.now();
    }
  }

  async #profiles(
    req: ProfileRequest,
    send: (type: number, payload: Uint8Array) => Promise<void>,
  ): Promise<void> {
    try {
      await this.#audit.append({
        event: "agent.use",
        actor: this.#actor,
        ...(req.op === "show" ? { profile: req.profile } : {}),
        outcome: "ok",
        detail: { op: req.op, pid: Deno.pid },
      });
      const value = req.op === "list"
        ? this.#vault.profiles.list()
        : await this.#vault.profiles.show(req.profile);
      await send(FRAME.ok, utf8(JSON.stringify(value)));
    } catch (e) {
      await send(FRAME.error, utf8(JSON.stringify(wire(e)))).catch(() => {});
    } finally {
      this.#lastUse = Date.now();
    }
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#connectLock.then(fn);
    this.#connectLock = run.then(() => {}, () => {});
    return run;
  }

  /**
   * Ends the agent: stops listening, removes its files, records why, exits.
   *
   * @param reason Why (recorded as the `agent.end` reason).
   * @param last Run just before the exit (the answer to `lock`).
   */
  async end(reason: string, last?: () => Promise<void>): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#timer);
    try {
      this.#listener.close();
    } catch {
      // closed already
    }
    // Only our own files (same inode, same pid), under the handover lock: a newer agent may
    // have taken the place already.
    await removeOwnFiles(this.#home, this.#own);
    await this.#audit.append({
      event: "agent.end",
      actor: this.#actor,
      outcome: "ok",
      reason,
      detail: { pid: Deno.pid },
    }).catch(() => {});
    await this.#vault.close().catch(() => {});
    // Let a group write still holding the trail's lock replace its state and let go first.
    await this.#audit.flush().catch(() => {});
    await last?.();
    Deno.exit(0);
  }
}

/**
 * The agent's main: unlock, listen, tell the parent, serve.
 *
 * @returns Never (the process exits when the agent ends), or the exit code of a failed start.
 */
export async function agentMain(): Promise<number> {
  // A Ctrl-C or a closed terminal of the shell that started it does not end it (ssh-agent
  // detaches into its own session; Deno cannot call setsid, so the signals are ignored).
  for (const sig of ["SIGINT", "SIGHUP"] as const) Deno.addSignalListener(sig, () => {});
  const lines = new Lines();
  let start: StartMessage;
  try {
    start = JSON.parse((await lines.next()) ?? "") as StartMessage;
  } catch {
    await say({ ok: false, error: wire(new HecateError("usage", "Bad agent start message")) });
    return 2;
  }
  const audit = new AgentAuditLog(start.home, {
    onWarning: () => {},
    ...await policyAuditOptions(start.home),
  });
  let totp = start.totp;
  let vault: Vault;
  let agent: Agent | undefined;
  let listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr> | undefined;
  let own: OwnFiles | undefined;
  let displaced: AgentSession | undefined;
  try {
    vault = await openVault({
      home: start.home,
      password: start.password,
      identity: start.identity,
      pkcs11: start.pkcs11,
      audit,
      totp: async (what) => {
        if (agent) return await agent.code();
        if (totp !== undefined) {
          const t = totp;
          totp = undefined;
          return t;
        }
        await say({ need: "totp", what });
        return (await lines.next()) || undefined;
      },
    });
    // Not kept past the unlock (JavaScript cannot wipe a string; the reference at least goes).
    delete start.password;
    delete start.identity;
    delete start.pkcs11;
    // The vault's policy caps the limits asked for (the expiry told to the parent shows it).
    const policy = vault.policy();
    start.forMs = withinCeiling(start.forMs, policy.agentMaxForMs);
    start.idleMs = withinCeiling(start.idleMs, policy.agentMaxIdleMs);
    // Only now, unlocked, does this agent touch the agent directory: a refused credential above
    // leaves a running agent as it was. The socket is bound under a temporary name; takePlace
    // ends the running agent and renames it into place.
    await privateDir(agentPaths(start.home).dir);
    const temp = tempSocket(start.home, Deno.pid);
    await Deno.remove(temp).catch(() => {});
    listener = Deno.listen({ transport: "unix", path: temp });
    await Deno.chmod(temp, 0o600);
    const bound = await Deno.lstat(temp);
    own = { pid: Deno.pid, dev: bound.dev, ino: bound.ino!, temp };
    const token = toBase64Url(randomBytes(32));
    const expires = new Date(Date.now() + start.forMs);
    const session: AgentSession = {
      pid: Deno.pid,
      token,
      expires: expires.toISOString(),
      // As `hecate unlock` saw it from outside (this process has no `--allow-run` for `ps`).
      ...(typeof start.started === "string" ? { started: start.started } : {}),
      actor: vault.actor,
    };
    displaced = await takePlace(start.home, own, session);
    agent = new Agent({
      home: start.home,
      vault,
      audit,
      token: utf8(token),
      listener,
      own,
      expires,
      idleMs: start.idleMs,
      print: await fingerprint(start.home),
    });
    await audit.append({
      event: "agent.start",
      actor: vault.actor,
      outcome: "ok",
      detail: { pid: Deno.pid, for_ms: start.forMs, idle_ms: start.idleMs },
    });
  } catch (e) {
    try {
      listener?.close();
    } catch {
      // closed already
    }
    if (own) await removeOwnFiles(start.home, own);
    await say({ ok: false, error: wire(e) });
    return 1;
  }
  Deno.addSignalListener("SIGTERM", () => void agent!.end("signal"));
  // A replaced agent that did not answer is `hecate unlock`'s to kill (it has `--allow-run`; this
  // process has not): its pid, start time and actor, never its token.
  const hung = displaced?.started
    ? { pid: displaced.pid, started: displaced.started, actor: displaced.actor }
    : undefined;
  await say({ ok: true, pid: Deno.pid, expires: agent.expiresAt(), ...(hung ? { hung } : {}) });
  await lines.close();
  try {
    Deno.stdout.close();
  } catch {
    // the parent has gone: nothing more is written there
  }
  await agent.serve();
  return 0;
}
