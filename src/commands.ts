/** Registers the commands that live outside cli.ts (daemon, setup). Imported by the entry point only. */
import { extraCommands } from './cli';
import { registerDaemon } from './daemon';
import { registerSetup } from './setup';

extraCommands.push(registerDaemon);
extraCommands.push(registerSetup);
