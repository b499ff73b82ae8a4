/**
 * Set-ups done once per key on a node (a working directory unpacked, an
 * npm list installed): calls for a key being set up share that set-up; a
 * finished one is kept; a failed one is not remembered, so the next call
 * tries again.
 * @internal
 */
export class OncePerKey<T> {
  private readonly done = new Map<string, T>();
  private readonly running = new Map<string, Promise<T>>();

  /** The result for `key`, once set up. */
  get(key: string): T | undefined {
    return this.done.get(key);
  }

  /** Whether `key` is being set up now. */
  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  /** The result for `key`: kept, being set up (shared), or set up now by `setUp`. */
  run(key: string, setUp: () => Promise<T>): Promise<T> {
    if (this.done.has(key)) return Promise.resolve(this.done.get(key) as T);
    let p = this.running.get(key);
    if (!p) {
      p = setUp().then(
        (v) => {
          this.running.delete(key);
          this.done.set(key, v);
          return v;
        },
        (e: unknown) => {
          this.running.delete(key);
          throw e;
        },
      );
      this.running.set(key, p);
    }
    return p;
  }
}
