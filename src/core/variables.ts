/**
 * Environment variables as shells read them, written once for every writer of them (export and
 * exec, a rendered dotenv file, `config build --format dotenv`): the name rule, how a name is
 * made from other text, which names change how a program loads, what a value may hold, and the
 * quoting of a value.
 */
import { AppError } from './errors';

/** What a POSIX shell accepts as a variable name. */
export const VARIABLE_RULE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every character a variable name cannot hold becomes `_` (the caller still checks VARIABLE_RULE: a leading digit stays). */
export const toVariableChars = (text: string): string => text.replace(/[^A-Za-z0-9_]/g, '_');

/**
 * Variables that decide what a program runs or loads before its own code does: the command search
 * path, the dynamic loader, shells' start-up files and parsing, and the start-up options of the
 * common runtimes. Whoever can create a secret under a prefix must not be able to run code in the
 * application by naming a secret after one of these, so a prefix never produces them; an operator
 * who means it names the secret with `--name VAR=NAME`.
 */
const LOADER_VARIABLES = new Set([
  'PATH',
  'IFS',
  'PS4',
  'ENV',
  'BASH_ENV',
  'BASHOPTS',
  'SHELLOPTS',
  'PROMPT_COMMAND',
  'CDPATH',
  'GLOBIGNORE',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_EXTRA_CA_CERTS',
  'RUBYOPT',
  'RUBYLIB',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'CLASSPATH',
  'PERLLIB',
  'GCONV_PATH',
  'NLSPATH',
  'LOCPATH',
  'GLIBC_TUNABLES',
  'HOSTALIASES',
  'DOTNET_STARTUP_HOOKS',
  'PHPRC',
  'PHP_INI_SCAN_DIR',
  'OPENSSL_CONF',
  'OPENSSL_ENGINES',
]);
/** Whole families: the dynamic loaders (glibc, musl, macOS), Python, Perl 5, .NET's profiler hooks. */
const LOADER_PREFIXES = ['LD_', 'DYLD_', 'PYTHON', 'PERL5', 'CORECLR_'];

/** True for a variable that changes how a program loads (see LOADER_VARIABLES). Case-sensitive, as the environment is. */
export function isLoaderVariable(variable: string): boolean {
  return LOADER_VARIABLES.has(variable) || LOADER_PREFIXES.some((p) => variable.startsWith(p));
}

/**
 * The one check of a value bound for an environment variable or a file of them: a NUL ends a
 * string at execve and truncates a value where a shell reads it, so it is refused, naming `whose`
 * (e.g. `secret "db.password"`), never showing the value.
 */
export function checkVariableValue(value: string, whose: string): string {
  if (value.includes('\0'))
    throw new AppError('usage', `${whose} holds a NUL character, which an environment variable cannot carry`);
  return value;
}

/**
 * POSIX single-quoting: exact for every character (quotes, `$`, backticks, backslashes, newlines),
 * as single quotes are the one quoting with no special characters inside; `'` closes, is escaped, reopens.
 */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
