/**
 * Process helpers shared by the test server fixtures (PostgreSQL, MariaDB, sshd): free loopback
 * ports, random names, and the watchdog that cleans up a server if the test process dies.
 *
 * @module
 */

/**
 * A port that was free on 127.0.0.1 a moment ago.
 *
 * @param avoid The service's well-known port, never handed out (the system service may use it).
 * @returns The port.
 */
export function freePort(avoid: number): number {
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (port !== avoid) return port;
  }
}

/**
 * Random lowercase hex.
 *
 * @param bytes How many random bytes.
 * @returns Twice as many hex digits.
 */
export function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Starts `sh` in its own session that waits for this process to end (or for `root` to go), then
 * runs `stop` and deletes `root`. A normal stop() kills it; it is unref'd so it never holds the
 * test process open.
 *
 * @param root The server's temporary directory (`$2` in `stop`).
 * @param stop Shell lines that stop the server; `$3`, `$4`, ... are `args`.
 * @param args Extra arguments for `stop`.
 * @returns The watchdog process.
 */
export function spawnWatchdog(root: string, stop: string, args: string[] = []): Deno.ChildProcess {
  const script = [
    "trap '' HUP INT",
    'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done',
    stop,
    'rm -rf "$2"',
  ].join("\n");
  const child = new Deno.Command("/usr/bin/setsid", {
    args: ["/bin/sh", "-c", script, "sh", String(Deno.pid), root, ...args],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" },
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  return child;
}
