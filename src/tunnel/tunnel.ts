/**
 * SSH tunnels in front of any database driver. The tunnel logs in to each hop in turn (the next
 * hop's SSH connection runs inside a `direct-tcpip` channel of the previous one, like OpenSSH's
 * ProxyJump), then listens on 127.0.0.1 on an ephemeral port and pipes every accepted socket
 * into a fresh channel from the last hop to the database. The driver connects to that port
 * unchanged: no driver needs to know about SSH.
 *
 * Host keys are verified on every hop (see host_keys.ts) before any credential is sent.
 *
 * @module
 */

import net from "node:net";
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { HecateError } from "../errors.ts";
import type { SshAuth } from "../profile.ts";
import { fingerprintOf, keyLabel } from "./fingerprint.ts";
import { checkHostKey, type HostKeyVerdict, preferredHostKeyAlgorithms } from "./host_keys.ts";
import { type KnownHostEntry, readKnownHosts } from "./known_hosts.ts";
import { newSshClient, type SshChannel, type SshClient, type SshConnectConfig } from "./ssh2.ts";

/** One hop, with its secrets resolved. */
export interface TunnelHop {
  host: string;
  port: number;
  user: string;
  auth: SshAuth;
  keyFile?: string | undefined;
  /** Pinned fingerprint. */
  hostKey?: string | undefined;
  password?: string | undefined;
  passphrase?: string | undefined;
}

/** A step of opening a tunnel, reported as it completes. */
export interface TunnelStep {
  /** Zero-based hop index. */
  hop: number;
  /** `user@host:port` of the hop. */
  label: string;
  /** Which part of opening the hop completed. */
  step: "handshake" | "host key" | "auth" | "forward";
  /** Milliseconds the step took. */
  ms: number;
  /** E.g. the fingerprint and where it was vouched for. */
  detail?: string;
}

/** Options for {@link openTunnel}. */
export interface TunnelOptions {
  /** Profile name, for the hints in host key errors. */
  profile: string;
  /** Hops in path order; the last one forwards to the target. */
  hops: TunnelHop[];
  /** The database as seen from the last hop. */
  target: { host: string; port: number };
  /** known_hosts files to read (missing ones are skipped). */
  knownHostsFiles: readonly string[];
  /** Pin on first use instead of refusing an unknown host. @default {false} */
  acceptNew?: boolean;
  /** Per-hop handshake and login timeout in milliseconds. @default {15000} */
  readyTimeoutMs?: number;
  /** Keepalive interval in milliseconds. @default {15000} */
  keepaliveMs?: number;
  /** Unanswered keepalives before the tunnel counts as dead. @default {3} */
  keepaliveCountMax?: number;
  /** The ssh-agent socket for hops with `auth: "agent"`. */
  agentSocket?: string | undefined;
  /** Called as each step completes. */
  onStep?: (step: TunnelStep) => void;
}

/** A host key accepted under accept-new, to be pinned in the profile. */
export interface LearnedHostKey {
  hop: number;
  fingerprint: string;
}

/** An open tunnel. */
export interface Tunnel {
  /** Where the driver connects: always `127.0.0.1`. */
  readonly host: "127.0.0.1";
  /** The ephemeral local port. */
  readonly port: number;
  /** Host keys accepted under accept-new. */
  readonly learned: readonly LearnedHostKey[];
  /** Why the tunnel died (an SSH connection closed or stopped answering), if it did. */
  deadReason(): string | undefined;
  /** Why the last forward to the database failed, if one did. */
  forwardError(): string | undefined;
  /** Closes channels, the listener and the SSH sessions; safe to call twice. */
  close(): Promise<void>;
}

let openCount = 0;

/**
 * How many tunnels are open in this process (for leak tests and diagnostics).
 *
 * @returns The count.
 */
export function openTunnelCount(): number {
  return openCount;
}

function labelOf(h: TunnelHop): string {
  return `${h.user}@${h.host}:${h.port}`;
}

function hintCommand(profile: string, hops: TunnelHop[], i: number, fp: string): string {
  const h = hops[i]!;
  const prefix = i === hops.length - 1 ? "" : `${h.host}:${h.port}=`;
  return `hecate server edit ${profile} --ssh-host-key ${prefix}${fp}`;
}

