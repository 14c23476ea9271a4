/**
 * The byte stream under a MySQL session, on the PostgreSQL driver's transports (../pg/transport.ts):
 * TCP or a Unix socket through `Deno.connect`; TLS through `Deno.startTls` for `verify` against the
 * default trust store without a client certificate, through node:tls (loaded only then) for
 * `insecure`, a pinned CA file and client certificates.
 *
 * MySQL starts TLS differently from PostgreSQL: the server speaks first (its handshake packet,
 * which says whether it can do TLS), the client answers with an SSLRequest packet, then both run
 * the TLS handshake. `negotiate` does that exchange on the plain stream.
 *
 * @module
 */

import type { TlsSettings } from "../driver.ts";
import {
  DenoTransport,
  TlsHandshakeError,
  TlsRefusedError,
  type Transport,
} from "../pg/transport.ts";

export { TlsHandshakeError, TlsRefusedError };
export type { Transport };

/** Where and how to connect. */
export interface MysqlTransportOptions {
  /** Host name or address, or a Unix socket path (starts with `/`). */
  host: string;
  /** TCP port. */
  port: number;
  /** The TLS policy (`disable` or a Unix socket: no TLS). */
  tls: TlsSettings;
  /** The pinned CA certificates (PEM) for `verify`, already read. */
  caPem?: string;
  /** Aborts a TCP connect in progress. */
  signal?: AbortSignal;
  /**
   * Reads the server's handshake from the plain stream and, if TLS is wanted, sends the
   * SSLRequest. Returns true when TLS must start now.
   */
  negotiate: (plain: Transport) => Promise<boolean>;
}

/**
 * Opens the stream: plain, then TLS when `negotiate` says so.
 *
 * @param o Host, port, policy and the pre-TLS exchange.
 * @returns The stream (TLS handshake done when TLS was wanted).
 */
export async function openMysqlTransport(o: MysqlTransportOptions): Promise<Transport> {
  const socket = o.host.startsWith("/");
  const wantTls = !socket && o.tls.mode !== "disable";
  const needsNodeTls = o.tls.mode === "insecure" || o.caPem !== undefined ||
    o.tls.certPem !== undefined || o.tls.keyPem !== undefined;
  if (wantTls && needsNodeTls) {
    const { openNodeTransport } = await import("../pg/node_transport.ts");
    return await openNodeTransport({
      host: o.host,
      port: o.port,
      tls: o.tls,
      negotiate: async (plain) => {
        if (!await o.negotiate(plain)) throw new TlsRefusedError();
        return true;
      },
      ...(o.caPem === undefined ? {} : { caPem: o.caPem }),
    });
  }
  const conn = socket
    ? await Deno.connect({ transport: "unix", path: o.host })
    : await Deno.connect({
      hostname: o.host,
      port: o.port,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  if (!socket) {
    // Each command is one write that waits for its answer: Nagle would only add latency.
    (conn as Deno.TcpConn).setNoDelay(true);
    (conn as Deno.TcpConn).setKeepAlive(true);
  }
  const plain = new DenoTransport(conn);
  try {
    const t0 = performance.now();
    const upgrade = await o.negotiate(plain);
    if (!upgrade) {
      if (wantTls) throw new TlsRefusedError();
      return plain;
    }
    let tlsConn: Deno.TlsConn;
    try {
      tlsConn = await Deno.startTls(conn as Deno.TcpConn, { hostname: o.tls.serverName ?? o.host });
      await tlsConn.handshake();
    } catch (e) {
      throw new TlsHandshakeError(e);
    }
    if (o.tls.mode !== "disable") {
      o.tls.onHandshake?.({
        ms: performance.now() - t0,
        serverName: o.tls.serverName ?? o.host,
        mode: o.tls.mode,
      });
    }
    return new DenoTransport(tlsConn);
  } catch (e) {
    plain.close();
    throw e;
  }
}
