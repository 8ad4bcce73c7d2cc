/**
 * The one base class of hiberlab's errors: a stable `code` a program can switch on,
 * a message a person reads, and the facts (what, where, expected, actual) as typed
 * fields, so that a JSON report or a CI log says what happened without a rerun.
 */
export class HiberlabError<Code extends string = string, Facts extends object = object> extends Error {
  readonly code: Code;
  readonly facts: Facts;

  constructor(code: Code, message: string, facts: Facts, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.facts = facts;
  }
}

/** The code of any error: a HiberlabError's own, else 'INTERNAL' (a bug, or an error from below). */
export function errorCode(err: unknown): string {
  return err instanceof HiberlabError ? err.code : 'INTERNAL';
}
