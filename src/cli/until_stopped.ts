/**
 * Keeping a local server (`hecate ui`, `hecate serve`) in the foreground until Ctrl-C or SIGTERM,
 * then closing it so its stop record and the trail's flush finish before the process ends.
 *
 * @module
 */

/** A started server: its end, and how to close it. */
export interface StoppableServer {
  readonly server: { readonly finished: Promise<void> };
  close(): Promise<void>;
}

/**
 * Waits until the server has finished, closing it on SIGINT or SIGTERM.
 *
 * @param running The started server.
 * @param cleanup Runs once the server has finished, before the close is awaited (e.g. removing a
 * file the command made).
 */
export async function untilStopped(
  running: StoppableServer,
  cleanup?: () => Promise<void>,
): Promise<void> {
  let closing: Promise<void> | undefined;
  const stop = () => {
    closing ??= running.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    await running.server.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await cleanup?.();
  }
  await closing;
}
