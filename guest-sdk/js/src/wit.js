// The enums of the WIT contract (wit/connector.wit). componentize-js maps a
// WIT enum to its case name as a string, so these are plain strings.

/** What kind of system a connector watches (`types.connector-type`). */
export const ConnectorType = Object.freeze({
  OBSERVABILITY: 'observability',
  AGENT: 'agent',
  STORAGE: 'storage',
  MESSAGING: 'messaging',
  DATABASE: 'database',
  CUSTOM: 'custom',
});

/** How a connector reaches its target (`types.connection-mode`). */
export const ConnectionMode = Object.freeze({
  LOCAL: 'local',
  REMOTE: 'remote',
});

/** The outcome of one health check (`types.health-status`). */
export const HealthStatus = Object.freeze({
  HEALTHY: 'healthy',
  DEGRADED: 'degraded',
  UNHEALTHY: 'unhealthy',
  UNAVAILABLE: 'unavailable',
  UNKNOWN: 'unknown',
});

/** Which credentials the host attaches (`types.auth-kind`). */
export const AuthKind = Object.freeze({
  NONE: 'none',
  BASIC: 'basic',
  BEARER: 'bearer',
  API_KEY: 'api-key',
  AWS_SIGV4: 'aws-sigv4',
});

/** Log levels (`logging.level`). */
export const Level = Object.freeze({
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
});

/** `value` if it is one of the strings of `cases` (an enum above). */
export function isCase(cases, value) {
  return Object.values(cases).includes(value);
}
