/**
 * A small scanner for SQL text that finds statement boundaries while skipping string literals,
 * quoted identifiers and comments. Used where a driver would otherwise run only the first
 * statement of a script and silently drop the rest.
 *
 * @module
 */

/**
 * Whether the text holds more than one statement: a `;` outside literals and comments followed by
 * anything other than white space, semicolons and comments.
 *
 * @param sql The SQL text.
 * @returns True when a second statement follows the first.
 */
export function hasMultipleStatements(sql: string): boolean {
  let sawEnd = false;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i);
      i = nl < 0 ? sql.length : nl;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 1;
      continue;
    }
    if (c === ";") {
      sawEnd = true;
      continue;
    }
    if (/\s/.test(c)) continue;
    if (sawEnd) return true;
    const close = c === "'" ? "'" : c === '"' ? '"' : c === "`" ? "`" : c === "[" ? "]" : "";
    if (close) {
      // A doubled closing quote inside a literal is an escaped quote, not the end.
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === close) {
          if (close !== "]" && sql[j + 1] === close) j += 2;
          else break;
        } else j++;
      }
      i = j;
    }
  }
  return false;
}
