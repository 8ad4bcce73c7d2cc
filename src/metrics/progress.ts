/**
 * Progress for phases that take over a second: one line on stderr, rewritten in
 * place on a terminal, printed every few seconds otherwise. Silent when disabled.
 */
import { performance } from 'node:perf_hooks';

export interface Progress {
  /** Starts a phase; `update` reports units done of `total`. */
  phase(name: string, total: number, unit?: string): PhaseProgress;
}

export interface PhaseProgress {
  update(done: number): void;
  end(): void;
}

export const silentProgress: Progress = { phase: () => ({ update() {}, end() {} }) };

/** Where consoleProgress writes (process.stderr by default); not NodeJS.WriteStream, so the package's .d.ts do not need @types/node. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export function consoleProgress(stream: ProgressStream = process.stderr): Progress {
  return {
    phase(name, total, unit = 'pages') {
      const start = performance.now();
      let last = 0;
      let shown = false;
      const show = (done: number, final: boolean) => {
        const elapsed = performance.now() - start;
        if (!final && (elapsed < 1000 || elapsed - last < (stream.isTTY ? 100 : 3000))) return;
        last = elapsed;
        shown = true;
        const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
        const rate = elapsed > 0 ? Math.round((done / elapsed) * 1000) : 0;
        const line = `${name}: ${done}/${total} ${unit} (${pct}%, ${rate} ${unit}/s, ${(elapsed / 1000).toFixed(1)} s)`;
        if (stream.isTTY) stream.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
        else stream.write(`${line}\n`);
      };
      return {
        update: (done) => show(done, false),
        end: () => {
          if (shown) show(total, true);
        },
      };
    },
  };
}
