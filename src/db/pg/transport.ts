/**
 * The byte stream under a PostgreSQL session: TCP or a Unix socket through `Deno.connect`, TLS
 * through `Deno.startTls` after the SSLRequest exchange, verifying against the default trust store.
 * Deno's own TLS can neither skip certificate verification, nor present a client certificate, nor
 * trust only a given CA (its `caCerts` are added to the default roots, so a profile's CA file
 * would not pin anything). Those three cases go through a node:net + node:tls transport
 * (./node_transport.ts), imported only when needed: any `node:` module starts Deno's Node
 * compatibility layer, which costs tens of milliseconds per process.
 *
 * @module
 */

import type { TlsSettings } from "../driver.ts";
import { MessageWriter } from "./writer.ts";

/** A connected byte stream. */
export interface Transport {
  /**
   * Reads into `buf`.
   *
   * @returns The number of bytes read, or null at the end of the stream.
   */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the stream; safe to call twice. A pending read ends. */
  close(): void;
}

/** Where and how to open a {@link Transport}. */
export interface TransportOptions {
  /** Host name or address, or a socket directory (starts with `/`). */
  host: string;
  /** Port (also names the Unix socket). */
  port: number;
  /** The TLS policy. */
  tls: TlsSettings;
  /**
   * The CA certificates (PEM) for `verify`, already read: then only they are trusted (through
   * node:tls). None means the default store (through Deno's TLS).
   */
  caPem?: string;
  /** Aborts a TCP connect still in progress (the connect timeout). */
  signal?: AbortSignal;
  /** The Unix socket's path, when the engine does not name it PostgreSQL's way. */
  socketPath?: string;
  /**
   * The engine's exchange on the plain stream before the TLS handshake, true when the server
   * agreed to TLS (default: PostgreSQL's SSLRequest, {@link negotiateTls}).
   */
  negotiate?: (plain: Transport) => Promise<boolean>;
}

/** Why the server would not start TLS: it answered `N` to the SSLRequest. */
export class TlsRefusedError extends Error {
  constructor() {
    super("The server does not support SSL connections");
    this.name = "TlsRefusedError";
  }
}

/** A TLS handshake through Deno's TLS failed (certificate not trusted, wrong name...). */
export class TlsHandshakeError extends Error {
  /**
   * A failed handshake.
   *
   * @param cause The TLS error from Deno.
   */
  constructor(cause: unknown) {
    super(`TLS handshake failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = "TlsHandshakeError";
  }
}

/** A Deno connection as a {@link Transport}. */
export class DenoTransport implements Transport {
  #conn: Deno.Conn;
  #closed = false;

  /**
   * Wraps a connection.
   *
   * @param conn The connection.
   */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  read(buf: Uint8Array): Promise<number | null> {
    return this.#conn.read(buf);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let sent = 0;
    while (sent < bytes.length) sent += await this.#conn.write(bytes.subarray(sent));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Opens a plain connection to a server: its Unix socket for a host starting with `/`, else TCP.
 *
 * @param host Host name or address, or the socket directory.
 * @param port Port (also names the Unix socket).
 * @param signal Aborts a TCP connect in progress.
 * @returns The connection.
 */
export async function connectPlain(
  host: string,
  port: number,
  signal: AbortSignal | undefined,
): Promise<Deno.Conn> {
  if (host.startsWith("/")) {
    return await Deno.connect({ transport: "unix", path: `${host}/.s.PGSQL.${port}` });
  }
  const conn = await Deno.connect({ hostname: host, port, ...(signal ? { signal } : {}) });
  // Statements are single writes and wait for the answer: Nagle would only add latency.
  conn.setNoDelay(true);
  conn.setKeepAlive(true);
  return conn;
}

/** Sends the SSLRequest and reads the one-byte answer: true for `S`. */
export async function negotiateTls(conn: Transport): Promise<boolean> {
  await conn.write(new MessageWriter(8).sslRequest().take());
  // Exactly one byte: anything the server sent after it must go to the TLS handshake, where a
  // man in the middle's injected plaintext fails, rather than into our message stream.
  const one = new Uint8Array(1);
  const n = await conn.read(one);
  if (n === null) {
    throw Object.assign(new Error("Connection closed during the SSLRequest"), {
      code: "ECONNRESET",
    });
  }
  if (one[0] === 0x53) return true; // 'S'
  if (one[0] === 0x4e) return false; // 'N'
  throw new Error(`Unexpected answer to the SSLRequest (byte ${one[0]})`);
}

/**
 * Opens the transport for a TLS policy: plain for `disable`; Deno's TLS for `verify` against the
 * default trust store without a client certificate; node:tls for `insecure`, a pinned CA and
 * client certificates.
 *
 * @param options Host, port, TLS policy and CA.
 * @returns The connected transport (TLS handshake done).
 * @throws The socket's error (with its `code`), {@link TlsRefusedError},
 * {@link TlsHandshakeError}, or node:tls's error.
 */
export async function openTransport(options: TransportOptions): Promise<Transport> {
  const { host, port, tls } = options;
  const needsNodeTls = tls.mode === "insecure" || options.caPem !== undefined ||
    tls.certPem !== undefined || tls.keyPem !== undefined;
  if (tls.mode !== "disable" && needsNodeTls) {
    const { openNodeTransport } = await import("./node_transport.ts");
    return await openNodeTransport(options);
  }
  const conn = await connectPlain(host, port, options.signal);
  if (tls.mode === "disable") return new DenoTransport(conn);
  try {
    const t0 = performance.now();
    if (!await negotiateTls(new DenoTransport(conn))) throw new TlsRefusedError();
    let tlsConn: Deno.TlsConn;
    try {
      tlsConn = await Deno.startTls(conn as Deno.TcpConn, { hostname: tls.serverName ?? host });
      await tlsConn.handshake();
    } catch (e) {
      throw new TlsHandshakeError(e);
    }
    tls.onHandshake?.({
      ms: performance.now() - t0,
      serverName: tls.serverName ?? host,
      mode: tls.mode,
    });
    return new DenoTransport(tlsConn);
  } catch (e) {
    try {
      conn.close();
    } catch {
      // closed with the TLS connection
    }
    throw e;
  }
}
