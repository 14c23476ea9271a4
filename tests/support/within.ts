/**
 * A bound on how long a property-based run may take, so that a hang fails the test instead of
 * stalling the suite.
 *
 * @module
 */

/**
 * Resolves as `p` does, or rejects when it has not settled within `ms` milliseconds.
 *
 * @param p The work.
 * @param ms The bound.
 * @returns What `p` resolved to.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: no outcome within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}
