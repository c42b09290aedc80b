/**
 * Keeps finished invocation records: a bounded in-memory ring (newest last) and, optionally, one JSON
 * line per record appended to a file.
 *
 * Invariants: at most `capacity` records are held; file appends happen one at a time in record order;
 * `flush()` resolves once every append issued so far has finished (append errors are reported to `onError`
 * and do not stop later appends).
 */
import type { InvocationRecord } from "./types.ts";

export class InvocationLog {
  #ring: InvocationRecord[] = [];
  #next = 0;
  #writes: Promise<void> = Promise.resolve();

  constructor(
    readonly capacity: number,
    readonly path: string | undefined,
    readonly onError: (error: unknown) => void,
  ) {}

  add(record: InvocationRecord): void {
    if (this.#ring.length < this.capacity) this.#ring.push(record);
    else this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % this.capacity;
    const path = this.path;
    if (path === undefined) return;
    const line = JSON.stringify(record) + "\n";
    this.#writes = this.#writes.then(() => Deno.writeTextFile(path, line, { append: true })).catch(
      this.onError,
    );
  }

  /** Records in arrival order, oldest first. */
  list(): InvocationRecord[] {
    if (this.#ring.length < this.capacity) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  flush(): Promise<void> {
    return this.#writes;
  }
}
