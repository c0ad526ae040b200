// dynalite ships no types; this covers the part the stand-ins use.
declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    maxItemSizeKb?: number;
    /** LevelDB directory; in memory when omitted. */
    path?: string;
    verbose?: boolean;
    debug?: boolean;
  }

  /** Returns an http.Server (not yet listening) whose 'request' listener is the DynamoDB handler.
   * Its close() also closes the database, but only if the server is listening. */
  function dynalite(options?: DynaliteOptions): Server;
  export = dynalite;
}