/** Turns a refused host key into the error the user sees. */
function hostKeyError(
  v: Extract<HostKeyVerdict, { ok: false }>,
  opts: TunnelOptions,
  i: number,
): HecateError {
  const hop = opts.hops[i]!;
  const where = `SSH server ${hop.host}:${hop.port}`;
  const key = `${keyLabel(v.type)} key ${v.fingerprint}`;
  const pin = hintCommand(opts.profile, opts.hops, i, v.fingerprint);
  if (v.kind === "revoked") {
    return new HecateError(
      "host_key_changed",
      `${where} presented a REVOKED host key (${key}, ${v.where}): refusing to connect`,
    );
  }
  if (v.kind === "changed") {
    return new HecateError(
      "host_key_changed",
      `HOST KEY CHANGED for ${where}: expected ${v.expected} (${v.where}), got ${key}; ` +
        "someone may be intercepting the connection, refusing to connect",
      {
        hint: `confirm the new key with the server's administrator before trusting it: ${pin}`,
      },
    );
  }
  const other = v.otherTypes?.length
    ? ` (known_hosts holds only ${v.otherTypes.join(", ")} keys for it)`
    : "";
  return new HecateError(
    "host_key_unknown",
    `Host key of ${where} is not known${other}: ${key}`,
    { hint: `check the fingerprint with the server's administrator, then pin it: ${pin}` },
  );
}

/** Reads a private key file, with an error that names the file. */
async function readKey(file: string): Promise<Buffer> {
  try {
    return Buffer.from(await Deno.readFile(file));
  } catch (e) {
    throw new HecateError("connection_failed", `Cannot read the SSH key file "${file}"`, {
      cause: e,
    });
  }
}

/**
 * Maps ssh2's refusal to parse or decrypt a key (thrown by `connect()`, before any network
 * traffic; the key is decrypted once there, which for an encrypted OpenSSH key is slow).
 */
function keyError(e: Error, hop: TunnelHop, i: number): HecateError | undefined {
  if (!/^Cannot parse privateKey|does not contain a \(valid\) private key/.test(e.message)) {
    return undefined;
  }
  const file = hop.keyFile!;
  if (/no passphrase/i.test(e.message)) {
    return new HecateError(
      "invalid_profile",
      `The SSH key file "${file}" is encrypted and the profile has no passphrase for it`,
      { hint: `store it as secret 'ssh.${i}.passphrase' (server edit --ssh-key again)` },
    );
  }
  if (hop.passphrase !== undefined && /decrypt|passphrase|bad/i.test(e.message)) {
    return new HecateError(
      "auth_failed",
      `Cannot decrypt the SSH key file "${file}": wrong passphrase`,
    );
  }
  return new HecateError("connection_failed", `The SSH key file "${file}" is not a usable key`, {
    cause: e,
  });
}

function sshFailure(err: unknown, hop: TunnelHop, timeoutMs: number): HecateError {
  const e = err as Error & { level?: string; code?: string };
  const where = `SSH server ${labelOf(hop)}`;
  if (e.level === "client-authentication") {
    return new HecateError(
      "auth_failed",
      `SSH login to ${where} refused: no configured authentication method was accepted`,
      { cause: e },
    );
  }
  if (e.level === "client-timeout") {
    return new HecateError(
      "connection_failed",
      `${where} did not complete the handshake and login within ${timeoutMs} ms`,
      { cause: e },
    );
  }
  const reasons: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset",
    ETIMEDOUT: "timed out",
    ENOTFOUND: "host name not found",
    EAI_AGAIN: "host name lookup failed",
    EHOSTUNREACH: "host unreachable",
    ENETUNREACH: "network unreachable",
  };
  const reason = (e.code && reasons[e.code]) ?? e.message ?? String(err);
  return new HecateError("connection_failed", `Cannot connect to ${where}: ${reason}`, {
    cause: e,
  });
}

/** Opens a `direct-tcpip` channel from a client to host:port. */
function forward(
  client: SshClient,
  host: string,
  port: number,
  timeoutMs: number,
  src: { addr: string; port: number } = { addr: "127.0.0.1", port: 0 },
): Promise<SshChannel> {
  return new Promise((resolve, reject) => {
    // sshd may wait minutes for a TCP connect to a host that drops packets: give up sooner.
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    client.forwardOut(src.addr, src.port, host, port, (err, ch) => {
      clearTimeout(timer);
      if (late) return void ch?.destroy();
      if (err) reject(err);
      else resolve(ch);
    });
  });
}

