/** Registers the commands that live outside cli.ts (daemon, setup). Imported by the entry point only. */
export {};
