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

/** Runs the statement and returns its first result set whole (the fast path of `toArray()`). */
export type RowCollector = () => Promise<{ columns: Column[]; rows: Row[] }>;

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
  readonly #collect: RowCollector | undefined;
  #rows: AsyncIterator<Row> | undefined;
  #first: Promise<IteratorResult<Row>> | undefined;
  #iterated = false;
  #columns: Promise<Column[]> | undefined;
  #resolveColumns: ((c: Column[]) => void) | undefined;
  #rejectColumns: ((e: unknown) => void) | undefined;

  /** @internal Made by `Connection.query` and `ConnectionPool.query`. */
  constructor(source: RowSource, collect?: RowCollector) {
    this.#source = source;
    this.#collect = collect;
  }

  #columnsPromise(): Promise<Column[]> {
    if (this.#columns) return this.#columns;
    const columns = new Promise<Column[]>((resolve, reject) => {
      this.#resolveColumns = resolve;
      this.#rejectColumns = reject;
    });
    // A failure reaches the caller through iteration; a caller that never reads `columns` must
    // not see an unhandled rejection.
    columns.catch(() => {});
    this.#columns = columns;
    return columns;
  }

  /**
   * Starts the source once. The rows come through a plain iterator object rather than another
   * async generator: on a pool serving short statements each generator layer is measurable.
   */
  #start(): AsyncIterator<Row> {
    if (this.#rows) return this.#rows;
    this.#columnsPromise();
    const source = this.#source((c) => this.#resolveColumns?.(c));
    const rows: AsyncIterator<Row> = {
      next: async () => {
        try {
          const r = await source.next();
          if (r.done) this.#resolveColumns?.([]);
          return r;
        } catch (e) {
          this.#rejectColumns?.(e);
          throw e;
        }
      },
      return: (value?: unknown) => source.return(value as undefined),
    };
    this.#rows = rows;
    return rows;
  }

  /** The columns of the result, known before the first row. Reading this starts the statement. */
  get columns(): Promise<Column[]> {
    if (this.#iterated && !this.#rows) return this.#columnsPromise(); // collected by toArray()
    const rows = this.#start();
    // Pull the first row so the server describes the result; iteration hands it out later.
    if (!this.#first && !this.#iterated) {
      this.#first = rows.next();
      this.#first.catch(() => {});
    }
    return this.#columns!;
  }

  /** Streams the rows. A result can be iterated once. */
  [Symbol.asyncIterator](): AsyncIterator<Row> {
    if (this.#iterated) throw new TypeError("A query result can be iterated only once");
    this.#iterated = true;
    const rows = this.#start();
    return {
      next: () => {
        const first = this.#first;
        if (first) {
          this.#first = undefined;
          return first;
        }
        return rows.next();
      },
      // Leaving a loop early: the source's `finally` blocks free the connection.
      return: async (value?: unknown) => {
        this.#first = undefined;
        await rows.return?.(value);
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Collects every row.
   *
   * @returns The rows.
   */
  async toArray(): Promise<Row[]> {
    if (this.#collect && !this.#rows && !this.#iterated) {
      // Nothing started yet: run the statement in one go instead of row by row.
      this.#iterated = true;
      this.#columnsPromise();
      try {
        const { columns, rows } = await this.#collect();
        this.#resolveColumns?.(columns);
        return rows;
      } catch (e) {
        this.#rejectColumns?.(e);
        throw e;
      }
    }
    const out: Row[] = [];
    for await (const r of this) out.push(r);
    return out;
  }
}

/**
 * Row objects keyed by column name.
 *
 * @param columns The columns.
 * @param rows Rows as arrays in column order.
 * @returns The rows as objects.
 */
export function rowObjects(columns: readonly Column[], rows: readonly unknown[][]): Row[] {
  const names = columns.map((c) => c.name);
  return rows.map((r) => {
    const o: Row = {};
    for (let i = 0; i < names.length; i++) o[names[i]!] = r[i];
    return o;
  });
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
