/**
 * JUnit XML for CI systems that read test results in that form (`hiberlab cycle --junit
 * FILE`, `hiberlab compare --junit FILE`): one <testcase> per cycle, a <failure> when the
 * oracle failed it, an <error> when it could not run (a refused hibernation, a dead
 * guest), the summary in <system-out>.
 */
export interface JunitCase {
  readonly name: string;
  readonly classname: string;
  readonly timeMs: number;
  /** The oracle failed the cycle: its failures. */
  readonly failure?: { readonly message: string; readonly details: string };
  /** The cycle could not run: the error's code and message. */
  readonly error?: { readonly type: string; readonly message: string; readonly details?: string };
  readonly output?: string;
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

const seconds = (ms: number) => (ms / 1000).toFixed(3);

/** A <testsuites> document with one <testsuite> named `suite`. */
export function junitXml(suite: string, cases: readonly JunitCase[], timestamp = new Date()): string {
  const failures = cases.filter((c) => c.failure).length;
  const errors = cases.filter((c) => c.error && !c.failure).length;
  const total = cases.reduce((t, c) => t + c.timeMs, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="hiberlab" tests="${cases.length}" failures="${failures}" errors="${errors}" time="${seconds(total)}">`,
    `  <testsuite name="${escape(suite)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="0" time="${seconds(total)}" timestamp="${timestamp.toISOString().slice(0, 19)}">`,
  ];
  for (const c of cases) {
    lines.push(`    <testcase classname="${escape(c.classname)}" name="${escape(c.name)}" time="${seconds(c.timeMs)}">`);
    if (c.failure) lines.push(`      <failure message="${escape(c.failure.message)}" type="oracle">${escape(c.failure.details)}</failure>`);
    else if (c.error) lines.push(`      <error message="${escape(c.error.message)}" type="${escape(c.error.type)}">${escape(c.error.details ?? '')}</error>`);
    if (c.output) lines.push(`      <system-out>${escape(c.output)}</system-out>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
