/**
 * The node:net + node:tls transport, for the two TLS cases Deno's own TLS cannot do: `insecure`
 * (no certificate verification) and a client certificate. Imported lazily by ./transport.ts, so
 * the Node compatibility layer starts only for these profiles.
 *
 * The SSLRequest exchange runs on the plain socket; `tls.connect({ socket })` then upgrades it.
 * Errors keep node's `code` (`ECONNREFUSED`, `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`, ...), which the
 * driver's error mapping reads.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import {
  negotiateTls,
  TlsRefusedError,
  type Transport,
  type TransportOptions,
} from "./transport.ts";

/** Bytes queued unread before the socket is paused (backpressure towards the server). */
const HIGH_WATER = 256 * 1024;

/** A node socket in flowing mode as a pull-based {@link Transport}. */
class NodeTransport implements Transport {
  #socket: net.Socket;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  #paused = false;
  #closed = false;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
    socket.on("error", this.#onError);
  }

  /** Stops listening, so the socket can be handed to tls.connect. */
  detach(): void {
    this.#socket.off("data", this.#onData);
    this.#socket.off("end", this.#onEnd);
    this.#socket.off("close", this.#onEnd);
    this.#socket.off("error", this.#onError);
  }

  readonly #onData = (chunk: Uint8Array): void => {
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued >= HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#signal();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#signal();
  };

  readonly #onError = (e: Error): void => {
    this.#error ??= e;
    this.#signal();
  };

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(buf: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((r) => this.#wake = r);
    }
    let n = 0;
    while (n < buf.length && this.#chunks.length > 0) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, buf.length - n);
      buf.set(take === c.length ? c : c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#queued -= n;
    if (this.#paused && this.#queued < HIGH_WATER / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
    return n;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (e) => e ? reject(e) : resolve());
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#signal();
  }
}

/** Waits for a node socket to connect (or fail). */
function connected(socket: net.Socket, event: "connect" | "secureConnect"): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => {
      socket.off("error", fail);
      resolve();
    };
    const fail = (e: Error) => {
      socket.off(event, ok);
      reject(e);
    };
    socket.once(event, ok);
    socket.once("error", fail);
  });
}

/**
 * Opens a TLS connection through node:net and node:tls.
 *
 * @param options Host, port and the TLS policy (`insecure`, or with a client certificate).
 * @returns The connected transport, TLS handshake done.
 * @throws node's socket or TLS error (with `code`), or {@link TlsRefusedError}.
 */
export async function openNodeTransport(options: TransportOptions): Promise<Transport> {
  const { host, port, tls: policy } = options;
  const socket = host.startsWith("/")
    ? net.connect({ path: options.socketPath ?? `${host}/.s.PGSQL.${port}` })
    : net.connect({ host, port });
  try {
    await connected(socket, "connect");
    if (!host.startsWith("/")) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
    }
    const plain = new NodeTransport(socket);
    const t0 = performance.now();
    const yes = await (options.negotiate ?? negotiateTls)(plain);
    plain.detach();
    // The TLS socket reports the stream's failures; the plain socket under it can still emit its
    // own (a reset after the server's TLS alert), which must not be an uncaught 'error' event.
    socket.on("error", () => {});
    if (!yes) throw new TlsRefusedError();
    const verify = policy.mode === "verify";
    const name = policy.serverName ?? host;
    const secure = tls.connect({
      socket,
      rejectUnauthorized: verify,
      ...(verify && options.caPem ? { ca: options.caPem } : {}),
      ...(policy.certPem ? { cert: policy.certPem } : {}),
      ...(policy.keyPem ? { key: policy.keyPem } : {}),
      // The name the certificate is checked against; SNI only for a name, not an address.
      host: name,
      ...(net.isIP(name) === 0 ? { servername: name } : {}),
    });
    // Listening from the start: a server refusing the client certificate sends its alert right
    // after the handshake, possibly in the same read, before an await could attach a listener.
    const transport = new NodeTransport(secure);
    try {
      await connected(secure, "secureConnect");
    } catch (e) {
      secure.destroy();
      throw e;
    }
    if (policy.mode !== "disable") {
      policy.onHandshake?.({ ms: performance.now() - t0, serverName: name, mode: policy.mode });
    }
    return transport;
  } catch (e) {
    socket.destroy();
    throw e;
  }
}
