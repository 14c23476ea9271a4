/**
 * One MySQL/MariaDB session on the wire: the transport, the packet reader and writer, and the
 * connection phase (the server's handshake, TLS, the login and its authentication plugins).
 *
 * Passwords: `mysql_native_password`, `caching_sha2_password`'s fast path and `client_ed25519`
 * prove the password without sending it. The password itself (`mysql_clear_password`, or
 * `caching_sha2_password`'s full path in clear) is sent only over TLS that verified the server, or
 * when the profile allows it (`allowPlainAuth`); without TLS, `caching_sha2_password`'s full path
 * encrypts it with the server's RSA key, which must be pinned (`extra.serverPublicKey`) or, only
 * with `allowPlainAuth`, asked from the server (whoever answers in its place can give their own).
 *
 * @module
 */

import type { TlsSettings } from "../driver.ts";
import {
  ConnectionLostError,
  Cursor,
  PacketReader,
  PacketWriter,
  ProtocolError,
} from "./packet.ts";
import { openMysqlTransport, TlsRefusedError, type Transport } from "./transport.ts";
import {
  cachingSha2Answer,
  ed25519Answer,
  nativePasswordAnswer,
  rsaPasswordAnswer,
} from "./auth.ts";

/** Capability flags (include/mysql_com.h). */
export const Cap = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_DATA: 0x200000,
} as const;

/** MariaDB's extended capability: type names and formats (`json`, `uuid`) in column definitions. */
const MARIADB_EXTENDED_METADATA = 0x8;
/** utf8mb4_unicode_ci. */
const UTF8MB4_UNICODE_CI = 224;
/** Largest packet the client will send (the server caps it with its max_allowed_packet). */
const MAX_CLIENT_PACKET = 1024 * 1024 * 1024;
/**
 * The reader's first buffer: it grows for larger packets. Small kept the export's peak memory
 * lowest at the same speed (measured on 1,000,000 rows: 66 MiB against 80 to 93 MiB with 256 KiB).
 */
const READER_BYTES = 4096;
/** Authentication exchanges accepted before the server is taken for a hostile one. */
const MAX_AUTH_ROUNDS = 8;

const decoder = new TextDecoder();

/** An ERR packet from the server. */
export class MysqlServerError extends Error {
  /** The server's error number (e.g. 1045). */
  readonly errno: number;
  /** SQLSTATE (e.g. `28000`), `HY000` when the server gave none. */
  readonly sqlState: string;
  /** The server's message. */
  readonly sqlMessage: string;
  /**
   * A server error.
   *
   * @param errno Error number.
   * @param sqlState SQLSTATE.
   * @param message The server's message.
   */
  constructor(errno: number, sqlState: string, message: string) {
    super(message);
    this.name = "MysqlServerError";
    this.errno = errno;
    this.sqlState = sqlState;
    this.sqlMessage = message;
  }
}

/**
 * Parses an ERR packet (its first byte 0xff).
 *
 * @returns The error.
 */
export function parseErr(buf: Uint8Array, start: number, end: number): MysqlServerError {
  const c = new Cursor(buf, start + 1, end);
  const errno = c.left >= 2 ? c.u16() : 0;
  let state = "HY000";
  if (c.left >= 6 && buf[c.pos] === 0x23) { // '#'
    c.u8();
    state = decoder.decode(c.bytes(5));
  }
  return new MysqlServerError(errno, state, decoder.decode(c.rest()));
}

/** The server asked for the password itself where that is not allowed; nothing was sent. */
export class PlainAuthRefusedError extends Error {
  /**
   * A refused request for the password.
   *
   * @param what What the server asked for.
   */
  constructor(what: string) {
    super(`the server asks for ${what}, and TLS did not verify the server`);
    this.name = "PlainAuthRefusedError";
  }
}

/** The server asked for an authentication plugin Hecate does not speak. */
export class UnsupportedAuthError extends Error {
  /**
   * An unsupported plugin.
   *
   * @param plugin Its name.
   */
  constructor(plugin: string) {
    super(`The server asks for ${plugin} authentication, which Hecate does not support`);
    this.name = "UnsupportedAuthError";
  }
}

/** The server's handshake (Protocol::HandshakeV10), the parts used. */
interface Handshake {
  connectionId: number;
  serverVersion: string;
  capabilities: number;
  /** MariaDB's extended capabilities (0 for MySQL). */
  mariadbCapabilities: number;
  nonce: Uint8Array;
  plugin: string;
}

