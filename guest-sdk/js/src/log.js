// Logging into the host's log, tagged with the connector's id.
//
//     import { log } from 'sandport-sdk';
//     log.info('checking %s', url);
//
// With arguments, `%s`, `%d`, `%i`, `%f`, `%j`, `%o`, `%O` and `%%` in the
// message are substituted as console.log does; arguments left over are
// appended, separated by spaces. The host replaces line breaks with spaces
// and rate-limits all of a guest's output.

import { log as witLog } from 'sandport:connector/logging@0.2.1';
import { Level } from './wit.js';

export { Level };

function show(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack || `${value.name}: ${value.message}`;
  if (value !== null && typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/** `message` with `args` substituted (see above). */
export function format(message, ...args) {
  let text = show(message);
  let next = 0;
  if (args.length && typeof message === 'string') {
    text = message.replace(/%[sdifjoO%]/g, (spec) => {
      if (spec === '%%') return '%';
      if (next >= args.length) return spec;
      const arg = args[next++];
      switch (spec) {
        case '%d':
          return typeof arg === 'bigint' ? String(arg) : String(Number(arg));
        case '%i':
          return typeof arg === 'bigint' ? String(arg) : String(Math.trunc(Number(arg)));
        case '%f':
          return String(Number(arg));
        case '%j':
        case '%o':
        case '%O':
          try {
            return JSON.stringify(arg);
          } catch {
            return show(arg);
          }
        default:
          return show(arg);
      }
    });
  }
  for (; next < args.length; next++) text += ` ${show(args[next])}`;
  return text;
}

/** Sends one message to the host's log at `level` (a `Level`). */
export function log(level, message, ...args) {
  witLog(level, format(message, ...args));
}

/** Logs at trace level. */
export function trace(message, ...args) {
  log(Level.TRACE, message, ...args);
}

/** Logs at debug level. */
export function debug(message, ...args) {
  log(Level.DEBUG, message, ...args);
}

/** Logs at info level. */
export function info(message, ...args) {
  log(Level.INFO, message, ...args);
}

/** Logs at warn level. */
export function warn(message, ...args) {
  log(Level.WARN, message, ...args);
}

export { warn as warning };

/** Logs at error level. */
export function error(message, ...args) {
  log(Level.ERROR, message, ...args);
}
