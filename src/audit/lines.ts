/**
 * Reading a trail file line by line in large chunks, as bytes.
 *
 * @module
 */

const CHUNK = 4 * 1024 * 1024;

/**
 * The first `size` bytes of a file as runs of complete lines (each ending with `\n`), read in
 * chunks of about 4 MiB; returns the bytes after the last newline (empty when the region ends with
 * one). A run's bytes are valid until the next one is asked for.
 */
async function* lineRuns(path: string, size: number): AsyncGenerator<Uint8Array, Uint8Array> {
  const f = await Deno.open(path, { read: true });
  try {
    let carry = new Uint8Array(0);
    let pos = 0;
    while (pos < size) {
      const want = Math.min(CHUNK, size - pos);
      const buf = new Uint8Array(carry.length + want);
      buf.set(carry);
      let got = 0;
      while (got < want) {
        const n = await f.read(buf.subarray(carry.length + got, carry.length + want));
        if (n === null) break;
        got += n;
      }
      if (got === 0) break;
      pos += got;
      const end = carry.length + got;
      const cut = buf.lastIndexOf(0x0a, end - 1) + 1;
      if (cut > 0) yield buf.subarray(0, cut);
      carry = buf.slice(cut, end);
    }
    return carry;
  } finally {
    f.close();
  }
}

/**
 * Calls `fn` for each line of the first `size` bytes of a file (without the `\n`); the last call
 * has `complete` false when the region does not end with a newline. `fn` returns false to stop.
 * The line's bytes are only valid during the call.
 *
 * @param path The file.
 * @param size How many bytes of it to read.
 * @param fn Called per line.
 */
export async function eachLine(
  path: string,
  size: number,
  fn: (line: Uint8Array, complete: boolean) => boolean,
): Promise<void> {
  await eachLineRun(path, size, (run) => {
    let start = 0;
    for (let nl = run.indexOf(0x0a); nl >= 0; nl = run.indexOf(0x0a, start)) {
      if (!fn(run.subarray(start, nl), true)) return Promise.resolve(false);
      start = nl + 1;
    }
    return Promise.resolve(true);
  }, (rest) => fn(rest, false));
}

/**
 * Calls `fn` with runs of complete lines (each ending with `\n`) of the first `size` bytes of a
 * file, in chunks of about 4 MiB. `fn` may await, and returns false to stop.
 *
 * @param path The file.
 * @param size How many bytes of it to read.
 * @param fn Called per run; the bytes are only valid until its promise settles.
 * @param onTail Called with the bytes after the last newline, if any (a cut-off line).
 * @returns False when stopped, or when the region ends without a newline (a cut-off line).
 */
export async function eachLineRun(
  path: string,
  size: number,
  fn: (lines: Uint8Array) => Promise<boolean>,
  onTail?: (rest: Uint8Array) => void,
): Promise<boolean> {
  const runs = lineRuns(path, size);
  try {
    for (;;) {
      const r = await runs.next();
      if (r.done) {
        if (r.value.length > 0) onTail?.(r.value);
        return r.value.length === 0;
      }
      if (!(await fn(r.value))) return false;
    }
  } finally {
    await runs.return(new Uint8Array(0));
  }
}
