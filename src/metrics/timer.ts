import { performance } from 'node:perf_hooks';

/** Milliseconds spent in named phases, in the order they ran. */
export class PhaseTimer {
  readonly phases: Record<string, number> = {};
  /** The phases running now, innermost last. */
  private readonly running: string[] = [];

  async time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const start = performance.now();
    this.running.push(name);
    try {
      return await fn();
    } finally {
      this.running.pop();
      this.phases[name] = (this.phases[name] ?? 0) + (performance.now() - start);
    }
  }

  /** Moves `ms` spent inside the innermost running phase into a phase of its own, `name`. */
  setApart(name: string, ms: number): void {
    const inner = this.running.at(-1);
    if (inner !== undefined) this.phases[inner] = (this.phases[inner] ?? 0) - ms;
    this.phases[name] = (this.phases[name] ?? 0) + ms;
  }
}

export const round1 = (n: number) => Math.round(n * 10) / 10;
