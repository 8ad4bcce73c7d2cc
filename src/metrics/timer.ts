import { performance } from 'node:perf_hooks';

/** Milliseconds spent in named phases, in the order they ran. */
export class PhaseTimer {
  readonly phases: Record<string, number> = {};

  async time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.phases[name] = (this.phases[name] ?? 0) + (performance.now() - start);
    }
  }
}

export const round1 = (n: number) => Math.round(n * 10) / 10;