/** Logs in to one hop, over `sock` when it is not the first. */
async function connectHop(
  opts: TunnelOptions,
  i: number,
  known: readonly KnownHostEntry[],
  learned: LearnedHostKey[],
  sock: Duplex | undefined,
): Promise<SshClient> {
  const hop = opts.hops[i]!;
  const label = labelOf(hop);
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  const config: SshConnectConfig = {
    host: hop.host,
    port: hop.port,
    username: hop.user,
    readyTimeout: timeoutMs,
    keepaliveInterval: opts.keepaliveMs ?? 15_000,
    keepaliveCountMax: opts.keepaliveCountMax ?? 3,
    tryKeyboard: false,
    ...(sock ? { sock } : {}),
  };
  if (!hop.hostKey) {
    const prefer = preferredHostKeyAlgorithms(known, hop.host, hop.port);
    if (prefer.length) {
      config.algorithms = { serverHostKey: { prepend: prefer } };
    }
  }
  if (hop.auth === "password") {
    config.password = hop.password ?? "";
  } else if (hop.auth === "key") {
    config.privateKey = await readKey(hop.keyFile!);
    if (hop.passphrase !== undefined) config.passphrase = hop.passphrase;
  } else {
    if (!opts.agentSocket) {
      throw new HecateError(
        "connection_failed",
        `SSH hop ${label} uses the SSH agent, but SSH_AUTH_SOCK is not set`,
        { hint: "start ssh-agent and add the key with ssh-add" },
      );
    }
    config.agent = opts.agentSocket;
  }

  const client = newSshClient();
  const t0 = performance.now();
  let refused: HecateError | undefined;
  let tHandshake = t0;
  let accepted: string | undefined;
  config.hostVerifier = (key: Buffer) => {
    // A re-key later in the session must present the very key accepted at login.
    if (accepted !== undefined) return fingerprintOf(new Uint8Array(key)) === accepted;
    const v = checkHostKey(new Uint8Array(key), {
      host: hop.host,
      port: hop.port,
      pin: hop.hostKey,
      acceptNew: opts.acceptNew ?? false,
    }, known);
    if (!v.ok) {
      refused = hostKeyError(v, opts, i);
      return false;
    }
    accepted = v.fingerprint;
    if (v.source === "accepted-new") learned.push({ hop: i, fingerprint: v.fingerprint });
    opts.onStep?.({
      hop: i,
      label,
      step: "host key",
      ms: performance.now() - t0,
      detail: `${keyLabel(v.type)} ${v.fingerprint} (${v.source}${v.where ? ` ${v.where}` : ""})`,
    });
    return true;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      client.once("handshake", () => {
        tHandshake = performance.now();
        opts.onStep?.({ hop: i, label, step: "handshake", ms: tHandshake - t0 });
      });
      client.once("ready", () => resolve());
      client.once("error", (e) => reject(refused ?? sshFailure(e, hop, timeoutMs)));
      client.once("close", () => reject(refused ?? sshFailure(new Error("closed"), hop, 0)));
      try {
        client.connect(config);
      } catch (e) {
        reject(keyError(e as Error, hop, i) ?? e);
      }
    });
  } catch (e) {
    client.removeAllListeners("error");
    client.on("error", () => {});
    client.destroy();
    throw e;
  }
  opts.onStep?.({ hop: i, label, step: "auth", ms: performance.now() - tHandshake });
  // Database protocols trade many small packets; Nagle's algorithm would hold each one back
  // until the peer's delayed ACK (~40 ms a round trip).
  client.setNoDelay(true);
  return client;
}

/** Closes an SSH client and waits (briefly) for its socket to be gone. */
function endClient(c: SshClient): Promise<void> {
  return new Promise((resolve) => {
    const sock = (c as unknown as { _sock?: { destroyed?: boolean } })._sock;
    if (!sock || sock.destroyed) {
      c.destroy();
      return resolve();
    }
    const timer = setTimeout(() => {
      c.destroy();
      resolve();
    }, 1000);
    c.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    c.end();
  });
}

/**
 * Opens an SSH tunnel to `target` through `hops` and listens on 127.0.0.1.
 *
 * @param opts Hops (secrets resolved), target, host key policy, timeouts.
 * @returns The open tunnel; close it when the connection using it closes.
 * @throws {HecateError} `host_key_unknown`, `host_key_changed`, `auth_failed` (login refused or
 * wrong key passphrase), `connection_failed`; every message names the hop.
 */
