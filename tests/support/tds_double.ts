/**
 * A SQL Server TEST DOUBLE: a scripted TDS 7.4 responder on 127.0.0.1, standing in for Microsoft
 * SQL Server (which cannot be installed here). It is not a database: tests register canned answers
 * per statement text, and the double records what clients sent so tests can assert on it.
 *
 * What it speaks: PRELOGIN (encryption off, or TLS with the handshake wrapped in PRELOGIN packets
 * and everything after it encrypted), LOGIN7 with SQL login (checks the de-obfuscated password),
 * NTLM through SSPI (checks the NTLMv2 response against a known password), the FEDAUTH feature
 * extension with an access token (checks the token), SQL batches and RPC `sp_executesql` (records
 * the statement and each parameter), result sets (COLMETADATA, ROW, NBCROW), DONE / DONEINPROC /
 * DONEPROC with row counts, ERROR tokens (login failed 18456, unknown statement), and ATTENTION
 * acknowledgement (DONE with the attention bit).
 *
 * What it does not: run SQL, transactions, MARS, login-only encryption, TDS 8 strict encryption,
 * ADAL/MSAL federated workflows (only the security-token library), routing, or any error a real
 * server would raise beyond those above.
 *
 * @example
 * ```ts
 * await using db = await startTdsDouble({ logins: { sa: "Secret-1" } });
 * db.answer("select 1 as one", { sets: [{ columns: [{ name: "one", type: "int" }], rows: [[1]] }] });
 * ```
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { Duplex } from "node:stream";
import { randomBytes } from "node:crypto";
import { concat, type Message, PacketBuffer, packets, PacketType, Writer } from "./tds/wire.ts";
import {
  type CannedColumn,
  type CannedValue,
  collationChange,
  colMetadata,
  done,
  DoneStatus,
  envChange,
  error,
  fedAuthAck,
  loginAck,
  row,
  sspi,
} from "./tds/tokens.ts";
import { type Login7, ntlmChallenge, parseLogin7, verifyNtlm } from "./tds/login.ts";
import { parseBatch, parseRpc, type RecordedRequest } from "./tds/requests.ts";

export type { CannedColumn, CannedValue } from "./tds/tokens.ts";
export type { RecordedParam, RecordedRequest } from "./tds/requests.ts";

/** A canned result set: its columns and its rows (an array, or a function making an iterable). */
export interface CannedSet {
  columns: CannedColumn[];
  rows: CannedValue[][] | (() => Iterable<CannedValue[]>);
}

/** The double's answer to one statement text. */
export interface CannedAnswer {
  /** Result sets, in order. */
  sets?: CannedSet[];
  /** Row counts of statements without results, sent after the sets. */
  rowCounts?: number[];
  /** A server error instead of results. */
  error?: { number: number; message: string; severity?: number };
  /** Wait this long before answering (to test timeouts and cancellation). */
  delayMs?: number;
  /** Leave the count bit out of the DONE tokens after sets, as with SET NOCOUNT ON. */
  noCount?: boolean;
}

/** Options for {@link startTdsDouble}. */
export interface TdsDoubleOptions {
  /** SQL logins: user name -> password. */
  logins?: Record<string, string>;
  /** The one NTLM account the double accepts. */
  ntlm?: { domain: string; user: string; password: string };
  /** Access tokens the double accepts through FEDAUTH. */
  tokens?: string[];
  /** TLS certificate and key (PEM): when given, clients asking for encryption get TLS. */
  tls?: { certPem: string; keyPem: string };
  /**
   * Keep the connection open after a login-failed answer until the client closes it, instead of
   * closing it at once as SQL Server does. @default {false}
   */
  keepOpenAfterLoginFailure?: boolean;
}

/** A login attempt as the double saw it. */
export interface RecordedLogin {
  method: "sql" | "ntlm" | "token";
  user: string;
  ok: boolean;
  /** Whether the login travelled over TLS. */
  tls: boolean;
  /** Whether LOGIN7 asked ApplicationIntent=ReadOnly (TypeFlags fReadOnlyIntent). */
  readOnlyIntent: boolean;
}

