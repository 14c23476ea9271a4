/**
 * One PostgreSQL session on the wire: the transport, the message reader and writer, the cancel
 * key, and the startup handshake (StartupMessage, authentication, up to the first ReadyForQuery).
 *
 * @module
 */

import type { Transport } from "./transport.ts";
import { ConnectionLostError, MessageReader, ProtocolError } from "./reader.ts";
import { MessageWriter } from "./writer.ts";
import { int32, Msg, parseError, PgServerError } from "./backend.ts";
import { AuthProtocolError, md5Answer, ScramClient } from "./auth.ts";

/** What the startup handshake needs. */
export interface StartupOptions {
  /** The login name. */
  user: string;
  /** The database. */
  database: string;
  /** The password; undefined or empty when none was given. */
  password: string | undefined;
  /** Further run-time parameters for the StartupMessage (`options`, `application_name`...). */
  params: ReadonlyArray<readonly [string, string]>;
  /**
   * Whether a cleartext or MD5 password request may be answered: only when the server was
   * authenticated by TLS (`verify`) or the profile explicitly allows it. SCRAM is always answered.
   */
  plainAuthAllowed: boolean;
}

/**
 * The server asked for the password in cleartext or as MD5 over a connection whose peer TLS did not
 * authenticate, and the profile does not allow that; nothing was sent.
 */
export class PlainAuthRefusedError extends Error {
  /** The method the server asked for (`cleartext` or `MD5`). */
  readonly method: string;
  /**
   * A refused plain password request.
   *
   * @param method `cleartext` or `MD5`.
   */
  constructor(method: string) {
    super(
      `the server asks for the password in ${method}, and TLS did not verify the server`,
    );
    this.name = "PlainAuthRefusedError";
    this.method = method;
  }
}

/** The server asked for a password and none was given; nothing was sent. */
export class PasswordMissingError extends Error {
  constructor() {
    super("The server asks for a password and none was given");
    this.name = "PasswordMissingError";
  }
}

/** The server asked for an authentication method this client does not speak. */
export class UnsupportedAuthError extends Error {
  /**
   * An unsupported authentication method.
   *
   * @param method The method the server asked for.
   */
  constructor(method: string) {
    super(`The server asks for ${method} authentication, which Hecate does not support`);
    this.name = "UnsupportedAuthError";
  }
}

const METHOD_NAMES: Record<number, string> = {
  2: "Kerberos V5",
  6: "SCM credential",
  7: "GSSAPI",
  9: "SSPI",
};

/**
 * A session: the byte stream, a reader and a writer over it, and the key that cancels its
 * statements. Once `dead`, nothing more may be sent or read.
 */
export class PgWire {
  /** The byte stream. */
  readonly transport: Transport;
  /** Backend messages. */
  readonly reader: MessageReader;
  /** Frontend messages (built, then sent with {@link PgWire.send}). */
  readonly writer: MessageWriter = new MessageWriter();
  /** The backend's process id (BackendKeyData), 0 until known. */
  processId = 0;
  /** The backend's cancel secret (BackendKeyData), 0 until known. */
  secretKey = 0;
  /** Set when the connection is lost or closed, or the server broke the protocol. */
  dead = false;

  /**
   * A session over a connected transport.
   *
   * @param transport The connected byte stream.
   */
  constructor(transport: Transport) {
    this.transport = transport;
    this.reader = new MessageReader(transport);
  }