export async function openTunnel(opts: TunnelOptions): Promise<Tunnel> {
  if (opts.hops.length === 0) throw new HecateError("invalid_profile", "An SSH tunnel needs a hop");
  const known = await readKnownHosts(opts.knownHostsFiles);
  const learned: LearnedHostKey[] = [];
  const clients: SshClient[] = [];
  const sockets = new Set<net.Socket>();
  const channels = new Set<SshChannel>();
  let dead: string | undefined;
  let lastForwardError: string | undefined;
  let closed = false;
  let server: net.Server | undefined;

  const shutdown = async () => {
    for (const s of sockets) s.destroy();
    for (const ch of channels) ch.destroy();
    sockets.clear();
    channels.clear();
    if (server) {
      const srv = server;
      server = undefined;
      await new Promise<void>((r) => srv.close(() => r()));
    }
    // Innermost first: each later hop runs inside a channel of the one before.
    for (const c of clients.slice().reverse()) await endClient(c);
  };

  try {
    let sock: Duplex | undefined;
    for (let i = 0; i < opts.hops.length; i++) {
      const client = await connectHop(opts, i, known, learned, sock);
      clients.push(client);
      const hop = opts.hops[i]!;
      // After login, a lost hop kills the whole tunnel: drop every piped socket at once so the
      // driver fails now instead of waiting on a socket that will never answer.
      client.on("error", (e: Error) => {
        dead ??= `SSH connection to ${labelOf(hop)} failed: ${e.message}`;
      });
      client.on("close", () => {
        dead ??= `SSH connection to ${labelOf(hop)} closed`;
        if (!closed) void shutdown();
      });
      const next = opts.hops[i + 1];
      if (next) {
        const t = performance.now();
        try {
          sock = await forward(client, next.host, next.port, opts.readyTimeoutMs ?? 15_000);
        } catch (e) {
          throw new HecateError(
            "connection_failed",
            `SSH server ${labelOf(hop)} cannot forward to the next hop ${next.host}:${next.port}: ${
              (e as Error).message
            }`,
            { cause: e },
          );
        }
        opts.onStep?.({
          hop: i,
          label: labelOf(hop),
          step: "forward",
          ms: performance.now() - t,
          detail: `to ${next.host}:${next.port}`,
        });
      }
    }

    const last = clients.at(-1)!;
    const lastHop = opts.hops.at(-1)!;
    let reported = false;
    const srv = net.createServer((socket) => {
      if (dead || closed) return void socket.destroy();
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("error", () => {});
      socket.once("close", () => sockets.delete(socket));
      const t = performance.now();
      forward(last, opts.target.host, opts.target.port, opts.readyTimeoutMs ?? 15_000, {
        addr: socket.remoteAddress ?? "127.0.0.1",
        port: socket.remotePort ?? 0,
      }).then((ch) => {
        if (!reported) {
          reported = true;
          opts.onStep?.({
            hop: opts.hops.length - 1,
            label: labelOf(lastHop),
            step: "forward",
            ms: performance.now() - t,
            detail: `to ${opts.target.host}:${opts.target.port}`,
          });
        }
        if (socket.destroyed) return void ch.destroy();
        channels.add(ch);
        ch.on("error", () => {});
        ch.once("close", () => {
          channels.delete(ch);
          socket.destroy();
        });
        socket.once("close", () => ch.destroy());
        socket.pipe(ch);
        ch.pipe(socket);
      }, (e: Error) => {
        lastForwardError = `SSH server ${
          labelOf(lastHop)
        } cannot reach ${opts.target.host}:${opts.target.port}: ${e.message}`;
        socket.destroy();
      });
    });
    server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.on("error", reject);
      srv.listen(0, "127.0.0.1", () => resolve());
    });
    const port = (srv.address() as net.AddressInfo).port;
    openCount++;
    return {
      host: "127.0.0.1",
      port,
      learned,
      deadReason: () => dead,
      forwardError: () => lastForwardError,
      close: async () => {
        if (closed) return;
        closed = true;
        openCount--;
        await shutdown();
      },
    };
  } catch (e) {
    closed = true;
    await shutdown();
    throw e;
  }
}
