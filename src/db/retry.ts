/** PostgreSQL's "try again" errors: a deadlock victim, a serialization failure. */
const RETRYABLE = new Set(['40P01', '40001']);

export const isRetryable = (error: unknown) =>
  typeof error === 'object' && error !== null && RETRYABLE.has(String((error as { code?: unknown }).code));

/**
 * Runs a whole transaction again when PostgreSQL chose it as a deadlock or serialization victim:
 * it was rolled back entirely, so running it again is safe, and the caller never sees a 500 for it.
 */
export async function retryTransaction<T>(run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!isRetryable(error) || attempt >= attempts) throw error;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
    }
  }
}
