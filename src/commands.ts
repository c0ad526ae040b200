/** Registers the commands that live outside cli.ts (daemon, setup). Imported by the entry point only. */
import { extraCommands } from './cli';
import { registerDaemon } from './daemon';

extraCommands.push(registerDaemon);