function parseHandshake(r: PacketReader): Handshake {
  if (r.end > r.start && r.buf[r.start] === 0xff) throw parseErr(r.buf, r.start, r.end);
  const c = new Cursor(r.buf, r.start, r.end);
  const version = c.u8();
  if (version !== 10) throw new ProtocolError(`Unsupported protocol version ${version}`);
  const serverVersion = decoder.decode(c.cbytes());
  const connectionId = c.u32();
  const part1 = c.bytes(8).slice();
  c.u8();
  let capabilities = c.u16();
  let mariadbCapabilities = 0;
  let nonce = part1;
  let plugin = "mysql_native_password";
  if (c.left > 0) {
    c.u8(); // character set
    c.u16(); // status
    capabilities = (capabilities | (c.u16() << 16)) >>> 0;
    const dataLen = c.u8();
    c.bytes(6);
    const extra = c.u32();
    if (!(capabilities & Cap.LONG_PASSWORD)) mariadbCapabilities = extra;
    if (capabilities & Cap.SECURE_CONNECTION) {
      const part2 = c.bytes(Math.min(c.left, Math.max(13, dataLen - 8)));
      // The nonce is NUL-terminated on the wire; the terminator is not part of it.
      const p2 = part2[part2.length - 1] === 0 ? part2.subarray(0, part2.length - 1) : part2;
      nonce = new Uint8Array(part1.length + p2.length);
      nonce.set(part1);
      nonce.set(p2, part1.length);
    }
    if (capabilities & Cap.PLUGIN_AUTH) plugin = decoder.decode(c.cbytes(true));
  }
  if (!(capabilities & Cap.PROTOCOL_41)) throw new ProtocolError("The server is too old");
  return { connectionId, serverVersion, capabilities, mariadbCapabilities, nonce, plugin };
}

/** What the connection phase needs. */
export interface LoginOptions {
  /** Host name, address or Unix socket path. */
  host: string;
  /** TCP port. */
  port: number;
  /** The TLS policy. */
  tls: TlsSettings;
  /** Pinned CA (PEM) for `verify`, already read. */
  caPem?: string;
  /** Aborts a TCP connect in progress. */
  signal?: AbortSignal;
  /** Login name. */
  user: string;
  /** Password; empty when none. */
  password: string;
  /** Database, if any. */
  database?: string;
  /** The server's RSA public key (PEM) for `caching_sha2_password` without TLS, if pinned. */
  serverPublicKey?: string;
  /** Called once the transport is open (so a timeout can close it). */
  onTransport?: (t: Transport) => void;
}

/**
 * A session: the byte stream, a packet reader and writer. Once `dead`, nothing more may be sent.
 */
export class MysqlWire {
  /** The byte stream. */
  readonly transport: Transport;
  /** Incoming packets. */
  readonly reader: PacketReader;
  /** The next outgoing payload. */
  readonly writer: PacketWriter = new PacketWriter();
  /** The server's connection id. */
  connectionId = 0;
  /** Whether column definitions carry MariaDB's extended metadata. */
  extendedMetadata = false;
  /** Set when the connection is lost or closed, or the server broke the protocol. */
  dead = false;
  /** Bytes to send before the next command (pipelined session set-up), awaiting one OK. */
  #prelude: Uint8Array | null = null;

  private constructor(transport: Transport, reader: PacketReader) {
    this.transport = transport;
    this.reader = reader;
  }

