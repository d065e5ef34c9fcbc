// The host's name resolution, for connectors that speak TCP themselves.
//
// The host resolves names and vets every address; a TCP connection (through
// wasi:sockets) succeeds only to an address `resolve` returned or an IP
// literal the allowlist names.

import { resolve as witResolve } from 'sandport:connector/network@0.2.1';
import { ConnectorError } from './error.js';

/**
 * The addresses (as text, e.g. `10.0.0.5`, `::1`) of `host` this connector
 * may connect to on `port`; throws a `ConnectorError` saying why not
 * (`db.local:5432: denied: ...`).
 */
export function resolve(host, port) {
  try {
    return Array.from(witResolve(String(host), port));
  } catch (e) {
    if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) {
      throw new ConnectorError(`${host}:${port}: ${e.payload}`);
    }
    throw e;
  }
}
