/**
 * The PostgreSQL CancelRequest: a 16-byte message on a fresh connection that asks the server to
 * interrupt the statement a session is running (protocol "Canceling Requests in Progress").
 *
 * @module
 */

import { connectPlain } from "./pg/transport.ts";

/** CancelRequest code: 1234 in the high 16 bits, 5678 in the low 16 bits. */
const CANCEL_REQUEST_CODE = 80877102;

/** Where and which session to cancel. */
export interface CancelTarget {
  /** Host name or address, or a directory holding the server's Unix socket (starts with `/`). */
  host: string;
  /** Port (also names the Unix socket). */
  port: number;
  /** The session's process id from BackendKeyData. */
  processId: number;
  /** The session's secret key from BackendKeyData. */
  secretKey: number;
}

/**
 * Sends a CancelRequest and waits until the server has closed that connection, which it does after
 * signalling the session; so when this resolves, a cancel cannot arrive later than the caller
 * expects.
 *
 * @param target The server and the session's key.
 * @throws When the server cannot be reached.
 *
 * @example
 * ```ts ignore
 * await sendCancelRequest({ host: "127.0.0.1", port: 5432, processId: 4242, secretKey: 99 });
 * ```
 */
export async function sendCancelRequest(target: CancelTarget): Promise<void> {
  const conn = await connectPlain(target.host, target.port, undefined);
  try {
    const message = new Uint8Array(16);
    const view = new DataView(message.buffer);
    view.setInt32(0, 16);
    view.setInt32(4, CANCEL_REQUEST_CODE);
    view.setInt32(8, target.processId);
    view.setInt32(12, target.secretKey);
    let sent = 0;
    while (sent < message.length) sent += await conn.write(message.subarray(sent));
    // The server answers nothing; end of stream means it is done with the request.
    const scratch = new Uint8Array(16);
    while (await conn.read(scratch) !== null) { /* nothing is expected */ }
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by the server
    }
  }
}