  /**
   * Sends the writer's payload as the next packet(s) of the current exchange.
   *
   * @throws {ConnectionLostError} When the write fails.
   */
  async send(): Promise<void> {
    const { bytes, seq } = this.writer.frame(this.reader.seq);
    this.reader.seq = seq;
    await this.#write(bytes);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      await this.transport.write(bytes);
    } catch (e) {
      this.dead = true;
      const code = (e as { code?: unknown } | null)?.code;
      throw new ConnectionLostError(e instanceof Error ? e.message : String(e), {
        cause: e,
        ...(typeof code === "string" ? { code } : {}),
      });
    }
  }

  /**
   * Starts a command: sends the writer's payload as a new exchange (sequence 0), after the
   * pipelined set-up if one is pending, whose OK is then read first.
   *
   * @throws {MysqlServerError} When the pipelined set-up failed.
   */
  async command(): Promise<void> {
    const prelude = this.#prelude;
    this.#prelude = null;
    const { bytes, seq } = this.writer.frame(0);
    if (!prelude) {
      this.reader.seq = seq;
      await this.#write(bytes);
      return;
    }
    const both = new Uint8Array(prelude.length + bytes.length);
    both.set(prelude);
    both.set(bytes, prelude.length);
    await this.#write(both);
    this.reader.seq = 1;
    await this.next();
    const r = this.reader;
    if (r.buf[r.start] === 0xff) {
      // The command after it fails the same way: read its answer too, then report the first.
      const err = parseErr(r.buf, r.start, r.end);
      this.dead = true;
      throw err;
    }
    if (r.buf[r.start] !== 0x00) throw this.broken("Unexpected answer to the session set-up");
    this.reader.seq = seq;
  }

  /** Sends COM_QUIT (no answer), dropping a pipelined set-up not sent yet. */
  async quit(): Promise<void> {
    this.#prelude = null;
    this.writer.u8(0x01);
    await this.#write(this.writer.frame(0).bytes);
  }

  /**
   * Queues a statement to run before the next command, in the same write (its OK is read then).
   *
   * @param sql The statement (its result must be a plain OK).
   */
  pipeline(sql: string): void {
    this.writer.u8(0x03).text(sql);
    this.#prelude = this.writer.frame(0).bytes;
  }

  /** Waits for the next packet; marks the session dead when the connection is lost or broken. */
  async next(): Promise<void> {
    try {
      await this.reader.next();
    } catch (e) {
      this.dead = true;
      throw e;
    }
  }

  /** Marks the session dead and returns a protocol error to throw. */
  broken(message: string): ProtocolError {
    this.dead = true;
    return new ProtocolError(message);
  }

  /** Closes the transport. */
  close(): void {
    this.dead = true;
    this.transport.close();
  }

  /**
   * Opens a session: connects, reads the server's handshake, starts TLS if the policy wants it,
   * and logs in.
   *
   * @param o Where, how, and as whom.
   * @returns The logged-in session.
   * @throws {MysqlServerError} The server's refusal. {@link PlainAuthRefusedError},
   * {@link UnsupportedAuthError}, {@link TlsRefusedError}, {@link ProtocolError},
   * {@link ConnectionLostError}, the socket's or TLS's error.
   */
  static async open(o: LoginOptions): Promise<MysqlWire> {
    const socket = o.host.startsWith("/");
    const wantTls = !socket && o.tls.mode !== "disable";
    let hs: Handshake | undefined;
    let plainReader: PacketReader | undefined;
    const transport = await openMysqlTransport({
      host: o.host,
      port: o.port,
      tls: o.tls,
      ...(o.caPem === undefined ? {} : { caPem: o.caPem }),
      ...(o.signal ? { signal: o.signal } : {}),
      negotiate: async (plain) => {
        o.onTransport?.(plain);
        const r = new PacketReader(plain, READER_BYTES);
        await r.next();
        hs = parseHandshake(r);
        if (!wantTls) {
          plainReader = r;
          return false;
        }
        // Anything after the handshake would be a man in the middle's injection: the rest of the
        // session must come through TLS.
        if (r.buffered) throw new ProtocolError("Unexpected data before the TLS handshake");
        if (!(hs.capabilities & Cap.SSL)) throw new TlsRefusedError();
        const w = new PacketWriter();
        clientFlagsPrefix(w, hs, true, o.database !== undefined && o.database !== "");
        await plain.write(w.frame(r.seq).bytes);
        return true;
      },
    });
    o.onTransport?.(transport);
    const wire = new MysqlWire(transport, plainReader ?? new PacketReader(transport, READER_BYTES));
    wire.reader.seq = wantTls ? 2 : 1;
    try {
      await wire.#login(o, hs!, wantTls);
    } catch (e) {
      wire.close();
      throw e;
    }
    return wire;
  }

  async #login(o: LoginOptions, hs: Handshake, tls: boolean): Promise<void> {
    this.connectionId = hs.connectionId;
    this.extendedMetadata = (hs.mariadbCapabilities & MARIADB_EXTENDED_METADATA) !== 0;
    // The password itself may go only where TLS verified the server, or where the profile says.
    const secure = tls && o.tls.mode === "verify";
    const plainAllowed = secure || o.tls.allowPlainAuth === true;
    let plugin = KNOWN_PLUGINS.has(hs.plugin) ? hs.plugin : "mysql_native_password";
    let nonce = hs.nonce;
    const w = this.writer;
    const caps = clientFlagsPrefix(w, hs, tls, o.database !== undefined && o.database !== "");
    w.cstring(o.user);
    w.lenencBytes(await firstAnswer(plugin, o.password, nonce));
    if (caps & Cap.CONNECT_WITH_DB) w.cstring(o.database!);
    if (caps & Cap.PLUGIN_AUTH) w.cstring(plugin);
    if (caps & Cap.CONNECT_ATTRS) {
      const attrs = new PacketWriter();
      attrs.lenencBytes(encoder.encode("program_name")).lenencBytes(encoder.encode("hecate"));
      w.lenencBytes(attrs.frame(0).bytes.subarray(4));
    }
    await this.send();

    for (let round = 0; round < MAX_AUTH_ROUNDS; round++) {
      await this.next();
      const r = this.reader;
      const first = r.end > r.start ? r.buf[r.start]! : -1;
      if (first === 0x00) return;
      if (first === 0xff) throw parseErr(r.buf, r.start, r.end);
      if (first === 0xfe) {
        // AuthSwitchRequest: another plugin, with its own nonce.
        const c = new Cursor(r.buf, r.start + 1, r.end);
        plugin = decoder.decode(c.cbytes(true));
        const data = c.rest();
        nonce = (data[data.length - 1] === 0 ? data.subarray(0, data.length - 1) : data).slice();
        if (plugin === "mysql_clear_password") {
          if (!plainAllowed) throw new PlainAuthRefusedError("the password in cleartext");
          w.cstring(o.password);
        } else if (KNOWN_PLUGINS.has(plugin)) {
          w.bytes(await firstAnswer(plugin, o.password, nonce));
        } else {
          throw new UnsupportedAuthError(plugin);
        }
        await this.send();
        continue;
      }
      if (first === 0x01 && plugin === "caching_sha2_password") {
        const data = r.buf.subarray(r.start + 1, r.end);
        if (data.length === 1 && data[0] === 3) continue; // fast path accepted: OK follows
        if (data.length === 1 && data[0] === 4) {
          await this.#fullSha2(o, nonce, tls, secure, plainAllowed);
          continue;
        }
        throw this.broken("Unexpected caching_sha2_password message");
      }
      throw this.broken(`Unexpected packet during login (0x${first.toString(16)})`);
    }
    throw this.broken("Too many authentication exchanges");
  }

  /** `caching_sha2_password`'s full path: the password over verified TLS, or RSA-encrypted. */
  async #fullSha2(
    o: LoginOptions,
    nonce: Uint8Array,
    tls: boolean,
    secure: boolean,
    plainAllowed: boolean,
  ): Promise<void> {
    const w = this.writer;
    if (secure || (plainAllowed && tls)) {
      w.cstring(o.password);
      await this.send();
      return;
    }
    let pem = o.serverPublicKey;
    if (pem === undefined) {
      if (!plainAllowed) {
        throw new PlainAuthRefusedError(
          "the password (caching_sha2_password full authentication) without a pinned RSA key",
        );
      }
      w.u8(0x02); // request the server's public key
      await this.send();
      await this.next();
      const r = this.reader;
      if (r.buf[r.start] !== 0x01) throw this.broken("Expected the server's RSA public key");
      pem = decoder.decode(r.buf.subarray(r.start + 1, r.end));
    }
    let answer: Uint8Array;
    try {
      answer = await rsaPasswordAnswer(o.password, nonce, pem);
    } catch (e) {
      this.dead = true;
      throw new ProtocolError(
        `The server's RSA public key is not usable (${e instanceof Error ? e.name : "error"})`,
      );
    }
    w.bytes(answer);
    await this.send();
  }
}

