// The base class of a connector, and the glue to the component's export.
//
// A component instance is single-threaded and the host calls it one export
// at a time; the state lives in the object `exportConnector` returns (the
// build snapshots the module's top level, so it exists from the start).

import * as log from './log.js';
import { Config, emptyConfig } from './config.js';
import { ConnectorError, describe } from './error.js';
import { HealthReport } from './report.js';
import { ConnectorType, HealthStatus, isCase } from './wit.js';

/**
 * Extend this and export the subclass with `exportConnector`.
 *
 * The host creates one instance per config entry: the SDK constructs the
 * class without arguments, sets `this.config` (a `Config`) and calls
 * `initialize(config)` once, then `healthCheck()` on schedule and `close()`
 * before the instance is dropped. They are synchronous (not `async`): the
 * host calls block until they are done.
 */
export class Connector {
  /** Human-readable name used until the config names the connector. */
  static NAME = 'Connector';
  /** The connector's type (a `ConnectorType`, or its name, e.g. "database"). */
  static TYPE = ConnectorType.CUSTOM;
  /** One sentence about what the connector checks. */
  static DESCRIPTION = '';

  /**
   * Validates `config` and prepares the check. Throw (e.g.
   * `new Error('settings.x: ...')`) to refuse the config; the message is
   * reported to the operator as it is, so say which setting is wrong and why.
   */
  initialize(config) {} // eslint-disable-line no-unused-vars

  /**
   * Runs one check and returns a `HealthReport`. A thrown error (for
   * instance the `HttpError` of a refused connection) is reported as
   * `unhealthy` with its message.
   */
  healthCheck() {
    throw new ConnectorError('healthCheck is not implemented');
  }

  /** The URL the connector talks to; by default the config's endpoint. */
  endpoint() {
    return this.config.endpoint();
  }

  /** Releases whatever the connector holds; called once. */
  close() {}
}

/** The WIT `connector-type` of `value`: a `ConnectorType` or its name. */
export function connectorKind(value) {
  const kind = String(value).trim().toLowerCase().replace(/_/g, '-');
  if (!isCase(ConnectorType, kind)) {
    throw new TypeError(
      `TYPE ${JSON.stringify(String(value))} is not a connector type (${Object.values(ConnectorType).join(', ')})`,
    );
  }
  return kind;
}

/** `value`, unless it is a promise: the exports are synchronous. */
function notAsync(method, value) {
  if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
    value.then(undefined, () => {}); // no unhandled rejection on top
    throw new TypeError(`${method} returned a Promise; write it as a plain (not async) method (http.get and the other host calls block)`);
  }
  return value;
}

function toWitReport(report) {
  if (report instanceof HealthReport) return report.toWit();
  if (report !== null && typeof report === 'object' && isCase(HealthStatus, report.status)) {
    // A plain WIT-shaped record: { status, message, details }.
    return new HealthReport(report.status, report.message ?? '', report.details ?? []).toWit();
  }
  const what = report === null ? 'null' : typeof report === 'object' ? report.constructor?.name ?? 'object' : typeof report;
  throw new TypeError(`healthCheck returned ${what}, not a HealthReport`);
}

function logStack(where, err) {
  try {
    log.debug('%s threw: %s', where, err instanceof Error && err.stack ? `${describe(err)}\n${err.stack}` : describe(err));
  } catch {
    // Logging must never turn a report into a trap.
  }
}

/**
 * The object the component exports for `connector-api`. Bind it to the name
 * `connectorApi` in the app module:
 *
 *     export const connectorApi = exportConnector(MyConnector);
 */
export function exportConnector(connectorClass) {
  if (!(typeof connectorClass === 'function' && connectorClass.prototype instanceof Connector)) {
    throw new TypeError('exportConnector() takes a subclass of Connector');
  }
  connectorKind(connectorClass.TYPE); // fail at build time on a bad TYPE
  const state = { connector: null, config: null };

  return {
    id() {
      return state.config !== null ? state.config.id : '';
    },

    name() {
      if (state.config !== null && state.config.name) return state.config.name;
      return String(connectorClass.NAME);
    },

    connectorType() {
      return connectorKind(connectorClass.TYPE);
    },

    description() {
      if (state.config !== null && state.config.description) return state.config.description;
      return String(connectorClass.DESCRIPTION);
    },

    // result<_, string> and result<health-report, string>: return the ok
    // value, throw a string for err. (A thrown Error would trap.)
    initialize(config) {
      let connector;
      try {
        const wrapped = new Config(config);
        connector = new connectorClass();
        connector.config = wrapped;
        notAsync('initialize', connector.initialize(wrapped));
      } catch (e) {
        throw describe(e);
      }
      state.connector = connector;
      state.config = config;
    },

    healthCheck() {
      const connector = state.connector;
      if (connector === null) throw 'health-check called before initialize';
      try {
        return toWitReport(notAsync('healthCheck', connector.healthCheck()));
      } catch (e) {
        if (!(e instanceof ConnectorError)) logStack('healthCheck', e);
        return HealthReport.unhealthy(describe(e)).toWit();
      }
    },

    getEndpoint() {
      if (state.connector === null) return '';
      try {
        return String(state.connector.endpoint());
      } catch (e) {
        logStack('endpoint', e);
        return '';
      }
    },

    getConfig() {
      return state.config !== null ? state.config : emptyConfig();
    },

    close() {
      const connector = state.connector;
      state.connector = null;
      state.config = null;
      if (connector !== null) {
        try {
          notAsync('close', connector.close());
        } catch (e) {
          logStack('close', e);
        }
      }
    },
  };
}
