/**
 * The result of `query()`: rows as objects, streamed, with the columns available as a promise.
 *
 * @module
 */

import type { Column, ResultSet } from "../db/driver.ts";

/**
 * One row keyed by column name.
 *
 * @example
 * ```ts ignore
 * const rows: Row[] = await db.query("select 1 as one").toArray();
 * console.log(rows[0]?.one);
 * ```
 */
export type Row = Record<string, unknown>;

/** Produces rows and reports the columns once they are known. */
export type RowSource = (onColumns: (columns: Column[]) => void) => AsyncGenerator<Row>;

/**
 * Rows of a statement's first result set, streamed as objects keyed by column name. Iterate it
 * once with `for await`; `columns` resolves when the server has described the result (before the
 * first row). Reading `columns` starts the statement; finish by iterating (or breaking out of
 * the loop) so the connection is freed.
 *
 * @example Columns and rows
 * ```ts ignore
 * const result = db.query("select 1 as one");
 * console.log((await result.columns).map((c) => c.name)); // ["one"]
 * for await (const row of result) console.log(row.one);
 * ```
 */
export class QueryRows implements AsyncIterable<Row> {
  readonly #source: RowSource;
  #gen: AsyncGenerator<Row> | undefined;
  #first: Promise<IteratorResult<Row>> | undefined;
  #iterated = false;
  #columns: Promise<Column[]> | undefined;
  #resolveColumns: ((c: Column[]) => void) | undefined;
  #rejectColumns: ((e: unknown) => void) | undefined;

  /** @internal Made by `Connection.query` and `ConnectionPool.query`. */
  constructor(source: RowSource) {
    this.#source = source;
  }

  #start(): AsyncGenerator<Row> {
    if (this.#gen) return this.#gen;
    const columns = new Promise<Column[]>((resolve, reject) => {
      this.#resolveColumns = resolve;
      this.#rejectColumns = reject;
    });
    // A failure reaches the caller through iteration; a caller that never reads `columns` must
    // not see an unhandled rejection.
    columns.catch(() => {});
    this.#columns = columns;
    const source = this.#source((c) => this.#resolveColumns?.(c));
    const reject = (e: unknown) => this.#rejectColumns?.(e);
    const done = () => this.#resolveColumns?.([]);
    this.#gen = (async function* () {
      try {
        yield* source;
        done();
      } catch (e) {
        reject(e);
        throw e;
      }
    })();
    return this.#gen;
  }

  /** The columns of the result, known before the first row. Reading this starts the statement. */
  get columns(): Promise<Column[]> {
    const gen = this.#start();
    // Pull the first row so the server describes the result; iteration hands it out later.
    if (!this.#first && !this.#iterated) {
      this.#first = gen.next();
      this.#first.catch(() => {});
    }
    return this.#columns!;
  }

  /** Streams the rows. A result can be iterated once. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Row> {
    if (this.#iterated) throw new TypeError("A query result can be iterated only once");
    this.#iterated = true;
    const gen = this.#start();
    try {
      let next = this.#first ?? gen.next();
      this.#first = undefined;
      for (;;) {
        const r = await next;
        if (r.done) return;
        yield r.value;
        next = gen.next();
      }
    } finally {
      await gen.return(undefined);
    }
  }

  /**
   * Collects every row.
   *
   * @returns The rows.
   */
  async toArray(): Promise<Row[]> {
    const out: Row[] = [];
    for await (const r of this) out.push(r);
    return out;
  }
}

/**
 * Turns a statement's result sets into row objects of the first set, draining later sets so the
 * statement completes.
 *
 * @param sets The result sets.
 * @param onColumns Called with the first set's columns.
 * @returns Rows.
 */
export async function* rowsOfFirstSet(
  sets: AsyncIterable<ResultSet>,
  onColumns: (columns: Column[]) => void,
): AsyncGenerator<Row> {
  let first = true;
  for await (const set of sets) {
    if (first) onColumns(set.columns);
    const names = set.columns.map((c) => c.name);
    for await (const r of set.rows) {
      if (!first) continue;
      const o: Row = {};
      for (let i = 0; i < names.length; i++) o[names[i]!] = r[i];
      yield o;
    }
    first = false;
  }
}