const encoder = new TextEncoder();
const KNOWN_PLUGINS = new Set(["mysql_native_password", "caching_sha2_password", "client_ed25519"]);

function firstAnswer(plugin: string, password: string, nonce: Uint8Array): Promise<Uint8Array> {
  switch (plugin) {
    case "caching_sha2_password":
      return cachingSha2Answer(password, nonce.subarray(0, 20));
    case "client_ed25519":
      return ed25519Answer(password, nonce);
    default:
      return nativePasswordAnswer(password, nonce.subarray(0, 20));
  }
}

/** The 32 bytes that start both the SSLRequest and the HandshakeResponse41. */
function clientFlagsPrefix(
  w: PacketWriter,
  hs: Handshake,
  ssl: boolean,
  withDb: boolean,
): number {
  // No CLIENT_LOCAL_FILES: the server may never make us send a local file.
  let caps = Cap.LONG_PASSWORD | Cap.FOUND_ROWS | Cap.LONG_FLAG | Cap.PROTOCOL_41 |
    Cap.TRANSACTIONS | Cap.SECURE_CONNECTION | Cap.MULTI_STATEMENTS | Cap.MULTI_RESULTS |
    Cap.PS_MULTI_RESULTS | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_DATA | Cap.CONNECT_ATTRS;
  if (ssl) caps |= Cap.SSL;
  if (withDb) caps |= Cap.CONNECT_WITH_DB;
  caps &= hs.capabilities | Cap.SSL;
  w.u32(caps >>> 0).u32(MAX_CLIENT_PACKET).u8(UTF8MB4_UNICODE_CI).zeros(19);
  w.u32(hs.mariadbCapabilities & MARIADB_EXTENDED_METADATA);
  return caps;
}