/** A running double. */
export interface TdsDouble {
  host: "127.0.0.1";
  port: number;
  /** Requests received (batches and RPCs), in order. */
  readonly requests: RecordedRequest[];
  /** Login attempts, in order. */
  readonly logins: RecordedLogin[];
  /** ATTENTION signals received. */
  readonly attentions: number;
  /** Rows sent so far across all answers (to see streaming stop under backpressure). */
  readonly rowsSent: number;
  /** Registers the answer for a statement text (exact match). */
  answer(sql: string, answer: CannedAnswer): void;
  /** Replaces the accepted access tokens. */
  setTokens(tokens: string[]): void;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What `SELECT 1` returns, for clients' ping. */
const SELECT_1: CannedAnswer = { sets: [{ columns: [{ name: "", type: "int" }], rows: [[1]] }] };

const ENCRYPT = { OFF: 0, ON: 1, NOT_SUP: 2, REQ: 3 } as const;

function preloginResponse(encryption: number): Uint8Array {
  const opts: [number, Uint8Array][] = [
    [0x00, new Uint8Array([16, 0, 0x10, 0x00, 0, 0])], // version 16.0.4096.0
    [0x01, new Uint8Array([encryption])],
    [0x02, new Uint8Array([0])],
    [0x03, new Uint8Array(0)],
    [0x04, new Uint8Array([0])],
  ];
  const w = new Writer();
  let offset = opts.length * 5 + 1;
  for (const [token, data] of opts) {
    w.u8(token).u16be(offset).u16be(data.length);
    offset += data.length;
  }
  w.u8(0xff);
  for (const [, data] of opts) w.bytes(data);
  return w.finish();
}

function preloginEncryption(payload: Uint8Array): number {
  for (let i = 0; payload[i] !== 0xff && i < payload.length; i += 5) {
    if (payload[i] === 0x01) {
      const off = (payload[i + 1]! << 8) | payload[i + 2]!;
      return payload[off] ?? ENCRYPT.NOT_SUP;
    }
  }
  return ENCRYPT.NOT_SUP;
}

class DoubleState {
  readonly requests: RecordedRequest[] = [];
  readonly logins: RecordedLogin[] = [];
  attentions = 0;
  rowsSent = 0;
  readonly answers = new Map<string, CannedAnswer>();
  /** SQL logins as they are now: `ALTER LOGIN` changes them (see {@link alterLogin}). */
  readonly passwords: Map<string, string>;
  constructor(readonly options: TdsDoubleOptions, public tokens: string[]) {
    this.passwords = new Map(Object.entries(options.logins ?? {}));
  }
}

/** An N'...' literal's text (doubled quotes undone). */
function literal(s: string): string {
  return s.replaceAll("''", "'");
}

/**
 * `ALTER LOGIN [name] WITH PASSWORD = N'new' [OLD_PASSWORD = N'old']` as SQL Server enforces it:
 * a login changing itself must give its current password; another login needs an administrator
 * (the double's administrator is `sa`). Returns undefined when the batch is not an ALTER LOGIN.
 */
function alterLogin(
  sql: string,
  state: DoubleState,
  sessionUser: string | undefined,
): CannedAnswer | undefined {
  const m =
    /^ALTER LOGIN \[((?:[^\]]|\]\])+)\] WITH PASSWORD = N'((?:[^']|'')*)'(?: OLD_PASSWORD = N'((?:[^']|'')*)')?$/
      .exec(sql.trim());
  if (!m) return undefined;
  const name = m[1]!.replaceAll("]]", "]");
  const current = state.passwords.get(name);
  const refused = { error: { number: 15151, message: `Cannot alter the login '${name}'` } };
  if (current === undefined) return refused;
  if (sessionUser === name) {
    if (m[3] === undefined || literal(m[3]) !== current) return refused;
  } else if (sessionUser !== "sa") return refused;
  state.passwords.set(name, literal(m[2]!));
  return {};
}

/** One client connection. */
class Session {
  readonly #socket: net.Socket;
  readonly #state: DoubleState;
  readonly #in = new PacketBuffer();
  readonly #queue: Message[] = [];
  #partial: Uint8Array[] = [];
  #partialType = 0;
  #wake: (() => void) | undefined;
  #closed = false;
  #attention = false;
  #busy = false;
  /** The SQL login of this session, once logged in. */
  #user: string | undefined;
  /** After the TLS handshake: the engine's encrypted side and its cleartext socket. */
  #encrypted: Duplex | undefined;
  #cleartext: tls.TLSSocket | undefined;
  #handshaking = false;
  #handshakeOut: Uint8Array[] = [];

  constructor(socket: net.Socket, state: DoubleState) {
    this.#socket = socket;
    this.#state = state;
    socket.on("data", (d: Uint8Array) => this.#onRaw(d));
    socket.on("close", () => this.#close());
    socket.on("error", () => this.#close());
  }

  #close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  #onRaw(d: Uint8Array): void {
    if (this.#encrypted && !this.#handshaking) {
      this.#encrypted.push(d);
      return;
    }
    this.#in.push(new Uint8Array(d));
    this.#pump();
  }

  #pump(): void {
    for (;;) {
      if (this.#handshaking && this.#in.peek() !== undefined && this.#in.peek() !== 0x12) {
        // A raw TLS record: the handshake is over and the client now speaks TLS directly.
        this.#handshaking = false;
        this.#encrypted!.push(this.#in.takeAll());
        return;
      }
      const p = this.#in.take();
      if (!p) return;
      if (p.type === PacketType.ATTENTION) {
        this.#state.attentions++;
        if (this.#busy) this.#attention = true;
        else void this.#send(this.#doneAttention());
        continue;
      }
      this.#partial.push(p.payload);
      this.#partialType = p.type;
      if (p.eom) {
        this.#queue.push({ type: this.#partialType, payload: concat(this.#partial) });
        this.#partial = [];
        this.#wake?.();
      }
    }
  }

  async #next(): Promise<Message | undefined> {
    while (this.#queue.length === 0) {
      if (this.#closed) return undefined;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = undefined;
    }
    return this.#queue.shift();
  }

  #doneAttention(): Uint8Array {
    const w = new Writer();
    done(w, "done", DoneStatus.ATTN);
    return packets(PacketType.TABULAR_RESULT, w.finish());
  }

  /** Writes bytes to the client (through TLS once it is up), waiting while the socket is full. */
  async #send(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return;
    const target: net.Socket | tls.TLSSocket = this.#cleartext ?? this.#socket;
    if (!target.write(bytes)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          target.off("drain", done);
          target.off("close", done);
          resolve();
        };
        target.on("drain", done);
        target.on("close", done);
      });
    }
  }

  async #sendMessage(w: Writer): Promise<void> {
    await this.#send(packets(PacketType.TABULAR_RESULT, w.finish()));
  }

  /** Runs the whole conversation. */
  async run(): Promise<void> {
    try {
      const pre = await this.#next();
      if (!pre || pre.type !== PacketType.PRELOGIN) return;
      const wanted = preloginEncryption(pre.payload);
      const useTls = this.#state.options.tls !== undefined && wanted === ENCRYPT.ON;
      const answer = useTls
        ? ENCRYPT.ON
        : this.#state.options.tls && wanted !== ENCRYPT.ON
        ? ENCRYPT.REQ
        : ENCRYPT.NOT_SUP;
      await this.#send(packets(PacketType.TABULAR_RESULT, preloginResponse(answer)));
      if (answer === ENCRYPT.REQ) {
        while (await this.#next()) { /* the client gives up; let it close */ }
        return;
      }
      if (useTls) await this.#handshake();
      if (!(await this.#login(useTls))) {
        if (this.#state.options.keepOpenAfterLoginFailure) {
          while (await this.#next()) { /* ignore anything further */ }
        }
        return;
      }
      for (;;) {
        const m = await this.#next();
        if (!m) return;
        if (m.type === PacketType.SQL_BATCH) await this.#respond(parseBatch(m.payload));
        else if (m.type === PacketType.RPC) await this.#respond(parseRpc(m.payload));
      }
    } catch (e) {
      if (Deno.env.get("TDS_DOUBLE_DEBUG")) console.error("TDS double:", e);
      // A malformed message or a dropped client ends this session only.
    } finally {
      // end(), not destroy(): the last answer (e.g. login failed) must reach the client first.
      if (this.#cleartext) this.#cleartext.end();
      else this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 1000).unref?.();
    }
  }

  /** TLS handshake with the records wrapped in PRELOGIN messages, one answer per message. */
  async #handshake(): Promise<void> {
    const { certPem, keyPem } = this.#state.options.tls!;
    this.#encrypted = new Duplex({
      read() {},
      write: (chunk: Uint8Array, _enc, cb) => {
        if (this.#handshaking) this.#handshakeOut.push(new Uint8Array(chunk));
        else this.#socket.write(chunk);
        cb();
      },
    });
    this.#handshaking = true;
    const secure = tls.createSecureContext({ cert: certPem, key: keyPem });
    const clear = new tls.TLSSocket(this.#encrypted, { isServer: true, secureContext: secure });
    let isSecure = false;
    clear.on("secure", () => isSecure = true);
    clear.on("error", () => this.#close());
    clear.on("data", (d: Uint8Array) => {
      this.#in.push(new Uint8Array(d));
      this.#pump();
    });
    this.#cleartext = clear;
    while (!isSecure) {
      const m = await this.#next();
      if (!m || m.type !== PacketType.PRELOGIN) throw new Error("handshake aborted");
      this.#encrypted.push(m.payload);
      // Gather the engine's whole flight before answering with one PRELOGIN message.
      let quiet = 0;
      while (quiet < 3 && !this.#closed) {
        const before = this.#handshakeOut.length;
        await new Promise((r) => setTimeout(r, 10));
        quiet = this.#handshakeOut.length === before && before > 0 ? quiet + 1 : 0;
        if (this.#handshakeOut.length === 0 && isSecure) break;
      }
      const flight = concat(this.#handshakeOut);
      this.#handshakeOut = [];
      if (flight.length) this.#socket.write(packets(PacketType.PRELOGIN, flight));
    }
  }

  async #login(overTls: boolean): Promise<boolean> {
    const m = await this.#next();
    if (!m || m.type !== PacketType.LOGIN7) return false;
    const login = parseLogin7(m.payload);
    const opts = this.#state.options;
    let method: RecordedLogin["method"] = "sql";
    let user = login.userName;
    let ok = false;
    if (login.sspi) {
      method = "ntlm";
      const challenge = new Uint8Array(randomBytes(8));
      const w = new Writer();
      sspi(w, ntlmChallenge(opts.ntlm?.domain ?? "DOUBLE", challenge));
      await this.#sendMessage(w);
      const auth = await this.#next();
      if (!auth || auth.type !== PacketType.SSPI) return false;
      const result = verifyNtlm(auth.payload, challenge, opts.ntlm?.password ?? "");
      user = `${result.domain}\\${result.user}`;
      ok = opts.ntlm !== undefined && result.valid &&
        result.user.toUpperCase() === opts.ntlm.user.toUpperCase() &&
        result.domain.toUpperCase() === opts.ntlm.domain.toUpperCase();
    } else if (login.fedAuthToken !== undefined) {
      method = "token";
      user = "(token)";
      ok = this.#state.tokens.includes(login.fedAuthToken);
    } else {
      const expected = this.#state.passwords.get(login.userName);
      ok = expected !== undefined && expected === login.password;
      if (ok) this.#user = login.userName;
    }
    this.#state.logins.push({
      method,
      user,
      ok,
      tls: overTls,
      readOnlyIntent: login.readOnlyIntent,
    });
    const w = new Writer();
    if (!ok) {
      error(w, {
        number: 18456,
        severity: 14,
        message: `Login failed for user '${
          method === "token" ? "<token-identified principal>" : user
        }'.`,
      });
      done(w, "done", DoneStatus.ERROR);
      await this.#sendMessage(w);
      return false;
    }
    this.#loggedIn(w, login);
    await this.#sendMessage(w);
    return true;
  }

  #loggedIn(w: Writer, login: Login7): void {
    envChange(w, 1, login.database || "master", "master");
    collationChange(w);
    envChange(w, 4, "4096", "4096");
    loginAck(w);
    if (login.fedAuthToken !== undefined) fedAuthAck(w);
    done(w, "done", DoneStatus.FINAL);
  }

  async #respond(req: RecordedRequest): Promise<void> {
    this.#state.requests.push(req);
    const rpc = req.kind === "rpc";
    const stmtDone = rpc ? "inproc" : "done";
    // Session settings (tedious sends a batch of SET statements after login) just succeed.
    const settingsOnly = req.kind === "batch" && /^(\s*set [^\n]+\n?)+$/i.test(req.sql);
    const answer =
      (req.kind === "batch" ? alterLogin(req.sql, this.#state, this.#user) : undefined) ??
        this.#state.answers.get(req.sql) ??
        (settingsOnly ? {} : /^select 1;?$/i.test(req.sql.trim()) ? SELECT_1 : undefined);
    this.#busy = true;
    this.#attention = false;
    try {
      let w = new Writer();
      if (answer?.delayMs) {
        const until = Date.now() + answer.delayMs;
        while (Date.now() < until && !this.#attention && !this.#closed) {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      if (this.#attention) {
        await this.#send(packets(PacketType.TABULAR_RESULT, new Uint8Array(0)));
        return;
      }
      if (!answer || answer.error) {
        const e = answer?.error ??
          { number: 2812, message: `The test double has no answer for this statement` };
        error(w, { number: e.number, message: e.message, severity: e.severity ?? 16 });
        done(w, rpc ? "proc" : "done", DoneStatus.ERROR);
        await this.#sendMessage(w);
        return;
      }
      const sets = answer.sets ?? [];
      const counts = answer.rowCounts ?? [];
      let pending: Uint8Array[] = [];
      const flush = async () => {
        pending.push(w.finish());
        w = new Writer();
        const all = concat(pending);
        pending = [];
        // Send full packets now, keep the tail so the last packet carries the end of message.
        const cut = all.length - (all.length % 4088);
        if (cut > 0) {
          const body = all.subarray(0, cut);
          const out = packets(PacketType.TABULAR_RESULT, body);
          for (let i = 0; i < out.length; i += 4096) out[i + 1] = 0; // not the end yet
          await this.#send(out);
        }
        pending.push(all.slice(cut));
      };
      for (const [i, set] of sets.entries()) {
        colMetadata(w, set.columns);
        let n = 0;
        const rows = typeof set.rows === "function" ? set.rows() : set.rows;
        for (const r of rows) {
          if (this.#attention || this.#closed) {
            // End this response here; the acknowledgement is the answer to the attention
            // message, so it travels as a message of its own (sent in `finally`).
            pending.push(w.finish());
            await this.#send(packets(PacketType.TABULAR_RESULT, concat(pending)));
            return;
          }
          row(w, set.columns, r);
          n++;
          this.#state.rowsSent++;
          if (w.length > 32_000) await flush();
        }
        const last = i === sets.length - 1 && counts.length === 0 && !rpc;
        const count = answer.noCount ? 0 : DoneStatus.COUNT;
        done(w, stmtDone, (last ? 0 : DoneStatus.MORE) | count, answer.noCount ? 0 : n);
      }
      for (const [i, n] of counts.entries()) {
        const last = i === counts.length - 1 && !rpc;
        done(w, stmtDone, (last ? 0 : DoneStatus.MORE) | DoneStatus.COUNT, n);
      }
      if (rpc) {
        w.u8(0x79).i32(0); // RETURNSTATUS
        done(w, "proc", DoneStatus.FINAL);
      } else if (sets.length === 0 && counts.length === 0) {
        done(w, "done", DoneStatus.FINAL);
      }
      pending.push(w.finish());
      await this.#send(packets(PacketType.TABULAR_RESULT, concat(pending)));
    } finally {
      this.#busy = false;
      if (this.#attention) {
        this.#attention = false;
        await this.#send(this.#doneAttention());
      }
    }
  }
}

/**
 * Starts the double on 127.0.0.1 with a free port.
 *
 * @param options Accounts, tokens and TLS.
 * @returns The running double.
 */
export async function startTdsDouble(options: TdsDoubleOptions = {}): Promise<TdsDouble> {
  const state = new DoubleState(options, [...(options.tokens ?? [])]);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    void new Session(socket, state).run();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    host: "127.0.0.1",
    port,
    get requests() {
      return state.requests;
    },
    get logins() {
      return state.logins;
    },
    get attentions() {
      return state.attentions;
    },
    get rowsSent() {
      return state.rowsSent;
    },
    answer: (sql, answer) => void state.answers.set(sql, answer),
    setTokens: (tokens) => void (state.tokens = [...tokens]),
    close,
    [Symbol.asyncDispose]: close,
  };
}
