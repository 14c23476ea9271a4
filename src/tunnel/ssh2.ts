/**
 * The part of npm:ssh2 that the tunnel uses, typed here: `@types/ssh2` pins an old
 * `@types/node` that clashes with the one the rest of the project builds against.
 *
 * @module
 */

import ssh2 from "ssh2";
import type { Duplex } from "node:stream";
import type { Buffer } from "node:buffer";

/** A `direct-tcpip` channel: a duplex stream. */
export type SshChannel = Duplex;

/** Client settings (see the ssh2 README for each field). */
export interface SshConnectConfig {
  host?: string;
  port?: number;
  username: string;
  sock?: Duplex;
  password?: string;
  /** Key file bytes (a Buffer: ssh2 ignores other types). */
  privateKey?: Buffer;
  passphrase?: string;
  agent?: string;
  tryKeyboard?: boolean;
  readyTimeout?: number;
  keepaliveInterval?: number;
  keepaliveCountMax?: number;
  /** Receives the raw host key blob; returning false aborts the handshake. */
  hostVerifier?: (key: Buffer) => boolean;
  /** ssh2 takes an exact list or `{ prepend, append, remove }` per algorithm class. */
  algorithms?: { serverHostKey?: string[] | { prepend: string[] } };
}

/** An ssh2 client connection. */
export interface SshClient {
  connect(config: SshConnectConfig): SshClient;
  forwardOut(
    srcIP: string,
    srcPort: number,
    dstIP: string,
    dstPort: number,
    cb: (err: Error | undefined, channel: SshChannel) => void,
  ): boolean;
  end(): SshClient;
  /** Sets TCP_NODELAY on the underlying socket (when it is a TCP socket). */
  setNoDelay(noDelay: boolean): SshClient;
  destroy(): SshClient;
  on(event: "handshake" | "ready" | "close", listener: () => void): SshClient;
  on(event: "error", listener: (err: Error & { level?: string; code?: string }) => void): SshClient;
  once(event: "handshake" | "ready" | "close", listener: () => void): SshClient;
  once(
    event: "error",
    listener: (err: Error & { level?: string; code?: string }) => void,
  ): SshClient;
  removeAllListeners(event: string): SshClient;
}

const lib = ssh2 as unknown as {
  Client: new () => SshClient;
  utils: { parseKey(data: Buffer, passphrase?: string): unknown };
};

/**
 * Creates an ssh2 client.
 *
 * @returns A new, unconnected client.
 */
export function newSshClient(): SshClient {
  return new lib.Client();
}

/**
 * Parses (with a passphrase: decrypts) a private key without using it.
 *
 * @param data The key file's bytes.
 * @param passphrase The passphrase, if any.
 * @returns undefined when the key is usable, else ssh2's reason.
 */
export function keyProblem(data: Buffer, passphrase?: string): Error | undefined {
  const parsed = lib.utils.parseKey(data, passphrase);
  return parsed instanceof Error ? parsed : undefined;
}
