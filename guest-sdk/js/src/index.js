// Write Sandport connectors in JavaScript.
//
// A connector is a subclass of `Connector`, exported once per app module
// with `exportConnector`; `guest-sdk/js/build.mjs` turns the module into a
// WebAssembly component with componentize-js:
//
//     import { Connector, ConnectorType, HealthReport, exportConnector, http } from 'sandport-sdk';
//
//     class Ping extends Connector {
//       static NAME = 'Ping';
//       static TYPE = ConnectorType.CUSTOM;
//
//       initialize(config) {
//         this.url = config.url(config.healthPathOr('/'));
//       }
//
//       healthCheck() {
//         return HealthReport.fromResponse(http.get(this.url).expectSuccess());
//       }
//     }
//
//     export const connectorApi = exportConnector(Ping);
//
// Layout: `Connector` (connector.js), `http` (outbound HTTP through the
// host, the only way out of the sandbox), `log` (the host's log), `net`
// (the host's vetted name resolution), `Config` and `HealthReport` (the
// records of the WIT contract, with helpers).

export { AuthKind, ConnectionMode, ConnectorType, HealthStatus, Level } from './wit.js';
export { ConnectorError, describe } from './error.js';
export { Config } from './config.js';
export { HealthReport } from './report.js';
export { HttpError, ErrorKind } from './http.js';
export { Connector, exportConnector, exportConnector as export } from './connector.js';
export * as http from './http.js';
export * as log from './log.js';
export * as net from './net.js';
