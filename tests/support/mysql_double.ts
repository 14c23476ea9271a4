/**
 * A MySQL protocol double on 127.0.0.1: a small server that speaks just enough of the connection
 * phase to test what the real MariaDB here cannot offer (`caching_sha2_password` is MySQL's), and
 * hostile behaviour (garbled or oversized packets, endless exchanges). It is a double, not a
 * server: after the login it answers every command with an OK packet.
 *
 * The scrambles are verified the way the server does it, with node:crypto (independent of the
 * driver's WebCrypto code): for `caching_sha2_password` the double keeps only
 * SHA256(SHA256(password)), recovers SHA256(password) from the answer and the nonce, and compares
 * its hash. Everything the client sent is recorded, so tests can assert that a password was
 * never sent.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { constants, createHash, generateKeyPairSync, privateDecrypt } from "node:crypto";
import { Buffer } from "node:buffer";

/** A connection's packets as the double sees them. */
export class PacketSocket {
  #chunks: Buffer = Buffer.alloc(0);
  #wake: (() => void) | null = null;
  #ended = false;
  readonly socket: net.Socket;
  readonly #onData = (d: Buffer) => {
    this.#chunks = Buffer.concat([this.#chunks, d]);
    this.#wake?.();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#wake?.();
  };

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
    socket.on("error", this.#onEnd);
  }

  /** Stops reading (before the socket is handed to TLS); returns bytes read past the packets. */
  detach(): Buffer {
    this.socket.off("data", this.#onData);
    this.socket.off("end", this.#onEnd);
    this.socket.off("close", this.#onEnd);
    return this.#chunks;
  }

  /** The next packet, or null when the client went away. */
  async packet(): Promise<{ seq: number; payload: Buffer } | null> {
    for (;;) {
      if (this.#chunks.length >= 4) {
        const len = this.#chunks.readUIntLE(0, 3);
        if (this.#chunks.length >= 4 + len) {
          const seq = this.#chunks[3]!;
          const payload = this.#chunks.subarray(4, 4 + len);
          this.#chunks = this.#chunks.subarray(4 + len);
          return { seq, payload: Buffer.from(payload) };
        }
      }
      if (this.#ended) return null;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = null;
    }
  }

  /** Writes one packet. */
  send(seq: number, payload: Uint8Array): void {
    const head = Buffer.alloc(4);
    head.writeUIntLE(payload.length, 0, 3);
    head[3] = seq;
    this.socket.write(Buffer.concat([head, payload]));
  }

  /** Writes raw bytes. */
  raw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }
}

/** Options for {@link startMysqlDouble}. */
export interface MysqlDoubleOptions {
  /** The account's password. */
  password?: string;
  /** The plugin the handshake names. @default {"caching_sha2_password"} */
  plugin?: "caching_sha2_password" | "mysql_native_password";
  /** `caching_sha2_password`: whether the fast path succeeds (else full auth). @default {true} */
  cached?: boolean;
  /** Switch the client to `mysql_clear_password` after its first answer. */
  clearPassword?: boolean;
  /** Offer TLS with this certificate and key (PEM). */
  tls?: { certPem: string; keyPem: string };
  /** Take over each connection instead of the login (hostile-server tests). */
  script?: (s: PacketSocket) => Promise<void>;
}

/** What the double saw. */
export interface DoubleLog {
  /** Every payload the client sent, in order (connection phase and commands). */
  payloads: Buffer[];
  /** Logins accepted. */
  accepted: number;
  /** Logins refused (wrong scramble or password). */
  refused: number;
  /** Times the client asked for the RSA key. */
  keyRequests: number;
  /** Whether a TLS session was set up. */
  tls: boolean;
}

/** A running double. */
export interface MysqlDouble {
  port: number;
  /** The double's RSA public key (PEM), to pin. */
  publicKeyPem: string;
  log: DoubleLog;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

function ok(): Buffer {
  return Buffer.from([0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]);
}

function err(errno: number, state: string, message: string): Buffer {
  const b = Buffer.alloc(3);
  b[0] = 0xff;
  b.writeUInt16LE(errno, 1);
  return Buffer.concat([b, Buffer.from("#" + state), Buffer.from(message)]);
}

/**
 * Builds a HandshakeV10 packet.
 *
 * @param nonce 20 bytes.
 * @param plugin The plugin name.
 * @param ssl Whether to offer TLS.
 * @returns The payload.
 */
export function handshakePacket(nonce: Uint8Array, plugin: string, ssl: boolean): Buffer {
  // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | LONG_PASSWORD (MySQL) | CONNECT_WITH_DB ...
  let caps = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 |
    0x200000;
  if (ssl) caps |= 0x800;
  const head = Buffer.alloc(1);
  head[0] = 10;
  const fixed = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let o = 0;
  fixed.writeUInt32LE(42, o);
  o += 4;
  Buffer.from(nonce.subarray(0, 8)).copy(fixed, o);
  o += 9;
  fixed.writeUInt16LE(caps & 0xffff, o);
  o += 2;
  fixed[o++] = 255;
  fixed.writeUInt16LE(2, o);
  o += 2;
  fixed.writeUInt16LE(caps >>> 16, o);
  o += 2;
  fixed[o++] = 21;
  return Buffer.concat([
    head,
    Buffer.from("8.4.0-double\0"),
    fixed,
    Buffer.from(nonce.subarray(8, 20)),
    Buffer.from([0]),
    Buffer.from(plugin + "\0"),
  ]);
}

/** Parses a HandshakeResponse41 far enough for the double. */
function parseResponse(p: Buffer): { caps: number; user: string; answer: Buffer } {
  const caps = p.readUInt32LE(0);
  let o = 32;
  const nul = p.indexOf(0, o);
  const user = p.subarray(o, nul).toString();
  o = nul + 1;
  const len = p[o]!;
  const answer = p.subarray(o + 1, o + 1 + len);
  return { caps, user, answer: Buffer.from(answer) };
}

/**
 * Starts the double.
 *
 * @param options The account and behaviour.
 * @returns The running double.
 */
export async function startMysqlDouble(options: MysqlDoubleOptions = {}): Promise<MysqlDouble> {
  const password = options.password ?? "double-password";
  const plugin = options.plugin ?? "caching_sha2_password";
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const stored = sha256(sha256(Buffer.from(password)));
  const log: DoubleLog = { payloads: [], accepted: 0, refused: 0, keyRequests: 0, tls: false };
  const sockets = new Set<net.Socket>();
  const tlsServer = options.tls
    ? tls.createServer({ cert: options.tls.certPem, key: options.tls.keyPem })
    : undefined;
  tlsServer?.on("tlsClientError", () => {});
  let tlsPort = 0;
  if (tlsServer) {
    await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
    tlsPort = (tlsServer.address() as net.AddressInfo).port;
  }

  const serve = async (raw: net.Socket) => {
    let s = new PacketSocket(raw);
    if (options.script) return await options.script(s);
    const nonce = new Uint8Array(20);
    crypto.getRandomValues(nonce);
    for (let i = 0; i < 20; i++) nonce[i] = (nonce[i]! % 94) + 33; // printable, no NUL
    s.send(0, handshakePacket(nonce, plugin, options.tls !== undefined));
    let pkt = await s.packet();
    if (!pkt) return;
    log.payloads.push(pkt.payload);
    let seq = pkt.seq + 1;
    if (pkt.payload.length === 32 && options.tls) {
      // SSLRequest: upgrade, then read the real response over TLS.
      // The TLS side runs in a node:tls server on its own port, the client's bytes relayed to it
      // (the ClientHello may already have been read with the SSLRequest).
      const rest = s.detach();
      const secureP = new Promise<tls.TLSSocket>((resolve) =>
        tlsServer!.once("secureConnection", resolve)
      );
      const relay = net.connect(tlsPort, "127.0.0.1");
      sockets.add(relay);
      relay.on("error", () => raw.destroy());
      relay.write(rest);
      raw.on("data", (d: Buffer) => relay.write(d));
      relay.on("data", (d: Buffer) => raw.write(d));
      raw.on("close", () => relay.destroy());
      relay.on("close", () => raw.destroy());
      const secure = await secureP;
      sockets.add(secure);
      s = new PacketSocket(secure);
      log.tls = true;
      pkt = await s.packet();
      if (!pkt) return;
      log.payloads.push(pkt.payload);
      seq = pkt.seq + 1;
    }
    const { answer } = parseResponse(pkt.payload);
    const refuse = () => {
      log.refused++;
      s.send(seq, err(1045, "28000", "Access denied for user (using password: YES)"));
    };
    const accept = () => {
      log.accepted++;
      s.send(seq++, ok());
    };
    const next = async () => {
      const p = await s.packet();
      if (p) {
        log.payloads.push(p.payload);
        seq = p.seq + 1;
      }
      return p;
    };
    if (options.clearPassword) {
      s.send(seq++, Buffer.from("\xfemysql_clear_password\0", "latin1"));
      const p = await next();
      if (!p) return;
      if (p.payload.toString() === password + "\0") accept();
      else return refuse();
    } else if (plugin === "mysql_native_password") {
      const h1 = createHash("sha1").update(password).digest();
      const h2 = createHash("sha1").update(h1).digest();
      const mask = createHash("sha1").update(nonce).update(h2).digest();
      const expected = Buffer.from(h1.map((b, i) => b ^ mask[i]!));
      if (expected.equals(answer)) accept();
      else return refuse();
    } else {
      // caching_sha2_password: recover SHA256(password) from the scramble and check its hash.
      const mask = sha256(stored, nonce);
      const h1 = Buffer.from(answer.map((b, i) => b ^ mask[i % 32]!));
      if (answer.length !== 32 || !sha256(h1).equals(stored)) return refuse();
      if (options.cached ?? true) {
        s.send(seq++, Buffer.from([0x01, 0x03]));
        accept();
      } else {
        s.send(seq++, Buffer.from([0x01, 0x04]));
        let p = await next();
        if (!p) return;
        if (p.payload.length === 1 && p.payload[0] === 0x02) {
          log.keyRequests++;
          s.send(seq++, Buffer.concat([Buffer.from([0x01]), Buffer.from(publicKeyPem)]));
          p = await next();
          if (!p) return;
        }
        let clear: Buffer;
        if (log.tls) {
          clear = p.payload;
        } else {
          try {
            const plain = privateDecrypt(
              { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
              p.payload,
            );
            clear = Buffer.from(plain.map((b, i) => b ^ nonce[i % 20]!));
          } catch {
            return refuse();
          }
        }
        if (clear.toString("utf8") === password + "\0") accept();
        else return refuse();
      }
    }
    // Commands: OK to each, until QUIT or the end.
    for (;;) {
      const p = await s.packet();
      if (!p) return;
      log.payloads.push(p.payload);
      if (p.payload[0] === 0x01) return; // COM_QUIT
      s.send(p.seq + 1, ok());
    }
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    serve(socket).catch(() => {}).finally(() => socket.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    if (tlsServer) await new Promise<void>((r) => tlsServer.close(() => r()));
  };
  return { port, publicKeyPem, log, stop, [Symbol.asyncDispose]: stop };
}
