/**
 * Environment variables as shells read them, written once for every writer of them (export and
 * exec, a rendered dotenv file, `config build --format dotenv`): the name rule, how a name is
 * made from other text, and the quoting of a value.
 */

/** What a POSIX shell accepts as a variable name. */
export const VARIABLE_RULE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every character a variable name cannot hold becomes `_` (the caller still checks VARIABLE_RULE: a leading digit stays). */
export const toVariableChars = (text: string): string => text.replace(/[^A-Za-z0-9_]/g, '_');

/**
 * POSIX single-quoting: exact for every character (quotes, `$`, backticks, backslashes, newlines),
 * as single quotes are the one quoting with no special characters inside; `'` closes, is escaped, reopens.
 */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
