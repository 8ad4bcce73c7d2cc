/**
 * CrcThread: a second thread for the page checks of a resume, as Linux's swap.c runs
 * its CRC32 in a kernel thread of its own (crc32_threadfn) beside the thread that reads
 * the image.
 *
 * A resume checks the CRC32 of every image page before it may touch guest memory; on one
 * thread that is read + checksum of the whole image, one chunk after the other. With a
 * CrcThread the two threads take chunks from one shared counter (page-scan.mjs), each
 * reading its own chunks with a positioned read on the same file descriptor, so the scan
 * runs on two cores (what that was worth: docs/BENCHMARKS.md, notes). Inside resume(),
 * whose thread is new each time, the gain is smaller than with a warm thread.
 *
 * Start it early (worker start-up takes tens of milliseconds; resume() starts it before
 * booting the boot kernel) and close it when done. Where no worker can be started, or
 * it dies, the main thread scans alone: the outcome is the same, only slower.
 */
import { Worker } from 'node:worker_threads';
import { CRC32_IMPLEMENTATION, CRC32_PAGES_IMPLEMENTATION } from './crc.ts';
import { NATIVE_MODULE_PATH } from '../native.ts';
import type { ScanResult } from './page-scan.mjs';

/** One job for the thread: what page-scan.mjs's scanChunks takes, with the counter's buffer. */
export interface CrcThreadJob {
  readonly fd: number;
  readonly dataOffset: number;
  readonly pageCount: number;
  readonly chunkPages: number;
  readonly crcs: Uint32Array;
  /** The image's swap map, if its data is scattered (mappedPieces). */
  readonly extents?: Uint32Array;
  /** A compressed image: every page's stored size, and where each begins (page-scan.mjs). */
  readonly sizes?: Uint32Array;
  readonly offsets?: Float64Array;
  readonly counter: SharedArrayBuffer;
}

type Reply = ScanResult | { readonly error: string } | { readonly ready: true };

export class CrcThread {
  #worker: Worker | undefined;
  #failure: string | undefined;
  #busy = false;

  /** Starts the worker thread (it keeps the process alive only while a job runs). */
  static start(): CrcThread {
    return new CrcThread();
  }

  private constructor() {
    try {
      const worker = new Worker(new URL('./page-scan.mjs', import.meta.url), {
        workerData: { role: 'hiberlab-crc-thread', impl: CRC32_IMPLEMENTATION, nativePath: CRC32_PAGES_IMPLEMENTATION === 'native' ? NATIVE_MODULE_PATH : undefined },
        // page-scan.mjs is plain JavaScript: the thread needs none of the loaders node was
        // started with (tsx's would only slow its start-up).
        execArgv: [],
      });
      worker.unref();
      worker.on('error', (err) => this.#lose(`it failed: ${err.message}`));
      worker.on('exit', (code) => this.#lose(`it exited (code ${code})`));
      this.#worker = worker;
    } catch (err) {
      this.#failure = `it could not be started: ${(err as Error).message}`;
    }
  }

  #lose(why: string): void {
    this.#failure ??= why;
    this.#worker = undefined;
  }

  /** The thread is there to take work. */
  get available(): boolean {
    return this.#worker !== undefined && !this.#busy;
  }

  /** Why the thread is gone, if it is. */
  get failure(): string | undefined {
    return this.#failure;
  }

  /**
   * Runs `job` on the thread. Resolves with its result, or with undefined if the thread
   * is gone or died during the job (then which chunks it had taken is unknown: the caller
   * scans everything itself).
   */
  run(job: CrcThreadJob): Promise<ScanResult | { readonly error: string } | undefined> {
    const worker = this.#worker;
    if (!worker || this.#busy) return Promise.resolve(undefined);
    this.#busy = true;
    worker.ref();
    return new Promise((resolve) => {
      const done = (result: ScanResult | { readonly error: string } | undefined): void => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        worker.off('error', onExit);
        worker.unref();
        this.#busy = false;
        resolve(result);
      };
      const onMessage = (reply: Reply): void => {
        if ('ready' in reply) return;
        done(reply);
      };
      const onExit = (): void => done(undefined);
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.once('error', onExit);
      worker.postMessage(job);
    });
  }

  /** Stops the thread. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failure ??= 'it was closed';
    if (worker) await worker.terminate();
  }
}
