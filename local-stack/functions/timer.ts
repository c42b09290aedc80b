/**
 * A cancellable delay, so every timer the runtime starts can be cleared (no timer outlives its purpose,
 * which also keeps Deno's test sanitizers quiet).
 *
 * Invariant: after `cancel()` the promise never settles and the underlying timer is cleared.
 */
export interface Delay {
  promise: Promise<void>;
  cancel(): void;
}

export function delay(ms: number): Delay {
  let id = 0;
  const promise = new Promise<void>((resolve) => {
    id = setTimeout(resolve, Math.max(0, ms));
  });
  return { promise, cancel: () => clearTimeout(id) };
}

/** Resolves to `value` or, if `ms` passes first, to `fallback`; the timer is always cleared. */
export async function within<T, F>(value: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  const timer = delay(ms);
  try {
    return await Promise.race([value, timer.promise.then(() => fallback)]);
  } finally {
    timer.cancel();
  }
}
