import { MachineError } from '../src/machine/errors.ts';

/** A one-paragraph explanation of any error, with the guest console tail when there is one. */
export function describeError(err: unknown): string {
  if (err instanceof MachineError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