  /**
   * Sends what the writer holds.
   *
   * @throws {ConnectionLostError} When the write fails.
   */
  async send(): Promise<void> {
    const bytes = this.writer.take();
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

  /** Waits for the next message; marks the session dead when the connection is lost. */
  async next(): Promise<number> {
    try {
      return await this.reader.next();
    } catch (e) {
      this.dead = true;
      throw e;
    }
  }

  /** Closes the transport. */
  close(): void {
    this.dead = true;
    this.transport.close();
  }

  /**
   * Runs the startup handshake up to the first ReadyForQuery.
   *
   * @param options User, database, password and run-time parameters.
   * @param onPasswordAsked Called when the server asks for a password (for the error message when
   * none was given).
   * @throws {PgServerError} The server's refusal. {@link PasswordMissingError},
   * {@link UnsupportedAuthError}, {@link PlainAuthRefusedError}, {@link AuthProtocolError},
   * {@link ConnectionLostError},
   * {@link ProtocolError}.
   */
  async startup(options: StartupOptions, onPasswordAsked: () => void): Promise<void> {
    const { user, password } = options;
    this.writer.startup([["user", user], ["database", options.database], ...options.params]);
    await this.send();
    let scram: ScramClient | null = null;
    const needPassword = (): string => {
      onPasswordAsked();
      if (!password) throw new PasswordMissingError();
      return password;
    };
    for (;;) {
      const type = await this.next();
      const r = this.reader;
      switch (type) {
        case Msg.Authentication: {
          // Nothing may be read past the body: the buffer goes on with the next messages.
          if (r.end - r.start < 4) throw new ProtocolError("Malformed authentication request");
          const code = int32(r.buf, r.start);
          const body = r.buf.subarray(r.start + 4, r.end);
          if (code === 0) {
            // A server that skips SASLFinal must not be taken for one that proved itself.
            if (scram && !scram.verified) {
              throw new AuthProtocolError("SCRAM: the server ended the exchange without proof");
            }
            break;
          }
          if (scram && code !== 11 && code !== 12) {
            throw new AuthProtocolError(`SCRAM: unexpected authentication message ${code}`);
          }
          if ((code === 3 || code === 5) && !options.plainAuthAllowed) {
            // Whoever answers in the server's place would get the password or a hash that logs
            // in to the real server: refuse before anything of it is sent.
            throw new PlainAuthRefusedError(code === 3 ? "cleartext" : "MD5");
          }
          if (code === 3) {
            this.writer.password(needPassword());
            await this.send();
          } else if (code === 5) {
            if (body.length !== 4) throw new ProtocolError("Malformed MD5 authentication request");
            this.writer.password(await md5Answer(user, needPassword(), body.slice(0, 4)));
            await this.send();
          } else if (code === 10) {
            const offered = new TextDecoder().decode(body).split("\0").filter((m) => m !== "");
            const mechanism = ScramClient.choose(offered);
            scram = new ScramClient(needPassword());
            this.writer.saslInitial(mechanism, scram.clientFirst());
            await this.send();
          } else if (code === 11) {
            if (!scram) throw new AuthProtocolError("SCRAM: unexpected SASLContinue");
            this.writer.saslResponse(await scram.clientFinal(body.slice()));
            await this.send();
          } else if (code === 12) {
            if (!scram) throw new AuthProtocolError("SCRAM: unexpected SASLFinal");
            scram.verifyServerFinal(body.slice());
          } else {
            throw new UnsupportedAuthError(METHOD_NAMES[code] ?? `method ${code}`);
          }
          break;
        }
        case Msg.BackendKeyData:
          if (r.end - r.start < 8) throw new ProtocolError("Malformed BackendKeyData");
          this.processId = int32(r.buf, r.start);
          this.secretKey = int32(r.buf, r.start + 4);
          break;
        case Msg.ErrorResponse:
          throw parseError(r.buf, r.start, r.end);
        case Msg.ReadyForQuery:
          if (scram && !scram.verified) {
            throw new AuthProtocolError("SCRAM: the server ended the exchange without proof");
          }
          return;
        case Msg.ParameterStatus:
        case Msg.NoticeResponse:
        case Msg.NegotiateProtocolVersion:
          break;
        default:
          throw new ProtocolError(
            `Unexpected message during startup (type ${String.fromCharCode(type)})`,
          );
      }
    }
  }
}

export { ConnectionLostError, PgServerError, ProtocolError };
