/**
 * Driving the web console from tests with a plain HTTP client: start it on a throwaway home, log
 * in through the one-time URL, keep the cookie and CSRF token, and send raw requests (for a
 * forged Host header, which fetch will not send).
 */

import assert from "node:assert/strict";
import {
  type ConsoleOptions,
  type RunningConsole,
  startConsole,
} from "../../src/console/server.ts";

/** A logged-in (or not yet) browser stand-in. */
export interface ConsoleClient {
  console: RunningConsole;
  /** Cookie header value, once a session exists. */
  cookie: string | undefined;
  /** The session's CSRF token (read from the last page). */
  csrf: string | undefined;
  /** Sends a request with the cookie and the right Origin (unless headers say otherwise). */
  request(path: string, init?: RequestInit & { form?: Record<string, string> }): Promise<Response>;
  /** Stops the console. */
  close(): Promise<void>;
}

/** The Set-Cookie cookie pair of a response, if any. */
export function cookieOf(res: Response): string | undefined {
  const set = res.headers.get("set-cookie");
  return set ? set.split(";")[0] : undefined;
}

/** The CSRF token a page carries in `data-csrf`. */
export function csrfOf(page: string): string | undefined {
  return /data-csrf="([^"]+)"/.exec(page)?.[1];
}

/**
 * Starts a console for `home` and returns a client that has not logged in yet.
 *
 * @param home The vault home.
 * @param options Limits, lockout.
 * @returns The client.
 */
export async function consoleClient(
  home: string,
  options: ConsoleOptions = {},
): Promise<ConsoleClient> {
  const c = await startConsole({ home, ...options });
  const client: ConsoleClient = {
    console: c,
    cookie: undefined,
    csrf: undefined,
    async request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("origin") && (init.method ?? "GET") !== "GET") {
        headers.set("origin", c.origin);
      }
      if (client.cookie && !headers.has("cookie")) headers.set("cookie", client.cookie);
      let body = init.body ?? null;
      if (init.form) {
        body = new URLSearchParams(init.form).toString();
        headers.set("content-type", "application/x-www-form-urlencoded");
      }
      const res = await fetch(c.origin + path, { ...init, headers, body, redirect: "manual" });
      const cookie = cookieOf(res);
      if (cookie) client.cookie = cookie;
      return res;
    },
    close: () => c.close(),
  };
  return client;
}

/**
 * Logs in: spends the login URL, reads the login page's CSRF token, posts the password, and
 * reads the first page's token.
 *
 * @param client The client.
 * @param password The master password.
 * @returns The response to the password post.
 */
export async function login(client: ConsoleClient, password: string): Promise<Response> {
  const start = await client.request(new URL(client.console.loginUrl).pathname);
  await start.body?.cancel();
  assert.equal(start.status, 303, "the login URL starts a session");
  return await unlock(client, password);
}

/**
 * Unlocks a session that exists (the login URL already spent, or after a lock).
 *
 * @param client The client.
 * @param password The master password.
 * @returns The response to the password post.
 */
export async function unlock(client: ConsoleClient, password: string): Promise<Response> {
  const form = await client.request("/console/login");
  client.csrf = csrfOf(await form.text());
  assert.ok(client.csrf, "the login page carries a CSRF token");
  const res = await client.request("/console/login", {
    method: "POST",
    form: { csrf: client.csrf, password },
  });
  await res.body?.cancel();
  if (res.status === 303 && res.headers.get("location") === "/console/profiles") {
    const page = await client.request("/console/profiles");
    client.csrf = csrfOf(await page.text());
  }
  return res;
}

/**
 * Sends one raw HTTP/1.1 request over TCP (fetch refuses to forge a Host header).
 *
 * @param port The console's port.
 * @param lines The request line and headers, without the final blank line.
 * @returns The status code and the whole response text.
 */
export async function rawRequest(
  port: number,
  lines: string[],
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(lines.join("\r\n") + "\r\nConnection: close\r\n\r\n"),
    );
    let text = "";
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
  } finally {
    conn.close();
  }
}
